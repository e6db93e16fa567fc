package protocol

import "errors"

// Sentinel errors. Every error this package returns wraps exactly one of
// them (test with errors.Is) and adds the field and the problem.
var (
	// ErrMalformed: the bytes are not a well-formed v1 entry or payload.
	// A peer that sends it is penalised.
	ErrMalformed = errors.New("malformed entry")
	// ErrTooLarge: the signed entry exceeds MaxEntrySize.
	ErrTooLarge = errors.New("entry too large")
	// ErrBadSignature: the signature does not verify under the author key.
	ErrBadSignature = errors.New("bad signature")
	// ErrUnknownAuthor: the author key is not in the roster.
	ErrUnknownAuthor = errors.New("author not in roster")
	// ErrRole: the author's role may not write this payload.
	ErrRole = errors.New("role may not write payload")
	// ErrFederation: the entry belongs to another federation.
	ErrFederation = errors.New("wrong federation")
	// ErrChain: seq or prev do not continue the author's log.
	ErrChain = errors.New("broken chain")
	// ErrGap: the entry is ahead of the known head; its predecessors are
	// missing. Not misbehaviour: fetch the gap and try again.
	ErrGap = errors.New("predecessor missing")
	// ErrSignal: a user-supplied signal could not be parsed.
	ErrSignal = errors.New("bad signal")
	// ErrLabel: a label is not in the controlled vocabulary.
	ErrLabel = errors.New("bad label")
	// ErrKey: a key or id could not be parsed.
	ErrKey = errors.New("bad key")
	// ErrRoster: a roster is inconsistent (duplicate or invalid members).
	ErrRoster = errors.New("bad roster")
)
