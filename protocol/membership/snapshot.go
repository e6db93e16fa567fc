package membership

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/staydown/staydown/protocol"
)

// A snapshot is a computed History in bytes: what a node keeps so that it
// can start without reading and computing every membership entry again
// (node/members). It is a cache, not part of the protocol: it is trusted
// only for the genesis and the exact set of membership entries it was
// computed from (inputs, a digest the caller makes of that set), and only
// if its checksum holds; anything else is an error, and the caller
// computes the history again.
//
// snapshotFormat names both the layout below and the semantics of
// Compute: change it whenever either changes, so that no node trusts a
// snapshot that today's Compute would not give.
const snapshotFormat = 2

var snapshotMagic = []byte("staydown membership snapshot\x00")

// ErrSnapshot is wrapped by every reason UnmarshalSnapshot refuses one.
var ErrSnapshot = errors.New("membership snapshot")

// MarshalSnapshot is h in bytes, for the membership entries whose digest
// is inputs. The entries themselves are not in it: UnmarshalSnapshot
// asks for the few it holds whole (void, conflicting and pending ones).
func (h *History) MarshalSnapshot(inputs [32]byte) []byte {
	s := h.now
	w := &snapWriter{b: make([]byte, 0, 1<<16), names: make(map[string]int, len(s.order))}
	w.b = append(w.b, snapshotMagic...)
	w.u(snapshotFormat)
	gh := genesisBinding(h.Genesis)
	w.b = append(w.b, gh[:]...)
	w.b = append(w.b, inputs[:]...)

	// The state in force.
	w.u(s.version)
	w.rule(s.rule)
	w.u(uint64(len(s.order)))
	for i, name := range s.order {
		m := s.members[name]
		w.str(m.name)
		w.names[m.name] = i
		w.str(string(m.role))
		w.str(string(m.admittedRole))
		w.b = append(w.b, m.first[:]...)
		w.n(len(m.segs), m.segs == nil)
		for _, sg := range m.segs {
			w.b = append(w.b, sg.key[:]...)
			w.u(uint64(sg.pos))
			w.u(sg.after)
			w.str(string(sg.role))
		}
		w.bool(m.removed)
		w.b = append(w.b, m.gone[:]...)
		w.bool(m.platform)
		w.u(m.admitted)
		w.str(m.peer)
		w.strs(m.addrs)
		w.n(len(m.chain), m.chain == nil)
		for _, k := range m.chain {
			w.b = append(w.b, k[:]...)
		}
	}
	byKey := func(a, b protocol.AuthorKey) int { return bytes.Compare(a[:], b[:]) }
	w.u(uint64(len(s.cuts)))
	for _, k := range slices.SortedFunc(maps.Keys(s.cuts), byKey) {
		w.b = append(w.b, k[:]...)
		w.u(s.cuts[k].after)
		w.str(s.cuts[k].why)
	}
	w.u(uint64(len(s.succ)))
	for _, k := range slices.SortedFunc(maps.Keys(s.succ), byKey) {
		n := s.succ[k]
		w.b = append(w.b, k[:]...)
		w.b = append(w.b, n[:]...)
	}
	w.u(uint64(len(s.keys)))
	for _, k := range slices.SortedFunc(maps.Keys(s.keys), byKey) {
		ks := s.keys[k]
		w.b = append(w.b, k[:]...)
		w.name(ks.Member)
		w.u(uint64(ks.Pos))
		w.u(ks.End)
		w.str(ks.Why)
	}
	w.u(uint64(len(s.declared)))
	for _, k := range slices.SortedFunc(maps.Keys(s.declared), byKey) {
		w.b = append(w.b, k[:]...)
		w.bool(s.declared[k])
	}
	w.u(uint64(len(s.admittedPeers)))
	for _, p := range slices.Sorted(maps.Keys(s.admittedPeers)) {
		w.str(p)
		w.str(s.admittedPeers[p])
	}

	// The history.
	w.u(uint64(len(h.Versions)))
	for i := range h.Versions {
		v := &h.Versions[i]
		w.u(v.N)
		w.b = append(w.b, v.Proposal[:]...)
		w.name(v.Proposer)
		w.str(v.Change)
		w.votes(v.Votes)
		w.u(uint64(v.Voters))
		w.u(uint64(v.Needed))
		w.nameList(v.Missing)
		w.name(v.Removed)
		w.rule(v.Rule)
	}
	w.n(len(h.Pending), h.Pending == nil)
	for i := range h.Pending {
		p := &h.Pending[i]
		w.b = append(w.b, p.ID[:]...)
		w.u(p.Base)
		w.name(p.Proposer)
		w.b = append(w.b, p.Author[:]...)
		w.u(p.Seq)
		w.str(p.Change)
		w.votes(p.Votes)
		w.u(uint64(p.Voters))
		w.u(uint64(p.Needed))
		w.nameList(p.Missing)
		w.nameList(p.Elsewise)
	}
	w.n(len(h.Conflicts), h.Conflicts == nil)
	for _, c := range h.Conflicts {
		w.name(c.Member)
		w.u(c.Base)
		w.b = append(w.b, c.First.ID[:]...)
		w.b = append(w.b, c.Second.ID[:]...)
	}
	w.n(len(h.Voids), h.Voids == nil)
	for _, v := range h.Voids {
		w.b = append(w.b, v.Entry.ID[:]...)
		w.str(v.Why)
	}
	sum := sha256.Sum256(w.b)
	return append(w.b, sum[:]...)
}

