package report

import (
	"reflect"
	"slices"
	"testing"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/prototest"
)

// membersFixture is a federation whose roster changes: pf-c rotates its
// key, pf-e is admitted, pf-d is removed, ru-b becomes a platform. Its
// entries are in signing order; h is the membership they make.
type membersFixture struct {
	genesis *membership.Genesis
	h       *membership.History
	entries []*protocol.Entry
}

func newMembersFixture(t *testing.T) *membersFixture {
	ruA, ruB, pfC, pfD := newSigner(0x01), newSigner(0x21), newSigner(0x41), newSigner(0x61)
	pfC2, pfE, stranger := newSigner(0x81), newSigner(0xa1), newSigner(0xc1)
	ms := []protocol.Member{
		{Name: "ru-a", Role: protocol.RoleReferral, AuthorKey: ruA.author(), PeerID: "12D3KooWa"},
		{Name: "ru-b", Role: protocol.RoleReferral, AuthorKey: ruB.author(), PeerID: "12D3KooWb"},
		{Name: "pf-c", Role: protocol.RolePlatform, AuthorKey: pfC.author(), PeerID: "12D3KooWc"},
		{Name: "pf-d", Role: protocol.RolePlatform, AuthorKey: pfD.author(), PeerID: "12D3KooWd"},
	}
	r, err := protocol.NewRoster("f", ms)
	if err != nil {
		t.Fatal(err)
	}
	f := &membersFixture{}
	if f.genesis, err = membership.NewGenesis(r, membership.Rule{}); err != nil {
		t.Fatal(err)
	}
	at := func(s *signer, m int64, b *pb.Entry) *protocol.Entry {
		e := s.sign(t, t0+m*minute, b)
		f.entries = append(f.entries, e)
		return e
	}
	c2, e := pfC2.author(), pfE.author()

	at(pfC, 1, addition("c1", 2))             // pf-c 1
	at(pfC, 2, prototest.Rotate(c2))          // pf-c 2: its key ends here
	at(pfC, 3, addition("c-late", 1))         // pf-c 3: past its key's end: void
	at(pfC2, 4, addition("c2", 3))            // pf-c's new key 1
	n1 := at(ruA, 5, notice(c2, t0+5*minute)) // to pf-c's new key
	at(pfC2, 6, reply(n1.ID, removed, 0))     // pf-c 2 (new key)
	adm := at(ruA, 7, prototest.Amend(0, &pb.MemberBlock{Name: "pf-e", Role: "platform", AuthorKey: e[:], PeerId: "12D3KooWe"}))
	at(ruB, 8, prototest.Approve(0, adm.ID))
	at(pfD, 9, addition("d1", 1))             // pf-d 1
	at(pfD, 10, prototest.Approve(0, adm.ID)) // pf-d 2: the admission passes (3 of 4)
	at(pfE, 11, addition("e1", 1))            // admitted: counts
	rem := at(ruA, 12, prototest.Amend(1, &pb.Removal{Member: "pf-d", Key: keyBytes(pfD), AfterSeq: 2}))
	at(ruB, 13, prototest.Approve(1, rem.ID))
	at(pfE, 14, prototest.Approve(1, rem.ID)) // 3 of 5: passes
	at(pfD, 15, addition("d-late", 1))        // pf-d 3: removed after 2: void
	role := at(ruA, 16, prototest.Amend(2, &pb.RoleChange{Member: "ru-b", Key: keyBytes(ruB), AfterSeq: 3, Role: "platform"}))
	at(ruB, 17, prototest.Approve(2, role.ID)) // ru-b 3
	at(pfE, 18, prototest.Approve(2, role.ID)) // 3 of 4: passes
	at(ruB, 19, notice(c2, t0+19*minute))      // ru-b 4: a platform now: void
	at(ruB, 20, addition("b1", 1))             // ru-b 5: a platform may
	at(stranger, 21, addition("x", 1))         // no member's key: ignored
	// pf-d far past its end: ignored (a node does not store it).
	far := &signer{key: pfD.key, fed: "f", seq: 2 + membership.OutsideSlack, prev: protocol.IDOf([]byte("far"))}
	at(far, 22, addition("far", 1))
	f.h = membership.Compute(f.genesis, f.entries)
	if f.h.Version() != 3 {
		t.Fatalf("fixture: version %d, want 3; voids %+v", f.h.Version(), f.h.Voids)
	}
	return f
}

// TestReportUnderMembership: entries are judged against the membership
// (SPEC 12.5): a rotated key's entries count for its member until its
// end; entries past a key's end, or of a kind the role then may not
// write, are void; a key no member has, or an entry far past its key's
// end, is left out. The builder (records, shells of entries for Judge)
// agrees with the reference builder (whole entries).
func TestReportUnderMembership(t *testing.T) {
	f := newMembersFixture(t)
	everyone := f.h.Everyone()
	b := New(f.genesis.Roster, nil)
	for _, e := range slices.Backward(f.entries) {
		b.Add(e)
	}
	b.SetMembers(everyone, f.h)
	ref := newRef(everyone, f.h)
	for _, e := range f.entries {
		ref.Add(e)
	}
	got := b.Report(t0+10*hour, 0)
	if want := ref.Report(t0+10*hour, 0); !reflect.DeepEqual(got, want) {
		checkReport(t, got, want)
	}
	fig := map[string]Figures{}
	for _, m := range got.Members {
		fig[m.Name] = m.Figures
	}
	if c := fig["pf-c"]; c.Additions != 2 || c.Signals != 5 || c.VoidEntries != 1 || c.NoticesReceived != 1 || c.Actioned != 1 {
		t.Errorf("pf-c: %+v", c)
	}
	if d := fig["pf-d"]; d.Additions != 1 || d.VoidEntries != 1 {
		t.Errorf("pf-d (removed): %+v", d)
	}
	if e := fig["pf-e"]; e.Additions != 1 {
		t.Errorf("pf-e (admitted): %+v", e)
	}
	if b := fig["ru-b"]; b.Additions != 1 || b.NoticesIssued != 0 || b.VoidEntries != 1 {
		t.Errorf("ru-b (a platform after seq 3): %+v", b)
	}
	if got.Totals.Entries != len(f.entries)-2 || got.Totals.IgnoredEntries != 2 {
		t.Errorf("entries %d, ignored %d; want %d, 2", got.Totals.Entries, got.Totals.IgnoredEntries, len(f.entries)-2)
	}
	// Before SetMembers, the builder judged by the genesis roster alone.
	g := New(f.genesis.Roster, nil)
	for _, e := range f.entries {
		g.Add(e)
	}
	if r := g.Report(t0+10*hour, 0); len(r.Members) != 4 || r.Totals.IgnoredEntries != 6 {
		t.Errorf("under the genesis: %d members, %d ignored; want 4, 6 (pf-c's new key's two, pf-e's three, the stranger's)", len(r.Members), r.Totals.IgnoredEntries)
	}
}

func keyBytes(s *signer) []byte { k := s.author(); return k[:] }
