package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/kind"
	"github.com/staydown/staydown/node/notices"
	"github.com/staydown/staydown/node/roster"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// The API serves a node's membership.
var _ api.Membership = (*Node)(nil)

// joinerBlock is the block of a platform that asks to join (its node does
// not run: it has no addresses to dial).
func joinerBlock(t *testing.T, name string) *roster.Block {
	t.Helper()
	author := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x42}, ed25519.SeedSize))
	nk, _, err := crypto.GenerateEd25519Key(bytes.NewReader(bytes.Repeat([]byte{0x43}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(nk)
	if err != nil {
		t.Fatal(err)
	}
	return &roster.Block{Name: name, Role: "platform", AuthorKey: protocol.AuthorKeyOf(author).String(), PeerID: id.String()}
}

// Three members: one proposes an admission, another approves it, and
// every node moves to roster version 1 with the same membership; the
// event feed tells of the amendment, the approval and a peer update.
func TestMembershipVote(t *testing.T) {
	inSim(t, func(t *testing.T) {
		f := newSimFed(t, simDefaults(41), "nru=referral", "pa=platform", "pb=platform")
		nru, pa, pbn := f.start("nru"), f.start("pa"), f.start("pb")
		f.meshed(time.Minute)
		ctx := context.Background()

		p, err := nru.Propose(ctx, roster.ProposeRequest{Admit: joinerBlock(t, "pc")})
		if err != nil {
			t.Fatal(err)
		}
		if p.Passed || p.Change != "admit pc (platform)" || !slices.Equal(p.Votes, []string{"nru"}) || !slices.Equal(p.Missing, []string{"pa", "pb"}) || p.Needed != 2 {
			t.Fatalf("proposal %+v", p)
		}
		// One vote per version: the proposer's second amendment is refused
		// before it is signed.
		_, err = nru.Propose(ctx, roster.ProposeRequest{Rule: &roster.Rule{Roles: []string{"platform"}, ThresholdPercent: 60}})
		if !errors.Is(err, kind.ErrConflict) || !strings.Contains(err.Error(), "nru voted at roster version 0 already, for proposal "+p.ID) {
			t.Fatalf("second amendment: %v", err)
		}
		f.waitFor(time.Minute, "pa to hold the proposal", func() bool {
			l, _ := pa.Proposals(ctx)
			return len(l.Proposals) == 1 && l.Proposals[0].ID == p.ID
		})
		id, err := protocol.ParseID(p.ID)
		if err != nil {
			t.Fatal(err)
		}
		passed, err := pa.Approve(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !passed.Passed || passed.Version != 1 || !slices.Equal(passed.Votes, []string{"nru", "pa"}) {
			t.Fatalf("after pa's approval: %+v", passed)
		}
		f.waitFor(time.Minute, "version 1 on every node", func() bool {
			for _, n := range []*Node{nru, pa, pbn} {
				if n.members.History().Version() != 1 {
					return false
				}
			}
			return true
		})
		want, _ := nru.Membership(ctx)
		for name, n := range map[string]*Node{"pa": pa, "pb": pbn} {
			if got, _ := n.Membership(ctx); !reflect.DeepEqual(got, want) {
				t.Errorf("%s's membership differs from nru's:\n%+v\n%+v", name, got, want)
			}
		}
		if len(want.Members) != 4 || want.Members[3].Name != "pc" || want.Members[3].Since != 1 || want.Voters != 4 || want.Needed != 3 {
			t.Errorf("membership at version 1: %+v", want)
		}
		if _, err := pbn.Approve(ctx, id); !errors.Is(err, kind.ErrConflict) || !strings.Contains(err.Error(), "passed already: it made roster version 1") {
			t.Errorf("pb's late approval: %v", err)
		}

		// A peer update (its own peer ID and address again) is pb's own
		// business: no vote, an event.
		if _, err := pbn.Publish(ctx, &pb.Entry{Payload: &pb.Entry_PeerUpdate{PeerUpdate: &pb.PeerUpdate{
			PeerId: f.ids["pb"].String(), Addrs: []string{f.addrs["pb"].String()}}}}); err != nil {
			t.Fatal(err)
		}
		var got []notices.Event
		errEnough := errors.New("enough")
		err = pbn.Events(ctx, 0, func(ev notices.Event) error {
			if ev.Type != "" {
				got = append(got, ev)
			}
			if ev.Type == notices.EventMemberPeer {
				return errEnough // the replay is synchronous: everything stored is sent first
			}
			return nil
		})
		if !errors.Is(err, errEnough) {
			t.Fatalf("events: %v", err)
		}
		var types []string
		for _, ev := range got {
			types = append(types, ev.Type)
		}
		if !slices.Equal(types, []string{"amendment", "approval", "member-peer"}) {
			t.Fatalf("events %v", types)
		}
		am, ap, pu := got[0], got[1], got[2]
		if am.ID != p.ID || am.Author != "nru" || am.Change != "admit pc (platform)" || am.Base == nil || *am.Base != 0 || am.RosterVersion == nil || *am.RosterVersion != 1 {
			t.Errorf("amendment event %+v", am)
		}
		if ap.Author != "pa" || ap.Proposal != p.ID || ap.Base == nil || *ap.Base != 0 || ap.RosterVersion == nil || *ap.RosterVersion != 1 {
			t.Errorf("approval event %+v", ap)
		}
		if pu.Author != "pb" || pu.PeerID != f.ids["pb"].String() || !slices.Equal(pu.Addrs, []string{f.addrs["pb"].String()}) || pu.RosterVersion != nil {
			t.Errorf("peer update event %+v", pu)
		}
	})
}
