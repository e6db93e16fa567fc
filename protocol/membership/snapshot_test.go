package membership_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/membership/membershiptest"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/prototest"
)

// randomHistory writes steps random membership entries on a federation
// of six: proposals of every kind (at the version in force mostly, some
// at others), approvals of any proposal (some conflicting), rotations
// (some to keys in use), peer updates (some to peers in use), entries
// by non-voters and by removed members: histories with voids, conflicts
// and pending proposals.
func randomHistory(t testing.TB, seed uint64, steps int) *fedT {
	rng := rand.New(rand.NewPCG(seed, 7))
	f := newFed(t, "a:referral", "b:referral", "c:platform", "d:platform", "e:platform", "aud:auditor")
	names := []string{"a", "b", "c", "d", "e", "aud"}
	roles := []string{"referral", "platform", "auditor"}
	var proposals []*protocol.Entry
	h := f.compute()
	pick := func() string { return names[rng.IntN(len(names))] }
	for i := range steps {
		base := h.Version()
		if rng.IntN(5) == 0 {
			base = uint64(max(0, int(base)+rng.IntN(3)-1))
		}
		name := pick()
		switch op := rng.IntN(12); op {
		case 0, 1, 2: // a proposal
			var change any
			target := pick()
			switch rng.IntN(5) {
			case 0:
				n := fmt.Sprintf("n%d", i)
				if rng.IntN(4) == 0 {
					n = pick() // a name in use
				}
				change = f.block(n, roles[rng.IntN(3)])
				names = append(names, n)
			case 1:
				change = &pb.Removal{Member: target, Key: pub(f.keys[target]), AfterSeq: uint64(rng.IntN(4))}
			case 2:
				change = &pb.RoleChange{Member: target, Key: pub(f.keys[target]), AfterSeq: uint64(rng.IntN(4)), Role: roles[rng.IntN(3)]}
			case 3:
				r := &pb.Revocation{Member: target, Key: pub(f.keys[target]), AfterSeq: uint64(rng.IntN(4))}
				if rng.IntN(2) == 0 {
					old := f.keys[target]
					r.NewKey = pub(f.newKey(target))
					if rng.IntN(3) == 0 {
						f.keys[target] = old // the member keeps writing with the revoked key
					}
				}
				change = r
			default:
				change = &pb.VotingRule{Roles: []string{"referral", roles[1+rng.IntN(2)]}, ThresholdPercent: uint32(50 + rng.IntN(30))}
			}
			proposals = append(proposals, f.write(name, prototest.Amend(base, change)))
		case 3, 4, 5, 6, 7, 8: // an approval
			if len(proposals) == 0 {
				continue
			}
			p := proposals[rng.IntN(len(proposals))]
			if rng.IntN(4) != 0 {
				// Mostly of a proposal of the version in force.
				if pend := h.Pending; len(pend) > 0 {
					id := pend[rng.IntN(len(pend))].ID
					if e, ok := h.Entry(id); ok {
						p = e
					}
				}
			}
			f.write(name, prototest.Approve(p.Body.GetAmendment().Base, p.ID))
		case 9: // a rotation, sometimes to a key in use
			old := f.keys[name]
			nk := protocol.AuthorKeyOf(f.newKey(name))
			if rng.IntN(4) == 0 {
				nk = f.pub(pick())
				f.keys[name] = old
			}
			f.writeKey(old, prototest.Rotate(nk))
		case 10: // a peer update, sometimes to a peer in use
			peer := membershiptest.PeerOf(fmt.Sprintf("p%d", i))
			if rng.IntN(3) == 0 {
				peer = membershiptest.PeerOf(pick())
			}
			f.write(name, &pb.Entry{Payload: &pb.Entry_PeerUpdate{PeerUpdate: &pb.PeerUpdate{PeerId: peer, Addrs: []string{fmt.Sprintf("/ip4/10.0.0.%d/tcp/4001", i%250)}}}})
		default: // an entry that is no membership entry
			f.write(name, addition)
		}
		h = f.compute()
	}
	return f
}

