package audit

import (
	"cmp"
	"slices"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/replica"
)

// State is what the logs say now (SPEC.md section 10), recomputed from the
// entries an audit accepted and the membership takes in (void entries
// have no effect): how every attestation stands, what matches, and which
// notices are open.
type State struct {
	// Attestations by status (section 10): additions, and actioned
	// notices that name signals (10.2).
	Active, Retracted, Disputed, Allowlisted int
	// Matching is the number of distinct signals with at least one active
	// or disputed attestation: what a node would match (verdict review or
	// block by its policy).
	Matching int
	// Open lists the notices not final at the audit's time (open,
	// acknowledged, clarification-requested, overdue), soonest deadline
	// first.
	Open []OpenNotice
	// Orders are every blocking order (SPEC 6.9) with its lifecycle
	// recomputed at the audit's time (10.3), by addressee, then start,
	// then id: which orders were in force when, and whether each access
	// provider said it blocked and unblocked in time.
	Orders []Order
	// Notes are entries that say something without effect: signed
	// statements, not violations. In file order.
	Notes []Note
}

// Order is a blocking order and its status (SPEC 10.3).
type Order struct {
	ID       protocol.ID
	From, To protocol.AuthorKey
	Domains  []string // user form, e.g. *.example.org
	protocol.OrderStatus
	// InForce: at the audit's time. Which orders were in force on
	// another day is StartMs and EndMs's to say.
	InForce bool
}

// NoteNamedElsewhere: a retraction or a dispute names signals its target
// does not carry (SPEC 6.2, 6.3); for those it concerns nothing.
const NoteNamedElsewhere = "named_elsewhere"

// Note is one entry that says something without effect.
type Note struct {
	Where
	Kind   string // NoteNamedElsewhere
	Entry  *protocol.Entry
	Target protocol.ID
	// Signals are the signals it names that its target does not carry,
	// as TYPE:VALUE.
	Signals []string
}

// OpenNotice is one notice that still awaits its addressee.
type OpenNotice struct {
	ID         protocol.ID
	From, To   protocol.AuthorKey
	State      protocol.NoticeState
	DeadlineMs int64 // 0 while a clarification is awaited
	// AddresseeAbsent: the export leaves out the addressee's log, which
	// holds its replies: the notice may have been answered.
	AddresseeAbsent bool
}

// stateBuilder keeps what the state needs, compactly, since an audit may
// cover millions of additions: per addition its id, position and signal
// keys (in one byte arena); retractions, disputes and allow entries, which
// are few; notices with their updates and replies (few too). What the
// membership does not take in, or makes void, is left out when the state
// is computed (finish), once the membership is known.
type stateBuilder struct {
	adds      []addRec
	arena     []byte   // the additions' signal keys, back to back
	keyOffs   []uint32 // key k is arena[keyOffs[k]:keyOffs[k+1]]
	retracts  []*retractRec
	disputes  []*retractRec                 // a dispute's id, target and place
	disputed  map[protocol.ID][]*retractRec // target -> the disputes taken in that name it: filled by finish
	allows    map[string][]protocol.ID      // signal key -> allow ids
	allowIDs  map[protocol.ID]logPos
	allowKeys map[protocol.ID][]string // allow id -> its signal keys
	notices   []*protocol.Entry
	updates   map[protocol.ID][]*protocol.Entry
	replies   map[protocol.ID][]*protocol.Entry
	retracted map[protocol.ID]*retractRec // target -> the retraction that counts: filled by finish
}

type logPos struct {
	author protocol.AuthorKey
	seq    uint64
}

type addRec struct {
	id       protocol.ID
	seq      uint64
	author   uint32 // index in authors
	firstKey uint32 // index in keyOffs
	keys     uint32 // how many
}

// retractRec is a retraction or a dispute.
type retractRec struct {
	id, target protocol.ID
	by         logPos
	e          *protocol.Entry
	where      Where
	// named are the index keys of the signals it names; none: all of its
	// target's (SPEC 6.2, 6.3).
	named []string
}

// names reports whether r bears on the signal with index key k.
func (r *retractRec) names(k string) bool { return len(r.named) == 0 || slices.Contains(r.named, k) }

func newRetractRec(e *protocol.Entry, target []byte, named []*pb.Signal, w Where) *retractRec {
	r := &retractRec{id: e.ID, target: protocol.ID(target), by: logPos{e.Author, e.Seq()}, e: e, where: w}
	for _, s := range named {
		r.named = append(r.named, string(protocol.SignalKey(s)))
	}
	return r
}

