package membership

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// Open is the end of a key that nothing has ended: every seq is in.
const Open = math.MaxUint64

// Vote is one member's counted approval of an amendment.
type Vote struct {
	Member string
	Entry  protocol.ID
	Author protocol.AuthorKey
	Seq    uint64
}

// Version is one roster version: 0 is the genesis; version n+1 is what the
// amendment that passed at base n made of version n.
type Version struct {
	N        uint64
	Proposal protocol.ID // zero for the genesis
	Proposer string
	Change   string // what changed, for people
	Votes    []Vote // the approvals counted, in member order
	Voters   int
	Needed   int
	// Missing are the voters of the base version whose vote did not
	// count for this amendment (they did not vote, or voted for another).
	Missing []string
	// Removed is the member this version removed, if it is a removal.
	Removed string
	// Roster is the roster of this version: set on the version in force
	// only (History.Roster), since each costs a copy of the members.
	Roster *protocol.Roster
	Rule   Rule
}

// Proposal is an amendment of the current version that has not passed.
type Proposal struct {
	ID       protocol.ID
	Base     uint64
	Proposer string
	Author   protocol.AuthorKey
	Seq      uint64
	Change   string
	Body     *pb.Amendment
	Votes    []Vote
	Voters   int
	Needed   int
	Missing  []string // voters who have not voted at this base
	Elsewise []string // voters whose vote at this base went to another proposal
}

// Conflict is a member approving two different amendments of one version:
// evidence, like an equivocation (SPEC 12.3). First is the vote that counts.
type Conflict struct {
	Member        string
	Base          uint64
	First, Second *protocol.Entry
}

// Void is a membership entry with no effect, and why.
type Void struct {
	Entry *protocol.Entry
	Why   string
}

// KeyState is what the history says of one author key.
type KeyState struct {
	Member string
	Pos    int    // position in the member's chain of keys (0: the admitted key)
	End    uint64 // last seq in the logs; Open if none; 0: no entry counts
	Why    string // why it ends: "rotated", "revoked", "removed", "replaced"
}

type roleSeg struct {
	key   protocol.AuthorKey
	pos   int
	after uint64
	role  protocol.Role
}

type member struct {
	name         string
	idx          int           // position in state.order
	role         protocol.Role // role now
	admittedRole protocol.Role
	first        protocol.AuthorKey
	segs         []roleSeg
	removed      bool
	gone         protocol.AuthorKey // the key its removal named
	platform     bool               // has had the platform role
	admitted     uint64
	peer         string
	addrs        []string
	chain        []protocol.AuthorKey
}

type cut struct {
	after uint64
	why   string
}

// state is the roster at one version, with what the logs say of keys.
type state struct {
	version  uint64
	rule     Rule
	members  map[string]*member
	order    []string // member names in admission order
	cuts     map[protocol.AuthorKey]cut
	succ     map[protocol.AuthorKey]protocol.AuthorKey // a revocation's new key
	keys     map[protocol.AuthorKey]KeyState
	declared map[protocol.AuthorKey]bool // every key a block or revocation named
	byName   []*member                   // every member, by name
	// admittedPeers is the peer ID each member was admitted with, to
	// its name (peer updates come after every version: peers).
	admittedPeers map[string]string
	// voting is the members who vote, in order (voterList); nil until
	// asked, and again after an admission, a role or a rule changes.
	voting []*member
}

// History is a federation's membership: a pure function of its genesis and
// the membership entries of its logs (SPEC 12). Every node, the audit and
// the Python verifier compute it alike, whatever order the entries came in.
// It is read-only once computed.
type History struct {
	Genesis   *Genesis
	Versions  []Version
	Pending   []Proposal
	Conflicts []Conflict
	Voids     []Void
	now       *state
	entries   map[protocol.ID]*protocol.Entry
	voidSet   map[protocol.ID]bool
	// load finds the membership entries not in entries, for a history
	// decoded from a snapshot (UnmarshalSnapshot): nil for a computed one,
	// whose entries holds them all.
	load func(protocol.ID) (*protocol.Entry, bool)
}

// logs is what the chains and peers read of the logs: the rotation and
// peer-update entries of each author, in seq order, and how many
// rotation entries name each new key.
type logs struct {
	rotations, peers map[protocol.AuthorKey][]*protocol.Entry
	rotatedTo        map[protocol.AuthorKey]int
}

