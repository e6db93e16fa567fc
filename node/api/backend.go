package api

import (
	"context"

	"github.com/staydown/staydown/node/kind"
	"github.com/staydown/staydown/node/matching"
	"github.com/staydown/staydown/node/status"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// Backend is what the HTTP API needs from a running node. node.Node
// implements it; tests may use a fake.
type Backend interface {
	// Publish fills in the header of body (federation, author, seq, prev,
	// timestamp) around the payload it carries, signs it with this node's
	// author key, stores it and gossips it. Errors wrap ErrInvalid (the
	// payload is wrong: answer 400), ErrForbidden (this node's role may not
	// write it: 403), ErrNotFound (a referenced entry is unknown: 404), or
	// are internal (500).
	Publish(ctx context.Context, body *pb.Entry) (*protocol.Entry, error)
	// Match answers each query, in order: every attestation of the signal
	// (for a PDQ hash, of every stored hash within the node's threshold of
	// it or of one of its variants) with its status now, and the verdict
	// of the node's policy. Errors wrap ErrInvalid (a bad signal: 400) or
	// are internal (500). Results may share memory with the node's caches:
	// callers must not change them.
	Match(ctx context.Context, queries []Query) ([]Found, error)
	// Watch adds signals to the node's private watchlist (node/matching/watchlist.go),
	// each with the caller's ref if it has one, and raises an alert for
	// every active attestation already stored that matches one of the
	// signals added. Errors wrap ErrInvalid or are internal.
	Watch(ctx context.Context, items []WatchItem) (WatchOutcome, error)
	// Unwatch removes signals from the watchlist, or for an item with a
	// ref that ref (the signal goes with its last ref). Alerts already
	// raised stay listed. Errors wrap ErrInvalid or are internal.
	Unwatch(ctx context.Context, items []WatchItem) (UnwatchOutcome, error)
	// Watchlist returns up to limit watched signals after the signal key
	// after (nil: from the first), in key order, with their refs. Errors
	// are internal.
	Watchlist(ctx context.Context, after []byte, limit int) (WatchPage, error)
	// Alerts returns the alerts raised, oldest first, after seq since (0:
	// all), each attestation with its status now.
	Alerts(ctx context.Context, since uint64) ([]RaisedAlert, error)
	// Status describes the node now.
	Status(ctx context.Context) (Status, error)
	// Roster is the federation's roster (read-only).
	Roster() *protocol.Roster
}

// The domain types of matching and the watchlist, under the names the
// API has always used for them.
type (
	Query            = matching.Query
	Variant          = matching.Variant
	Found            = matching.Found
	FoundAttestation = matching.FoundAttestation
	Verdict          = matching.Verdict
	WatchItem        = matching.WatchItem
	WatchPage        = matching.WatchPage
	WatchedSignal    = matching.WatchedSignal
	WatchOutcome     = matching.WatchOutcome
	UnwatchOutcome   = matching.UnwatchOutcome
	RaisedAlert      = matching.RaisedAlert
)

// NoQuality is Query.Quality for a signal whose quality is not known.
const NoQuality = matching.NoQuality

// Verdicts, weakest first.
const (
	VerdictNone   = matching.VerdictNone
	VerdictReview = matching.VerdictReview
	VerdictBlock  = matching.VerdictBlock
)

// Errors a Backend wraps, mapped to HTTP status codes by the server: the
// kinds of the node's errors (package kind).
var (
	ErrInvalid   = kind.ErrInvalid
	ErrForbidden = kind.ErrForbidden
	ErrNotFound  = kind.ErrNotFound
	ErrConflict  = kind.ErrConflict
	ErrNoSpace   = kind.ErrNoSpace
	// ErrUnavailable is 503: not now (a node whose own head, restored
	// from its peers, is not confirmed yet refuses to publish).
	ErrUnavailable = kind.ErrUnavailable
)

// Status is the body of GET /v1/status, and `staydown status --json`: the
// node's own description of itself (package status).
type Status = status.Status

// Peer is another member's node as this node sees it (Status.Members).
type Peer = status.Peer

// Clash is status.Clash: the evidence that another process runs the
// node's identity (SPEC 13.1).
type Clash = status.Clash