func newStateBuilder() *stateBuilder {
	return &stateBuilder{
		keyOffs: []uint32{0}, allows: map[string][]protocol.ID{},
		allowIDs: map[protocol.ID]logPos{}, allowKeys: map[protocol.ID][]string{}, updates: map[protocol.ID][]*protocol.Entry{}, replies: map[protocol.ID][]*protocol.Entry{},
	}
}

// add takes an entry whose log held up to it, at w in the file.
func (s *stateBuilder) add(e *protocol.Entry, author uint32, w Where) {
	switch p := e.Body.GetPayload().(type) {
	case *pb.Entry_Addition:
		r := addRec{id: e.ID, seq: e.Seq(), author: author, firstKey: uint32(len(s.keyOffs) - 1)}
		var seen [][]byte
		for _, sig := range p.Addition.Signals {
			k := protocol.SignalKey(sig)
			if slices.ContainsFunc(seen, func(o []byte) bool { return string(o) == string(k) }) {
				continue
			}
			seen = append(seen, k)
			s.arena = append(s.arena, k...)
			s.keyOffs = append(s.keyOffs, uint32(len(s.arena)))
			r.keys++
		}
		s.adds = append(s.adds, r)
	case *pb.Entry_Allow:
		s.allowIDs[e.ID] = logPos{e.Author, e.Seq()}
		seen := map[string]bool{}
		for _, sig := range p.Allow.Signals {
			k := string(protocol.SignalKey(sig))
			if !seen[k] {
				seen[k] = true
				s.allows[k] = append(s.allows[k], e.ID)
				s.allowKeys[e.ID] = append(s.allowKeys[e.ID], k)
			}
		}
	case *pb.Entry_Retraction:
		s.retracts = append(s.retracts, newRetractRec(e, p.Retraction.Target, p.Retraction.Signals, w))
	case *pb.Entry_Dispute:
		s.disputes = append(s.disputes, newRetractRec(e, p.Dispute.Target, p.Dispute.Signals, w))
	case *pb.Entry_Notice:
		s.notices = append(s.notices, e)
	case *pb.Entry_NoticeUpdate:
		n := protocol.ID(p.NoticeUpdate.Notice)
		s.updates[n] = append(s.updates[n], e)
	case *pb.Entry_NoticeReply:
		n := protocol.ID(p.NoticeReply.Notice)
		s.replies[n] = append(s.replies[n], e)
	}
}

func (s *stateBuilder) key(k uint32) string { return string(s.arena[s.keyOffs[k]:s.keyOffs[k+1]]) }

// judge reports whether the membership takes in, without voiding it, the
// entry at seq of author's log, of the kind of body (SPEC 12.5).
type judge func(author protocol.AuthorKey, seq uint64, body *pb.Entry) bool

// leaveOut drops what the membership does not take in or makes void: such
// an entry has no effect on the state.
func (s *stateBuilder) leaveOut(authors []protocol.AuthorKey, in judge) {
	add, allow, retract, dispute := shells[kindCode(protocol.KindAddition)], shells[kindCode(protocol.KindAllow)],
		shells[kindCode(protocol.KindRetraction)], shells[kindCode(protocol.KindDispute)]
	s.adds = slices.DeleteFunc(s.adds, func(a addRec) bool { return !in(authors[a.author], a.seq, add) })
	for id, at := range s.allowIDs {
		if !in(at.author, at.seq, allow) {
			delete(s.allowIDs, id)
		}
	}
	for k, ids := range s.allows {
		s.allows[k] = slices.DeleteFunc(ids, func(id protocol.ID) bool { _, ok := s.allowIDs[id]; return !ok })
	}
	s.retracts = slices.DeleteFunc(s.retracts, func(r *retractRec) bool { return !in(r.by.author, r.by.seq, retract) })
	s.disputes = slices.DeleteFunc(s.disputes, func(d *retractRec) bool { return !in(d.by.author, d.by.seq, dispute) })
	whole := func(e *protocol.Entry) bool { return !in(e.Author, e.Seq(), e.Body) }
	s.notices = slices.DeleteFunc(s.notices, whole)
	for n, es := range s.updates {
		s.updates[n] = slices.DeleteFunc(es, whole)
	}
	for n, es := range s.replies {
		s.replies[n] = slices.DeleteFunc(es, whole)
	}
}

