package node

import (
	"context"
	"fmt"

	"github.com/staydown/staydown/node/kind"
	"github.com/staydown/staydown/node/roster"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// Membership implements api.Membership: the membership in force (SPEC
// 12), as GET /v1/members shows it.
func (n *Node) Membership(ctx context.Context) (roster.View, error) {
	return roster.Describe(n.members.History()), nil
}

// Proposals implements api.Membership: the amendments of the version in
// force that wait for votes.
func (n *Node) Proposals(ctx context.Context) (roster.ProposalList, error) {
	return roster.Pending(n.members.History()), nil
}

// Propose implements api.Membership: it signs and publishes the
// amendment req asks for, of the version in force, as this node's vote
// (roster.Propose says what it refuses before signing), and returns it
// as the membership now has it: pending, or passed when this vote was
// the last one needed.
func (n *Node) Propose(ctx context.Context, req roster.ProposeRequest) (roster.Proposal, error) {
	if err := req.Check(); err != nil {
		return roster.Proposal{}, err
	}
	// From the reading of the membership to the signing, no other vote
	// of this node: two at one version are evidence against it. Publish
	// returns once the writer has computed the membership with the entry.
	n.votes.Lock()
	defer n.votes.Unlock()
	a, err := roster.Propose(n.members.History(), n.me.Name, n.me.AuthorKey, req, func(k protocol.AuthorKey) (uint64, error) {
		h, err := n.store.Head(k)
		return h.Seq, err
	})
	if err != nil {
		return roster.Proposal{}, err
	}
	e, err := n.Publish(ctx, &pb.Entry{Payload: &pb.Entry_Amendment{Amendment: a}})
	if err != nil {
		return roster.Proposal{}, err
	}
	p := roster.Published(n.members.History(), e.ID, n.me.Name, a)
	n.log.Info("proposed an amendment", "id", e.ID, "base", a.Base, "change", p.Change, "passed", p.Passed)
	return p, nil
}

// Approve implements api.Membership: it signs and publishes this node's
// approval of proposal id, pending at the version in force (roster.Approve
// says what it refuses before signing), and returns the proposal after
// it: passed, or pending with one more vote.
func (n *Node) Approve(ctx context.Context, id protocol.ID) (roster.Proposal, error) {
	n.votes.Lock()
	defer n.votes.Unlock()
	h := n.members.History()
	a, err := roster.Approve(h, n.me.Name, n.me.AuthorKey, id)
	if err != nil {
		return roster.Proposal{}, err
	}
	e, err := n.Publish(ctx, &pb.Entry{Payload: &pb.Entry_Approval{Approval: a}})
	if err != nil {
		return roster.Proposal{}, err
	}
	// The membership holds what it held and this approval: the proposal
	// is in it (the one before is the fallback for a failed computation,
	// as in roster.Published).
	p, ok := roster.Find(n.members.History(), id)
	if !ok {
		p, _ = roster.Find(h, id)
	}
	n.log.Info("approved an amendment", "id", e.ID, "proposal", id, "base", a.Base, "passed", p.Passed)
	return p, nil
}

// AnnouncePeer implements api.Membership: a peer update (SPEC 12.4) with
// this node's peer ID and the addresses given, or those it listens on.
func (n *Node) AnnouncePeer(ctx context.Context, req roster.PeerRequest) (roster.PeerAnnounced, error) {
	if err := req.Check(); err != nil {
		return roster.PeerAnnounced{}, err
	}
	addrs := req.Addrs
	if len(addrs) == 0 {
		for _, a := range n.host.Addrs() {
			addrs = append(addrs, a.String())
		}
	}
	id := n.host.ID().String()
	if err := protocol.CheckPeer("peer", id, addrs); err != nil {
		return roster.PeerAnnounced{}, fmt.Errorf("%w: %w", kind.ErrInvalid, err)
	}
	e, err := n.Publish(ctx, &pb.Entry{Payload: &pb.Entry_PeerUpdate{PeerUpdate: &pb.PeerUpdate{PeerId: id, Addrs: addrs}}})
	if err != nil {
		return roster.PeerAnnounced{}, err
	}
	return roster.PeerAnnounced{ID: e.ID.String(), PeerID: id, Addrs: addrs}, nil
}
