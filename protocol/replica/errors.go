package replica

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/membership"
)

// Sentinel errors. Errors returned by this package wrap one of them, or
// one of protocol's (ErrGap, ErrChain in a Step), or the View's own.
var (
	// ErrRule: the entry breaks a stateful rule of its author's own log
	// (SPEC 9.2). The author signed it, so a peer relaying it is not at
	// fault; a replica stores it as void, and an author's node never
	// publishes one.
	ErrRule = errors.New("stateful rule broken")

	// ErrView: the view contradicts itself (a head whose entry is
	// missing). The replica is damaged, not the entry.
	ErrView = errors.New("replica view inconsistent")

	// ErrEquivocation: the author signed two different entries for one
	// position of its log (SPEC 5.3). Step.Err is then an
	// *EquivocationError, which carries both.
	ErrEquivocation = errors.New("equivocation")

	// ErrMember: the membership in force does not take the entry as it
	// is (SPEC 12.5); the error is a *MemberError.
	ErrMember = errors.New("membership")
)

// EquivocationError is the evidence of an equivocation: the entry held in
// the author's log at Seq and the other one, both signed by the author.
// An operator or auditor acts on it as it is (Evidence).
type EquivocationError struct {
	Author protocol.AuthorKey
	Seq    uint64
	Logged []byte          // the entry held in the log at Seq, as signed
	Other  *protocol.Entry // the other entry, kept as evidence
}

func (e *EquivocationError) Error() string {
	return fmt.Sprintf("%v: author %s signed entries %s and %s for seq %d", ErrEquivocation, e.Author, protocol.IDOf(e.Logged), e.Other.ID, e.Seq)
}

func (e *EquivocationError) Unwrap() error { return ErrEquivocation }

// Evidence is the two signed entries, the logged one first.
func (e *EquivocationError) Evidence() [][]byte { return [][]byte{e.Logged, e.Other.Raw} }

// RuleError is why an entry is void (it wraps ErrRule), with the entry
// and the target it names. Its message is the reason the replica stores
// beside the entry, unchanged.
type RuleError struct {
	Entry  *protocol.Entry
	Target []byte // the entry id it names (OwnTarget)
	Err    error  // wraps ErrRule
}

func (e *RuleError) Error() string { return e.Err.Error() }
func (e *RuleError) Unwrap() error { return e.Err }

// MemberError is why the membership in force does not take an entry as
// it is (SPEC 12.5): its verdict and the reason. It wraps ErrMember, and
// ErrRule too when the entry is logged void (outside its key's end, or a
// role that may not write it).
type MemberError struct {
	Entry   *protocol.Entry
	Verdict membership.Verdict
	Why     string
}

func (e *MemberError) Error() string {
	return fmt.Sprintf("%v: %s (%s)", ErrMember, e.Why, e.Verdict)
}

func (e *MemberError) Unwrap() []error {
	if e.Verdict == membership.Outside || e.Verdict == membership.Role {
		return []error{ErrMember, ErrRule}
	}
	return []error{ErrMember}
}

// ChainError is why an entry that would be the author's next does not
// continue the log held (it wraps protocol.ErrChain): the entry, and the
// head it should have followed. The author forked at or before that
// head; sync fetches the evidence.
type ChainError struct {
	Entry *protocol.Entry
	Head  protocol.Head
	Err   error
}

func (e *ChainError) Error() string { return e.Err.Error() }
func (e *ChainError) Unwrap() error { return e.Err }

// equivocation is the evidence of e against the entry logged at its seq,
// copied: logged may belong to a transaction that ends before the
// result is read.
func equivocation(e *protocol.Entry, logged []byte) *EquivocationError {
	return &EquivocationError{Author: e.Author, Seq: e.Seq(), Logged: bytes.Clone(logged), Other: e}
}
