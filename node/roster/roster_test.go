package roster

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/staydown/staydown/node/kind"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/prototest"
)

const fed = "test"

// world is a federation's membership under test: each member's key and
// log, and every membership entry written.
type world struct {
	t       *testing.T
	genesis *membership.Genesis
	keys    map[string]ed25519.PrivateKey
	logs    map[string]*prototest.Log
	entries []*protocol.Entry
	n       byte
}

// newWorld starts a federation of "name=role" members.
func newWorld(t *testing.T, members ...string) *world {
	t.Helper()
	w := &world{t: t, keys: map[string]ed25519.PrivateKey{}, logs: map[string]*prototest.Log{}}
	var ms []protocol.Member
	for _, nr := range members {
		name, role, _ := strings.Cut(nr, "=")
		ms = append(ms, w.newMember(name, protocol.Role(role)))
	}
	r, err := protocol.NewRoster(fed, ms)
	if err != nil {
		t.Fatal(err)
	}
	if w.genesis, err = membership.NewGenesis(r, membership.Rule{}); err != nil {
		t.Fatal(err)
	}
	return w
}

// newMember makes the keys of a member with a real ed25519 peer ID.
func (w *world) newMember(name string, role protocol.Role) protocol.Member {
	w.t.Helper()
	w.n++
	k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{w.n}, ed25519.SeedSize))
	w.keys[name] = k
	w.logs[name] = prototest.NewLog(k, fed)
	nk, _, err := crypto.GenerateEd25519Key(bytes.NewReader(bytes.Repeat([]byte{w.n + 100}, ed25519.SeedSize)))
	if err != nil {
		w.t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(nk)
	if err != nil {
		w.t.Fatal(err)
	}
	return protocol.Member{Name: name, Role: role, AuthorKey: protocol.AuthorKeyOf(k), PeerID: id.String(), Addrs: []string{"/ip4/127.0.0.1/tcp/4001"}}
}

func (w *world) key(name string) protocol.AuthorKey { return protocol.AuthorKeyOf(w.keys[name]) }

// write signs body as name's next entry; membership entries count.
func (w *world) write(name string, body *pb.Entry) *protocol.Entry {
	w.t.Helper()
	e := w.logs[name].Next(w.t, body)
	if e.Kind().IsMembership() {
		w.entries = append(w.entries, e)
	}
	return e
}

func (w *world) history() *membership.History { return membership.Compute(w.genesis, w.entries) }

// head is what a node would give Amend: the seq of the log of key.
func (w *world) head(k protocol.AuthorKey) (uint64, error) {
	for _, l := range w.logs {
		if l.Head.Author == k {
			return l.Head.Seq, nil
		}
	}
	return 0, nil
}

// propose builds name's amendment of req and writes it.
func (w *world) propose(name string, req ProposeRequest) *protocol.Entry {
	w.t.Helper()
	a, err := Amend(w.history(), req, w.head)
	if err != nil {
		w.t.Fatal(err)
	}
	return w.write(name, &pb.Entry{Payload: &pb.Entry_Amendment{Amendment: a}})
}

func (w *world) approve(name string, id protocol.ID) *protocol.Entry {
	w.t.Helper()
	a, err := Approval(w.history(), name, id)
	if err != nil {
		w.t.Fatal(err)
	}
	return w.write(name, &pb.Entry{Payload: &pb.Entry_Approval{Approval: a}})
}

func blockOf(m protocol.Member) *Block {
	return &Block{Name: m.Name, Role: string(m.Role), AuthorKey: m.AuthorKey.String(), PeerID: m.PeerID, Addrs: m.Addrs}
}

func seq(n uint64) *uint64 { return &n }

