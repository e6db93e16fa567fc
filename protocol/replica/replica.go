package replica

import (
	"errors"
	"fmt"
	"slices"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/pb"
)

// Outcome is what an entry is to a replica.
type Outcome int

const (
	// Applied: the entry continues its author's log. Store it, index it,
	// relay it.
	Applied Outcome = iota
	// Duplicate: the entry is in the log already, or kept as evidence.
	// Nothing changes; do not relay it again.
	Duplicate
	// Equivocation: another entry with the same author and seq is in the
	// log. Keep this one as evidence and flag the author; the log is
	// unchanged (SPEC 5.3).
	Equivocation
	// Gap: the entry is ahead of the author's head. Store nothing; fetch
	// the missing range and decide again.
	Gap
	// Rejected: seq is head+1 but prev is not the head. Store nothing,
	// never relay it.
	Rejected
	// Void: the entry continues its log but breaks a stateful rule (SPEC
	// 9.2), or the membership in force makes it void (SPEC 12.5: past its
	// key's end, or a role that may not write it). Store it, so the
	// author's log goes on, with no effect.
	Void
	// Held: the author is no member's key yet (SPEC 12.5). Store
	// nothing, do not relay, do not blame the sender; decide again when
	// the roster changes.
	Held
	// Refused: the entry is further past its key's end than the logs keep
	// (SPEC 12.5). Store nothing, do not relay, do not blame the sender.
	Refused
)

var outcomeNames = [...]string{Applied: "applied", Duplicate: "duplicate", Equivocation: "equivocation", Gap: "gap", Rejected: "rejected", Void: "void", Held: "held", Refused: "refused"}