// entriesOf is a lookup of es by id, as the store's, counting calls.
func entriesOf(es []*protocol.Entry, calls *int) func(protocol.ID) (*protocol.Entry, bool) {
	m := map[protocol.ID]*protocol.Entry{}
	for _, e := range es {
		m[e.ID] = e
	}
	return func(id protocol.ID) (*protocol.Entry, bool) {
		*calls++
		e, ok := m[id]
		return e, ok
	}
}

func digestOf(es []*protocol.Entry) [32]byte {
	d := sha256.New()
	for _, e := range es {
		d.Write(e.ID[:])
	}
	return [32]byte(d.Sum(nil))
}

// TestSnapshotIsCompute: a history decoded from its snapshot is the one
// Compute gives, on random histories with voids, conflicts and pending
// proposals: every field, every verdict, every entry by id.
func TestSnapshotIsCompute(t *testing.T) {
	var voids, conflicts, pending, versions int
	passed := map[string]int{} // by kind
	for seed := range uint64(40) {
		f := randomHistory(t, seed, 80)
		h := f.compute()
		voids += len(h.Voids)
		conflicts += len(h.Conflicts)
		pending += len(h.Pending)
		versions += len(h.Versions) - 1
		for _, v := range h.Versions[1:] {
			passed[strings.Fields(v.Change)[0]]++
		}
		d := digestOf(f.entries)
		calls := 0
		got, err := membership.UnmarshalSnapshot(f.genesis, d, h.MarshalSnapshot(d), entriesOf(f.entries, &calls))
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if diff := membership.Differs(got, h); diff != "" {
			t.Fatalf("seed %d: the snapshot is not what Compute gives: %s", seed, diff)
		}
		if string(got.Fingerprint()) != string(h.Fingerprint()) {
			t.Fatalf("seed %d: fingerprints differ", seed)
		}
		if g, w := got.Everyone(), h.Everyone(); fmt.Sprint(g) != fmt.Sprint(w) {
			t.Fatalf("seed %d: Everyone\n%v\nwant %v", seed, g, w)
		}
		for _, e := range f.entries {
			ge, gok := got.Entry(e.ID)
			we, wok := h.Entry(e.ID)
			if gok != wok || ge != we {
				t.Fatalf("seed %d: Entry(%s) = %v, %t; want %v, %t", seed, e.ID, ge, gok, we, wok)
			}
		}
		// Every key the history knows, and some it does not, judged at
		// seqs about their ends, for bodies of several kinds.
		keys := slices.Collect(func(yield func(protocol.AuthorKey) bool) {
			for _, m := range h.Everyone().Members {
				for _, k := range m.Keys {
					yield(k)
				}
			}
		})
		keys = append(keys, protocol.AuthorKeyOf(key(9999)))
		bodies := []*pb.Entry{addition, prototest.Approve(0, protocol.ID{}), {Payload: &pb.Entry_NoticeReply{NoticeReply: &pb.NoticeReply{}}}}
		for _, k := range keys {
			ks, _ := h.Key(k)
			for _, seq := range []uint64{1, 2, 3, 5, ks.End, ks.End + 1, ks.End + 300} {
				for _, b := range bodies {
					b.Federation = fed
					gv, gw := got.Judge(k, seq, b)
					wv, ww := h.Judge(k, seq, b)
					if gv != wv || gw != ww {
						t.Fatalf("seed %d: Judge(%s, %d) = %v %q, want %v %q", seed, k, seq, gv, gw, wv, ww)
					}
				}
			}
		}
		if a, b := got.Affected(nil), h.Affected(nil); true {
			for _, k := range keys {
				for _, head := range []uint64{1, 10, 1000} {
					if a(k, head) != b(k, head) {
						t.Fatalf("seed %d: Affected(nil)(%s, %d) differs", seed, k, head)
					}
				}
			}
		}
	}
	// The generator must reach what the snapshot holds whole.
	if voids == 0 || conflicts == 0 || pending == 0 || len(passed) < 5 {
		t.Fatalf("random histories too tame: %d voids, %d conflicts, %d pending, passed %v", voids, conflicts, pending, passed)
	}
	t.Logf("%d voids, %d conflicts, %d pending proposals, %d versions passed: %v", voids, conflicts, pending, versions, passed)
}