// An admission from proposal to passing, as the views show it.
func TestAdmission(t *testing.T) {
	w := newWorld(t, "nru=referral", "pa=platform", "pb=platform", "aud=auditor")
	v := Describe(w.history())
	if v.Version != 0 || v.Voters != 3 || v.Needed != 2 || v.Federation != fed || len(v.Members) != 4 || len(v.History) != 1 ||
		!slices.Equal(v.Rule.Roles, []string{"referral", "platform"}) || v.Rule.ThresholdPercent != 50 {
		t.Fatalf("genesis view %+v", v)
	}
	gh := w.genesis.Hash()
	if v.Genesis != hex.EncodeToString(gh[:]) {
		t.Errorf("genesis %s", v.Genesis)
	}
	if aud := v.Members[3]; aud.Votes || aud.Since != 0 || aud.Keys[0].End != nil || aud.Keys[0].Key != w.key("aud").String() {
		t.Errorf("auditor %+v", aud)
	}

	joiner := w.newMember("pc", protocol.RolePlatform)
	e := w.propose("nru", ProposeRequest{Admit: blockOf(joiner)})
	h := w.history()
	l := Pending(h)
	if l.Version != 0 || len(l.Proposals) != 1 {
		t.Fatalf("pending %+v", l)
	}
	p := l.Proposals[0]
	if p.ID != e.ID.String() || p.Proposer != "nru" || p.Change != "admit pc (platform)" || !slices.Equal(p.Votes, []string{"nru"}) ||
		!slices.Equal(p.Missing, []string{"pa", "pb"}) || len(p.Elsewhere) != 0 || p.Needed != 2 || p.Voters != 3 || p.Passed {
		t.Errorf("proposal %+v", p)
	}
	if b := p.Amendment.Admit; b == nil || !reflect.DeepEqual(b, blockOf(joiner)) || p.Amendment.Base != 0 {
		t.Errorf("amendment %+v", p.Amendment)
	}
	if got, ok := Find(h, e.ID); !ok || got.ID != p.ID || got.Passed {
		t.Errorf("Find pending: %+v %v", got, ok)
	}

	w.approve("pa", e.ID)
	h = w.history()
	if h.Version() != 1 {
		t.Fatalf("version %d after 2 of 3 votes", h.Version())
	}
	p, ok := Find(h, e.ID)
	if !ok || !p.Passed || p.Version != 1 || !slices.Equal(p.Votes, []string{"nru", "pa"}) || !slices.Equal(p.Missing, []string{"pb"}) {
		t.Errorf("Find passed: %+v %v", p, ok)
	}
	v = Describe(h)
	if v.Version != 1 || v.Voters != 4 || v.Needed != 3 || len(v.History) != 2 || v.Proposals != 0 {
		t.Errorf("view after admission %+v", v)
	}
	if last := v.History[1]; last.N != 1 || last.Proposal != e.ID.String() || last.Proposer != "nru" || last.Change != "admit pc (platform)" ||
		!slices.Equal(last.Votes, []string{"nru", "pa"}) || last.Voters != 3 || last.Needed != 2 {
		t.Errorf("history %+v", last)
	}
	if pc := v.Members[4]; pc.Name != "pc" || pc.Since != 1 || !pc.Votes || pc.PeerID != joiner.PeerID {
		t.Errorf("new member %+v", pc)
	}
}

// The defaults of a removal: the member's current key, this node's head
// of its log; after the removal the member is listed as removed and its
// key ends there.
func TestRemoval(t *testing.T) {
	w := newWorld(t, "nru=referral", "pa=platform", "pb=platform")
	for range 3 {
		w.write("pb", prototest.Addition(prototest.SHA256(t, 1)))
	}
	e := w.propose("nru", ProposeRequest{Remove: &Removal{Member: "pb"}})
	p, _ := Find(w.history(), e.ID)
	if r := p.Amendment.Remove; r == nil || r.Member != "pb" || r.Key != w.key("pb").String() || *r.AfterSeq != 3 {
		t.Fatalf("removal %+v", p.Amendment)
	}
	w.approve("pa", e.ID)
	v := Describe(w.history())
	if len(v.Removed) != 1 || v.Removed[0] != (Removed{Name: "pb", Version: 1}) || len(v.Members) != 2 {
		t.Errorf("removed %+v members %d", v.Removed, len(v.Members))
	}
	// A rule amendment of the new version; pb is gone.
	_, err := Amend(w.history(), ProposeRequest{Role: &RoleChange{Member: "pb", Role: "auditor"}}, w.head)
	wantErr(t, err, kind.ErrConflict, `member "pb" (admitted at roster version 0) was removed`)
}

// A member approving two amendments of one version is a conflict the view
// shows with both entries.
func TestConflictView(t *testing.T) {
	w := newWorld(t, "nru=referral", "pa=platform", "pb=platform", "pc=platform")
	a := w.propose("nru", ProposeRequest{Rule: &Rule{Roles: []string{"referral"}, ThresholdPercent: 60}})
	b := w.propose("pa", ProposeRequest{Rule: &Rule{Roles: []string{"platform"}, ThresholdPercent: 60}})
	first := w.write("pb", prototest.Approve(0, a.ID))
	second := w.write("pb", prototest.Approve(0, b.ID))
	v := Describe(w.history())
	if len(v.Conflicts) != 1 || v.Conflicts[0] != (Conflict{Member: "pb", Base: 0, First: first.ID.String(), Second: second.ID.String()}) {
		t.Errorf("conflicts %+v", v.Conflicts)
	}
	p, _ := Find(w.history(), b.ID)
	if !slices.Equal(p.Elsewhere, []string{"nru", "pb"}) || !slices.Equal(p.Missing, []string{"pc"}) {
		t.Errorf("proposal b: elsewhere %v missing %v", p.Elsewhere, p.Missing)
	}
}