func (o Outcome) String() string {
	if o >= 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Logged reports whether the entry enters its author's log.
func (o Outcome) Logged() bool { return o == Applied || o == Void }

// Ref is what a replica knows of a logged entry found by its id.
type Ref struct {
	Author protocol.AuthorKey
	Seq    uint64
	Kind   protocol.Kind
}

// View is the read-only state the rules read. Implementations answer for
// the replica as it stands, including entries decided earlier in the same
// write batch. The store implements it over bbolt; the audit and the
// report over logs in memory.
//
// Decide reads only the entry's own log through it (Head, Logged,
// HasEvidence) and ids that log names (Ref, RetractedBy): a rule that
// read another log would decide differently on nodes that received the
// logs in different orders.
type View interface {
	Rules
	// Head is the newest entry of author's log (Seq 0 if empty).
	Head(author protocol.AuthorKey) (protocol.Head, error)
	// Logged is the raw signed entry at seq of author's log, nil if none.
	// The slice may be read only until the next call.
	Logged(author protocol.AuthorKey, seq uint64) ([]byte, error)
	// HasEvidence reports whether the entry id is kept as evidence
	// against author at seq.
	HasEvidence(author protocol.AuthorKey, seq uint64, id protocol.ID) (bool, error)
}

// Rules is the part of a View that the stateful rules read (SPEC 9.2).
type Rules interface {
	// Ref finds a logged entry by id (false if none is logged).
	Ref(id protocol.ID) (Ref, bool, error)
	// RetractedBy is the retraction that counts for target (the first
	// valid one in its log), if any.
	RetractedBy(target protocol.ID) (protocol.ID, bool, error)
}

// Members is the membership entries are judged against (SPEC 12.5): a
// *membership.History. A nil Members judges every entry in (tools and
// tests that hold logs without a roster).
type Members interface {
	Judge(author protocol.AuthorKey, seq uint64, body *pb.Entry) (membership.Verdict, string)
}

func judge(m Members, e *protocol.Entry) (membership.Verdict, string) {
	if m == nil {
		return membership.In, ""
	}
	return m.Judge(e.Author, e.Seq(), e.Body)
}

// Step is the decision on one entry.
type Step struct {
	Outcome Outcome
	// Err says why, with the evidence an operator or auditor acts on:
	// for Equivocation an *EquivocationError (both signed entries), for
	// Void a *RuleError (wraps ErrRule), for Rejected a *ChainError
	// (wraps protocol.ErrChain: the entry and the head it should have
	// followed; an entry without a payload wraps protocol.ErrMalformed),
	// for Gap an error wrapping protocol.ErrGap; nil for Applied and
	// Duplicate.
	Err error
	// Effect is what the entry changes once stored: set for Applied,
	// Void (its head only) and Equivocation (its author flagged).
	Effect Effect
	// Ahead is, for Gap, how far the entry is ahead of its author's head
	// (seq - head seq, at least 2).
	Ahead uint64
}

// Decide says what the entry is to the replica v, under the membership m,
// and what it changes (SPEC 5.2, 5.3, 9.2, 12.5). e must have passed the
// stateless checks. The error is v's: a broken view, not a broken entry.
func Decide(v View, m Members, e *protocol.Entry) (Step, error) {
	if e == nil || e.Body == nil || e.Kind() == "" {
		return Step{Outcome: Rejected, Err: fmt.Errorf("%w: entry without payload", protocol.ErrMalformed)}, nil
	}
	verdict, why := judge(m, e)
	if verdict == membership.Unknown {
		return Step{Outcome: Held, Err: &MemberError{Entry: e, Verdict: verdict, Why: why}}, nil
	}
	head, err := v.Head(e.Author)
	if err != nil {
		return Step{}, err
	}
	seq := e.Seq()
	if seq <= head.Seq {
		// Below the head: the same bytes are the same entry; any other
		// entry at seq is a second signature for one position (5.3).
		logged, err := v.Logged(e.Author, seq)
		if err != nil {
			return Step{}, err
		}
		if logged == nil {
			return Step{}, fmt.Errorf("%w: head of %s is %d but entry %d is missing", ErrView, e.Author, head.Seq, seq)
		}
		if string(logged) == string(e.Raw) {
			return Step{Outcome: Duplicate}, nil
		}
		kept, err := v.HasEvidence(e.Author, seq, e.ID)
		if err != nil || kept {
			return Step{Outcome: Duplicate}, err
		}
		return Step{Outcome: Equivocation, Err: equivocation(e, logged), Effect: Effect{Flagged: e.Author}}, nil
	}
	if verdict == membership.Past {
		return Step{Outcome: Refused, Err: &MemberError{Entry: e, Verdict: verdict, Why: why}}, nil
	}
	if err := protocol.CheckNext(head, e); err != nil {
		if errors.Is(err, protocol.ErrGap) {
			return Step{Outcome: Gap, Err: err, Ahead: seq - head.Seq}, nil
		}
		return Step{Outcome: Rejected, Err: &ChainError{Entry: e, Head: head, Err: err}}, nil
	}
	newHead := protocol.Head{Author: e.Author, Seq: seq, ID: e.ID}
	if err := checkRules(v, e, verdict, why); err != nil {
		if !errors.Is(err, ErrRule) {
			return Step{}, err
		}
		return Step{Outcome: Void, Err: &RuleError{Entry: e, Target: ownTarget(e), Err: err}, Effect: Effect{Head: newHead}}, nil
	}
	return Step{Outcome: Applied, Effect: effectOf(e, newHead)}, nil
}

// MaxGap is how far ahead of its author's head (seq - head seq) an entry
// is still relayed, and held until its predecessors come (SPEC 13): gossip
// reorders entries that were published close together, never by
// hundreds. An entry further ahead is not relayed; sync fetches it in
// order.
const MaxGap = 256

// Relay is what the gossip validator does with an entry (SPEC 13): relay
// it when a replica would store it or keep it as a first piece of
// evidence, or when it is ahead of the head by at most MaxGap (its
// predecessors will come). A duplicate, a broken link, an entry further
// ahead, or a further conflict at a seq whose conflict is known already,
// is not relayed. anyEvidence reports whether any evidence against the
// author at the entry's seq is kept.
func Relay(step Step, anyEvidence bool) bool {
	switch step.Outcome {
	case Applied, Void:
		return true
	case Gap:
		return step.Ahead <= MaxGap
	case Equivocation:
		return !anyEvidence
	default:
		return false
	}
}

// targetKinds is what each entry that names an earlier entry of its own
// log may name (SPEC 9.2).
var targetKinds = map[protocol.Kind][]protocol.Kind{
	protocol.KindRetraction:   {protocol.KindAddition, protocol.KindAllow, protocol.KindDispute},
	protocol.KindNoticeUpdate: {protocol.KindNotice},
}

// OwnTarget returns the id bytes that body names in its own log, and
// whether its kind names one at all (retraction, notice-update: the kinds
// with a stateful rule, SPEC 9.2).
func OwnTarget(body *pb.Entry) (target []byte, ruled bool) {
	switch p := body.GetPayload().(type) {
	case *pb.Entry_Retraction:
		return p.Retraction.Target, true
	case *pb.Entry_NoticeUpdate:
		return p.NoticeUpdate.Notice, true
	}
	return nil, false
}

func ownTarget(e *protocol.Entry) []byte {
	t, _ := OwnTarget(e.Body)
	return t
}

// CheckTarget is the first stateful rule of SPEC 9.2: the entry id, of
// kind kind at seq of author's log, naming target, is valid only when
// target is an earlier entry of the same log (found, t) of a kind it may
// name. Whether the target is missing or in another log reads the same,
// since which other logs have arrived differs from node to node. It
// returns nil for kinds without the rule, and an error wrapping ErrRule
// otherwise. (The messages are stored as void reasons: keep them.)
func CheckTarget(kind protocol.Kind, id protocol.ID, author protocol.AuthorKey, seq uint64, target []byte, t Ref, found bool) error {
	want, ruled := targetKinds[kind]
	switch {
	case !ruled:
		return nil
	case !found || t.Author != author || t.Seq >= seq:
		return fmt.Errorf("%w: %s %s (seq %d): target %x is not an earlier entry of the author's own log", ErrRule, kind, id, seq, target)
	case !slices.Contains(want, t.Kind):
		return fmt.Errorf("%w: %s %s: target %x is a %s, want %s", ErrRule, kind, id, target, t.Kind, kindList(want))
	}
	return nil
}

// CheckRules says whether a logged entry is void: the membership m makes
// it so (SPEC 12.5: a *MemberError), or it breaks SPEC 9.2 through v: the
// target rule, and for a retraction, "not already retracted": the first
// retraction of a target (in log order) is the one that counts. That
// reads the same when e is decided and in the final state that a rebuild
// or a check sees. It returns an error wrapping ErrRule for a void entry,
// and v's errors.
func CheckRules(v Rules, m Members, e *protocol.Entry) error {
	verdict, why := judge(m, e)
	return checkRules(v, e, verdict, why)
}

// checkRules is CheckRules with the membership's verdict on e given
// (Decide has it already: judging once per entry).
func checkRules(v Rules, e *protocol.Entry, verdict membership.Verdict, why string) error {
	if verdict != membership.In {
		return &MemberError{Entry: e, Verdict: verdict, Why: why}
	}
	kind := e.Kind()
	if _, ruled := targetKinds[kind]; !ruled {
		return nil
	}
	target := ownTarget(e)
	var t Ref
	found := false
	if id, ok := idFrom(target); ok {
		var err error
		if t, found, err = v.Ref(id); err != nil {
			return err
		}
	}
	if err := CheckTarget(kind, e.ID, e.Author, e.Seq(), target, t, found); err != nil {
		return err
	}
	if kind == protocol.KindRetraction {
		id, _ := idFrom(target)
		by, done, err := v.RetractedBy(id)
		if err != nil {
			return err
		}
		if done && by != e.ID {
			return fmt.Errorf("%w: retraction %s: target %x is already retracted by %x", ErrRule, e.ID, target, by[:])
		}
	}
	return nil
}

func kindList(ks []protocol.Kind) string {
	s := ""
	for i, k := range ks {
		if i > 0 {
			s += " or "
		}
		s += string(k)
	}
	return s
}

func idFrom(b []byte) (protocol.ID, bool) {
	var id protocol.ID
	if len(b) != protocol.IDSize {
		return id, false
	}
	copy(id[:], b)
	return id, true
}
