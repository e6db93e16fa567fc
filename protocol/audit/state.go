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
	retracts  []retractRec
	disputes  []retractRec             // a dispute's id, target and place
	disputed  map[protocol.ID]bool     // ids some dispute taken in targets: filled by finish
	allows    map[string][]protocol.ID // signal key -> allow ids
	allowIDs  map[protocol.ID]logPos
	notices   []*protocol.Entry
	updates   map[protocol.ID][]*protocol.Entry
	replies   map[protocol.ID][]*protocol.Entry
	retracted map[protocol.ID]bool // filled by finish
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

type retractRec struct {
	id, target protocol.ID
	by         logPos
}

func newStateBuilder() *stateBuilder {
	return &stateBuilder{
		keyOffs: []uint32{0}, allows: map[string][]protocol.ID{},
		allowIDs: map[protocol.ID]logPos{}, updates: map[protocol.ID][]*protocol.Entry{}, replies: map[protocol.ID][]*protocol.Entry{},
	}
}

// add takes an entry whose log held up to it.
func (s *stateBuilder) add(e *protocol.Entry, author uint32) {
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
			}
		}
	case *pb.Entry_Retraction:
		s.retracts = append(s.retracts, retractRec{e.ID, protocol.ID(p.Retraction.Target), logPos{e.Author, e.Seq()}})
	case *pb.Entry_Dispute:
		s.disputes = append(s.disputes, retractRec{e.ID, protocol.ID(p.Dispute.Target), logPos{e.Author, e.Seq()}})
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
	s.retracts = slices.DeleteFunc(s.retracts, func(r retractRec) bool { return !in(r.by.author, r.by.seq, retract) })
	s.disputes = slices.DeleteFunc(s.disputes, func(d retractRec) bool { return !in(d.by.author, d.by.seq, dispute) })
	whole := func(e *protocol.Entry) bool { return !in(e.Author, e.Seq(), e.Body) }
	s.notices = slices.DeleteFunc(s.notices, whole)
	for n, es := range s.updates {
		s.updates[n] = slices.DeleteFunc(es, whole)
	}
	for n, es := range s.replies {
		s.replies[n] = slices.DeleteFunc(es, whole)
	}
}

// resolveRetractions marks the targets of valid retractions
// (replica.CheckTarget, SPEC 9.2): an earlier addition, allow entry or
// dispute of the retraction's own log. Which of several valid retractions
// of one target counts does not change that it is retracted. authors maps
// an addition's author index back to its key. Then it marks what the
// disputes that stand (not withdrawn) target.
func (s *stateBuilder) resolveRetractions(authors []protocol.AuthorKey) {
	s.retracted = map[protocol.ID]bool{}
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
			s.retracted[r.target] = true
		}
	}
	s.disputed = map[protocol.ID]bool{}
	for _, d := range s.disputes {
		if !s.retracted[d.id] {
			s.disputed[d.target] = true
		}
	}
}

// allowlisted reports whether an allow entry in force names the key.
func (s *stateBuilder) allowlisted(k string) bool {
	for _, id := range s.allows[k] {
		if !s.retracted[id] {
			return true
		}
	}
	return false
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
			if status(s.key(k), s.retracted[a.id], s.disputed[a.id]) {
				matchingKeys = append(matchingKeys, k)
			}
		}
	}
	for _, n := range s.notices {
		// NoticeLifecycle counts only the issuer's updates and the
		// addressee's replies.
		lc := protocol.NoticeLifecycle(n, s.updates[n.ID], s.replies[n.ID], nowMs)
		p := n.Body.GetNotice()
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
					if status(k, withdrawn, s.disputed[n.ID]) {
						noticeKeys[k] = true
					}
				}
			}
		case protocol.NoticeNotExecuted, protocol.NoticeWithdrawn:
		default:
			st.Open = append(st.Open, OpenNotice{ID: n.ID, From: n.Author, To: protocol.AuthorKey(p.Addressee), State: lc.State, DeadlineMs: lc.DeadlineMs})
		}
	}
	slices.SortFunc(matchingKeys, func(a, b uint32) int { return cmp.Compare(s.key(a), s.key(b)) })
	matchingKeys = slices.CompactFunc(matchingKeys, func(a, b uint32) bool { return s.key(a) == s.key(b) })
	st.Matching = len(matchingKeys)
	for k := range noticeKeys {
		if _, found := slices.BinarySearchFunc(matchingKeys, k, func(a uint32, k string) int { return cmp.Compare(s.key(a), k) }); !found {
			st.Matching++
		}
	}
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