// resolveRetractions finds the retraction that counts for each target:
// the first in seq order of the valid ones (replica.CheckTarget, SPEC
// 9.2: an earlier addition, allow entry or dispute of the retraction's
// own log); the others are void. authors maps an addition's author index
// back to its key. Then it lists the disputes of each target.
func (s *stateBuilder) resolveRetractions(authors []protocol.AuthorKey) {
	s.retracted = map[protocol.ID]*retractRec{}
	disputes := make(map[protocol.ID]logPos, len(s.disputes))
	for _, d := range s.disputes {
		disputes[d.id] = d.by
	}
	slices.SortFunc(s.adds, func(a, b addRec) int { return slices.Compare(a.id[:], b.id[:]) })
	for _, r := range s.retracts {
		var t replica.Ref
		found := false
		if i, ok := slices.BinarySearchFunc(s.adds, r.target, func(a addRec, t protocol.ID) int { return slices.Compare(a.id[:], t[:]) }); ok {
			a := s.adds[i]
			t, found = replica.Ref{Author: authors[a.author], Seq: a.seq, Kind: protocol.KindAddition}, true
		} else if a, ok := s.allowIDs[r.target]; ok {
			t, found = replica.Ref{Author: a.author, Seq: a.seq, Kind: protocol.KindAllow}, true
		} else if d, ok := disputes[r.target]; ok {
			t, found = replica.Ref{Author: d.author, Seq: d.seq, Kind: protocol.KindDispute}, true
		}
		if replica.CheckTarget(protocol.KindRetraction, r.id, r.by.author, r.by.seq, r.target[:], t, found) == nil {
			if first := s.retracted[r.target]; first == nil || r.by.seq < first.by.seq {
				s.retracted[r.target] = r
			}
		}
	}
	s.disputed = map[protocol.ID][]*retractRec{}
	for _, d := range s.disputes {
		s.disputed[d.target] = append(s.disputed[d.target], d)
	}
}

// retractedFor reports whether id's author withdrew it for the signal
// with index key k.
func (s *stateBuilder) retractedFor(id protocol.ID, k string) bool {
	r := s.retracted[id]
	return r != nil && r.names(k)
}

// disputedFor reports whether a dispute that stands (not withdrawn for
// k) bears on target's signal with index key k.
func (s *stateBuilder) disputedFor(target protocol.ID, k string) bool {
	for _, d := range s.disputed[target] {
		if d.names(k) && !s.retractedFor(d.id, k) {
			return true
		}
	}
	return false
}

// allowlisted reports whether an allow entry in force names the key.
func (s *stateBuilder) allowlisted(k string) bool {
	for _, id := range s.allows[k] {
		if !s.retractedFor(id, k) {
			return true
		}
	}
	return false
}

// notes lists the retractions and disputes taken in that name signals
// their target does not carry (SPEC 6.2, 6.3), in file order. A target
// the audit does not hold, or a dispute that names no signals, cannot be
// checked.
func (s *stateBuilder) notes() []Note {
	adds := make(map[protocol.ID]*addRec, len(s.adds))
	for i := range s.adds {
		adds[s.adds[i].id] = &s.adds[i]
	}
	notices := make(map[protocol.ID]*protocol.Entry, len(s.notices))
	for _, n := range s.notices {
		notices[n.ID] = n
	}
	disputes := make(map[protocol.ID]*retractRec, len(s.disputes))
	for _, d := range s.disputes {
		disputes[d.id] = d
	}
	var out []Note
	for _, r := range slices.Concat(s.retracts, s.disputes) {
		if len(r.named) == 0 {
			continue
		}
		var carried []string
		switch {
		case adds[r.target] != nil:
			a := adds[r.target]
			for k := a.firstKey; k < a.firstKey+a.keys; k++ {
				carried = append(carried, s.key(k))
			}
		case s.allowKeys[r.target] != nil:
			carried = s.allowKeys[r.target]
		case notices[r.target] != nil:
			for _, sig := range notices[r.target].Body.GetNotice().Signals {
				carried = append(carried, string(protocol.SignalKey(sig)))
			}
		case disputes[r.target] != nil && len(disputes[r.target].named) > 0:
			carried = disputes[r.target].named
		default:
			continue
		}
		named, _ := protocol.NamedSignals(r.e.Body)
		var elsewhere []string
		for i, k := range r.named {
			if !slices.Contains(carried, k) {
				elsewhere = append(elsewhere, protocol.FormatSignal(named[i]))
			}
		}
		if len(elsewhere) > 0 {
			out = append(out, Note{Where: r.where, Kind: NoteNamedElsewhere, Entry: r.e, Target: r.target, Signals: elsewhere})
		}
	}
	slices.SortFunc(out, func(x, y Note) int { return compareWhere(x.Where, y.Where) })
	return out
}