// Compute derives the history from the genesis and every membership
// entry (amendment, approval, rotation, peer-update) of the logs, in any
// order. Entries must be logged ones: decoded, signed by their author, at
// their place in their author's log. Others are ignored.
func Compute(g *Genesis, entries []*protocol.Entry) *History {
	h := &History{Genesis: g, entries: make(map[protocol.ID]*protocol.Entry, len(entries)), voidSet: map[protocol.ID]bool{}}
	byBase := map[uint64][]*protocol.Entry{}
	// Only rotations and peer updates are read log by log (chains,
	// peers): keep those, in seq order.
	l := logs{rotations: map[protocol.AuthorKey][]*protocol.Entry{}, peers: map[protocol.AuthorKey][]*protocol.Entry{}, rotatedTo: map[protocol.AuthorKey]int{}}
	for _, e := range entries {
		if !e.Kind().IsMembership() || e.Body.Federation != g.Roster.Federation {
			continue
		}
		if _, dup := h.entries[e.ID]; dup {
			continue
		}
		h.entries[e.ID] = e
		switch p := e.Body.Payload.(type) {
		case *pb.Entry_Amendment:
			byBase[p.Amendment.Base] = append(byBase[p.Amendment.Base], e)
		case *pb.Entry_Approval:
			byBase[p.Approval.Base] = append(byBase[p.Approval.Base], e)
		case *pb.Entry_Rotation:
			l.rotations[e.Author] = append(l.rotations[e.Author], e)
			l.rotatedTo[protocol.AuthorKey(p.Rotation.NewKey)]++
		case *pb.Entry_PeerUpdate:
			l.peers[e.Author] = append(l.peers[e.Author], e)
		}
	}
	for _, m := range []map[protocol.AuthorKey][]*protocol.Entry{l.rotations, l.peers} {
		for _, es := range m {
			slices.SortFunc(es, func(a, b *protocol.Entry) int { return cmp.Compare(a.Seq(), b.Seq()) })
		}
	}
	s := genesisState(g)
	s.chains(l)
	h.Versions = append(h.Versions, Version{Rule: s.rule, Voters: s.voters(), Change: "genesis"})
	decided := map[protocol.ID]bool{}
	for {
		t := s.tally(byBase[s.version], h)
		if t.winner == nil {
			h.Pending = t.pending(s)
			break
		}
		p := t.winner
		decided[p.ID] = true
		a := p.Body.GetAmendment()
		var missing []string
		for _, m := range s.voterList() {
			if id, _ := t.voteOf(m); id != p.ID {
				missing = append(missing, m.name)
			}
		}
		change := describe(a)
		s.apply(a)
		s.version++
		if admit := a.GetAdmit(); admit != nil {
			s.chainOf(admit.Name, l) // no other chain changes
		} else if a.GetRole() == nil && a.GetRule() == nil {
			s.chains(l)
		}
		h.Versions = append(h.Versions, Version{
			N: s.version, Proposal: p.ID, Proposer: t.proposer, Change: change,
			Votes: t.votes[p.ID], Voters: t.voters, Needed: t.needed, Rule: s.rule,
			Missing: missing, Removed: a.GetRemove().GetMember(),
		})
	}
	// Amendments at an older base that did not pass there are void, as
	// are amendments for versions that never came.
	for base, es := range byBase {
		for _, e := range es {
			if a := e.Body.GetAmendment(); a != nil && !decided[e.ID] && base != s.version && !h.voided(e.ID) {
				if base < s.version {
					h.void(e, "amendment of version %d, which another amendment replaced", base)
				} else {
					h.void(e, "amendment of version %d, which does not exist (the roster is at version %d)", base, s.version)
				}
			}
		}
	}
	s.peers(l, h)
	h.now = s
	h.Versions[len(h.Versions)-1].Roster = s.roster(g.Roster.Federation)
	slices.SortFunc(h.Voids, func(a, b Void) int { return bytes.Compare(a.Entry.ID[:], b.Entry.ID[:]) })
	slices.SortFunc(h.Conflicts, func(a, b Conflict) int {
		return cmp.Or(cmp.Compare(a.Base, b.Base), cmp.Compare(a.Member, b.Member), bytes.Compare(a.Second.ID[:], b.Second.ID[:]))
	})
	return h
}

func (h *History) voided(id protocol.ID) bool { return h.voidSet[id] }

func (h *History) void(e *protocol.Entry, format string, args ...any) {
	if h.voidSet[e.ID] {
		return
	}
	h.voidSet[e.ID] = true
	h.Voids = append(h.Voids, Void{Entry: e, Why: fmt.Sprintf(format, args...)})
}

