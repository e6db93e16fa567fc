package node

import (
	"context"
	"crypto/ed25519"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/prototest"
)

// Membership on a simulated federation (SPEC 12), in virtual time: the
// ordering cases no unit test of protocol/membership can show, since
// they come from which node holds what when.

// propose has member name's node publish an amendment of the version in
// force, and returns it.
func (f *simFed) propose(name string, change any) *protocol.Entry {
	f.t.Helper()
	n := f.nodes[name]
	e, err := n.Publish(context.Background(), prototest.Amend(n.members.History().Version(), change))
	if err != nil {
		f.t.Fatalf("%s proposes: %v", name, err)
	}
	return e
}

// approve has member name's node approve proposal p, once it holds it.
func (f *simFed) approve(name string, p *protocol.Entry) *protocol.Entry {
	f.t.Helper()
	n := f.nodes[name]
	f.waitFor(time.Minute, name+" to hold the proposal", func() bool {
		_, err := n.store.Get(p.ID)
		return err == nil
	})
	e, err := n.Publish(context.Background(), prototest.Approve(p.Body.GetAmendment().Base, p.ID))
	if err != nil {
		f.t.Fatalf("%s approves: %v", name, err)
	}
	return e
}

// atVersion waits until every running node has roster version v in force.
func (f *simFed) atVersion(bound time.Duration, v uint64) {
	f.t.Helper()
	f.waitFor(bound, "every node at roster version "+strconv.FormatUint(v, 10), func() bool {
		for _, n := range f.nodes {
			if n.members.History().Version() != v {
				return false
			}
		}
		return true
	})
}

// A federation of five admits a sixth member. None of the five restarts;
// the sixth starts from the genesis and one member's address, before its
// admission: nobody lets it in until the admission passes, then it
// catches up on the history and its first addition reaches every node.
func TestSimAdmission(t *testing.T) {
	inSim(t, func(t *testing.T) {
		opts := simDefaults(11)
		opts.late = []string{"pf"}
		f := newSimFed(t, opts, "nru1=referral", "nru2=referral", "pa=platform", "pb=platform", "pc=platform", "pf=platform")
		for _, name := range f.names[:5] {
			f.start(name)
		}
		f.meshed(time.Minute)
		f.publish("nru1", "history", 20)
		f.converge(time.Minute)
		pf := f.start("pf")
		f.settle(10 * time.Second)
		if len(pf.host.Network().Peers()) != 0 {
			t.Fatalf("pf is connected to %v before its admission", pf.host.Network().Peers())
		}
		if _, err := pf.Publish(context.Background(), additionBody(t, "too early")); err == nil {
			t.Fatal("pf published before its admission")
		}
		p := f.propose("nru1", membership.Block(f.members["pf"]))
		f.approve("pa", p)
		f.approve("pb", p)
		f.atVersion(time.Minute, 1)
		f.converge(2 * time.Minute)
		if _, member := pf.member(); !member {
			t.Fatal("pf is not a member after its admission")
		}
		if c, _ := pf.store.Count(); c != 20+3 {
			t.Fatalf("pf holds %d entries, want the 20 of the history and the 3 of its admission", c)
		}
		e, err := pf.Publish(context.Background(), additionBody(t, "pf's first"))
		if err != nil {
			t.Fatal(err)
		}
		took := f.waitFor(time.Minute, "pf's first addition on every node", func() bool {
			for _, n := range f.nodes {
				if _, err := n.store.Get(e.ID); err != nil {
					return false
				}
			}
			return true
		})
		if took > 2*time.Second {
			t.Errorf("pf's first addition took %v of virtual time to reach every node, want at most 2s", took)
		}
		t.Logf("pf's first addition reached every node in %v (virtual)", took)
	})
}

// A removed member's node is disconnected and refused by every node; its
// earlier entries stay, its later ones count for nothing.
func TestSimRemoval(t *testing.T) {
	inSim(t, func(t *testing.T) {
		f := newSimFed(t, simDefaults(12), "nru=referral", "pa=platform", "pb=platform", "pc=platform")
		for _, name := range f.names {
			f.start(name)
		}
		f.meshed(time.Minute)
		before := f.publish("pc", "before its removal", 2)
		f.converge(time.Minute)
		pcKey := protocol.AuthorKeyOf(f.key("pc"))
		p := f.propose("nru", &pb.Removal{Member: "pc", Key: pcKey[:], AfterSeq: 2})
		f.approve("pa", p)
		f.approve("pb", p)
		f.waitFor(time.Minute, "every node but pc at version 1, pc disconnected", func() bool {
			for _, name := range []string{"nru", "pa", "pb"} {
				n := f.nodes[name]
				if n.members.History().Version() != 1 || n.gater.Member(f.ids["pc"]) || slices.Contains(n.host.Network().Peers(), f.ids["pc"]) {
					return false
				}
			}
			return true
		})
		// pc's node signs on; its entry, however it travels, counts for
		// nothing.
		late := addition(t, f.key("pc"), "test", 3, before[1].ID, "after its removal")
		for _, name := range []string{"nru", "pa", "pb"} {
			n := f.nodes[name]
			res, err := n.store.Apply([]*protocol.Entry{late})
			if err != nil || res[0].Outcome.String() != "void" {
				t.Errorf("%s takes pc's entry after its removal: %v %v", name, res, err)
			}
			for _, e := range before {
				if _, err := n.store.Get(e.ID); err != nil {
					t.Errorf("%s lost pc's entry %d from before its removal", name, e.Seq())
				}
			}
			if _, ok := n.Roster().ByName("pc"); ok {
				t.Errorf("%s still has pc in its roster", name)
			}
		}
	})
}