func wantErr(t *testing.T, err, k error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %v %q", k, want)
	}
	if !errors.Is(err, k) {
		t.Errorf("error %q is not %v", err, k)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want %q in it", err, want)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q is not one line", err)
	}
}

// Bad requests are refused before any membership is read, naming the
// field and quoting the value.
func TestCheck(t *testing.T) {
	w := newWorld(t, "nru=referral")
	good := blockOf(w.newMember("pc", protocol.RolePlatform))
	with := func(edit func(b *Block)) *Block { b := *good; edit(&b); return &b }
	key := strings.Repeat("ab", 32)
	tests := []struct {
		name string
		req  ProposeRequest
		want string
	}{
		{"nothing", ProposeRequest{}, "body: give one change: admit, remove, role, revoke or rule"},
		{"two changes", ProposeRequest{Admit: good, Rule: &Rule{}}, "body: give one change per proposal, got admit and rule"},
		{"block without name", ProposeRequest{Admit: with(func(b *Block) { b.Name = "" })}, "admit.name: required"},
		{"block bad name", ProposeRequest{Admit: with(func(b *Block) { b.Name = "PC" })}, `admit.name: "PC" has 'P' at byte 1`},
		{"block bad role", ProposeRequest{Admit: with(func(b *Block) { b.Role = "admin" })}, `admit.role: "admin" is not a role`},
		{"block short key", ProposeRequest{Admit: with(func(b *Block) { b.AuthorKey = "abcd" })}, `admit.author_key: want 64 hex characters (an ed25519 public key), got 4: "abcd"`},
		{"block key not hex", ProposeRequest{Admit: with(func(b *Block) { b.AuthorKey = strings.Repeat("zz", 32) })}, `admit.author_key: "zzzz`},
		{"block zero key", ProposeRequest{Admit: with(func(b *Block) { b.AuthorKey = strings.Repeat("00", 32) })}, "admit.author_key: all zeros"},
		{"block bad peer", ProposeRequest{Admit: with(func(b *Block) { b.PeerID = "Qmnope" })}, `admit.peer_id: "Qmnope" is not the libp2p peer ID`},
		{"block bad addr", ProposeRequest{Admit: with(func(b *Block) { b.Addrs = []string{"tcp:4001"} })}, `admit.addrs: address 1: "tcp:4001" is not a multiaddr`},
		{"remove nobody", ProposeRequest{Remove: &Removal{}}, "remove.member: required"},
		{"remove bad key", ProposeRequest{Remove: &Removal{Member: "nru", Key: "xyz"}}, `remove.key: want 64 hex characters (an ed25519 public key), got 3: "xyz"`},
		{"bad role", ProposeRequest{Role: &RoleChange{Member: "nru", Role: "boss"}}, `role.role: "boss" is not a role`},
		{"revoke without after_seq", ProposeRequest{Revoke: &Revocation{Member: "nru"}}, "revoke.after_seq: required"},
		{"revoke to itself", ProposeRequest{Revoke: &Revocation{Member: "nru", Key: key, NewKey: key, AfterSeq: seq(1)}}, "revoke.new_key: is the revoked key"},
		{"revoke bad new key", ProposeRequest{Revoke: &Revocation{Member: "nru", NewKey: "12", AfterSeq: seq(1)}}, `revoke.new_key: want 64 hex characters`},
		{"rule without roles", ProposeRequest{Rule: &Rule{ThresholdPercent: 60}}, "rule.roles: want 1 to 3 roles"},
		{"rule bad role", ProposeRequest{Rule: &Rule{Roles: []string{"platform", "ngo"}, ThresholdPercent: 60}}, `rule.roles[1]: "ngo" is not a role`},
		{"rule role twice", ProposeRequest{Rule: &Rule{Roles: []string{"platform", "platform"}, ThresholdPercent: 60}}, `rule.roles[1]: "platform" is listed twice`},
		{"threshold too low", ProposeRequest{Rule: &Rule{Roles: []string{"platform"}, ThresholdPercent: 49}}, "rule.threshold_percent: want 50 to 99 (an amendment passes with more than this share of the voters), got 49"},
		{"threshold too high", ProposeRequest{Rule: &Rule{Roles: []string{"platform"}, ThresholdPercent: 100}}, "rule.threshold_percent: want 50 to 99"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, tt.req.Check(), kind.ErrInvalid, tt.want)
			_, err := Amend(w.history(), tt.req, func(protocol.AuthorKey) (uint64, error) { t.Fatal("head asked for"); return 0, nil })
			wantErr(t, err, kind.ErrInvalid, tt.want)
		})
	}
}