func genesisState(g *Genesis) *state {
	s := &state{
		rule: g.Rule, members: map[string]*member{}, cuts: map[protocol.AuthorKey]cut{},
		succ: map[protocol.AuthorKey]protocol.AuthorKey{}, declared: map[protocol.AuthorKey]bool{},
		admittedPeers: map[string]string{},
	}
	for _, m := range g.Roster.Members {
		s.admit(Block(m), 0)
	}
	return s
}

func (s *state) admit(b *pb.MemberBlock, version uint64) {
	var k protocol.AuthorKey
	copy(k[:], b.AuthorKey)
	role := protocol.Role(b.Role)
	m := &member{
		name: b.Name, idx: len(s.order), role: role, admittedRole: role, first: k, admitted: version,
		platform: role == protocol.RolePlatform, peer: b.PeerId, addrs: slices.Clone(b.Addrs),
	}
	s.members[b.Name] = m
	if s.voting != nil && s.rule.Votes(role) {
		s.voting = append(slices.Clip(s.voting), m)
	}
	s.order = append(s.order, b.Name)
	s.admittedPeers[b.PeerId] = b.Name
	i, _ := slices.BinarySearchFunc(s.byName, b.Name, func(m *member, name string) int { return cmp.Compare(m.name, name) })
	s.byName = slices.Insert(s.byName, i, m)
	s.declared[k] = true
}

// chains works out each member's keys, in order, and where each ends
// (SPEC 12.4): a key ends at its revocation or removal seq, or at its
// first valid rotation entry within that; the next key is the
// revocation's new key, else the rotation's. A rotation is void when its
// new key is named by another rotation entry anywhere, or by a member
// block or a revocation. A key that was in a chain and is in none now
// holds nothing (its end is 0).
func (s *state) chains(l logs) {
	before := s.keys
	s.keys = map[protocol.AuthorKey]KeyState{}
	for name := range s.members {
		s.chainOf(name, l)
	}
	// A key that left every chain (a rotation the revocation of its key
	// voided, a successor a revocation replaced) holds nothing.
	for k, ks := range before {
		if _, ok := s.keys[k]; !ok {
			ks.End, ks.Why = 0, "replaced"
			s.keys[k] = ks
		}
	}
}

// chainOf works out the chain of one member (chains).
func (s *state) chainOf(name string, l logs) {
	m := s.members[name]
	m.chain = m.chain[:0]
	k := m.first
	for pos := 0; ; pos++ {
		if _, seen := s.keys[k]; seen && pos > 0 {
			return // a cycle of successors: stop at the first repeat
		}
		m.chain = append(m.chain, k)
		end, why := uint64(Open), ""
		if c, ok := s.cuts[k]; ok {
			end, why = c.after, c.why
		}
		if m.removed && k == m.gone {
			s.keys[k] = KeyState{Member: name, Pos: pos, End: end, Why: why}
			return
		}
		if next, ok := s.succ[k]; ok {
			s.keys[k] = KeyState{Member: name, Pos: pos, End: end, Why: why}
			k = next
			continue
		}
		rotated := false
		for _, e := range l.rotations[k] {
			if e.Seq() > end {
				break
			}
			nk := protocol.AuthorKey(e.Body.GetRotation().NewKey)
			if l.rotatedTo[nk] > 1 || s.declared[nk] {
				continue
			}
			s.keys[k] = KeyState{Member: name, Pos: pos, End: e.Seq(), Why: "rotated"}
			k, rotated = nk, true
			break
		}
		if !rotated {
			s.keys[k] = KeyState{Member: name, Pos: pos, End: end, Why: why}
			return
		}
	}
}

// valid reports whether e counts at this state: its author is a key of a
// member and e is within the key's end. It returns the member.
func (s *state) valid(e *protocol.Entry) (*member, KeyState, bool) {
	ks, ok := s.keys[e.Author]
	if !ok || e.Seq() > ks.End {
		return nil, ks, false
	}
	return s.members[ks.Member], ks, true
}

func (s *state) voters() int { return len(s.voterList()) }

// voterList is the members who vote, in admission order. The caller
// must not change the slice.
func (s *state) voterList() []*member {
	if s.voting == nil {
		s.voting = []*member{}
		for _, name := range s.order {
			if m := s.members[name]; !m.removed && s.rule.Votes(m.role) {
				s.voting = append(s.voting, m)
			}
		}
	}
	return s.voting
}

