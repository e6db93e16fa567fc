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
// The rules are SPEC.md's: every entry is judged against the membership
// (section 12.5); an entry whose author the membership does not take in
// (unknown, or too far past its key's end) is left out and counted as
// ignored; one it makes void (past its key's end, or a kind its author's
// role then may not write) is void. A void entry (sections 9.2 and 12.5)
// has no effect; a dispute counts only against an addition (section 10); a
// notice thread is
// the notice, its issuer's non-void updates and its addressee's replies, and
// its state is [protocol.NoticeLifecycle] at the report's time (section
// 10.1). Times are the authors' claims (section 15).
//
// signals_by_type splits signals by signal type (every type of
// protocol.SignalTypes a key, with 0 when none).
//
// Entry figures (additions, signals, signals_by_type, retracted, allows_retracted,
// disputes_withdrawn, disputed, signals_retracted, signals_disputed,
// disputes_filed, allows, void_entries) count entries signed in the
// period:
// those whose timestamp_ms is at least since. For "retracted" that is the
// retraction's timestamp (the addition may be older); for "disputed" it is
// the dispute's (an addition counts once however many disputes of the
// period target it, whenever it was added). A retraction or a dispute
// that names signals (SPEC 6.2, 6.3) bears on those the addition carries
// only: signals_retracted and signals_disputed count them, and a dispute
// withdrawn for some of its signals still stands for the others.
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
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"maps"
	"math/bits"
	"slices"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/replica"
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
	// Members lists every member of the roster the report names authors
	// by, sorted by name, including those with no entries.
	Members []Member `json:"members"`
	Totals  Totals   `json:"totals"`
}

// Member is one member's figures, over the entries of every key it has
// had.
type Member struct {
	Name string        `json:"name"`
	Role protocol.Role `json:"role"`
	Key  string        `json:"key"` // its current author key, 64 hex characters
	Figures
}