// A member's key is stolen. The thief signs on with it while the members
// revoke it after seq 3 (its last honest entry) and give the member a
// new key. Every node converges to the same heads; the thief's entries
// count for nothing anywhere; the member goes on under its new key.
func TestSimStolenKey(t *testing.T) {
	inSim(t, func(t *testing.T) {
		f := newSimFed(t, simDefaults(13), "nru=referral", "pa=platform", "pb=platform", "pc=platform")
		for _, name := range f.names {
			f.start(name)
		}
		f.meshed(time.Minute)
		f.publish("pc", "honest", 3)
		f.converge(time.Minute)
		// The owner makes a new key; the members revoke the old one.
		fresh, err := NewKey(f.cfgs["pc"])
		if err != nil {
			t.Fatal(err)
		}
		stolen := protocol.AuthorKeyOf(f.key("pc"))
		p := f.propose("nru", &pb.Revocation{Member: "pc", Key: stolen[:], AfterSeq: 3, NewKey: fresh[:]})
		// The thief (pc's node, with the stolen key) races the vote.
		thief := f.publish("pc", "thief", 3)
		f.approve("pa", p)
		f.approve("pb", p)
		f.atVersion(time.Minute, 1)
		f.converge(2 * time.Minute)
		for _, name := range []string{"nru", "pa", "pb"} {
			n := f.nodes[name]
			for _, e := range thief {
				if why, err := n.store.VoidReason(e.ID); err != nil || !strings.Contains(why, "revoked after seq 3") {
					t.Errorf("%s: the thief's seq %d: void %q, %v", name, e.Seq(), why, err)
				}
			}
		}
		// The owner's node restarts on the new key.
		pc := f.restart("pc")
		if pc.me.AuthorKey != fresh {
			t.Fatalf("pc signs with %s after restart, want the revocation's new key %s", pc.me.AuthorKey, fresh)
		}
		e, err := pc.Publish(context.Background(), additionBody(t, "pc under its new key"))
		if err != nil {
			t.Fatal(err)
		}
		f.waitFor(time.Minute, "pc's new-key entry on every node", func() bool {
			for _, n := range f.nodes {
				if _, err := n.store.Get(e.ID); err != nil {
					return false
				}
			}
			return true
		})
		f.converge(time.Minute)
	})
}

// Two islands vote while apart: the three nodes of one admit x, the two of
// the other propose y. Healed, every node has x admitted (3 of 5 voters),
// y has no effect, and nru2, which then approves x too, is flagged for
// approving two amendments of one version.
func TestSimVoteAcrossPartition(t *testing.T) {
	inSim(t, func(t *testing.T) {
		f := newSimFed(t, simDefaults(14), "nru1=referral", "nru2=referral", "pa=platform", "pb=platform", "pc=platform")
		for _, name := range f.names {
			f.start(name)
		}
		f.meshed(time.Minute)
		left, right := []string{"nru1", "pa", "pb"}, []string{"nru2", "pc"}
		f.partition(left, right)
		x := f.propose("nru1", &pb.MemberBlock{Name: "x", Role: "platform", AuthorKey: pub(t, 201), PeerId: "12D3KooWx"})
		y := f.propose("nru2", &pb.MemberBlock{Name: "y", Role: "platform", AuthorKey: pub(t, 202), PeerId: "12D3KooWy"})
		f.approve("pa", x)
		f.approve("pb", x)
		f.approve("pc", y)
		f.settle(10 * time.Second)
		if v := f.nodes["nru2"].members.History().Version(); v != 0 {
			t.Fatalf("the island of two moved to version %d", v)
		}
		f.heal()
		f.atVersion(2*time.Minute, 1)
		// nru2 approves x as well: a second vote at version 0.
		if _, err := f.nodes["nru2"].Publish(context.Background(), prototest.Approve(0, x.ID)); err != nil {
			t.Fatal(err)
		}
		f.converge(2 * time.Minute)
		for _, name := range f.names {
			h := f.nodes[name].members.History()
			if h.Version() != 1 || h.Versions[1].Proposal != x.ID {
				t.Errorf("%s: version %d", name, h.Version())
			}
			if _, ok := h.Roster().ByName("y"); ok {
				t.Errorf("%s admitted y", name)
			}
			if len(h.Conflicts) != 1 || h.Conflicts[0].Member != "nru2" {
				t.Errorf("%s: conflicts %+v", name, h.Conflicts)
			}
			st, err := f.nodes[name].Status(context.Background())
			if err != nil || !slices.Contains(st.Flagged, "nru2") {
				t.Errorf("%s status flags %v", name, st.Flagged)
			}
		}
	})
}

func pub(t *testing.T, seed byte) []byte {
	t.Helper()
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	k := protocol.AuthorKeyOf(ed25519.NewKeyFromSeed(s))
	return k[:]
}
