// Package audittest writes the export of a federation whose membership
// changes in every way SPEC 12 allows, with every membership finding of
// SPEC 19.2 in it, and says what an audit must find: for the tests of the
// Go auditor and of the independent Python verifier, which must agree.
package audittest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/export/exporttest"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/prototest"
)

// Federation is the scenario's federation name.
const Federation = "members"

// Finding is what an audit must report: its kind, the entry at fault (the
// second vote, for a conflicting approval), and every entry of its
// evidence, in any order.
type Finding struct {
	Kind     string
	Entry    protocol.ID
	Evidence []protocol.ID
	What     string // for people reading a failure
}

// Scenario is a federation's genesis, the export of its logs, and what
// an audit of it finds.
type Scenario struct {
	Genesis     *membership.Genesis
	GenesisTOML []byte                     // the genesis file
	Header      *pb.ExportHeader           // the export's header (with the genesis)
	Entries     [][]byte                   // the logs, author by author, each in seq order
	File        []byte                     // the export: Header, then Entries
	Want        []Finding                  // the findings, in any order
	Voids       []protocol.ID              // the membership entries without effect
	Named       map[string]*protocol.Entry // entries by the names the scenario gives them
	Keys        map[string]protocol.AuthorKey
}

// Reversed is the scenario's export with its logs in the reverse order,
// each log still in seq order: the membership entries come in another
// order, and an audit must find the same.
func (s *Scenario) Reversed(tb testing.TB) []byte {
	tb.Helper()
	var logs [][][]byte
	for _, raw := range s.Entries {
		e, err := protocol.Decode(bytes.Clone(raw))
		if err != nil {
			tb.Fatal(err)
		}
		if e.Seq() == 1 {
			logs = append(logs, nil)
		}
		logs[len(logs)-1] = append(logs[len(logs)-1], raw)
	}
	slices.Reverse(logs)
	file, err := exporttest.Encode(s.Header, nil, slices.Concat(logs...), nil)
	if err != nil {
		tb.Fatal(err)
	}
	return file
}