// Totals is the federation's figures: the sums of the members' (times to
// action pooled over every notice), plus what was fed to the builder.
type Totals struct {
	Figures
	// Entries counts the entries the report is computed from (all of
	// them, whatever since is, void ones included); IgnoredEntries those
	// left out: of another federation, or whose author the membership
	// does not take in (SPEC 12.5: an unknown key, or an entry more than
	// OutsideSlack past its key's end); Equivocations the second and later
	// entries added for an author and seq already taken (of authors whose
	// entry there is taken in; the others are ignored).
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
	// SignalsByType splits Signals by signal type: every type of
	// protocol.SignalTypes is a key, those of no signal with 0.
	SignalsByType SignalCounts `json:"signals_by_type"`
	// Retracted: the member's own additions it retracted (valid, first
	// retractions only). AllowsRetracted, DisputesWithdrawn: the same for
	// its allow entries and its disputes.
	Retracted         int `json:"retracted"`
	AllowsRetracted   int `json:"allows_retracted"`
	DisputesWithdrawn int `json:"disputes_withdrawn"`
	// Disputed: the member's additions (of any time) that at least one
	// dispute of the period, by any member including itself, targets and
	// that its author has not withdrawn (for a signal the addition
	// carries); each addition counted once. A retracted addition still
	// counts.
	Disputed int `json:"disputed"`
	// SignalsRetracted: the distinct signals of the member's own
	// additions that its retractions counted in Retracted withdraw: the
	// ones each names that the addition carries, all of the addition's
	// if it names none (SPEC 6.2).
	SignalsRetracted int `json:"signals_retracted"`
	// SignalsDisputed: over the additions counted in Disputed, the
	// distinct (addition, signal) pairs that a dispute of the period
	// bears on (the signals it names that the addition carries, all of
	// them if it names none) and that its author has not withdrawn for
	// that signal.
	SignalsDisputed int `json:"signals_disputed"`
	// DisputesFiled: dispute entries the member signed, whatever their
	// target (one of a notice, or of an id never seen, has no effect but
	// is still a signed dispute).
	DisputesFiled int `json:"disputes_filed"`
	Allows        int `json:"allows"`
	// VoidEntries: entries that have no effect: retractions and
	// notice-updates that broke a stateful rule (SPEC.md 9.2), and entries
	// of any kind the membership makes void (12.5: past the end of their
	// key, or of a kind the author's role then may not write).
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
//
// It keeps of each entry only what the report reads, in a fixed-size
// record (see rec and ref), not the entry: a few dozen bytes an entry
// rather than the kilobyte or so of a decoded one. Entries are judged
// against the membership when a report is computed, not when they are
// added: an audit learns the membership from the same logs it reads
// (SetMembers).
type Builder struct {
	federation string
	roster     *protocol.Roster
	members    replica.Members
	logs       map[protocol.AuthorKey]*authorLog
	// refs holds what the kinds other than addition and allow carry
	// (targets, notice fields); rec.aux indexes it.
	refs []ref
	// keys holds signal sets, each as its length then that many sorted,
	// distinct hashes of index keys (keyHash): an addition's, at
	// rec.aux, after the count of its signals with repetition and its
	// typeSlots counts by type (packTypes); a retraction's or a
	// dispute's named signals, at ref.named-1.
	keys []uint64
	// dropped holds the ids of the entries left out when added (of
	// another federation, or equivocations), so that one added again is
	// ignored silently. The entries kept are recognised again through
	// their log's seq index.
	dropped map[protocol.ID]struct{}
	// kinds counts the records of each kind.
	kinds   [kPeerUpdate + 1]int
	ignored int // nil entries and entries of another federation
}

// Kinds of record (protocol.Kind in a byte).
const (
	kOther uint8 = iota
	kAddition
	kAllow
	kRetraction
	kDispute
	kNotice
	kNoticeUpdate
	kNoticeReply
	kAmendment
	kApproval
	kRotation
	kPeerUpdate
)

// recKinds names the kinds of record.
var recKinds = [...]protocol.Kind{
	kAddition: protocol.KindAddition, kAllow: protocol.KindAllow, kRetraction: protocol.KindRetraction,
	kDispute: protocol.KindDispute, kNotice: protocol.KindNotice, kNoticeUpdate: protocol.KindNoticeUpdate,
	kNoticeReply: protocol.KindNoticeReply, kAmendment: protocol.KindAmendment, kApproval: protocol.KindApproval,
	kRotation: protocol.KindRotation, kPeerUpdate: protocol.KindPeerUpdate,
}

// shells are, for each kind of record but the notice, an entry of that
// kind with an empty payload: what Judge reads of an entry other than a
// notice is its kind (its author and seq are arguments). A notice's
// addressee matters too: judge fills one in.
var shells = [...]*pb.Entry{
	kOther:        {},
	kAddition:     {Payload: &pb.Entry_Addition{Addition: &pb.Addition{}}},
	kAllow:        {Payload: &pb.Entry_Allow{Allow: &pb.Allow{}}},
	kRetraction:   {Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{}}},
	kDispute:      {Payload: &pb.Entry_Dispute{Dispute: &pb.Dispute{}}},
	kNoticeUpdate: {Payload: &pb.Entry_NoticeUpdate{NoticeUpdate: &pb.NoticeUpdate{}}},
	kNoticeReply:  {Payload: &pb.Entry_NoticeReply{NoticeReply: &pb.NoticeReply{}}},
	kAmendment:    {Payload: &pb.Entry_Amendment{Amendment: &pb.Amendment{}}},
	kApproval:     {Payload: &pb.Entry_Approval{Approval: &pb.Approval{}}},
	kRotation:     {Payload: &pb.Entry_Rotation{Rotation: &pb.Rotation{}}},
	kPeerUpdate:   {Payload: &pb.Entry_PeerUpdate{PeerUpdate: &pb.PeerUpdate{}}},
}

// rec is what the builder keeps of an entry (56 bytes).
type rec struct {
	id   protocol.ID
	kind uint8
	// aux is, for an addition, the index in Builder.keys of its number
	// of signals and then its signal set; for a retraction, dispute,
	// notice, notice update or notice reply, the index of its ref in
	// Builder.refs; unused for an allow.
	aux uint32
	seq uint64
	ts  int64 // timestamp_ms
}

// ref is the rest of what the report reads of a retraction, dispute,
// notice, notice update or notice reply: the fields of the payload that
// NoticeLifecycle reads, and the target.
type ref struct {
	// target is the id the entry names (idOf of the retraction's or
	// dispute's target, of the update's or reply's notice); zero for a
	// notice.
	target protocol.ID
	kind   uint8
	// withdraw is the update's; for a notice, that it is a blocking
	// order (SPEC 6.9), which membership judges by its addressee's role.
	withdraw bool
	// status is the reply's.
	status pb.ReplyStatus
	// ms is the notice's deadline_ms, the update's deadline_ms or the
	// reply's action_time_ms.
	ms int64
	// to is the notice's addressee.
	to protocol.AuthorKey
	// named is, for a retraction or a dispute that names signals, 1 +
	// the index in Builder.keys of their set; 0 when it names none (all
	// of its target's).
	named uint32
}