// UnmarshalSnapshot is the History that MarshalSnapshot made b of, if b
// was made for genesis g and the membership entries whose digest is
// inputs, and is whole. entry is how it gets a membership entry by id
// (the store's): at once for the entries the history holds whole (void,
// conflicting and pending ones), and later for History.Entry. It may be
// called from any goroutine, and must return false for an id that is not
// one of the entries inputs names.
//
// The result is what Compute gives for those entries, as long as b is
// one of MarshalSnapshot's: an error means "compute it".
func UnmarshalSnapshot(g *Genesis, inputs [32]byte, b []byte, entry func(protocol.ID) (*protocol.Entry, bool)) (*History, error) {
	if len(b) < sha256.Size {
		return nil, fmt.Errorf("%w: %d bytes, too short", ErrSnapshot, len(b))
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, fmt.Errorf("%w: checksum does not match", ErrSnapshot)
	}
	return decodeSnapshot(g, inputs, body, entry)
}

// decodeSnapshot is UnmarshalSnapshot past the checksum.
// genesisBinding is what binds a snapshot to its genesis: a digest of the
// whole genesis, addresses included. The genesis hash (the federation's
// identity) leaves the addresses out, but the roster Compute gives holds
// them: a node whose roster file's addresses changed must compute, not
// dial the old ones from its snapshot.
func genesisBinding(g *Genesis) [32]byte {
	return sha256.Sum256(append([]byte("staydown/v1/snapshot-genesis\n"), g.raw...))
}