// key is the ed25519 key of a fixed seed.
func key(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("audittest " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

// New writes the scenario. peerID gives each member's peer ID (the Go
// auditor's tests make one up; a genesis file read by config must have
// real ones).
//
// The genesis: referral units ru-a and ru-b, platforms pf-c and pf-d, an
// auditor aud; referral units and platforms vote (more than 50%). Then,
// roster version by version:
//
//  1. pf-e (platform) is admitted: ru-a, ru-b and pf-c vote for it. pf-d's
//     own admission of z, at the same version, gets only its own vote
//     (void: another amendment passed); aud's approval is no vote (void).
//  2. pf-d's key D was stolen: the thief signs D's seq 3, rotates D to its
//     own key T at seq 4, and signs with T. ru-a, ru-b and pf-e revoke D
//     after seq 2 with a new key D2: D's seq 3 and 4 are outside (revoked),
//     T holds nothing (replaced), D2 signs.
//  3. aud's key is revoked after its seq 1, with no new key: its seq 2 is
//     outside.
//  4. pf-e becomes a referral unit after its seq 3: its later reply is a
//     role violation, its later notice is not.
//  5. pf-d is removed after D2's seq 1: D2's seq 2 is outside.
//  6. The rule becomes "more than 66%".
//
// Meanwhile pf-c rotates its key C to C2 at seq 2 (C's seq 3 is outside);
// C2 updates its peer; pf-e tries to take pf-c's peer ID (void). At
// version 6, ru-a proposes to admit x and ru-b to admit y; pf-c votes for
// both (a conflicting approval): neither passes, and x's entry is by an
// unknown author, "approved by too few". A stranger signs an addition;
// ru-a sends a notice to ru-b, no platform.
func New(tb testing.TB, peerID func(name string) string) *Scenario {
	tb.Helper()
	s := &Scenario{Named: map[string]*protocol.Entry{}, Keys: map[string]protocol.AuthorKey{}}
	logs := map[protocol.AuthorKey]*prototest.Log{}
	var order []protocol.AuthorKey
	var entries = map[protocol.AuthorKey][]*protocol.Entry{}
	keys := map[string]ed25519.PrivateKey{}
	for _, n := range []string{"ru-a", "ru-b", "pf-c", "pf-d", "aud", "pf-e", "C2", "D2", "thief", "x", "y", "z", "stranger"} {
		keys[n] = key(n)
		s.Keys[n] = protocol.AuthorKeyOf(keys[n])
	}
	// write signs body as the next entry of the log of key k, naming it.
	write := func(k, name string, body *pb.Entry) *protocol.Entry {
		a := s.Keys[k]
		l := logs[a]
		if l == nil {
			l = prototest.NewLog(keys[k], Federation)
			logs[a] = l
			order = append(order, a)
		}
		e := l.Next(tb, body)
		entries[a] = append(entries[a], e)
		if name != "" {
			if _, dup := s.Named[name]; dup {
				tb.Fatalf("audittest: %s named twice", name)
			}
			s.Named[name] = e
		}
		return e
	}
	block := func(name, role string) *pb.MemberBlock {
		k := s.Keys[name]
		return &pb.MemberBlock{Name: name, Role: role, AuthorKey: k[:], PeerId: peerID(name), Addrs: []string{"/ip4/127.0.0.1/tcp/4001"}}
	}
	kb := func(name string) []byte { k := s.Keys[name]; return k[:] }
	sha := func(n uint64) *pb.Entry { return prototest.Addition(prototest.SHA256(tb, n)) }

	var ms []protocol.Member
	var toml strings.Builder
	toml.WriteString("# audittest genesis\n[voting]\nroles = [\"platform\", \"referral\"]\nthreshold_percent = 50\n")
	for _, nr := range [][2]string{{"ru-a", "referral"}, {"ru-b", "referral"}, {"pf-c", "platform"}, {"pf-d", "platform"}, {"aud", "auditor"}} {
		m := protocol.Member{Name: nr[0], Role: protocol.Role(nr[1]), AuthorKey: s.Keys[nr[0]], PeerID: peerID(nr[0]), Addrs: []string{"/ip4/127.0.0.1/tcp/4001"}}
		ms = append(ms, m)
		fmt.Fprintf(&toml, "\n[[member]]\nname = %q\nrole = %q\nauthor_key = %q\npeer_id = %q\naddrs = [%q]\n", m.Name, m.Role, m.AuthorKey, m.PeerID, m.Addrs[0])
	}
	r, err := protocol.NewRoster(Federation, ms)
	if err != nil {
		tb.Fatal(err)
	}
	if s.Genesis, err = membership.NewGenesis(r, membership.Rule{Roles: []protocol.Role{protocol.RolePlatform, protocol.RoleReferral}, Threshold: 50}); err != nil {
		tb.Fatal(err)
	}
	s.GenesisTOML = []byte(toml.String())

	// Version 0 -> 1: admit pf-e (4 voters: 3 votes pass).
	write("ru-a", "ru-a1", sha(1))
	admitE := write("ru-a", "admit-e", prototest.Amend(0, block("pf-e", "platform")))
	write("pf-d", "pf-d1", sha(2))
	write("pf-d", "admit-z", prototest.Amend(0, block("z", "platform"))) // pf-d 2: loses
	write("ru-b", "ru-b1", prototest.Approve(0, admitE.ID))
	write("aud", "aud1", prototest.Approve(0, admitE.ID)) // an auditor does not vote
	write("pf-c", "pf-c1", prototest.Approve(0, admitE.ID))
	write("pf-c", "rotate-c", prototest.Rotate(s.Keys["C2"])) // pf-c 2: C ends here
	write("pf-c", "c-late", sha(3))                           // pf-c 3: outside (rotated)
	write("C2", "c2-1", sha(4))
	write("C2", "c2-peer", &pb.Entry{Payload: &pb.Entry_PeerUpdate{PeerUpdate: &pb.PeerUpdate{PeerId: peerID("pf-c2"), Addrs: []string{"/ip4/127.0.0.1/tcp/4002"}}}})

	// Version 1 -> 2: revoke D after 2, new key D2 (5 voters: 3 pass).
	write("pf-d", "d-stolen", sha(5))                            // pf-d 3, the thief: outside (revoked)
	write("pf-d", "d-rotate", prototest.Rotate(s.Keys["thief"])) // pf-d 4, the thief: outside
	write("thief", "thief1", sha(6))                             // the thief's key: outside (replaced)
	revD := write("ru-a", "revoke-d", prototest.Amend(1, &pb.Revocation{Member: "pf-d", Key: kb("pf-d"), AfterSeq: 2, NewKey: kb("D2")}))
	write("ru-b", "ru-b2", prototest.Approve(1, revD.ID))
	write("pf-e", "pf-e1", prototest.Approve(1, revD.ID))
	write("D2", "d2-1", sha(7))

	// Version 2 -> 3: revoke aud's key after 1, no new key.
	revAud := write("ru-a", "revoke-aud", prototest.Amend(2, &pb.Revocation{Member: "aud", Key: kb("aud"), AfterSeq: 1}))
	write("C2", "c2-vote", prototest.Approve(2, revAud.ID))
	write("pf-e", "pf-e2", prototest.Approve(2, revAud.ID))
	write("aud", "aud-late", prototest.Approve(2, revAud.ID)) // aud 2: outside (revoked)

	// Version 3 -> 4: pf-e becomes a referral unit after its seq 3.
	write("pf-e", "pf-e3", sha(8))
	role := write("ru-a", "role-e", prototest.Amend(3, &pb.RoleChange{Member: "pf-e", Key: kb("pf-e"), AfterSeq: 3, Role: "referral"}))
	write("ru-b", "ru-b3", prototest.Approve(3, role.ID))
	write("D2", "d2-2", prototest.Approve(3, role.ID))
	notice := write("ru-a", "notice-e", &pb.Entry{Payload: &pb.Entry_Notice{Notice: &pb.Notice{
		Addressee: kb("pf-e"), Signals: []*pb.Signal{prototest.SHA256(tb, 9)},
		Category: &pb.Label{Slug: "attacker-manifesto"}, LegalBasis: "TCO Art. 3", DeadlineMs: 1_800_000_000_000}}})
	write("pf-e", "e-reply", &pb.Entry{Payload: &pb.Entry_NoticeReply{NoticeReply: &pb.NoticeReply{
		Notice: notice.ID[:], Status: pb.ReplyStatus_REPLY_STATUS_REMOVED}}}) // pf-e 4: a referral unit: role
	write("pf-e", "e-notice", &pb.Entry{Payload: &pb.Entry_Notice{Notice: &pb.Notice{
		Addressee: kb("C2"), Signals: []*pb.Signal{prototest.SHA256(tb, 10)},
		Category: &pb.Label{Slug: "attacker-manifesto"}, LegalBasis: "TCO Art. 3", DeadlineMs: 1_800_000_000_000}}}) // pf-e 5: may
	write("pf-e", "e-peer", &pb.Entry{Payload: &pb.Entry_PeerUpdate{PeerUpdate: &pb.PeerUpdate{PeerId: peerID("pf-c2")}}}) // pf-c's: void

	// Version 4 -> 5: remove pf-d after D2's seq 2 (the approval).
	rem := write("ru-a", "remove-d", prototest.Amend(4, &pb.Removal{Member: "pf-d", Key: kb("D2"), AfterSeq: 2}))
	write("ru-b", "ru-b4", prototest.Approve(4, rem.ID))
	write("C2", "c2-vote2", prototest.Approve(4, rem.ID))
	write("D2", "d2-late", sha(11)) // D2 3: outside (removed)

	// Version 5 -> 6: more than 66% (4 voters: 3 pass).
	rule := write("ru-a", "rule", prototest.Amend(5, &pb.VotingRule{Roles: []string{"referral", "platform"}, ThresholdPercent: 66}))
	write("ru-b", "ru-b5", prototest.Approve(5, rule.ID))
	write("pf-e", "pf-e6", prototest.Approve(5, rule.ID))

	// Version 6: two admissions, neither passes; pf-c votes for both.
	ax := write("ru-a", "admit-x", prototest.Amend(6, block("x", "platform")))
	ay := write("ru-b", "admit-y", prototest.Amend(6, block("y", "platform")))
	write("C2", "c2-x", prototest.Approve(6, ax.ID))
	write("C2", "c2-y", prototest.Approve(6, ay.ID)) // conflicts
	write("x", "x1", sha(12))                        // unknown: approved by too few
	write("stranger", "stranger1", sha(13))          // unknown
	write("ru-a", "notice-b", &pb.Entry{Payload: &pb.Entry_Notice{Notice: &pb.Notice{
		Addressee: kb("ru-b"), Signals: []*pb.Signal{prototest.SHA256(tb, 14)},
		Category: &pb.Label{Slug: "attacker-manifesto"}, LegalBasis: "TCO Art. 3", DeadlineMs: 1_800_000_000_000}}}) // to no platform: role

	// The file: logs by author key, as the reference exporter writes them.
	slices.SortFunc(order, func(a, b protocol.AuthorKey) int { return strings.Compare(string(a[:]), string(b[:])) })
	for _, a := range order {
		for _, e := range entries[a] {
			s.Entries = append(s.Entries, e.Raw)
		}
	}
	s.Header = &pb.ExportHeader{Federation: Federation, Exporter: "ru-a", CreatedMs: 1_800_000_000_000, Genesis: s.Genesis.Raw(), Roster: s.GenesisTOML}
	if s.File, err = exporttest.Encode(s.Header, nil, s.Entries, nil); err != nil {
		tb.Fatal(err)
	}

	ids := func(names ...string) []protocol.ID {
		var out []protocol.ID
		for _, n := range names {
			e, ok := s.Named[n]
			if !ok {
				tb.Fatalf("audittest: no entry %s", n)
			}
			out = append(out, e.ID)
		}
		return out
	}
	want := func(kind, entry, what string, related ...string) {
		s.Want = append(s.Want, Finding{Kind: kind, Entry: s.Named[entry].ID, Evidence: ids(append([]string{entry}, related...)...), What: what})
	}
	revokedD := []string{"revoke-d", "ru-b2", "pf-e1"}
	want("outside", "c-late", "pf-c's key C after its rotation", "rotate-c")
	want("outside", "d-stolen", "pf-d's key D after its revocation", revokedD...)
	want("outside", "d-rotate", "the thief's rotation of D", revokedD...)
	want("outside", "thief1", "the thief's key, replaced", append(slices.Clone(revokedD), "remove-d", "ru-b4", "c2-vote2")...)
	want("outside", "aud-late", "aud's key after its revocation (no new key)", "revoke-aud", "c2-vote", "pf-e2")
	want("outside", "d2-late", "pf-d's key D2 after its removal", "remove-d", "ru-b4", "c2-vote2")
	want("role", "e-reply", "a reply by pf-e, a referral unit since its seq 3", "role-e", "ru-b3", "d2-2")
	want("role", "notice-b", "a notice to ru-b, no platform")
	want("unknown-author", "x1", "x, whose admission was approved by too few", "admit-x")
	want("unknown-author", "stranger1", "a stranger")
	want("conflicting-approval", "c2-y", "pf-c voted for x and y", "c2-x")
	s.Voids = ids("admit-z", "aud1", "aud-late", "e-peer")
	return s
}

// Extend signs n more additions of the scenario's key name after log (its
// entries so far, in seq order), and returns them.
func Extend(tb testing.TB, name string, log [][]byte, n int) [][]byte {
	tb.Helper()
	last, err := protocol.Decode(slices.Clone(log[len(log)-1]))
	if err != nil {
		tb.Fatal(err)
	}
	l := prototest.NewLog(key(name), Federation)
	l.Head, l.TimeMs = protocol.Head{Author: last.Author, Seq: last.Seq(), ID: last.ID}, last.Body.TimestampMs
	var out [][]byte
	for i := range n {
		out = append(out, l.Next(tb, prototest.Addition(prototest.SHA256(tb, uint64(1000+i)))).Raw)
	}
	return out
}

// Random writes the export of a federation whose membership changes at
// random (seed decides): members propose, approve and vote twice,
// rotate their keys (now and then to a key already in use), update their
// peers, and write additions, notices and replies, also with keys past
// their end and with roles that may not; strangers write too. Amendments
// are mostly of the version in force (computed as the logs grow), some of
// an older or a later one, some that cannot apply. Admissions always
// bring a new peer ID. It gives the scenario's genesis, file and entries;
// what an audit must find is for the auditors to agree on.
func Random(tb testing.TB, seed uint64, peerID func(name string) string) *Scenario {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	s := &Scenario{Named: map[string]*protocol.Entry{}, Keys: map[string]protocol.AuthorKey{}}
	priv := map[protocol.AuthorKey]ed25519.PrivateKey{}
	logs := map[protocol.AuthorKey]*prototest.Log{}
	entries := map[protocol.AuthorKey][]*protocol.Entry{}
	var order []protocol.AuthorKey
	var members []*protocol.Entry // membership entries so far
	fresh := func(label string) protocol.AuthorKey {
		k := key(fmt.Sprintf("random %d %s", seed, label))
		a := protocol.AuthorKeyOf(k)
		priv[a] = k
		return a
	}
	write := func(a protocol.AuthorKey, body *pb.Entry) *protocol.Entry {
		l := logs[a]
		if l == nil {
			l = prototest.NewLog(priv[a], Federation)
			logs[a] = l
			order = append(order, a)
		}
		e := l.Next(tb, body)
		entries[a] = append(entries[a], e)
		if e.Kind().IsMembership() {
			members = append(members, e)
		}
		return e
	}
	roles := []string{"referral", "platform", "auditor"}
	var ms []protocol.Member
	var toml strings.Builder
	n := 3 + rng.IntN(3)
	for i := range n {
		role := roles[rng.IntN(3)]
		if i == 0 {
			role = "referral"
		}
		name := fmt.Sprintf("m%d", i)
		m := protocol.Member{Name: name, Role: protocol.Role(role), AuthorKey: fresh(name), PeerID: peerID(name)}
		ms = append(ms, m)
		fmt.Fprintf(&toml, "[[member]]\nname = %q\nrole = %q\nauthor_key = %q\npeer_id = %q\n\n", m.Name, m.Role, m.AuthorKey, m.PeerID)
	}
	r, err := protocol.NewRoster(Federation, ms)
	if err != nil {
		tb.Fatal(err)
	}
	if s.Genesis, err = membership.NewGenesis(r, membership.Rule{}); err != nil {
		tb.Fatal(err)
	}
	s.GenesisTOML = []byte(toml.String())
	admitted := n
	var proposals []*protocol.Entry
	var allKeys []protocol.AuthorKey
	for _, m := range ms {
		allKeys = append(allKeys, m.AuthorKey)
	}
	sig := uint64(0)
	for step := range 120 {
		h := membership.Compute(s.Genesis, members)
		everyone := h.Everyone()
		m := everyone.Members[rng.IntN(len(everyone.Members))]
		author := m.AuthorKey
		if rng.IntN(8) == 0 { // an older key of the member, perhaps past its end
			author = m.Keys[rng.IntN(len(m.Keys))]
		}
		base := h.Version()
		switch rng.IntN(10) {
		case 0:
			base = uint64(rng.IntN(int(base) + 2))
		}
		other := everyone.Members[rng.IntN(len(everyone.Members))]
		sig++
		switch a := rng.IntN(16); {
		case a < 3:
			write(author, prototest.Addition(prototest.SHA256(tb, sig)))
		case a == 3:
			to := allKeys[rng.IntN(len(allKeys))]
			write(author, &pb.Entry{Payload: &pb.Entry_Notice{Notice: &pb.Notice{Addressee: to[:], Signals: []*pb.Signal{prototest.SHA256(tb, sig)},
				Category: &pb.Label{Slug: "attacker-manifesto"}, LegalBasis: "TCO", DeadlineMs: 1_800_000_000_000}}})
		case a == 4:
			id := protocol.IDOf([]byte(fmt.Sprint("notice ", sig)))
			write(author, &pb.Entry{Payload: &pb.Entry_NoticeReply{NoticeReply: &pb.NoticeReply{Notice: id[:], Status: pb.ReplyStatus_REPLY_STATUS_RECEIVED}}})
		case a == 5: // admit
			name := fmt.Sprintf("m%d", admitted)
			admitted++
			k := fresh(name)
			allKeys = append(allKeys, k)
			proposals = append(proposals, write(author, prototest.Amend(base, &pb.MemberBlock{Name: name, Role: roles[rng.IntN(3)], AuthorKey: k[:], PeerId: peerID(name)})))
		case a == 6: // remove, role, revoke
			key := other.Keys[rng.IntN(len(other.Keys))]
			after := uint64(len(entries[key])) + uint64(rng.IntN(3))
			var change any
			switch rng.IntN(4) {
			case 0:
				change = &pb.Removal{Member: other.Name, Key: key[:], AfterSeq: after}
			case 1:
				change = &pb.RoleChange{Member: other.Name, Key: key[:], AfterSeq: after, Role: roles[rng.IntN(3)]}
			case 2:
				change = &pb.Revocation{Member: other.Name, Key: key[:], AfterSeq: after}
			default:
				nk := fresh(fmt.Sprint("revoked ", step))
				allKeys = append(allKeys, nk)
				change = &pb.Revocation{Member: other.Name, Key: key[:], AfterSeq: after, NewKey: nk[:]}
			}
			proposals = append(proposals, write(author, prototest.Amend(base, change)))
		case a == 7:
			rule := &pb.VotingRule{Roles: []string{"referral", "platform"}, ThresholdPercent: uint32(50 + rng.IntN(50))}
			if rng.IntN(3) == 0 {
				rule.Roles = []string{roles[rng.IntN(3)]}
			}
			proposals = append(proposals, write(author, prototest.Amend(base, rule)))
		case a < 13 && len(proposals) > 0: // approvals, mostly of pending amendments
			p := proposals[max(0, len(proposals)-1-rng.IntN(3))]
			if len(h.Pending) > 0 && rng.IntN(4) > 0 {
				if e, ok := h.Entry(h.Pending[rng.IntN(len(h.Pending))].ID); ok {
					p = e
				}
			}
			pbase := p.Body.GetAmendment().Base
			if rng.IntN(8) == 0 {
				pbase = base
			}
			write(author, prototest.Approve(pbase, p.ID))
		case a == 13:
			nk := fresh(fmt.Sprint("rotated ", step))
			if rng.IntN(6) == 0 {
				nk = allKeys[rng.IntN(len(allKeys))] // a key in use: void
			}
			if nk != author {
				allKeys = append(allKeys, nk)
				write(author, prototest.Rotate(nk))
			}
		case a == 14:
			write(author, &pb.Entry{Payload: &pb.Entry_PeerUpdate{PeerUpdate: &pb.PeerUpdate{PeerId: peerID(fmt.Sprint("peer", rng.IntN(n+3)))}}})
		default:
			stranger := fresh(fmt.Sprint("stranger ", rng.IntN(3)))
			write(stranger, prototest.Addition(prototest.SHA256(tb, sig)))
		}
	}
	slices.SortFunc(order, func(a, b protocol.AuthorKey) int { return strings.Compare(string(a[:]), string(b[:])) })
	for _, a := range order {
		for _, e := range entries[a] {
			s.Entries = append(s.Entries, e.Raw)
		}
	}
	s.Header = &pb.ExportHeader{Federation: Federation, Genesis: s.Genesis.Raw()}
	if s.File, err = exporttest.Encode(s.Header, nil, s.Entries, nil); err != nil {
		tb.Fatal(err)
	}
	return s
}