// authorLog is one author's records, indexed by seq: sorted holds most of
// them, in seq order; tail those added out of order since the last merge
// (so that a log fed backwards costs n log n, not n squared). A seq is in
// one or the other, never both.
type authorLog struct {
	author  protocol.AuthorKey
	sorted  []rec
	tail    []rec
	tailSeq map[uint64]int // seq → index in tail
	// forks are the seqs of the second and later entries added for a seq
	// taken, once per entry: equivocations if the membership takes in the
	// entry at that seq, ignored otherwise.
	forks []uint64
}

// find returns the record of seq, nil if there is none.
func (l *authorLog) find(seq uint64) *rec {
	if n := len(l.sorted); n > 0 && seq <= l.sorted[n-1].seq {
		i, j := 0, n
		for i < j {
			h := int(uint(i+j) >> 1)
			if l.sorted[h].seq < seq {
				i = h + 1
			} else {
				j = h
			}
		}
		if l.sorted[i].seq == seq {
			return &l.sorted[i]
		}
	}
	if i, ok := l.tailSeq[seq]; ok {
		return &l.tail[i]
	}
	return nil
}

// add adds r, whose seq must not be taken.
func (l *authorLog) add(r rec) {
	if n := len(l.sorted); n == 0 || r.seq > l.sorted[n-1].seq {
		l.sorted = append(l.sorted, r)
		return
	}
	if l.tailSeq == nil {
		l.tailSeq = map[uint64]int{}
	}
	l.tailSeq[r.seq] = len(l.tail)
	l.tail = append(l.tail, r)
	if len(l.tail) >= 64 && len(l.tail) >= len(l.sorted)/8 {
		l.merge()
	}
}

// merge moves the tail into sorted.
func (l *authorLog) merge() {
	slices.SortFunc(l.tail, func(x, y rec) int { return cmp.Compare(x.seq, y.seq) })
	m := make([]rec, 0, len(l.sorted)+len(l.tail))
	i, j := 0, 0
	for i < len(l.sorted) && j < len(l.tail) {
		if l.sorted[i].seq < l.tail[j].seq {
			m = append(m, l.sorted[i])
			i++
		} else {
			m = append(m, l.tail[j])
			j++
		}
	}
	m = append(append(m, l.sorted[i:]...), l.tail[j:]...)
	l.sorted, l.tail, l.tailSeq = m, nil, nil
}

// New returns an empty builder for the federation of roster. Its reports
// judge entries under members (SPEC 12.5: a *membership.History) and
// name their authors by roster, which must then list every member whose
// key members takes in, with every key it has had (History.Everyone). A
// nil members judges by roster alone, as a genesis that no amendment has
// changed: an author must be one of its keys, its role must be allowed
// to write the kind, a notice must be addressed to a platform.
func New(roster *protocol.Roster, members replica.Members) *Builder {
	return &Builder{
		federation: roster.Federation,
		roster:     roster,
		members:    members,
		logs:       map[protocol.AuthorKey]*authorLog{},
		dropped:    map[protocol.ID]struct{}{},
	}
}

// SetMembers replaces the roster and membership that the builder's
// reports judge entries under (see New), for a caller that learns the
// membership only once it has added every entry (an audit reads it from
// the logs it feeds). roster must be of the builder's federation: the
// entries of others were dropped as they were added.
func (b *Builder) SetMembers(roster *protocol.Roster, members replica.Members) {
	b.roster, b.members = roster, members
}

// Add records an entry. An entry added again (same id) is ignored
// silently, whatever it is. An entry of another federation is ignored and
// counted in ignored_entries, as is a nil entry. Whether the membership
// takes the others in is decided by Report. A second, different entry for
// an author and seq already taken is an equivocation: the first added is
// kept and the other counted in equivocations (so with equivocating logs
// the report depends on the order of Add; callers normally keep only one
// branch).
func (b *Builder) Add(e *protocol.Entry) {
	if e == nil || e.Body == nil {
		b.ignored++
		return
	}
	if _, dup := b.dropped[e.ID]; dup {
		return
	}
	if e.Body.Federation != b.federation {
		b.dropped[e.ID] = struct{}{}
		b.ignored++
		return
	}
	log := b.logs[e.Author]
	if log == nil {
		log = &authorLog{author: e.Author}
		b.logs[e.Author] = log
	}
	seq := e.Seq()
	if r := log.find(seq); r != nil {
		if r.id != e.ID {
			b.dropped[e.ID] = struct{}{}
			log.forks = append(log.forks, seq)
		}
		return
	}
	r := b.record(e)
	log.add(r)
	b.kinds[r.kind]++
}

