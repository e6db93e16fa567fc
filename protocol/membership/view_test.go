package membership_test

import (
	"slices"
	"testing"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/prototest"
)

// TestEveryone: removed members stay (without a peer), and every key a
// member has had names it, a key that left its chain too.
func TestEveryone(t *testing.T) {
	f := newFed(t, "a:referral", "b:referral", "c:platform", "d:platform")
	stolen := f.keys["c"]
	f.write("c", addition)
	thief := key(900)
	f.writeKey(stolen, prototest.Rotate(protocol.AuthorKeyOf(thief)))
	fresh := f.newKey("c")
	p := f.write("a", prototest.Amend(0, &pb.Revocation{Member: "c", Key: pub(stolen), AfterSeq: 1, NewKey: pub(fresh)}))
	f.write("b", prototest.Approve(0, p.ID))
	f.write("d", prototest.Approve(0, p.ID))
	p = f.write("a", prototest.Amend(1, &pb.Removal{Member: "d", Key: pub(f.keys["d"]), AfterSeq: 0}))
	f.write("b", prototest.Approve(1, p.ID))
	f.write("c", prototest.Approve(1, p.ID))
	h := f.compute()
	if h.Version() != 2 {
		t.Fatalf("version %d, want 2", h.Version())
	}
	r := h.Everyone()
	var names []string
	for _, m := range r.Members {
		names = append(names, m.Name)
	}
	if !slices.Equal(names, []string{"a", "b", "c", "d"}) || r.Version != 2 {
		t.Fatalf("everyone: %v version %d", names, r.Version)
	}
	c, _ := r.ByName("c")
	if c.AuthorKey != protocol.AuthorKeyOf(fresh) || len(c.Keys) != 3 || c.Keys[0] != protocol.AuthorKeyOf(stolen) || c.Keys[1] != protocol.AuthorKeyOf(fresh) {
		t.Fatalf("c: key %s, keys %v", c.AuthorKey, c.Keys)
	}
	if m, ok := r.ByKey(protocol.AuthorKeyOf(thief)); !ok || m.Name != "c" {
		t.Fatalf("the thief's key, replaced, names %+v", m)
	}
	if ks, _ := h.Key(protocol.AuthorKeyOf(thief)); ks.End != 0 {
		t.Fatalf("the thief's key: %+v", ks)
	}
	d, ok := r.ByName("d")
	if !ok || d.PeerID != "" || d.Role != protocol.RolePlatform {
		t.Fatalf("removed d: %+v", d)
	}
	if _, ok := h.Roster().ByName("d"); ok {
		t.Fatal("d is in the roster in force")
	}
	if v, _ := h.Judge(f.pub("d"), 1, &pb.Entry{Federation: fed, Payload: addition.Payload}); v != membership.Outside {
		t.Fatalf("d's entry after its removal: %v", v)
	}
}
