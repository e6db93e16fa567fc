package replica

import "errors"

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
)