// record makes e's record, adding its ref if it has one.
func (b *Builder) record(e *protocol.Entry) rec {
	r := rec{id: e.ID, seq: e.Seq(), ts: e.Body.TimestampMs}
	var x ref
	switch p := e.Body.GetPayload().(type) {
	case *pb.Entry_Addition:
		r.kind, r.aux = kAddition, uint32(len(b.keys))
		b.keys = append(b.keys, uint64(len(p.Addition.Signals)))
		b.keys = packTypes(b.keys, p.Addition.Signals)
		b.addKeys(p.Addition.Signals)
		return r
	case *pb.Entry_Allow:
		r.kind = kAllow
		return r
	case *pb.Entry_Retraction:
		r.kind, x.target = kRetraction, idOf(p.Retraction.Target)
		if len(p.Retraction.Signals) > 0 {
			x.named = uint32(len(b.keys)) + 1
			b.addKeys(p.Retraction.Signals)
		}
	case *pb.Entry_Dispute:
		r.kind, x.target = kDispute, idOf(p.Dispute.Target)
		if len(p.Dispute.Signals) > 0 {
			x.named = uint32(len(b.keys)) + 1
			b.addKeys(p.Dispute.Signals)
		}
	case *pb.Entry_Notice:
		r.kind, x.ms, x.withdraw = kNotice, p.Notice.DeadlineMs, p.Notice.Blocking != nil
		copy(x.to[:], p.Notice.Addressee)
	case *pb.Entry_NoticeUpdate:
		u := p.NoticeUpdate
		r.kind, x.target, x.withdraw, x.ms = kNoticeUpdate, idOf(u.Notice), u.Withdraw, u.DeadlineMs
	case *pb.Entry_NoticeReply:
		y := p.NoticeReply
		r.kind, x.target, x.status, x.ms = kNoticeReply, idOf(y.Notice), y.Status, y.ActionTimeMs
	case *pb.Entry_Amendment:
		r.kind = kAmendment
		return r
	case *pb.Entry_Approval:
		r.kind = kApproval
		return r
	case *pb.Entry_Rotation:
		r.kind = kRotation
		return r
	case *pb.Entry_PeerUpdate:
		r.kind = kPeerUpdate
		return r
	default:
		return r // kOther: counted, no figure
	}
	x.kind = r.kind
	r.aux = uint32(len(b.refs))
	b.refs = append(b.refs, x)
	return r
}

// addKeys appends the set of sigs' index keys to b.keys.
func (b *Builder) addKeys(sigs []*pb.Signal) {
	hs := make([]uint64, 0, len(sigs))
	for _, s := range sigs {
		hs = append(hs, keyHash(protocol.SignalKey(s)))
	}
	slices.Sort(hs)
	hs = slices.Compact(hs)
	b.keys = append(append(b.keys, uint64(len(hs))), hs...)
}

// keyHash stands for a signal's index key in a set: the first 8 bytes of
// its SHA-256, so that no one can make two keys meet.
func keyHash(k []byte) uint64 {
	h := sha256.Sum256(k)
	return binary.BigEndian.Uint64(h[:8])
}

// set returns the signal set at i in b.keys.
func (b *Builder) set(i uint32) []uint64 {
	n := b.keys[i]
	return b.keys[i+1 : uint64(i)+1+n]
}

// additionSet is the signal set of an addition's record.
func (b *Builder) additionSet(r *rec) []uint64 { return b.set(r.aux + 1 + typeSlots) }

// An addition's signal counts by type are packed typeBits to a type,
// typesPerSlot types to a uint64 of Builder.keys, in the order of
// protocol.SignalTypes: an addition carries at most protocol.MaxSignals
// (1,000) signals, which fits 10 bits. typeSlots is the number of slots.
const (
	typeBits     = 10
	typesPerSlot = 64 / typeBits
)

var typeSlots = uint32((len(protocol.SignalTypes) + typesPerSlot - 1) / typesPerSlot)