// tally is the votes at one base.
type tally struct {
	winner   *protocol.Entry
	proposer string
	voters   int
	needed   int
	votes    map[protocol.ID][]Vote
	// first is each member's counted vote, by member.idx (nil: none).
	first   []*ballot
	props   map[protocol.ID]*protocol.Entry
	invalid map[protocol.ID]bool // amendments that cannot apply at this base
}

// voteOf is what m's counted vote at this base is for, if it voted.
func (t *tally) voteOf(m *member) (protocol.ID, bool) {
	if b := t.first[m.idx]; b != nil {
		return b.target, true
	}
	return protocol.ID{}, false
}

type ballot struct {
	e      *protocol.Entry
	m      *member
	pos    int
	target protocol.ID
}

// tally counts the votes at s's version (SPEC 12.3): each voting member's
// first vote (by position of its key in its chain, then seq) counts; a
// later vote for another amendment is a conflict. An amendment is its
// author's vote for itself.
func (s *state) tally(es []*protocol.Entry, h *History) *tally {
	t := &tally{voters: s.voters(), votes: map[protocol.ID][]Vote{}, first: make([]*ballot, len(s.order)),
		props: map[protocol.ID]*protocol.Entry{}, invalid: map[protocol.ID]bool{}}
	t.needed = s.rule.Needed(t.voters)
	ballots := make([]ballot, 0, len(es))
	for _, e := range es {
		m, ks, ok := s.valid(e)
		if !ok {
			h.void(e, "%s is not a member's key, or the entry is past its end, at version %d", e.Author, s.version)
			continue
		}
		if m.removed || !s.rule.Votes(m.role) {
			h.void(e, "%s does not vote at version %d", m.name, s.version)
			continue
		}
		b := ballot{e: e, m: m, pos: ks.Pos}
		switch p := e.Body.Payload.(type) {
		case *pb.Entry_Amendment:
			if why := s.check(p.Amendment); why != "" {
				t.invalid[e.ID] = true
				h.void(e, "%s", why)
				continue
			}
			t.props[e.ID] = e
			b.target = e.ID
		case *pb.Entry_Approval:
			id, err := protocol.IDFromBytes(p.Approval.Proposal)
			if err != nil {
				continue
			}
			b.target = id
		}
		ballots = append(ballots, b)
	}
	// An approval of an amendment of another base is no vote here.
	kept := ballots[:0]
	for _, b := range ballots {
		if b.e.Kind() == protocol.KindApproval {
			if p, ok := h.entries[b.target]; ok {
				a := p.Body.GetAmendment()
				if a == nil || a.Base != s.version {
					h.void(b.e, "approves %s, which is not an amendment of version %d", b.target, s.version)
					continue
				}
				if t.invalid[b.target] {
					h.void(b.e, "approves %s, which cannot apply to version %d", b.target, s.version)
					continue
				}
			}
		}
		kept = append(kept, b)
	}
	// Each member's first ballot (by position of its key, then seq)
	// counts; a later one for another amendment is a conflict.
	for i := range kept {
		b := &kept[i]
		if first := t.first[b.m.idx]; first == nil || b.pos < first.pos || b.pos == first.pos && b.e.Seq() < first.e.Seq() {
			t.first[b.m.idx] = b
		}
	}
	n := map[protocol.ID]int{}
	for i := range kept {
		b := &kept[i]
		first := t.first[b.m.idx]
		if first == b {
			n[b.target]++
		} else if first.target != b.target {
			h.Conflicts = append(h.Conflicts, Conflict{Member: b.m.name, Base: s.version, First: first.e, Second: b.e})
		}
	}
	// The votes of each amendment, in member (name) order.
	for id, c := range n {
		t.votes[id] = make([]Vote, 0, c)
	}
	for _, m := range s.byName {
		if b := t.first[m.idx]; b != nil {
			t.votes[b.target] = append(t.votes[b.target], Vote{Member: m.name, Entry: b.e.ID, Author: b.e.Author, Seq: b.e.Seq()})
		}
	}
	// At most one amendment can pass: each voter counts once and the
	// threshold is at least half.
	for id, p := range t.props {
		if len(t.votes[id]) >= t.needed {
			t.winner = p
			if m, _, ok := s.valid(p); ok {
				t.proposer = m.name
			}
		}
	}
	return t
}

