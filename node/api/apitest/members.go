package apitest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/roster"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/pb"
)

var _ api.Membership = (*Backend)(nil)

// The fake's membership is the real one (protocol/membership, node/roster)
// of its roster as the genesis and the membership entries it signed:
// its own, through Propose, Approve and Publish, and other members',
// through Sign.

// PeerID is the peer ID the fake gives member name: that of an ed25519
// transport key derived from the name.
func PeerID(name string) string {
	seed := sha256.Sum256([]byte("apitest peer " + name))
	k, _, err := crypto.GenerateEd25519Key(bytes.NewReader(seed[:]))
	if err != nil {
		panic(fmt.Sprintf("apitest: %v", err))
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		panic(fmt.Sprintf("apitest: %v", err))
	}
	return id.String()
}

// Member is a member named name with role role whose keys the fake
// derives from its name (Key, PeerID): give it to New, and Sign its
// votes.
func Member(name string, role protocol.Role) protocol.Member {
	return protocol.Member{Name: name, Role: role, AuthorKey: protocol.AuthorKeyOf(Key(name)), PeerID: PeerID(name),
		Addrs: []string{"/ip4/127.0.0.1/tcp/4001"}}
}

// Sign signs body as member name's next entry, with the key Key(name),
// and adds it to the fake's membership if it is a membership entry: how
// a test has another member vote.
func (b *Backend) Sign(name string, body *pb.Entry) (*protocol.Entry, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	head := b.others[name]
	signed := &pb.Entry{Version: protocol.Version, Federation: Federation, Seq: head.Seq + 1, TimestampMs: StartMs + int64(head.Seq), Payload: body.Payload}
	if head.Seq > 0 {
		signed.Prev = head.ID[:]
	}
	e, err := protocol.Sign(Key(name), signed)
	if err != nil {
		return nil, err
	}
	b.others[name] = protocol.Head{Author: e.Author, Seq: e.Seq(), ID: e.ID}
	if e.Kind().IsMembership() {
		b.ballots = append(b.ballots, e)
	}
	return e, nil
}

// MemberRequests returns the requests Propose and Approve received, in
// order: each an api.ProposeRequest or the protocol.ID approved.
func (b *Backend) MemberRequests() []any {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]any(nil), b.memberReqs...)
}

// history is the fake's membership now. The caller holds b.mu.
func (b *Backend) history() (*membership.History, error) {
	if b.err != nil {
		return nil, b.err
	}
	g, err := membership.NewGenesis(b.roster, membership.Rule{})
	if err != nil {
		return nil, fmt.Errorf("apitest: the fake's roster is no genesis: %w", err)
	}
	return membership.Compute(g, b.ballots), nil
}

// headOf is the seq of the log of key k the fake holds. The caller holds
// b.mu.
func (b *Backend) headOf(k protocol.AuthorKey) (uint64, error) {
	if k == b.Author() {
		return b.head.Seq, nil
	}
	for _, h := range b.others {
		if h.Author == k {
			return h.Seq, nil
		}
	}
	return 0, nil
}

// Membership is roster.Describe of the fake's membership.
func (b *Backend) Membership(ctx context.Context) (api.MembersView, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.memberCalls++
	h, err := b.history()
	if err != nil {
		return api.MembersView{}, err
	}
	return roster.Describe(h), nil
}

// Proposals is roster.Pending of the fake's membership.
func (b *Backend) Proposals(ctx context.Context) (api.ProposalList, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.memberCalls++
	h, err := b.history()
	if err != nil {
		return api.ProposalList{}, err
	}
	return roster.Pending(h), nil
}

// Propose records the request and does what a node does: roster.Propose
// refuses or builds the amendment, which the fake signs.
func (b *Backend) Propose(ctx context.Context, req api.ProposeRequest) (api.ProposalView, error) {
	b.votes.Lock() // as a node: one vote at a time
	defer b.votes.Unlock()
	b.mu.Lock()
	b.memberCalls++
	b.memberReqs = append(b.memberReqs, req)
	h, err := b.history()
	if err != nil {
		b.mu.Unlock()
		return api.ProposalView{}, err
	}
	a, err := roster.Propose(h, b.name, b.Author(), req, b.headOf)
	b.mu.Unlock()
	if err != nil {
		return api.ProposalView{}, err
	}
	e, err := b.Publish(ctx, &pb.Entry{Payload: &pb.Entry_Amendment{Amendment: a}})
	if err != nil {
		return api.ProposalView{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if h, err = b.history(); err != nil {
		return api.ProposalView{}, err
	}
	return roster.Published(h, e.ID, b.name, a), nil
}

// Approve records the id and does what a node does: roster.Approve
// refuses or builds the approval, which the fake signs.
func (b *Backend) Approve(ctx context.Context, id protocol.ID) (api.ProposalView, error) {
	b.votes.Lock()
	defer b.votes.Unlock()
	b.mu.Lock()
	b.memberCalls++
	b.memberReqs = append(b.memberReqs, id)
	h, err := b.history()
	if err != nil {
		b.mu.Unlock()
		return api.ProposalView{}, err
	}
	a, err := roster.Approve(h, b.name, b.Author(), id)
	b.mu.Unlock()
	if err != nil {
		return api.ProposalView{}, err
	}
	if _, err := b.Publish(ctx, &pb.Entry{Payload: &pb.Entry_Approval{Approval: a}}); err != nil {
		return api.ProposalView{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if h, err = b.history(); err != nil {
		return api.ProposalView{}, err
	}
	p, _ := roster.Find(h, id)
	return p, nil
}

// AnnouncePeer records the request and publishes a peer update with the
// fake's peer ID and the addresses given (none: 127.0.0.1:4001).
func (b *Backend) AnnouncePeer(ctx context.Context, req api.PeerRequest) (api.PeerAnnounced, error) {
	addrs := req.Addrs
	if len(addrs) == 0 {
		addrs = []string{"/ip4/127.0.0.1/tcp/4001"}
	}
	const peerID = "12D3KooWFakeFakeFake"
	e, err := b.Publish(ctx, &pb.Entry{Payload: &pb.Entry_PeerUpdate{PeerUpdate: &pb.PeerUpdate{PeerId: peerID, Addrs: addrs}}})
	if err != nil {
		return api.PeerAnnounced{}, err
	}
	return api.PeerAnnounced{ID: e.ID.String(), PeerID: peerID, Addrs: addrs}, nil
}
