// Package kind holds the kinds of error the node's operations return, so
// that a caller (the HTTP API, the CLI) can tell a wrong request from a
// forbidden one or a missing entry without parsing messages. An error
// wraps one of them with %w; the protocol's or the store's sentinel, when
// there is one, is wrapped beside it, so errors.Is finds both.
package kind

import (
	"errors"

	"github.com/staydown/staydown/store"
)

var (
	// ErrInvalid: the request is wrong (the API answers 400).
	ErrInvalid = errors.New("invalid request")
	// ErrUnauthorized: the request presents no token the node knows
	// (401).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden: this node's role, or the request's token, may not do
	// it (403).
	ErrForbidden = errors.New("forbidden")
	// ErrNotFound: an entry or notice the request names is not stored
	// (404).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the request is well formed but the state it would
	// change does not allow it now, e.g. an amendment that cannot apply
	// to the roster version in force, or a second vote at one version
	// (409).
	ErrConflict = errors.New("conflict")
	// ErrNoSpace: the store could not write for lack of room (a full
	// disk, a quota, a file-size limit) (507). It is the store's own
	// sentinel: it arises deep in every write path, so the node does not
	// wrap it again.
	ErrNoSpace = store.ErrNoSpace
	// ErrUnavailable: the node cannot do it until something it waits for
	// happens, e.g. a publication while its own log, restored from its
	// peers, is not confirmed yet (503; SPEC 16.7).
	ErrUnavailable = errors.New("unavailable")
)