// pending lists the amendments of s's version with their votes so far.
func (t *tally) pending(s *state) []Proposal {
	var out []Proposal
	voters := s.voterList()
	for id, e := range t.props {
		m, _, _ := s.valid(e)
		p := Proposal{ID: id, Base: s.version, Proposer: m.name, Author: e.Author, Seq: e.Seq(),
			Change: describe(e.Body.GetAmendment()), Body: e.Body.GetAmendment(),
			Votes: t.votes[id], Voters: t.voters, Needed: t.needed}
		for _, v := range voters {
			switch got, ok := t.voteOf(v); {
			case !ok:
				p.Missing = append(p.Missing, v.name)
			case got != id:
				p.Elsewise = append(p.Elsewise, v.name)
			}
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Proposal) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	return out
}

// check says why amendment a cannot apply to s ("" if it can).
func (s *state) check(a *pb.Amendment) string {
	switch c := a.Change.(type) {
	case *pb.Amendment_Admit:
		b := c.Admit
		if _, dup := s.members[b.Name]; dup {
			return fmt.Sprintf("admits %q, a name already in the roster's history", b.Name)
		}
		var k protocol.AuthorKey
		copy(k[:], b.AuthorKey)
		if _, used := s.keys[k]; used || s.declared[k] {
			return fmt.Sprintf("admits %q with author key %s, already in use", b.Name, k)
		}
		// Removed members' peer IDs too: a removed member's node still
		// holds that transport key, and would be let in as the new one.
		if name, used := s.admittedPeers[b.PeerId]; used {
			return fmt.Sprintf("admits %q with the peer ID of %q", b.Name, name)
		}
	case *pb.Amendment_Remove:
		if why := s.checkCut(c.Remove.Member, c.Remove.Key); why != "" {
			return "removes " + why
		}
		m := s.members[c.Remove.Member]
		if s.rule.Votes(m.role) && s.voters() == 1 {
			return fmt.Sprintf("removes %q, the last voting member", m.name)
		}
	case *pb.Amendment_Role:
		if why := s.checkCut(c.Role.Member, c.Role.Key); why != "" {
			return "changes the role of " + why
		}
		m := s.members[c.Role.Member]
		if string(m.role) == c.Role.Role {
			return fmt.Sprintf("gives %q the role it has (%s)", m.name, m.role)
		}
		if s.rule.Votes(m.role) && !s.rule.Votes(protocol.Role(c.Role.Role)) && s.voters() == 1 {
			return fmt.Sprintf("takes the vote from %q, the last voting member", m.name)
		}
	case *pb.Amendment_Revoke:
		if why := s.checkCut(c.Revoke.Member, c.Revoke.Key); why != "" {
			return "revokes " + why
		}
		if len(c.Revoke.NewKey) > 0 {
			var k protocol.AuthorKey
			copy(k[:], c.Revoke.NewKey)
			if _, used := s.keys[k]; used || s.declared[k] {
				return fmt.Sprintf("gives %q the new key %s, already in use", c.Revoke.Member, k)
			}
		}
	case *pb.Amendment_Rule:
		r := ruleOf(c.Rule)
		n := 0
		for _, m := range s.members {
			if !m.removed && r.Votes(m.role) {
				n++
			}
		}
		if n == 0 {
			return fmt.Sprintf("sets a rule under which no member votes (%v)", r.Roles)
		}
	default:
		return "changes nothing known"
	}
	return ""
}

func (s *state) checkCut(name string, key []byte) string {
	m, ok := s.members[name]
	if !ok {
		return fmt.Sprintf("%q, not a member", name)
	}
	if m.removed {
		return fmt.Sprintf("%q, removed already", name)
	}
	var k protocol.AuthorKey
	copy(k[:], key)
	if ks, ok := s.keys[k]; !ok || ks.Member != name {
		return fmt.Sprintf("%q with key %s, not one of its keys", name, k)
	}
	return ""
}

// apply makes the passed amendment a of s.
func (s *state) apply(a *pb.Amendment) {
	next := s.version + 1
	if a.GetAdmit() == nil {
		s.voting = nil // admit keeps it up to date
	}
	switch c := a.Change.(type) {
	case *pb.Amendment_Admit:
		s.admit(c.Admit, next)
	case *pb.Amendment_Remove:
		m := s.members[c.Remove.Member]
		m.removed = true
		copy(m.gone[:], c.Remove.Key)
		s.cutKey(c.Remove.Key, c.Remove.AfterSeq, "removed")
	case *pb.Amendment_Role:
		m := s.members[c.Role.Member]
		k := protocol.AuthorKey(c.Role.Key)
		role := protocol.Role(c.Role.Role)
		m.segs = append(m.segs, roleSeg{key: k, pos: s.keys[k].Pos, after: c.Role.AfterSeq, role: role})
		m.role = role
		m.platform = m.platform || role == protocol.RolePlatform
	case *pb.Amendment_Revoke:
		k := protocol.AuthorKey(c.Revoke.Key)
		s.cutKey(k[:], c.Revoke.AfterSeq, "revoked")
		if len(c.Revoke.NewKey) > 0 {
			nk := protocol.AuthorKey(c.Revoke.NewKey)
			s.succ[k] = nk
			s.declared[nk] = true
		}
	case *pb.Amendment_Rule:
		s.rule = ruleOf(c.Rule)
	}
}

func short(k protocol.AuthorKey) string { return k.String()[:16] }

func (s *state) cutKey(key []byte, after uint64, why string) {
	var k protocol.AuthorKey
	copy(k[:], key)
	if c, ok := s.cuts[k]; !ok || after < c.after {
		s.cuts[k] = cut{after: after, why: why}
	} else if ok && why == "removed" {
		s.cuts[k] = cut{after: c.after, why: why}
	}
}

// peers applies each member's peer updates (SPEC 12.4): its last valid one,
// by key position then seq, replaces its peer ID and addresses, unless
// another member holds that peer ID.
func (s *state) peers(l logs, h *History) {
	held := map[string]string{}
	for _, name := range s.order {
		if m := s.members[name]; !m.removed {
			held[m.peer] = name
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s.members)) {
		m := s.members[name]
		for _, k := range m.chain {
			for _, e := range l.peers[k] {
				u := e.Body.GetPeerUpdate()
				if e.Seq() > s.keys[k].End {
					continue
				}
				if other, ok := held[u.PeerId]; ok && other != name {
					h.void(e, "peer ID %s is %q's", u.PeerId, other)
					continue
				}
				delete(held, m.peer)
				m.peer, m.addrs = u.PeerId, slices.Clone(u.Addrs)
				held[m.peer] = name
			}
		}
	}
}

// roster is s as a roster snapshot: the members not removed, each with
// its current key (and every key of its chain, for naming authors).
func (s *state) roster(federation string) *protocol.Roster {
	r, err := s.rosterOf(federation)
	if err != nil {
		// Compute checks uniqueness before it admits or rotates; a
		// failure here is a bug in this package.
		panic(fmt.Sprintf("membership: roster at version %d: %v", s.version, err))
	}
	return r
}

// rosterOf is roster, with an error where the members are not unique
// (a decoded snapshot's state may be any).
func (s *state) rosterOf(federation string) (*protocol.Roster, error) {
	var ms []protocol.Member
	for _, name := range s.order {
		m := s.members[name]
		if m.removed {
			continue
		}
		cur := m.first
		var keys []protocol.AuthorKey
		for _, k := range m.chain {
			keys = append(keys, k)
			if ks := s.keys[k]; ks.End != 0 {
				cur = k
			}
		}
		ms = append(ms, protocol.Member{Name: name, Role: m.role, AuthorKey: cur, Keys: keys, PeerID: m.peer, Addrs: slices.Clone(m.addrs)})
	}
	r, err := protocol.NewRoster(federation, ms)
	if err != nil {
		return nil, err
	}
	r.Version = s.version
	return r, nil
}

func describe(a *pb.Amendment) string {
	switch c := a.Change.(type) {
	case *pb.Amendment_Admit:
		return fmt.Sprintf("admit %s (%s)", c.Admit.Name, c.Admit.Role)
	case *pb.Amendment_Remove:
		return fmt.Sprintf("remove %s after seq %d", c.Remove.Member, c.Remove.AfterSeq)
	case *pb.Amendment_Role:
		return fmt.Sprintf("role of %s: %s after seq %d", c.Role.Member, c.Role.Role, c.Role.AfterSeq)
	case *pb.Amendment_Revoke:
		var k protocol.AuthorKey
		copy(k[:], c.Revoke.Key)
		if len(c.Revoke.NewKey) > 0 {
			return fmt.Sprintf("revoke %s's key %s after seq %d; new key %s", c.Revoke.Member, short(k), c.Revoke.AfterSeq, short(protocol.AuthorKey(c.Revoke.NewKey)))
		}
		return fmt.Sprintf("revoke %s's key %s after seq %d", c.Revoke.Member, short(k), c.Revoke.AfterSeq)
	case *pb.Amendment_Rule:
		return "voting rule: " + ruleOf(c.Rule).String()
	}
	return "?"
}
