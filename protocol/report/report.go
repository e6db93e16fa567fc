// Package report computes a federation's transparency report from signed
// entries alone: per member, the hashes it contributed, retracted and saw
// disputed, and, for takedown notices, how many it issued, how many it
// received and how fast it acted on them. Any node (fed from its store) or
// offline auditor (fed from an export) holding the same logs gets the same
// report, byte for byte, whatever the order it reads them in.
//
// The package is pure: no I/O, no clocks. Time comes in as an argument.
//
// # Definitions
//
// The rules are SPEC.md's: a void entry (section 9.2) has no effect; a
// dispute counts only against an addition (section 10); a notice thread is
// the notice, its issuer's non-void updates and its addressee's replies, and
// its state is [protocol.NoticeLifecycle] at the report's time (section
// 10.1). Times are the authors' claims (section 15).
//
// Entry figures (additions, signals, retracted, allows_retracted, disputed,
// disputes_filed, allows, void_entries) count entries signed in the period:
// those whose timestamp_ms is at least since. For "retracted" that is the
// retraction's timestamp (the addition may be older); for "disputed" it is
// the dispute's (an addition counts once however many disputes of the
// period target it, whenever it was added).
//
// Notice figures (notices_issued, notices_received and the outcome counts
// and times) count the notices whose own timestamp_ms is at least since,
// each with its whole thread, whenever its updates and replies came.
//
// Percentiles are nearest-rank: sort the n values ascending; pN is the
// value of rank ceil(N/100 * n) (1-based, at least 1). The median is p50
// by the same rule (so for an even n it is the lower of the two middle
// values, never their mean).
package report