// packTypes appends to keys the typeSlots slots counting sigs by type.
// A signal of a type not in protocol.SignalTypes (the builder is fed
// checked entries, so none) is counted in Signals only.
func packTypes(keys []uint64, sigs []*pb.Signal) []uint64 {
	n := len(keys)
	keys = append(keys, make([]uint64, typeSlots)...)
	for _, s := range sigs {
		i := slices.Index(protocol.SignalTypes, protocol.TypeOf(s))
		if i < 0 {
			continue
		}
		// At most MaxSignals of one type: the field never carries over.
		keys[n+i/typesPerSlot] += 1 << (typeBits * (i % typesPerSlot))
	}
	return keys
}

// addTypes adds the counts by type packed at keys[i:] to by.
func addTypes(by SignalCounts, keys []uint64) {
	for i, t := range protocol.SignalTypes {
		by[t] += int(keys[i/typesPerSlot] >> (typeBits * (i % typesPerSlot)) & (1<<typeBits - 1))
	}
}

// SignalCounts counts signals by type. Its JSON is an object with every
// type of protocol.SignalTypes as a key (0 for one it lacks), in key
// order, so that a report reads the same whoever built it.
type SignalCounts map[protocol.SignalType]int

// MarshalJSON writes c with every type of protocol.SignalTypes.
func (c SignalCounts) MarshalJSON() ([]byte, error) {
	all := make(map[protocol.SignalType]int, len(protocol.SignalTypes)+len(c))
	for _, t := range protocol.SignalTypes {
		all[t] = 0
	}
	maps.Copy(all, c)
	return json.Marshal(all)
}

// newByType is a SignalCounts with every type at 0.
func newByType() SignalCounts {
	by := make(SignalCounts, len(protocol.SignalTypes))
	for _, t := range protocol.SignalTypes {
		by[t] = 0
	}
	return by
}

// bearsOn returns the signals of the addition a that a retraction or a
// dispute x bears on: those it names that a carries, or all of a's.
func (b *Builder) bearsOn(x *ref, a *rec) []uint64 {
	carried := b.additionSet(a)
	if x.named == 0 {
		return carried
	}
	var out []uint64
	for _, h := range b.set(x.named - 1) {
		if _, ok := slices.BinarySearch(carried, h); ok {
			out = append(out, h)
		}
	}
	return out
}

// arena rebuilds, for NoticeLifecycle, the entries of a notice thread
// from their records: id, author, seq, timestamp and the payload fields
// kept in their ref (all that NoticeLifecycle reads). Its memory is
// reused from one thread to the next (NoticeLifecycle keeps nothing).
type arena struct {
	refs    []ref
	ents    []protocol.Entry
	bodies  []pb.Entry
	notice  pb.Notice
	nw      pb.Entry_Notice
	updates []pb.NoticeUpdate
	uw      []pb.Entry_NoticeUpdate
	replies []pb.NoticeReply
	rw      []pb.Entry_NoticeReply
	bytes   []byte
	us, rs  []*protocol.Entry
}

