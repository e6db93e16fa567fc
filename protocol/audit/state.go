package audit

import (
	"cmp"
	"slices"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// State is what the logs say now (SPEC.md section 10), recomputed from the
// entries an audit accepted: how every attestation stands, what matches,
// and which notices are open.
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
}

// stateBuilder keeps what the state needs, compactly: per addition its
// signal keys and the facts that bear on it; allow entries by signal;
// notices with their updates and replies (few).
type stateBuilder struct {
	additions map[protocol.ID]*addState
	allows    map[string][]protocol.ID // signal key -> allow ids
	retracted map[protocol.ID]bool     // additions and allows retracted (validly)
	disputed  map[protocol.ID]bool     // ids some dispute targets
	notices   []*protocol.Entry
	updates   map[protocol.ID][]*protocol.Entry
	replies   map[protocol.ID][]*protocol.Entry
	allowIDs  map[protocol.ID]allowState
}

type addState struct {
	author protocol.AuthorKey
	seq    uint64
	keys   []string
}

type allowState struct {
	author protocol.AuthorKey
	seq    uint64
}

func newStateBuilder() *stateBuilder {
	return &stateBuilder{
		additions: map[protocol.ID]*addState{}, allows: map[string][]protocol.ID{},
		retracted: map[protocol.ID]bool{}, disputed: map[protocol.ID]bool{},
		updates: map[protocol.ID][]*protocol.Entry{}, replies: map[protocol.ID][]*protocol.Entry{},
		allowIDs: map[protocol.ID]allowState{},
	}
}

// add takes an entry whose log held up to it, in its log's order (so a
// retraction comes after its target: the stateful rules of SPEC 9.2 read
// only the author's own log).
func (s *stateBuilder) add(e *protocol.Entry) {
	switch p := e.Body.GetPayload().(type) {
	case *pb.Entry_Addition:
		st := &addState{author: e.Author, seq: e.Seq()}
		for _, sig := range p.Addition.Signals {
			k := string(protocol.SignalKey(sig))
			if !slices.Contains(st.keys, k) {
				st.keys = append(st.keys, k)
			}
		}
		s.additions[e.ID] = st
	case *pb.Entry_Allow:
		s.allowIDs[e.ID] = allowState{e.Author, e.Seq()}
		seen := map[string]bool{}
		for _, sig := range p.Allow.Signals {
			k := string(protocol.SignalKey(sig))
			if !seen[k] {
				seen[k] = true
				s.allows[k] = append(s.allows[k], e.ID)
			}
		}
	case *pb.Entry_Retraction:
		t := protocol.ID(p.Retraction.Target)
		// Valid: the target is an earlier addition or allow of the same
		// log, not retracted yet (the first retraction counts).
		if a, ok := s.additions[t]; ok && a.author == e.Author && a.seq < e.Seq() {
			s.retracted[t] = true
		} else if a, ok := s.allowIDs[t]; ok && a.author == e.Author && a.seq < e.Seq() {
			s.retracted[t] = true
		}
	case *pb.Entry_Dispute:
		s.disputed[protocol.ID(p.Dispute.Target)] = true
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

// allowlisted reports whether an allow entry in force names the key.
func (s *stateBuilder) allowlisted(k string) bool {
	for _, id := range s.allows[k] {
		if !s.retracted[id] {
			return true
		}
	}
	return false
}

// finish computes the state at nowMs.
func (s *stateBuilder) finish(nowMs int64) State {
	var st State
	matching := map[string]bool{}
	status := func(keys []string, retracted, disputed bool) {
		allow := slices.ContainsFunc(keys, s.allowlisted)
		switch {
		case retracted:
			st.Retracted++
		case allow:
			st.Allowlisted++
		case disputed:
			st.Disputed++
		default:
			st.Active++
		}
		if !retracted && !allow {
			for _, k := range keys {
				matching[k] = true
			}
		}
	}
	for id, a := range s.additions {
		// An attestation per signal of the addition, as Match lists it.
		for _, k := range a.keys {
			status([]string{k}, s.retracted[id], s.disputed[id])
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
					status([]string{k}, withdrawn, s.disputed[n.ID])
				}
			}
		case protocol.NoticeNotExecuted, protocol.NoticeWithdrawn:
		default:
			st.Open = append(st.Open, OpenNotice{ID: n.ID, From: n.Author, To: protocol.AuthorKey(p.Addressee), State: lc.State, DeadlineMs: lc.DeadlineMs})
		}
	}
	st.Matching = len(matching)
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