// finish computes the state at nowMs, of the entries the membership m
// takes in without voiding them. It is called once.
func (s *stateBuilder) finish(nowMs int64, authors []protocol.AuthorKey, m replica.Members) State {
	s.leaveOut(authors, func(author protocol.AuthorKey, seq uint64, body *pb.Entry) bool {
		v, _ := m.Judge(author, seq, body)
		return v == membership.In
	})
	s.resolveRetractions(authors)
	var st State
	// Keys of attestations that match (neither retracted nor
	// allowlisted), counted once each at the end: additions' keys by
	// their index in the arena, notices' by value.
	var matchingKeys []uint32
	noticeKeys := map[string]bool{}
	status := func(k string, retracted, disputed bool) bool {
		status := replica.StatusOf(retracted, s.allowlisted(k), disputed)
		switch status {
		case replica.StatusRetracted:
			st.Retracted++
		case replica.StatusAllowlisted:
			st.Allowlisted++
		case replica.StatusDisputed:
			st.Disputed++
		default:
			st.Active++
		}
		return status.Matches()
	}
	for _, a := range s.adds {
		// An attestation per signal of the addition, as Match lists it.
		for k := a.firstKey; k < a.firstKey+a.keys; k++ {
			if status(s.key(k), s.retractedFor(a.id, s.key(k)), s.disputedFor(a.id, s.key(k))) {
				matchingKeys = append(matchingKeys, k)
			}
		}
	}
	for _, n := range s.notices {
		// NoticeLifecycle counts only the issuer's updates and the
		// addressee's replies.
		lc := protocol.NoticeLifecycle(n, s.updates[n.ID], s.replies[n.ID], nowMs)
		p := n.Body.GetNotice()
		if p.Blocking != nil {
			o := Order{ID: n.ID, From: n.Author, To: protocol.AuthorKey(p.Addressee),
				OrderStatus: protocol.OrderLifecycle(n, s.updates[n.ID], s.replies[n.ID], nowMs)}
			o.InForce = o.OrderStatus.InForce(nowMs)
			for _, sig := range p.Signals {
				o.Domains = append(o.Domains, protocol.FormatDomain(sig.GetDomain()))
			}
			st.Orders = append(st.Orders, o)
		}
		switch lc.State {
		case protocol.NoticeActioned:
			withdrawn := slices.ContainsFunc(s.updates[n.ID], func(u *protocol.Entry) bool {
				return u.Author == n.Author && u.Body.GetNoticeUpdate().Withdraw
			})
			seen := map[string]bool{}
			for _, sig := range p.Signals {
				k := string(protocol.SignalKey(sig))
				if !seen[k] {
					seen[k] = true
					if status(k, withdrawn, s.disputedFor(n.ID, k)) {
						noticeKeys[k] = true
					}
				}
			}
		case protocol.NoticeNotExecuted, protocol.NoticeWithdrawn:
		default:
			st.Open = append(st.Open, OpenNotice{ID: n.ID, From: n.Author, To: protocol.AuthorKey(p.Addressee), State: lc.State, DeadlineMs: lc.DeadlineMs})
		}
	}
	st.Notes = s.notes()
	slices.SortFunc(matchingKeys, func(a, b uint32) int { return cmp.Compare(s.key(a), s.key(b)) })
	matchingKeys = slices.CompactFunc(matchingKeys, func(a, b uint32) bool { return s.key(a) == s.key(b) })
	st.Matching = len(matchingKeys)
	for k := range noticeKeys {
		if _, found := slices.BinarySearchFunc(matchingKeys, k, func(a uint32, k string) int { return cmp.Compare(s.key(a), k) }); !found {
			st.Matching++
		}
	}
	slices.SortFunc(st.Orders, func(a, b Order) int {
		return cmp.Or(slices.Compare(a.To[:], b.To[:]), cmp.Compare(a.StartMs, b.StartMs), slices.Compare(a.ID[:], b.ID[:]))
	})
	slices.SortFunc(st.Open, func(a, b OpenNotice) int {
		if (a.DeadlineMs == 0) != (b.DeadlineMs == 0) {
			if a.DeadlineMs == 0 {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(a.DeadlineMs, b.DeadlineMs), slices.Compare(a.ID[:], b.ID[:]))
	})
	return st
}
