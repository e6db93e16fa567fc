package store

import (
	"errors"
	"testing"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/prototest"
)

// TestSetMembers: the store judges entries under the membership it is
// given (held, void) and derives its indexes again when a new version
// takes effect away from logged entries, or gives it back.
func TestSetMembers(t *testing.T) {
	ts := mustOpen(t)
	a, b, c, d := newAuthor(t, 1), newAuthor(t, 2), newAuthor(t, 3), newAuthor(t, 4)
	var ms []protocol.Member
	for i, x := range []struct {
		au   *author
		role protocol.Role
	}{{a, protocol.RoleReferral}, {b, protocol.RoleReferral}, {c, protocol.RolePlatform}} {
		ms = append(ms, protocol.Member{Name: string(rune('a' + i)), Role: x.role, AuthorKey: x.au.key, PeerID: "12D3KooW" + string(rune('a'+i))})
	}
	r, err := protocol.NewRoster(federation, ms)
	if err != nil {
		t.Fatal(err)
	}
	g, err := membership.NewGenesis(r, membership.Rule{})
	if err != nil {
		t.Fatal(err)
	}
	h0 := membership.Compute(g, nil)
	if rebuilt, err := ts.SetMembers(h0, nil); err != nil || !rebuilt {
		t.Fatalf("first SetMembers: rebuilt %v, %v", rebuilt, err)
	}
	if rebuilt, err := ts.SetMembers(h0, h0.Affected(h0)); err != nil || rebuilt {
		t.Fatalf("same membership again: rebuilt %v, %v", rebuilt, err)
	}
	for i := range 3 {
		ts.mustApply(Applied, c.next(addition(shaN(uint64(i+1)))))
	}
	ts.mustApply(Held, d.next(addition(sha("early"))))
	d.log, d.head = nil, protocol.Head{Author: d.key}
	// a notice to d, not a platform yet: void.
	n := a.next(notice(d.key, sha("n")))
	ts.mustApply(Void, n)

	// Revoke c's key after seq 2, admit d as a platform.
	rev := a.next(prototest.Amend(0, &pb.Revocation{Member: "c", Key: c.key[:], AfterSeq: 2}))
	ts.mustApply(Applied, rev, b.next(prototest.Approve(0, rev.ID)))
	adm := a.next(prototest.Amend(1, &pb.MemberBlock{Name: "d", Role: "platform", AuthorKey: d.key[:], PeerId: "12D3KooWd"}))
	ts.mustApply(Applied, adm, b.next(prototest.Approve(1, adm.ID)))
	es, err := ts.MembershipEntries()
	if err != nil || len(es) != 4 {
		t.Fatalf("membership entries: %d, %v", len(es), err)
	}
	h1 := membership.Compute(g, es)
	if h1.Version() != 2 {
		t.Fatalf("version %d, want 2", h1.Version())
	}
	if rebuilt, err := ts.SetMembers(h1, h1.Affected(h0)); err != nil || !rebuilt {
		t.Fatalf("after the revocation: rebuilt %v, %v", rebuilt, err)
	}
	if got, err := ts.Match(key(shaN(3))); err != nil || len(got) != 0 {
		t.Fatalf("c's seq 3 after its key's end still matches: %v, %v", got, err)
	}
	if got, err := ts.Match(key(shaN(2))); err != nil || len(got) != 1 {
		t.Fatalf("c's seq 2 before its key's end: %v, %v", got, err)
	}
	if why, err := ts.VoidReason(n.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("notice to d, a platform now: void %q, %v", why, err)
	}
	ts.mustApply(Applied, d.next(addition(sha("early"))))
	ts.mustApply(Void, c.next(addition(sha("thief"))))
	if err := ts.Check(); err != nil {
		t.Fatal(err)
	}
}
