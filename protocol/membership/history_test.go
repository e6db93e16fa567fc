package membership_test

import (
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/membership/membershiptest"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/prototest"
)

const fed = "members"

// fedT is a federation under test: members' keys, their logs, and every
// membership entry written so far.
type fedT struct {
	t       testing.TB
	genesis *membership.Genesis
	keys    map[string]ed25519.PrivateKey
	logs    map[protocol.AuthorKey]*prototest.Log
	entries []*protocol.Entry
	n       int
}

func key(i int) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	seed[0], seed[1] = byte(i), byte(i>>8)
	return ed25519.NewKeyFromSeed(seed)
}

// newFed starts a federation of members given as "name:role".
func newFed(t testing.TB, members ...string) *fedT {
	f := &fedT{t: t, keys: map[string]ed25519.PrivateKey{}, logs: map[protocol.AuthorKey]*prototest.Log{}}
	var ms []protocol.Member
	for _, nr := range members {
		name, role, _ := strings.Cut(nr, ":")
		k := f.newKey(name)
		ms = append(ms, protocol.Member{Name: name, Role: protocol.Role(role), AuthorKey: protocol.AuthorKeyOf(k), PeerID: membershiptest.PeerOf(name)})
	}
	r, err := protocol.NewRoster(fed, ms)
	if err != nil {
		t.Fatal(err)
	}
	if f.genesis, err = membership.NewGenesis(r, membership.Rule{}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fedT) newKey(name string) ed25519.PrivateKey {
	f.n++
	k := key(f.n)
	f.keys[name] = k
	return k
}

func (f *fedT) pub(name string) protocol.AuthorKey { return protocol.AuthorKeyOf(f.keys[name]) }

// write signs body as the next entry of name's current key.
func (f *fedT) write(name string, body *pb.Entry) *protocol.Entry {
	return f.writeKey(f.keys[name], body)
}

func (f *fedT) writeKey(k ed25519.PrivateKey, body *pb.Entry) *protocol.Entry {
	a := protocol.AuthorKeyOf(k)
	l := f.logs[a]
	if l == nil {
		l = prototest.NewLog(k, fed)
		f.logs[a] = l
	}
	e := l.Next(f.t, body)
	if e.Kind().IsMembership() {
		f.entries = append(f.entries, e)
	}
	return e
}

func (f *fedT) block(name, role string) *pb.MemberBlock {
	k := f.newKey(name)
	return &pb.MemberBlock{Name: name, Role: role, AuthorKey: pub(k), PeerId: membershiptest.PeerOf(name)}
}

func (f *fedT) compute() *membership.History { return membership.Compute(f.genesis, f.entries) }

func (f *fedT) judge(h *membership.History, k ed25519.PrivateKey, seq uint64, body *pb.Entry) membership.Verdict {
	body.Federation = fed
	v, _ := h.Judge(protocol.AuthorKeyOf(k), seq, body)
	return v
}

var addition = prototest.Addition(&pb.Signal{Value: &pb.Signal_Pdq{Pdq: make([]byte, 32)}})

func TestAdmission(t *testing.T) {
	f := newFed(t, "nru-a:referral", "nru-b:referral", "plat-c:platform", "aud:auditor")
	p := f.write("nru-a", prototest.Amend(0, f.block("plat-d", "platform")))
	h := f.compute()
	if got := len(h.Versions); got != 1 {
		t.Fatalf("one vote of three passed the admission: %d versions", got)
	}
	if len(h.Pending) != 1 || h.Pending[0].Needed != 2 || len(h.Pending[0].Votes) != 1 || strings.Join(h.Pending[0].Missing, ",") != "nru-b,plat-c" {
		t.Fatalf("pending = %+v", h.Pending)
	}
	if v := f.judge(h, f.keys["plat-d"], 1, addition); v != membership.Unknown {
		t.Fatalf("before the admission passed: %v, want unknown", v)
	}
	f.write("plat-c", prototest.Approve(0, p.ID))
	h = f.compute()
	if len(h.Versions) != 2 || h.Versions[1].Change != "admit plat-d (platform)" || h.Versions[1].Proposer != "nru-a" {
		t.Fatalf("versions = %+v", h.Versions)
	}
	r := h.Roster()
	if m, ok := r.ByName("plat-d"); !ok || m.Role != protocol.RolePlatform || r.Version != 1 {
		t.Fatalf("roster after admission: %+v version %d", m, r.Version)
	}
	if v := f.judge(h, f.keys["plat-d"], 1, addition); v != membership.In {
		t.Fatalf("after the admission: %v, want in", v)
	}
	// The auditor has no vote: its approval changes nothing.
	f.write("aud", prototest.Approve(1, p.ID))
	if h2 := f.compute(); len(h2.Versions) != 2 || len(h2.Voids) != 1 {
		t.Fatalf("auditor's approval: versions %d, voids %+v", len(h2.Versions), h2.Voids)
	}
}

func TestConflictingApprovals(t *testing.T) {
	f := newFed(t, "a:referral", "b:referral", "c:platform", "d:platform")
	p1 := f.write("a", prototest.Amend(0, f.block("x", "platform")))
	p2 := f.write("b", prototest.Amend(0, f.block("y", "platform")))
	f.write("c", prototest.Approve(0, p1.ID))
	f.write("c", prototest.Approve(0, p2.ID)) // conflicts: the first counts
	f.write("d", prototest.Approve(0, p1.ID))
	h := f.compute()
	if len(h.Conflicts) != 1 || h.Conflicts[0].Member != "c" || h.Conflicts[0].Second.Body.GetApproval() == nil {
		t.Fatalf("conflicts = %+v", h.Conflicts)
	}
	if len(h.Versions) != 2 || h.Versions[1].Proposal != p1.ID {
		t.Fatalf("4 voters, p1 has a, c and d: versions %+v", h.Versions)
	}
}

func TestRevocationAndRotation(t *testing.T) {
	f := newFed(t, "a:referral", "b:referral", "c:platform")
	stolen := f.keys["c"]
	for range 3 {
		f.write("c", addition)
	}
	// The thief signs seq 4 and 5, and rotates to its own key at seq 6.
	f.writeKey(stolen, addition)
	f.writeKey(stolen, addition)
	thief := key(900)
	f.writeKey(stolen, prototest.Rotate(protocol.AuthorKeyOf(thief)))
	f.writeKey(thief, addition)
	if h := f.compute(); f.judge(h, thief, 1, addition) != membership.In {
		t.Fatal("before the revocation the thief's rotation holds")
	}
	fresh := f.newKey("c")
	p := f.write("a", prototest.Amend(0, &pb.Revocation{Member: "c", Key: pub(stolen), AfterSeq: 3, NewKey: pub(fresh)}))
	f.write("b", prototest.Approve(0, p.ID))
	h := f.compute()
	for seq, want := range map[uint64]membership.Verdict{3: membership.In, 4: membership.Outside, 6: membership.Outside} {
		if v := f.judge(h, stolen, seq, addition); v != want {
			t.Errorf("stolen key seq %d: %v, want %v", seq, v, want)
		}
	}
	if v := f.judge(h, thief, 1, addition); v != membership.Outside {
		t.Errorf("thief's rotated key: %v, want outside", v)
	}
	if v := f.judge(h, fresh, 1, addition); v != membership.In {
		t.Errorf("the member's new key: %v, want in", v)
	}
	// The owner rotates again, by its own signature.
	next := key(901)
	f.writeKey(fresh, addition)
	f.writeKey(fresh, prototest.Rotate(protocol.AuthorKeyOf(next)))
	h = f.compute()
	if f.judge(h, fresh, 2, addition) != membership.In || f.judge(h, fresh, 3, addition) != membership.Outside || f.judge(h, next, 1, addition) != membership.In {
		t.Fatal("rotation by the owner")
	}
	if m, _ := h.Roster().ByName("c"); m.AuthorKey != protocol.AuthorKeyOf(next) || len(m.Keys) != 3 {
		t.Fatalf("c's keys: %v now %s", m.Keys, m.AuthorKey)
	}
}

func TestRemovalAndRole(t *testing.T) {
	f := newFed(t, "a:referral", "b:referral", "c:platform")
	f.write("c", addition)
	p := f.write("a", prototest.Amend(0, &pb.RoleChange{Member: "c", Key: pub(f.keys["c"]), AfterSeq: 1, Role: "referral"}))
	f.write("b", prototest.Approve(0, p.ID))
	notice := &pb.Entry{Payload: &pb.Entry_Notice{Notice: &pb.Notice{Addressee: pub(f.keys["c"])}}}
	h := f.compute()
	if f.judge(h, f.keys["c"], 2, prototest.Addition()) != membership.In || f.judge(h, f.keys["c"], 1, &pb.Entry{Payload: &pb.Entry_NoticeReply{NoticeReply: &pb.NoticeReply{}}}) != membership.In {
		t.Fatal("role before and after the change")
	}
	if v := f.judge(h, f.keys["c"], 2, &pb.Entry{Payload: &pb.Entry_NoticeReply{NoticeReply: &pb.NoticeReply{}}}); v != membership.Role {
		t.Fatalf("a reply after becoming a referral unit: %v", v)
	}
	// c was a platform once: notices to it stay valid.
	if v := f.judge(h, f.keys["a"], 9, notice); v != membership.In {
		t.Fatalf("notice to a former platform: %v", v)
	}
	p = f.write("a", prototest.Amend(1, &pb.Removal{Member: "c", Key: pub(f.keys["c"]), AfterSeq: 2}))
	f.write("b", prototest.Approve(1, p.ID))
	h = f.compute()
	if f.judge(h, f.keys["c"], 2, addition) != membership.In || f.judge(h, f.keys["c"], 3, addition) != membership.Outside {
		t.Fatal("removal after seq 2")
	}
	if _, ok := h.Roster().ByName("c"); ok || h.Roster().Version != 2 {
		t.Fatal("removed member still in the roster")
	}
}

func TestRuleChange(t *testing.T) {
	f := newFed(t, "a:referral", "b:referral", "c:platform", "d:platform")
	p := f.write("a", prototest.Amend(0, &pb.VotingRule{Roles: []string{"referral", "platform"}, ThresholdPercent: 75}))
	f.write("b", prototest.Approve(0, p.ID))
	f.write("c", prototest.Approve(0, p.ID))
	p = f.write("a", prototest.Amend(1, f.block("e", "platform")))
	f.write("b", prototest.Approve(1, p.ID))
	f.write("c", prototest.Approve(1, p.ID))
	h := f.compute()
	if len(h.Versions) != 2 || len(h.Pending) != 1 || h.Pending[0].Needed != 4 {
		t.Fatalf("3 of 4 is not more than 75%%: versions %d, pending %+v", len(h.Versions), h.Pending)
	}
	f.write("d", prototest.Approve(1, p.ID))
	if h = f.compute(); len(h.Versions) != 3 {
		t.Fatalf("4 of 4: versions %d", len(h.Versions))
	}
}

func TestInvalidAmendments(t *testing.T) {
	f := newFed(t, "a:referral", "b:referral", "c:platform", "aud:auditor")
	cases := []*pb.Entry{
		prototest.Amend(0, &pb.Removal{Member: "nobody", Key: pub(f.keys["a"])}),
		prototest.Amend(0, &pb.Removal{Member: "b", Key: pub(f.keys["a"])}),
		prototest.Amend(0, &pb.MemberBlock{Name: "c", Role: "platform", AuthorKey: pub(key(999)), PeerId: membershiptest.PeerOf("x")}),
		prototest.Amend(0, &pb.MemberBlock{Name: "z", Role: "platform", AuthorKey: pub(f.keys["c"]), PeerId: membershiptest.PeerOf("x")}),
		prototest.Amend(0, &pb.RoleChange{Member: "c", Key: pub(f.keys["c"]), Role: "platform"}),
		prototest.Amend(0, &pb.RoleChange{Member: "c", Key: pub(f.keys["a"]), Role: "referral"}),
	}
	for _, c := range cases {
		f.write("a", c)
	}
	f.write("aud", prototest.Amend(0, f.block("w", "platform")))
	h := f.compute()
	if len(h.Voids) != len(cases)+1 || len(h.Pending) != 0 {
		for _, v := range h.Voids {
			t.Log(v.Why)
		}
		t.Fatalf("voids %d, pending %d", len(h.Voids), len(h.Pending))
	}
}

func pub(k ed25519.PrivateKey) []byte { a := protocol.AuthorKeyOf(k); return a[:] }

// TestAnyOrder: the history is the same whatever order its entries come in.
func TestAnyOrder(t *testing.T) {
	f := newFed(t, "a:referral", "b:referral", "c:platform", "d:platform", "e:platform")
	var ids []protocol.ID
	for i := range 6 {
		// Auditors: the voters stay five, and three votes pass.
		b := f.block(fmt.Sprintf("n%d", i), "auditor")
		p := f.write([]string{"a", "b", "c"}[i%3], prototest.Amend(uint64(i), b))
		for _, v := range []string{"d", "e", "a", "b"} {
			f.write(v, prototest.Approve(uint64(i), p.ID))
		}
		ids = append(ids, p.ID)
		// A rival proposal at each base, approved by one.
		r := f.write("e", prototest.Amend(uint64(i), f.block(fmt.Sprintf("r%d", i), "platform")))
		f.write("c", prototest.Approve(uint64(i), r.ID))
	}
	h := f.compute()
	if h.Version() != 6 {
		t.Fatalf("version %d, want 6", h.Version())
	}
	for i, id := range ids {
		if h.Versions[i+1].Proposal != id {
			t.Fatalf("version %d is %s, want the admission of n%d", i+1, h.Versions[i+1].Proposal, i)
		}
	}
	want := summary(h)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		rng.Shuffle(len(f.entries), func(i, j int) { f.entries[i], f.entries[j] = f.entries[j], f.entries[i] })
		if got := summary(f.compute()); got != want {
			t.Fatalf("order changed the history:\n%s\nwant\n%s", got, want)
		}
	}
}

func summary(h *membership.History) string {
	var b strings.Builder
	for _, v := range h.Versions {
		fmt.Fprintf(&b, "%d %s %s %d/%d\n", v.N, v.Proposal, v.Change, len(v.Votes), v.Voters)
	}
	for _, c := range h.Conflicts {
		fmt.Fprintf(&b, "conflict %s %d %s %s\n", c.Member, c.Base, c.First.ID, c.Second.ID)
	}
	for _, v := range h.Voids {
		fmt.Fprintf(&b, "void %s %s\n", v.Entry.ID, v.Why)
	}
	return b.String()
}
