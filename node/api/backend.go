package api

import (
	"context"
	"errors"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
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
	// Watch adds signals to the node's private watchlist (watchlist.go)
	// and raises an alert for every active attestation already stored
	// that matches one of the signals added. Errors wrap ErrInvalid or are
	// internal.
	Watch(ctx context.Context, signals []*pb.Signal) (WatchOutcome, error)
	// Unwatch removes signals from the watchlist. Alerts already raised
	// stay listed. Errors wrap ErrInvalid or are internal.
	Unwatch(ctx context.Context, signals []*pb.Signal) (UnwatchOutcome, error)
	// Alerts returns the alerts raised, oldest first, after seq since (0:
	// all), each attestation with its status now.
	Alerts(ctx context.Context, since uint64) ([]RaisedAlert, error)
	// Status describes the node now.
	Status(ctx context.Context) (Status, error)
	// Roster is the federation's roster (read-only).
	Roster() *protocol.Roster
}

// Query is one signal to match.
type Query struct {
	Signal *pb.Signal
	// Variants are, for a PDQ hash computed from an image, the hashes of
	// the image rotated and mirrored (pdq.FromReaderDihedral), matched as
	// well, so that a rotated or mirrored copy of known content matches.
	Variants []Variant
	// Quality is, for a PDQ hash computed from an image, its quality
	// (0..100): below the policy's min_quality the hash is not matched.
	// NoQuality for a hash given by the client, which is always matched.
	Quality int
}

// NoQuality is Query.Quality for a signal whose quality is not known.
const NoQuality = -1

// Variant is a rotated or mirrored form of a queried PDQ hash.
type Variant struct {
	Transform string // pdq.Dihedral's name, e.g. "rotate90"
	Hash      [32]byte
}

// Found is the answer to one Query.
type Found struct {
	// Attestations: for an exact signal, in the store's order (author,
	// seq); for PDQ, nearest first, then by hash, then in the store's
	// order.
	Attestations []FoundAttestation
	Verdict      Verdict
	// Skipped, when not empty, says why the signal was not matched (a PDQ
	// hash below the policy's min_quality); Attestations is then empty.
	Skipped string
}

// FoundAttestation is one attestation of a Found, with where it was found.
type FoundAttestation struct {
	store.Attestation
	// PDQ only: the stored hash that the attestation carries, its Hamming
	// distance from the query, and which variant of the query it is
	// nearest to ("" for the query itself).
	Hash      [32]byte
	Distance  int
	Transform string
}

// Verdict is what the node's local policy makes of a match result.
type Verdict string

// Verdicts, weakest first.
const (
	VerdictNone   Verdict = "none"   // nothing to act on
	VerdictReview Verdict = "review" // a human should look
	VerdictBlock  Verdict = "block"  // act without waiting for a human
)

// Stronger returns the stronger of two verdicts.
func (v Verdict) Stronger(w Verdict) Verdict {
	rank := map[Verdict]int{VerdictNone: 0, VerdictReview: 1, VerdictBlock: 2}
	if rank[w] > rank[v] {
		return w
	}
	return v
}

// Errors a Backend wraps, mapped to HTTP status codes by the server.
var (
	ErrInvalid   = errors.New("invalid request")
	ErrForbidden = errors.New("forbidden")
	ErrNotFound  = errors.New("not found")
)

// Status is the body of GET /v1/status, and `staydown status --json`.
type Status struct {
	ID          string            `json:"id"`   // this node's libp2p peer ID
	Name        string            `json:"name"` // member name
	Role        string            `json:"role"`
	Author      string            `json:"author"` // author key, hex
	Federation  string            `json:"federation"`
	Peers       int               `json:"peers"`       // connected roster peers
	TopicPeers  int               `json:"topic_peers"` // peers subscribed to the federation topic
	Entries     uint64            `json:"entries"`     // entries stored, all logs
	Heads       map[string]uint64 `json:"heads"`       // member name -> seq
	HeadsDigest string            `json:"heads_digest"`
	Flagged     []string          `json:"flagged"` // members caught equivocating
	Listen      []string          `json:"listen"`  // multiaddrs this node listens on
	// Catch-up: entries peers have announced that this node lacks, and,
	// while catching up, the rate of the catch-up (entries/s) and the time
	// it should still take.
	Behind            uint64  `json:"behind"`
	CatchupRate       float64 `json:"catchup_rate,omitempty"`
	CatchupETASeconds float64 `json:"catchup_eta_s,omitempty"`
}