func decodeSnapshot(g *Genesis, inputs [32]byte, b []byte, entry func(protocol.ID) (*protocol.Entry, bool)) (*History, error) {
	r := &snapReader{b: b, names: map[string]string{}}
	if !bytes.HasPrefix(b, snapshotMagic) {
		return nil, fmt.Errorf("%w: not a snapshot", ErrSnapshot)
	}
	r.b = r.b[len(snapshotMagic):]
	if f := r.u(); f != snapshotFormat {
		return nil, fmt.Errorf("%w: format %d, this node reads %d", ErrSnapshot, f, snapshotFormat)
	}
	if gh := genesisBinding(g); !bytes.Equal(r.take(32), gh[:]) {
		return nil, fmt.Errorf("%w: made for another genesis", ErrSnapshot)
	}
	if !bytes.Equal(r.take(32), inputs[:]) {
		return nil, fmt.Errorf("%w: stale (made from other membership entries)", ErrSnapshot)
	}
	if r.err != nil {
		return nil, r.err
	}

	s := &state{version: r.u(), rule: r.rule()}
	nm := r.count(32)
	s.members = make(map[string]*member, nm)
	s.order = make([]string, 0, nm)
	for i := 0; i < nm && r.err == nil; i++ {
		m := &member{idx: i}
		m.name = r.str()
		m.role = protocol.Role(r.str())
		m.admittedRole = protocol.Role(r.str())
		m.first = r.key()
		if n, isNil := r.n(34); !isNil {
			m.segs = make([]roleSeg, n)
			for j := range m.segs {
				m.segs[j] = roleSeg{key: r.key(), pos: r.int(), after: r.u(), role: protocol.Role(r.str())}
			}
		}
		m.removed = r.bool()
		m.gone = r.key()
		m.platform = r.bool()
		m.admitted = r.u()
		m.peer = r.str()
		m.addrs = r.strs()
		if n, isNil := r.n(32); !isNil {
			m.chain = make([]protocol.AuthorKey, n)
			for j := range m.chain {
				m.chain[j] = r.key()
			}
		}
		if _, dup := s.members[m.name]; dup && r.err == nil {
			r.fail("member %q twice", m.name)
		}
		s.members[m.name] = m
		s.order = append(s.order, m.name)
	}
	r.order = s.order
	s.byName = slices.SortedFunc(maps.Values(s.members), func(a, b *member) int { return cmp.Compare(a.name, b.name) })
	n := r.count(34)
	s.cuts = make(map[protocol.AuthorKey]cut, n)
	for range n {
		s.cuts[r.key()] = cut{after: r.u(), why: r.str()}
	}
	n = r.count(64)
	s.succ = make(map[protocol.AuthorKey]protocol.AuthorKey, n)
	for range n {
		k := r.key()
		s.succ[k] = r.key()
	}
	n = r.count(36)
	s.keys = make(map[protocol.AuthorKey]KeyState, n)
	for range n {
		k := r.key()
		ks := KeyState{Member: r.name(), Pos: r.int(), End: r.u(), Why: r.str()}
		if _, ok := s.members[ks.Member]; !ok && r.err == nil {
			r.fail("key %s of %q, no member", k, ks.Member)
		}
		s.keys[k] = ks
	}
	n = r.count(33)
	s.declared = make(map[protocol.AuthorKey]bool, n)
	for range n {
		k := r.key()
		s.declared[k] = r.bool()
	}
	n = r.count(2)
	s.admittedPeers = make(map[string]string, n)
	for range n {
		p := r.str()
		s.admittedPeers[p] = r.str()
	}

	h := &History{Genesis: g, now: s, voidSet: map[protocol.ID]bool{}, entries: map[protocol.ID]*protocol.Entry{}, load: entry}
	get := func(id protocol.ID) *protocol.Entry {
		if e, ok := h.entries[id]; ok {
			return e
		}
		e, ok := entry(id)
		if !ok {
			r.fail("entry %s is not among the membership entries", id)
			return nil
		}
		h.entries[id] = e
		return e
	}
	n = r.count(40)
	if n == 0 && r.err == nil {
		r.fail("no versions")
	}
	h.Versions = make([]Version, n)
	for i := range h.Versions {
		v := &h.Versions[i]
		v.N = r.u()
		v.Proposal = r.id()
		v.Proposer = r.name()
		v.Change = r.str()
		v.Votes = r.votes()
		v.Voters = r.int()
		v.Needed = r.int()
		v.Missing = r.nameList()
		v.Removed = r.name()
		v.Rule = r.rule()
	}
	if pn, isNil := r.n(70); !isNil {
		h.Pending = make([]Proposal, pn)
		for i := range h.Pending {
			p := &h.Pending[i]
			p.ID = r.id()
			p.Base = r.u()
			p.Proposer = r.name()
			p.Author = r.key()
			p.Seq = r.u()
			p.Change = r.str()
			p.Votes = r.votes()
			p.Voters = r.int()
			p.Needed = r.int()
			p.Missing = r.nameList()
			p.Elsewise = r.nameList()
			if r.err != nil {
				break
			}
			if e := get(p.ID); e != nil {
				if p.Body = e.Body.GetAmendment(); p.Body == nil {
					r.fail("pending %s is no amendment", p.ID)
				}
			}
		}
	}
	if cn, isNil := r.n(66); !isNil {
		h.Conflicts = make([]Conflict, cn)
		for i := range h.Conflicts {
			c := &h.Conflicts[i]
			c.Member, c.Base = r.name(), r.u()
			first, second := r.id(), r.id()
			if r.err != nil {
				break
			}
			c.First, c.Second = get(first), get(second)
		}
	}
	if vn, isNil := r.n(33); !isNil {
		h.Voids = make([]Void, vn)
		for i := range h.Voids {
			id, why := r.id(), r.str()
			if r.err != nil {
				break
			}
			h.Voids[i] = Void{Entry: get(id), Why: why}
			h.voidSet[id] = true
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d bytes left over", len(r.b))
	}
	if r.err != nil {
		return nil, r.err
	}
	if last := h.Versions[len(h.Versions)-1].N; last != s.version {
		return nil, fmt.Errorf("%w: last version %d, state at %d", ErrSnapshot, last, s.version)
	}
	// What Compute builds of the state, built here from the decoded one:
	// an inconsistent state fails now instead of in Judge or Everyone.
	for _, m := range s.members {
		for _, k := range m.chain {
			if ks, ok := s.keys[k]; !ok || ks.Member != m.name {
				return nil, fmt.Errorf("%w: %q's chain key %s is not its key", ErrSnapshot, m.name, k)
			}
		}
	}
	ro, err := s.rosterOf(g.Roster.Federation)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSnapshot, err)
	}
	h.Versions[len(h.Versions)-1].Roster = ro
	if _, err := h.everyone(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSnapshot, err)
	}
	return h, nil
}

type snapWriter struct {
	b []byte
	// names is each member's position in the state's order, once
	// written: a member's name is written as that position (a name is
	// in up to one vote and one missing list a version).
	names map[string]int
}

// name writes a member's name: its position + 1, or 0 and the name.
func (w *snapWriter) name(s string) {
	if i, ok := w.names[s]; ok {
		w.u(uint64(i) + 1)
		return
	}
	w.u(0)
	w.str(s)
}

func (w *snapWriter) nameList(ss []string) {
	w.n(len(ss), ss == nil)
	for _, s := range ss {
		w.name(s)
	}
}