// TestSnapshotRefused: a snapshot is used only whole, for its genesis
// and its entries; anything else is an error wrapping ErrSnapshot, so the
// caller computes.
func TestSnapshotRefused(t *testing.T) {
	f := randomHistory(t, 3, 60)
	h := f.compute()
	d := digestOf(f.entries)
	snap := h.MarshalSnapshot(d)
	calls := 0
	get := entriesOf(f.entries, &calls)
	other := newFed(t, "x:referral", "y:platform")
	stale := digestOf(f.entries[:len(f.entries)-1])
	type input struct {
		snap    []byte
		genesis *membership.Genesis
		digest  [32]byte
		get     func(protocol.ID) (*protocol.Entry, bool)
	}
	none := func(protocol.ID) (*protocol.Entry, bool) { return nil, false }
	// The same federation (same genesis hash) with other addresses: the
	// roster a snapshot holds has the addresses, so it is refused.
	var msg pb.Genesis
	if err := proto.Unmarshal(f.genesis.Raw(), &msg); err != nil {
		t.Fatal(err)
	}
	msg.Members[0].Addrs = []string{"/ip4/192.0.2.7/tcp/4001"}
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(&msg)
	if err != nil {
		t.Fatal(err)
	}
	moved, err := membership.ParseGenesis(raw)
	if err != nil {
		t.Fatal(err)
	}
	if moved.Hash() != f.genesis.Hash() {
		t.Fatal("the genesis hash covers addresses: this case tests nothing")
	}
	cases := map[string]input{
		"other addresses": {snap, moved, d, get},
		"empty":           {nil, f.genesis, d, get},
		"stale":           {snap, f.genesis, stale, get},
		"another genesis": {snap, other.genesis, d, get},
		"truncated":       {snap[:len(snap)/2], f.genesis, d, get},
		"entries missing": {snap, f.genesis, d, none},
	}
	for i := range 200 {
		// A byte changed anywhere (the checksum catches it).
		i := i * len(snap) / 200
		b := slices.Clone(snap)
		b[i] ^= 0x10
		cases[fmt.Sprintf("byte %d", i)] = input{b, f.genesis, d, get}
	}
	for name, c := range cases {
		if got, err := membership.UnmarshalSnapshot(c.genesis, c.digest, c.snap, c.get); !errors.Is(err, membership.ErrSnapshot) || got != nil {
			t.Errorf("%s: %v, %v; want an ErrSnapshot", name, got, err)
		}
	}
	if len(h.Voids) == 0 {
		t.Fatal("the history has no voids: \"entries missing\" proves nothing")
	}
}

// FuzzSnapshot: any bytes, past the checksum, decode to an error or to a
// history whose every reader works (a snapshot is read from a file that
// may be damaged in ways a checksum misses only by design).
func FuzzSnapshot(f *testing.F) {
	fed := randomHistory(f, 5, 40)
	h := fed.compute()
	var d [32]byte
	snap := h.MarshalSnapshot(d)
	f.Add(snap[:len(snap)-sha256.Size])
	calls := 0
	get := entriesOf(fed.entries, &calls)
	keys := h.Everyone().Members
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := membership.DecodeSnapshot(fed.genesis, d, b, get)
		if err != nil {
			if !errors.Is(err, membership.ErrSnapshot) {
				t.Fatalf("error %v does not wrap ErrSnapshot", err)
			}
			return
		}
		got.Fingerprint()
		got.Everyone()
		got.Roster()
		for _, m := range keys {
			got.Judge(m.AuthorKey, 3, addition)
			got.Votes(m.Name)
			got.Voted(m.Name)
			got.Affected(h)(m.AuthorKey, 10)
			got.CanApply(&pb.Amendment{Change: &pb.Amendment_Remove{Remove: &pb.Removal{Member: m.Name, Key: m.AuthorKey[:]}}})
		}
		h.Affected(got)(keys[0].AuthorKey, 10)
	})
}