// Refusals that depend on the membership in force.
func TestRefusals(t *testing.T) {
	w := newWorld(t, "nru=referral", "pa=platform", "pb=platform", "aud=auditor")
	joiner := w.newMember("pc", protocol.RolePlatform)
	h := w.history()
	t.Run("unknown member", func(t *testing.T) {
		_, err := Amend(h, ProposeRequest{Remove: &Removal{Member: "nobody"}}, w.head)
		wantErr(t, err, kind.ErrNotFound, `no member "nobody" in roster version 0 (members: `)
	})
	t.Run("name in use", func(t *testing.T) {
		b := blockOf(joiner)
		b.Name = "pa"
		_, err := Amend(h, ProposeRequest{Admit: b}, w.head)
		wantErr(t, err, kind.ErrConflict, `cannot apply to roster version 0: it admits "pa", a name already in the roster's history`)
	})
	t.Run("key not the member's", func(t *testing.T) {
		_, err := Amend(h, ProposeRequest{Revoke: &Revocation{Member: "pa", Key: w.key("pb").String(), AfterSeq: seq(0)}}, w.head)
		wantErr(t, err, kind.ErrConflict, `it revokes "pa" with key `+w.key("pb").String()+", not one of its keys")
	})
	t.Run("same role", func(t *testing.T) {
		_, err := Amend(h, ProposeRequest{Role: &RoleChange{Member: "pa", Role: "platform"}}, w.head)
		wantErr(t, err, kind.ErrConflict, `gives "pa" the role it has (platform)`)
	})
	t.Run("auditor does not vote", func(t *testing.T) {
		wantErr(t, CheckVoter(h, "aud", w.key("aud")), kind.ErrForbidden, "aud (auditor) does not vote under the rule in force (more than 50% of [referral platform])")
	})
	t.Run("not a member", func(t *testing.T) {
		wantErr(t, CheckVoter(h, "pc", joiner.AuthorKey), kind.ErrForbidden, "pc is not a member of roster version 0 with this node's author key")
		wantErr(t, CheckVoter(h, "pa", joiner.AuthorKey), kind.ErrForbidden, "pa is not a member of roster version 0 with this node's author key")
	})
	if err := CheckVoter(h, "pa", w.key("pa")); err != nil {
		t.Errorf("pa may vote: %v", err)
	}

	a := w.propose("nru", ProposeRequest{Admit: blockOf(joiner)})
	h = w.history()
	t.Run("second amendment", func(t *testing.T) {
		wantErr(t, CheckFirstVote(h, "nru"), kind.ErrConflict, "nru voted at roster version 0 already, for proposal "+a.ID.String()+" (admit pc (platform)): a second amendment of one version is a conflicting vote, evidence against nru")
	})
	if err := CheckFirstVote(h, "pa"); err != nil {
		t.Errorf("pa has not voted: %v", err)
	}
	t.Run("unknown proposal", func(t *testing.T) {
		id := protocol.ID{0x12, 0x20, 9}
		_, err := Approval(h, "pa", id)
		wantErr(t, err, kind.ErrNotFound, "no pending proposal "+id.String()+" at roster version 0")
	})
	t.Run("approving one's own", func(t *testing.T) {
		_, err := Approval(h, "nru", a.ID)
		wantErr(t, err, kind.ErrConflict, "nru already approved proposal "+a.ID.String())
	})
	b := w.propose("pa", ProposeRequest{Rule: &Rule{Roles: []string{"referral", "platform"}, ThresholdPercent: 75}})
	h = w.history()
	t.Run("approving another", func(t *testing.T) {
		_, err := Approval(h, "nru", b.ID)
		wantErr(t, err, kind.ErrConflict, "nru voted at roster version 0 already, for proposal "+a.ID.String()+" (admit pc (platform)): approving a second amendment of one version is a conflicting vote, evidence against nru")
	})
	w.approve("pb", a.ID)
	h = w.history()
	t.Run("passed", func(t *testing.T) {
		_, err := Approval(h, "pa", a.ID)
		wantErr(t, err, kind.ErrConflict, "proposal "+a.ID.String()+" passed already: it made roster version 1 (admit pc (platform))")
	})
	t.Run("void", func(t *testing.T) {
		_, err := Approval(h, "pb", b.ID)
		wantErr(t, err, kind.ErrNotFound, "no pending proposal "+b.ID.String()+" at roster version 1: it is void (amendment of version 0, which another amendment replaced)")
		p, ok := Find(h, b.ID)
		if !ok || p.Void == "" || p.Passed || p.Amendment.Rule == nil || p.Change != "voting rule: more than 75% of [referral platform]" {
			t.Errorf("void proposal %+v", p)
		}
	})
}