func (w *snapWriter) u(v uint64) { w.b = binary.AppendUvarint(w.b, v) }

// n writes a length, 0 standing for nil, so that a nil slice comes back
// nil and an empty one empty (the JSON of a view tells them apart).
func (w *snapWriter) n(n int, isNil bool) {
	if isNil {
		w.u(0)
		return
	}
	w.u(uint64(n) + 1)
}

func (w *snapWriter) str(s string) {
	w.u(uint64(len(s)))
	w.b = append(w.b, s...)
}

func (w *snapWriter) strs(ss []string) {
	w.n(len(ss), ss == nil)
	for _, s := range ss {
		w.str(s)
	}
}

func (w *snapWriter) bool(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}

func (w *snapWriter) rule(r Rule) {
	w.n(len(r.Roles), r.Roles == nil)
	for _, role := range r.Roles {
		w.str(string(role))
	}
	w.u(uint64(r.Threshold))
}

func (w *snapWriter) votes(vs []Vote) {
	w.n(len(vs), vs == nil)
	for _, v := range vs {
		w.name(v.Member)
		w.b = append(w.b, v.Entry[:]...)
		w.b = append(w.b, v.Author[:]...)
		w.u(v.Seq)
	}
}

// snapReader reads what snapWriter wrote. Its first failure sticks: every
// read after it returns zero values, and the caller checks err once.
type snapReader struct {
	b     []byte
	err   error
	names map[string]string // each string once: a role, a reason
	order []string          // the members' names, for name
}

// name reads what snapWriter.name wrote.
func (r *snapReader) name() string {
	v := r.u()
	if v == 0 {
		return r.str()
	}
	if v-1 >= uint64(len(r.order)) {
		r.fail("member %d of %d", v-1, len(r.order))
		return ""
	}
	return r.order[v-1]
}

func (r *snapReader) nameList() []string {
	n, isNil := r.n(1)
	if isNil {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = r.name()
	}
	return ss
}

func (r *snapReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrSnapshot, fmt.Sprintf(format, args...))
	}
	r.b = nil
}

func (r *snapReader) u() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad number")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *snapReader) int() int {
	v := r.u()
	if v > 1<<31 {
		r.fail("number %d out of range", v)
		return 0
	}
	return int(v)
}

// count is a number of items at least min bytes each: no more than the
// bytes left could hold, so that garbage cannot make it allocate much.
func (r *snapReader) count(min int) int {
	v := r.u()
	if v > uint64(len(r.b)/min) {
		r.fail("%d items in %d bytes", v, len(r.b))
		return 0
	}
	return int(v)
}

// n reads what snapWriter.n wrote.
func (r *snapReader) n(min int) (int, bool) {
	v := r.u()
	if v == 0 || r.err != nil {
		return 0, true
	}
	if v-1 > uint64(len(r.b)/min) {
		r.fail("%d items in %d bytes", v-1, len(r.b))
		return 0, true
	}
	return int(v - 1), false
}

func (r *snapReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.fail("truncated")
		return nil
	}
	b := r.b[:n]
	r.b = r.b[n:]
	return b
}

func (r *snapReader) key() (k protocol.AuthorKey) {
	copy(k[:], r.take(len(k)))
	return k
}

func (r *snapReader) id() (id protocol.ID) {
	copy(id[:], r.take(len(id)))
	return id
}

func (r *snapReader) str() string {
	n := r.u()
	if n > uint64(len(r.b)) {
		r.fail("string of %d bytes in %d", n, len(r.b))
		return ""
	}
	b := r.take(int(n))
	if s, ok := r.names[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(s) <= 64 {
		r.names[s] = s
	}
	return s
}

func (r *snapReader) strs() []string {
	n, isNil := r.n(1)
	if isNil {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = r.str()
	}
	return ss
}

func (r *snapReader) bool() bool {
	b := r.take(1)
	if len(b) == 1 && b[0] > 1 {
		r.fail("bad bool %d", b[0])
	}
	return len(b) == 1 && b[0] == 1
}

func (r *snapReader) rule() Rule {
	var rule Rule
	if n, isNil := r.n(1); !isNil {
		rule.Roles = make([]protocol.Role, n)
		for i := range rule.Roles {
			rule.Roles[i] = protocol.Role(r.str())
		}
	}
	t := r.u()
	if t > math.MaxUint32 {
		r.fail("threshold %d", t)
	}
	rule.Threshold = uint32(t)
	return rule
}

func (r *snapReader) votes() []Vote {
	n, isNil := r.n(66)
	if isNil {
		return nil
	}
	vs := make([]Vote, n)
	for i := range vs {
		vs[i] = Vote{Member: r.name(), Entry: r.id(), Author: r.key(), Seq: r.u()}
	}
	return vs
}