import (
	"cmp"
	"slices"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// Report is the federation's transparency report. It encodes to JSON with
// snake_case names.
type Report struct {
	Federation string `json:"federation"`
	// NowMs is the time notice states were computed at (overdue is
	// "deadline before now"), Unix ms.
	NowMs int64 `json:"now_ms"`
	// SinceMs is the start of the period, Unix ms; 0 is everything.
	SinceMs int64 `json:"since_ms"`
	// Members lists every roster member, sorted by name, including those
	// with no entries.
	Members []Member `json:"members"`
	Totals  Totals   `json:"totals"`
}

// Member is one roster member's figures.
type Member struct {
	Name string        `json:"name"`
	Role protocol.Role `json:"role"`
	Key  string        `json:"key"` // author key, 64 hex characters
	Figures
}

// Totals is the federation's figures: the sums of the members' (times to
// action pooled over every notice), plus what was fed to the builder.
type Totals struct {
	Figures
	// Entries counts the entries the report is computed from (all of
	// them, whatever since is); IgnoredEntries those left out because
	// they fail the roster (unknown author, other federation, a role that
	// may not write the payload); Equivocations the second and later
	// entries added for an author and seq already taken.
	Entries        int `json:"entries"`
	IgnoredEntries int `json:"ignored_entries"`
	Equivocations  int `json:"equivocations"`
}

// Figures are the counts for one member (or the federation). See the
// package documentation for what "in the period" means.
type Figures struct {
	// Additions: addition entries signed. Signals: the signals they carry,
	// counted with multiplicity (a signal in two additions counts twice).
	Additions int `json:"additions"`
	Signals   int `json:"signals"`
	// Retracted: the member's own additions it retracted (valid, first
	// retractions only). AllowsRetracted: the same for its allow entries.
	Retracted       int `json:"retracted"`
	AllowsRetracted int `json:"allows_retracted"`
	// Disputed: the member's additions (of any time) that at least one
	// dispute of the period, by any member including itself, targets;
	// each addition counted once. A retracted addition still counts.
	Disputed int `json:"disputed"`
	// DisputesFiled: dispute entries the member signed, whatever their
	// target (one of a notice, or of an id never seen, has no effect but
	// is still a signed dispute).
	DisputesFiled int `json:"disputes_filed"`
	Allows        int `json:"allows"`
	// VoidEntries: entries that broke a stateful rule (SPEC.md 9.2) and so
	// have no effect: retractions and notice-updates.
	VoidEntries int `json:"void_entries"`

	// NoticesIssued: notices the member (a referral unit) signed.
	NoticesIssued int `json:"notices_issued"`
	// NoticesReceived: notices addressed to the member (a platform). The
	// counts below are about these and split them:
	// answered_within_deadline + answered_late + withdrawn + overdue + open
	// = notices_received, and actioned + not_executed = answered_within_deadline
	// + answered_late.
	NoticesReceived int `json:"notices_received"`
	// AnsweredWithinDeadline and AnsweredLate: notices with a first action
	// (removed, disabled, not executed, not found), split by whether it
	// came by the deadline in force (NoticeStatus.WithinDeadline).
	AnsweredWithinDeadline int `json:"answered_within_deadline"`
	AnsweredLate           int `json:"answered_late"`
	// Actioned (removed or disabled) and NotExecuted (not executed or not
	// found) split the answered notices by their first action.
	Actioned    int `json:"actioned"`
	NotExecuted int `json:"not_executed"`
	// Overdue: no first action and the deadline has passed at now.
	Overdue int `json:"overdue"`
	// Open: neither final nor overdue (open, acknowledged or waiting for a
	// clarification).
	Open int `json:"open"`
	// Withdrawn by the issuer before any action.
	Withdrawn int `json:"withdrawn"`
	// ClarificationRequested: of the open notices, those waiting for the
	// clarification their addressee asked for (the clock is stopped).
	ClarificationRequested int `json:"clarification_requested"`
	// MedianTimeToActionS and P90TimeToActionS are over the received
	// notices that have a first action, in seconds (nearest rank). nil
	// (JSON null) when there is none.
	MedianTimeToActionS *float64 `json:"median_time_to_action_s"`
	P90TimeToActionS    *float64 `json:"p90_time_to_action_s"`
}

// Builder accumulates entries, in any order, and computes reports. Entries
// are assumed decoded and checked (signature, chain) by the caller. It is
// not safe for concurrent use.
type Builder struct {
	roster        *protocol.Roster
	logs          map[protocol.AuthorKey]map[uint64]*protocol.Entry
	seen          map[protocol.ID]struct{}
	entries       int
	ignored       int
	equivocations int
}

// New returns an empty builder for the federation of roster.
func New(roster *protocol.Roster) *Builder {
	return &Builder{
		roster: roster,
		logs:   map[protocol.AuthorKey]map[uint64]*protocol.Entry{},
		seen:   map[protocol.ID]struct{}{},
	}
}

// Add records an entry. An entry added again (same id) is ignored
// silently, whatever it is. An entry that fails the roster (Roster.Check:
// unknown author, other federation, a role that may not write the payload)
// is ignored and counted in ignored_entries, as is a nil entry. A second,
// different entry for an author and seq already taken is an equivocation:
// the first added is kept and the other counted in equivocations (so with
// equivocating logs the report depends on the order of Add; callers
// normally keep only one branch).
func (b *Builder) Add(e *protocol.Entry) {
	if e == nil || e.Body == nil {
		b.ignored++
		return
	}
	if _, dup := b.seen[e.ID]; dup {
		return
	}
	b.seen[e.ID] = struct{}{}
	if b.roster.Check(e) != nil {
		b.ignored++
		return
	}
	log := b.logs[e.Author]
	if log == nil {
		log = map[uint64]*protocol.Entry{}
		b.logs[e.Author] = log
	}
	if _, taken := log[e.Seq()]; taken {
		b.equivocations++
		return
	}
	log[e.Seq()] = e
	b.entries++
}

// member accumulates one member's figures and times to action (ms).
type member struct {
	Figures
	times []int64
}

// Report computes the report at nowMs (Unix ms) for the period from
// sinceMs (0: everything). It does not change the builder: it can be
// called again after more Adds.
func (b *Builder) Report(nowMs, sinceMs int64) Report {
	in := func(e *protocol.Entry) bool { return e.Body.TimestampMs >= sinceMs }

	byID := make(map[protocol.ID]*protocol.Entry, b.entries)
	for _, log := range b.logs {
		for _, e := range log {
			byID[e.ID] = e
		}
	}
	figs := make(map[protocol.AuthorKey]*member, len(b.roster.Members))
	for _, m := range b.roster.Members {
		figs[m.AuthorKey] = &member{}
	}

	// Each log in seq order: the stateful rules (void entries), and the
	// figures that need nothing from other logs.
	var (
		notices  []*protocol.Entry
		updates  = map[protocol.ID][]*protocol.Entry{}
		replies  = map[protocol.ID][]*protocol.Entry{}
		disputed = map[protocol.ID]struct{}{} // additions a dispute of the period targets
	)
	retracted := map[protocol.ID]struct{}{} // targets of valid retractions
	// own returns the entry target names if it is an earlier entry of e's
	// own log, of one of the kinds; nil otherwise (e is void).
	own := func(e *protocol.Entry, target []byte, kinds ...protocol.Kind) *protocol.Entry {
		t := byID[idOf(target)]
		if t == nil || t.Author != e.Author || t.Seq() >= e.Seq() || !slices.Contains(kinds, t.Kind()) {
			return nil
		}
		return t
	}
	for author, log := range b.logs {
		f := figs[author]
		for _, e := range sortedLog(log) {
			switch p := e.Body.GetPayload().(type) {
			case *pb.Entry_Addition:
				if in(e) {
					f.Additions++
					f.Signals += len(p.Addition.Signals)
				}
			case *pb.Entry_Allow:
				if in(e) {
					f.Allows++
				}
			case *pb.Entry_Retraction:
				t := own(e, p.Retraction.Target, protocol.KindAddition, protocol.KindAllow)
				if t != nil {
					if _, done := retracted[t.ID]; done {
						t = nil // only the first retraction of a target counts
					}
				}
				switch {
				case t == nil:
					if in(e) {
						f.VoidEntries++
					}
				case t.Kind() == protocol.KindAddition:
					retracted[t.ID] = struct{}{}
					if in(e) {
						f.Retracted++
					}
				default:
					retracted[t.ID] = struct{}{}
					if in(e) {
						f.AllowsRetracted++
					}
				}
			case *pb.Entry_Dispute:
				if in(e) {
					f.DisputesFiled++
					if t := byID[idOf(p.Dispute.Target)]; t != nil && t.Kind() == protocol.KindAddition {
						disputed[t.ID] = struct{}{}
					}
				}
			case *pb.Entry_Notice:
				if in(e) {
					f.NoticesIssued++
					notices = append(notices, e)
				}
			case *pb.Entry_NoticeUpdate:
				t := own(e, p.NoticeUpdate.Notice, protocol.KindNotice)
				if t == nil {
					if in(e) {
						f.VoidEntries++
					}
					continue
				}
				updates[t.ID] = append(updates[t.ID], e)
			case *pb.Entry_NoticeReply:
				// Kept whatever its author: NoticeLifecycle takes only the
				// addressee's.
				id := idOf(p.NoticeReply.Notice)
				replies[id] = append(replies[id], e)
			}
		}
	}
	for id := range disputed {
		figs[byID[id].Author].Disputed++
	}

	for _, n := range notices {
		st := protocol.NoticeLifecycle(n, updates[n.ID], replies[n.ID], nowMs)
		var to protocol.AuthorKey
		copy(to[:], n.Body.GetNotice().Addressee)
		f := figs[to] // Roster.Check made it a member (a platform)
		if f == nil {
			continue
		}
		f.NoticesReceived++
		switch st.State {
		case protocol.NoticeActioned, protocol.NoticeNotExecuted:
			if st.WithinDeadline {
				f.AnsweredWithinDeadline++
			} else {
				f.AnsweredLate++
			}
			if st.State == protocol.NoticeActioned {
				f.Actioned++
			} else {
				f.NotExecuted++
			}
			f.times = append(f.times, st.TimeToActionMs)
		case protocol.NoticeWithdrawn:
			f.Withdrawn++
		case protocol.NoticeOverdue:
			f.Overdue++
		case protocol.NoticeClarificationRequested:
			f.Open++
			f.ClarificationRequested++
		default: // open, acknowledged
			f.Open++
		}
	}

	r := Report{
		Federation: b.roster.Federation,
		NowMs:      nowMs,
		SinceMs:    sinceMs,
		Members:    make([]Member, 0, len(b.roster.Members)),
		Totals:     Totals{Entries: b.entries, IgnoredEntries: b.ignored, Equivocations: b.equivocations},
	}
	var all []int64
	for _, m := range b.roster.Members {
		f := figs[m.AuthorKey]
		f.MedianTimeToActionS, f.P90TimeToActionS = percentiles(f.times)
		all = append(all, f.times...)
		r.Members = append(r.Members, Member{Name: m.Name, Role: m.Role, Key: m.AuthorKey.String(), Figures: f.Figures})
		r.Totals.add(&f.Figures)
	}
	r.Totals.MedianTimeToActionS, r.Totals.P90TimeToActionS = percentiles(all)
	slices.SortFunc(r.Members, func(x, y Member) int { return cmp.Compare(x.Name, y.Name) })
	return r
}

// add sums the counts of f into t (not the times).
func (t *Totals) add(f *Figures) {
	t.Additions += f.Additions
	t.Signals += f.Signals
	t.Retracted += f.Retracted
	t.AllowsRetracted += f.AllowsRetracted
	t.Disputed += f.Disputed
	t.DisputesFiled += f.DisputesFiled
	t.Allows += f.Allows
	t.VoidEntries += f.VoidEntries
	t.NoticesIssued += f.NoticesIssued
	t.NoticesReceived += f.NoticesReceived
	t.AnsweredWithinDeadline += f.AnsweredWithinDeadline
	t.AnsweredLate += f.AnsweredLate
	t.Actioned += f.Actioned
	t.NotExecuted += f.NotExecuted
	t.Overdue += f.Overdue
	t.Open += f.Open
	t.Withdrawn += f.Withdrawn
	t.ClarificationRequested += f.ClarificationRequested
}

func sortedLog(log map[uint64]*protocol.Entry) []*protocol.Entry {
	es := make([]*protocol.Entry, 0, len(log))
	for _, e := range log {
		es = append(es, e)
	}
	slices.SortFunc(es, func(x, y *protocol.Entry) int { return cmp.Compare(x.Seq(), y.Seq()) })
	return es
}

// idOf converts a target field (34 bytes once decoded) to an ID; anything
// else gives an id no entry has.
func idOf(b []byte) protocol.ID {
	var id protocol.ID
	if len(b) == protocol.IDSize {
		copy(id[:], b)
	}
	return id
}

// percentiles returns the nearest-rank median and p90 of ms, in seconds,
// nil when ms is empty. It sorts ms.
func percentiles(ms []int64) (median, p90 *float64) {
	if len(ms) == 0 {
		return nil, nil
	}
	slices.Sort(ms)
	return nearestRank(ms, 50), nearestRank(ms, 90)
}

// nearestRank is the value of rank ceil(p/100 * n) of sorted, in seconds.
func nearestRank(sorted []int64, p int) *float64 {
	rank := max((p*len(sorted)+99)/100, 1)
	s := float64(sorted[rank-1]) / 1000
	return &s
}