// fit returns s with length n, zeroed, reallocated if too small.
func fit[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// thread rebuilds notice n and its thread, updates and replies, and
// returns them as NoticeLifecycle takes them. They are valid until the
// next call.
func (a *arena) thread(n placed, thread []placed) (notice *protocol.Entry, updates, replies []*protocol.Entry) {
	nu := 0
	for _, e := range thread {
		if e.r.kind == kNoticeUpdate {
			nu++
		}
	}
	nr := len(thread) - nu
	a.ents, a.bodies = fit(a.ents, 1+len(thread)), fit(a.bodies, 1+len(thread))
	a.updates, a.uw = fit(a.updates, nu), fit(a.uw, nu)
	a.replies, a.rw = fit(a.replies, nr), fit(a.rw, nr)
	a.bytes = fit(a.bytes, len(protocol.AuthorKey{})+len(thread)*protocol.IDSize)
	a.us, a.rs = a.us[:0], a.rs[:0]
	free := a.bytes
	clone := func(b []byte) []byte {
		c := free[:len(b):len(b)]
		free = free[len(b):]
		copy(c, b)
		return c
	}
	entry := func(i int, author protocol.AuthorKey, r *rec) (*protocol.Entry, *ref) {
		body := &a.bodies[i]
		body.Seq, body.TimestampMs = r.seq, r.ts
		e := &a.ents[i]
		e.ID, e.Author, e.Body = r.id, author, body
		return e, &a.refs[r.aux]
	}
	notice, x := entry(0, n.log.author, n.r)
	a.notice = pb.Notice{Addressee: clone(x.to[:]), DeadlineMs: x.ms}
	a.nw.Notice, notice.Body.Payload = &a.notice, &a.nw
	for i, t := range thread {
		e, x := entry(1+i, t.log.author, t.r)
		if t.r.kind == kNoticeUpdate {
			k := len(a.us)
			u := &a.updates[k]
			u.Notice, u.Withdraw, u.DeadlineMs = clone(x.target[:]), x.withdraw, x.ms
			a.uw[k].NoticeUpdate, e.Body.Payload = u, &a.uw[k]
			a.us = append(a.us, e)
		} else {
			k := len(a.rs)
			y := &a.replies[k]
			y.Notice, y.Status, y.ActionTimeMs = clone(x.target[:]), x.status, x.ms
			a.rw[k].NoticeReply, e.Body.Payload = y, &a.rw[k]
			a.rs = append(a.rs, e)
		}
	}
	return notice, a.us, a.rs
}

// member accumulates one member's figures and times to action (ms).
type member struct {
	Figures
	times []int64
}

// placed is a record and its log; void, if the membership makes it void.
type placed struct {
	log  *authorLog
	r    *rec
	void bool
}

// judge is the report's view of the membership: the verdict on a record,
// and the member (index in the roster) a key names.
type judge struct {
	members replica.Members
	index   map[protocol.AuthorKey]int // every key of every member
	notice  pb.Notice                  // the shell of a notice, reused
	shell   pb.Entry
	wrapper pb.Entry_Notice
	// reply is the shell of a reply, reused: membership judges a reply
	// by its status (SPEC 9.1).
	reply      pb.NoticeReply
	replyShell pb.Entry
}

// blockingShell marks the notice shell as a blocking order.
var blockingShell = &pb.Blocking{}

func newJudge(roster *protocol.Roster, members replica.Members) *judge {
	j := &judge{members: members, index: map[protocol.AuthorKey]int{}}
	if members == nil {
		j.members = rosterMembers{roster}
	}
	for i, m := range roster.Members {
		j.index[m.AuthorKey] = i
		for _, k := range m.Keys {
			j.index[k] = i
		}
	}
	j.wrapper.Notice = &j.notice
	j.shell.Payload = &j.wrapper
	j.replyShell.Payload = &pb.Entry_NoticeReply{NoticeReply: &j.reply}
	return j
}

// verdict judges the record r of log: taken in (and void or not), or
// left out.
func (j *judge) verdict(log *authorLog, r *rec, refs []ref) (in, void bool) {
	body := shells[r.kind]
	switch r.kind {
	case kNotice:
		j.notice.Addressee, j.notice.Blocking = refs[r.aux].to[:], nil
		if refs[r.aux].withdraw {
			j.notice.Blocking = blockingShell
		}
		body = &j.shell
	case kNoticeReply:
		j.reply.Status = refs[r.aux].status
		body = &j.replyShell
	}
	switch v, _ := j.members.Judge(log.author, r.seq, body); v {
	case membership.In:
		return true, false
	case membership.Outside, membership.Role:
		return true, true
	}
	return false, false
}

// rosterMembers judges by a roster alone (see New).
type rosterMembers struct{ r *protocol.Roster }

func (m rosterMembers) Judge(author protocol.AuthorKey, _ uint64, body *pb.Entry) (membership.Verdict, string) {
	a, ok := m.r.ByKey(author)
	if !ok {
		return membership.Unknown, "author " + author.String() + " is not in the roster"
	}
	if k := protocol.KindOf(body); !protocol.MayWrite(a.Role, k) {
		return membership.Role, a.Name + " (" + string(a.Role) + ") may not write a " + string(k)
	}
	if n := body.GetNotice(); n != nil {
		var to protocol.AuthorKey
		copy(to[:], n.Addressee)
		if p, ok := m.r.ByKey(to); !ok || p.Role != protocol.AddresseeRole(n) {
			return membership.Role, "notice addressed to " + to.String() + ", which is not a " + string(protocol.AddresseeRole(n)) + " of the roster"
		}
	}
	if r := body.GetNoticeReply(); r != nil && !protocol.MayReply(a.Role, r.Status) {
		return membership.Role, a.Name + " (" + string(a.Role) + ") may not reply " + protocol.ReplyStatuses[r.Status]
	}
	return membership.In, ""
}

// Report computes the report at nowMs (Unix ms) for the period from
// sinceMs (0: everything). It does not change the builder: it can be
// called again after more Adds.
func (b *Builder) Report(nowMs, sinceMs int64) Report {
	j := newJudge(b.roster, b.members)
	figs := make([]member, len(b.roster.Members))
	for i := range figs {
		figs[i].SignalsByType = newByType()
	}
	entries, ignored, equivocations := 0, b.ignored, 0

	// The ids that retractions, disputes and updates name, to be found
	// among the records by the pass below (target: index in found).
	target := map[protocol.ID]int{}
	for i := range b.refs {
		if x := &b.refs[i]; x.kind != kNotice && x.kind != kNoticeReply {
			if _, ok := target[x.target]; !ok {
				target[x.target] = len(target)
			}
		}
	}
	found := make([]placed, len(target)) // r nil: no entry has that id
	// A one-hash Bloom filter of the targets, with 64 bits per target:
	// most records need no map look-up.
	filter := make([]uint64, 1<<bits.Len(uint(len(target))))
	mask := uint64(len(filter))*64 - 1
	bit := func(id *protocol.ID) uint64 { return binary.LittleEndian.Uint64(id[2:]) & mask }
	for id := range target {
		h := bit(&id)
		filter[h/64] |= 1 << (h % 64)
	}

	// One pass over every record: the figures that need nothing from
	// other records, the targets, and the entries that name one.
	var (
		notices     = make([]placed, 0, b.kinds[kNotice])
		retractions = make([]placed, 0, b.kinds[kRetraction])
		updates     = make([]placed, 0, b.kinds[kNoticeUpdate])
		replies     = make([]placed, 0, b.kinds[kNoticeReply])
		disputes    = make([]placed, 0, b.kinds[kDispute]) // the period's disputes
	)
	for author, log := range b.logs {
		who, named := j.index[author]
		var f *member
		if named {
			f = &figs[who]
		}
		for _, rs := range [2][]rec{log.sorted, log.tail} {
			for i := range rs {
				r := &rs[i]
				taken, void := j.verdict(log, r, b.refs)
				if !taken || !named {
					// Left out: no figure, and no entry names it.
					ignored++
					continue
				}
				entries++
				if h := bit(&r.id); filter[h/64]&(1<<(h%64)) != 0 {
					if t, ok := target[r.id]; ok {
						found[t] = placed{log, r, void}
					}
				}
				in := r.ts >= sinceMs
				if void {
					// An entry of its log (a retraction or update of its
					// own log may name it, SPEC 9.2) with no effect.
					if in {
						f.VoidEntries++
					}
					continue
				}
				switch r.kind {
				case kAddition:
					if in {
						f.Additions++
						f.Signals += int(b.keys[r.aux])
						addTypes(f.SignalsByType, b.keys[r.aux+1:])
					}
				case kAllow:
					if in {
						f.Allows++
					}
				case kRetraction:
					retractions = append(retractions, placed{log: log, r: r})
				case kDispute:
					if in {
						f.DisputesFiled++
						disputes = append(disputes, placed{log: log, r: r})
					}
				case kNotice:
					if in {
						f.NoticesIssued++
						notices = append(notices, placed{log: log, r: r})
					}
				case kNoticeUpdate:
					updates = append(updates, placed{log: log, r: r})
				case kNoticeReply:
					replies = append(replies, placed{log: log, r: r})
				}
			}
		}
		for _, seq := range log.forks {
			if r := log.find(seq); named && r != nil {
				if taken, _ := j.verdict(log, r, b.refs); taken {
					equivocations++
					continue
				}
			}
			ignored++
		}
	}

	// own returns the record e (a retraction or notice update) names if
	// the stateful rule of SPEC 9.2 holds (replica.CheckTarget): an
	// earlier entry of e's own log of a kind it may name; nil otherwise
	// (e is void).
	own := func(e placed) *rec {
		x := b.refs[e.r.aux].target
		t := found[target[x]]
		var ref replica.Ref
		if t.r != nil {
			ref = replica.Ref{Author: t.log.author, Seq: t.r.seq, Kind: recKinds[t.r.kind]}
		}
		if replica.CheckTarget(recKinds[e.r.kind], e.r.id, e.log.author, e.r.seq, x[:], ref, t.r != nil) != nil {
			return nil
		}
		return t.r
	}

	// Of the valid retractions of a target (all in its author's log), the
	// first in seq order counts; the others are void.
	first := map[protocol.ID]*rec{} // target → its first valid retraction
	for _, e := range retractions {
		if t := own(e); t != nil {
			if s, ok := first[t.id]; !ok || e.r.seq < s.seq {
				first[t.id] = e.r
			}
		}
	}
	for _, e := range retractions {
		if e.r.ts < sinceMs {
			continue
		}
		f := &figs[j.index[e.log.author]]
		switch t := own(e); {
		case t == nil || first[t.id] != e.r:
			f.VoidEntries++
		case t.kind == kAddition:
			f.Retracted++
			f.SignalsRetracted += len(b.bearsOn(&b.refs[e.r.aux], t))
		case t.kind == kDispute:
			f.DisputesWithdrawn++
		default:
			f.AllowsRetracted++
		}
	}

	// The additions a dispute of the period that stands targets, with
	// the signals it stands for (a dispute its author retracted is
	// withdrawn for the signals the retraction names).
	type pairs struct {
		author protocol.AuthorKey
		sigs   map[uint64]struct{}
	}
	disputed := map[protocol.ID]*pairs{}
	for _, d := range disputes {
		id := b.refs[d.r.aux].target
		t := found[target[id]]
		if t.r == nil || t.void || t.r.kind != kAddition {
			continue
		}
		stands := b.bearsOn(&b.refs[d.r.aux], t.r)
		if w, ok := first[d.r.id]; ok {
			if x := &b.refs[w.aux]; x.named == 0 {
				stands = nil
			} else {
				stands = slices.DeleteFunc(slices.Clone(stands), func(h uint64) bool {
					_, named := slices.BinarySearch(b.set(x.named-1), h)
					return named
				})
			}
		}
		if len(stands) == 0 {
			continue
		}
		p := disputed[id]
		if p == nil {
			p = &pairs{author: t.log.author, sigs: map[uint64]struct{}{}}
			disputed[id] = p
		}
		for _, h := range stands {
			p.sigs[h] = struct{}{}
		}
	}
	for _, p := range disputed {
		f := &figs[j.index[p.author]]
		f.Disputed++
		f.SignalsDisputed += len(p.sigs)
	}

	// The threads of the period's notices: their valid updates and their
	// replies (whatever their author: NoticeLifecycle takes only the
	// addressee's), grouped by notice with a counting sort, so that
	// thread[start[i]:start[i+1]] is notices[i]'s.
	index := make(map[protocol.ID]int, len(notices))
	for i, n := range notices {
		index[n.r.id] = i
	}
	start := make([]int, len(notices)+1)
	of := make([]int, 0, len(updates)+len(replies)) // for each update, then each reply: its notice's index, or -1
	for _, e := range updates {
		i := -1
		if own(e) == nil {
			if e.r.ts >= sinceMs {
				figs[j.index[e.log.author]].VoidEntries++
			}
		} else if j, ok := index[b.refs[e.r.aux].target]; ok {
			i = j
			start[i+1]++
		}
		of = append(of, i)
	}
	for _, e := range replies {
		i, ok := index[b.refs[e.r.aux].target]
		if ok {
			start[i+1]++
		} else {
			i = -1
		}
		of = append(of, i)
	}
	for i := range notices {
		start[i+1] += start[i]
	}
	thread := make([]placed, start[len(notices)])
	fill := slices.Clone(start[:len(notices)])
	for k, i := range of {
		if i < 0 {
			continue
		}
		var e placed
		if k < len(updates) {
			e = updates[k]
		} else {
			e = replies[k-len(updates)]
		}
		thread[fill[i]] = e
		fill[i]++
	}

	ar := &arena{refs: b.refs}
	for i, n := range notices {
		nt, us, rs := ar.thread(n, thread[start[i]:start[i+1]])
		st := protocol.NoticeLifecycle(nt, us, rs, nowMs)
		// The membership takes a notice in only if it is addressed to
		// a key of a member (one that has been a platform).
		to, ok := j.index[b.refs[n.r.aux].to]
		if !ok {
			continue
		}
		f := &figs[to]
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
		Federation: b.federation,
		NowMs:      nowMs,
		SinceMs:    sinceMs,
		Members:    make([]Member, 0, len(b.roster.Members)),
		Totals:     Totals{Entries: entries, IgnoredEntries: ignored, Equivocations: equivocations},
	}
	r.Totals.SignalsByType = newByType()
	var all []int64
	for i, m := range b.roster.Members {
		f := &figs[i]
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
	if t.SignalsByType == nil {
		t.SignalsByType = newByType()
	}
	for k, n := range f.SignalsByType {
		t.SignalsByType[k] += n
	}
	t.Retracted += f.Retracted
	t.AllowsRetracted += f.AllowsRetracted
	t.DisputesWithdrawn += f.DisputesWithdrawn
	t.Disputed += f.Disputed
	t.SignalsRetracted += f.SignalsRetracted
	t.SignalsDisputed += f.SignalsDisputed
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
