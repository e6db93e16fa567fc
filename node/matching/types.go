package matching

import (
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

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
	// For vpdq: the attestations of each stored video that matches (its
	// comparison in Video), best match first, then those of the same
	// value stored exactly that near matching did not find.
	Attestations []FoundAttestation
	// FrameHits are, for vpdq, the attestations of stored images (PDQ)
	// near some frame of the queried video: a still of known content in
	// it. They weigh in the verdict as an image match does.
	FrameHits []FoundAttestation
	Verdict   Verdict
	// Skipped, when not empty, says why the signal was not matched (a PDQ
	// hash, or every frame of a vpdq signal, below the policy's
	// min_quality); Attestations is then empty, except for a vpdq value
	// stored exactly.
	Skipped string
}

// VideoMatch is how a stored video compares with a queried one (vmatch):
// frames counted after deduplication and the quality filter.
type VideoMatch struct {
	QueryPercent    float64 // 100 * QueryMatched / QueryFrames
	ComparedPercent float64 // 100 * ComparedMatched / ComparedFrames
	QueryFrames     int
	QueryMatched    int // query frames near some frame of the stored video
	ComparedFrames  int
	ComparedMatched int // stored frames near some frame of the query
	// Segments are the runs of consecutive query frames that match, by
	// the timestamps of their first and last frame.
	Segments []Segment
}

// Segment is a run of a video, from and to timestamps in milliseconds.
type Segment struct {
	FromMs, ToMs uint32
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
	// Video is, for a vpdq query, how the stored video this attestation
	// carries compares with the query; nil for an exact match and for
	// frame hits.
	Video *VideoMatch
	// FrameTimesMs are, for a frame hit (Found.FrameHits), the timestamps
	// in ms of the query's frames within the threshold of Hash.
	FrameTimesMs []uint32
	// Via is, for a domain or url query, the stored domain signal
	// (TYPE:VALUE) that covers the query's domain or host, when that is
	// not the query itself: "domain:*.example.org" for www.example.org.
	Via string
	// Ignored, when not nil, is one flag per Reasons: an allow entry or
	// a dispute by a member the node's policy does not trust for the
	// attestation's labels, which the verdict ignores (shown so that a
	// verdict that disregards a status says why).
	Ignored []bool
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

// WatchItem is a signal to watch or unwatch, with the caller's ref to
// the item it hosts that carries it ("" for none; store.CheckWatchRef
// says what a ref may be).
type WatchItem struct {
	Signal *pb.Signal
	Ref    string
}

// UnwatchOutcome is what Matching.Unwatch did.
type UnwatchOutcome struct {
	Removed, Unknown, Total int
	Refs                    int // refs detached from signals that stay watched
}

// WatchOutcome is what Matching.Watch did.
type WatchOutcome struct {
	Added, Known, Total int
	Refs                int // refs attached that their signal did not have
	Alerts              []RaisedAlert
}

// WatchedSignal is a signal on the watchlist with its refs.
type WatchedSignal struct {
	Signal *pb.Signal
	Key    []byte   // protocol.SignalKey(Signal): the list's order, and its cursor
	Refs   []string // in the order added
}

// WatchPage is a page of the watchlist (Matching.Watchlist).
type WatchPage struct {
	Signals []WatchedSignal // in key order
	More    bool            // a page follows: ask after the last key
	Total   int             // signals on the watchlist now
}

// RaisedAlert is an alert as the node keeps it.
type RaisedAlert struct {
	Seq         uint64
	RaisedMs    int64
	Watched     *pb.Signal
	Signal      *pb.Signal
	Distance    int // pdq only
	Attestation store.Attestation
	// Refs are the refs of Watched when the alert was raised: which
	// hosted items to take down.
	Refs []string
}
