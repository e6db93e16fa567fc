// Package vmatch matches videos by their vPDQ frame hashes (SPEC.md 7.6):
// for a query video and each stored video it computes the query match
// percentage and the compared match percentage as python-threatexchange
// defines them, through a frame index over every stored video's frames.
// It does no I/O.
//
// # Definition
//
// It follows python-threatexchange (extensions/vpdq/vpdq_brute_matcher.py,
// match_VPDQ_hash_brute, with the defaults of vpdq_util.py):
//
//  1. Each side's frames are deduplicated, keeping the first frame of each
//     distinct hash in the given order (vpdq_util.dedupe), then filtered
//     to quality >= MinQuality, default 50 (VPDQ_QUALITY_THRESHOLD;
//     quality_filter keeps f.quality >= tolerance).
//  2. A frame of one side matches when some remaining frame of the other
//     side is within MaxDistance bits, default 31, inclusive
//     (VPDQ_DISTANCE_THRESHOLD; simple_distance(...) <= distance_tolerance).
//  3. The query match percentage is 100 x the query's matching frames /
//     its remaining frames; the compared match percentage the same for the
//     stored video. A video matches when the first is >= QueryPercent,
//     default 80 (VPDQ_QUERY_MATCH_THRESHOLD_PERCENT), and the second >=
//     ComparedPercent, default 0 (VPDQ_INDEX_MATCH_THRESHOLD_PERCENT).
//
// The reference C++ matcher (vpdq/cpp/hashing/matchTwoHash.cpp,
// matchTwoHashBrute) differs in two ways: it does not deduplicate, and two
// frames match when their distance is < distanceTolerance (strictly). Its
// "< 31" is MaxDistance 30 here; its lack of dedupe only matters for a
// hash repeated non-consecutively (the wire form already drops
// consecutive repeats). A side with no frame left after step 1 matches
// nothing (python-threatexchange would divide by zero).
//
// # Index
//
// [Index] keeps every stored video's remaining frames (after step 1) in a
// [match.PDQIndex], the node's multi-index-hashing PDQ index, under the
// ref (video << 11 | frame position). A query looks up each of its frames
// at MaxDistance, and counts per candidate video which query frames and
// which of the video's frames met; a video none of whose frames is near
// the query's is not a candidate and is not returned. The answer is that
// of [Compare] run against every stored video (tests hold it to that).
// On a large index the query's frames are looked up on every core. A
// [Builder] loads many videos at once (the node's start-up), one video at
// a time, into a single PDQ index Build.
package vmatch

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/staydown/staydown/node/match"
	"github.com/staydown/staydown/protocol"
)

// Frame is one hashed frame: PDQ hash, quality 0-100, timestamp in ms.
type Frame = protocol.VPDQFrame

// Params are the matching thresholds (package doc).
type Params struct {
	MinQuality      int     // frames below this quality are ignored; default 50
	MaxDistance     int     // frames within this many bits match (inclusive); default 31
	QueryPercent    float64 // a match needs a query match percentage >= this; default 80
	ComparedPercent float64 // and a compared match percentage >= this; default 0
}

// DefaultParams are python-threatexchange's defaults.
func DefaultParams() Params {
	return Params{MinQuality: 50, MaxDistance: 31, QueryPercent: 80, ComparedPercent: 0}
}

// Check reports parameters that make no sense. A query percentage of 0
// would make every stored video a match, including ones that share no
// frame with the query, which the index does not return; it is refused.
func (p Params) Check() error {
	switch {
	case p.MinQuality < 0 || p.MinQuality > protocol.MaxVPDQQuality:
		return fmt.Errorf("vpdq quality threshold %d: want 0 to %d", p.MinQuality, protocol.MaxVPDQQuality)
	case p.MaxDistance < 0 || p.MaxDistance > 64:
		return fmt.Errorf("vpdq distance threshold %d: want 0 to 64", p.MaxDistance)
	case !(p.QueryPercent > 0 && p.QueryPercent <= 100):
		return fmt.Errorf("vpdq query match threshold %v: want more than 0 and at most 100", p.QueryPercent)
	case !(p.ComparedPercent >= 0 && p.ComparedPercent <= 100):
		return fmt.Errorf("vpdq compared match threshold %v: want 0 to 100", p.ComparedPercent)
	}
	return nil
}

// Segment is a run of consecutive remaining query frames (step 1) that all
// match the candidate: the timestamps of its first and last frame, in ms.
type Segment struct {
	From, To uint32
}

// Result is one stored video compared with the query.
type Result struct {
	Ref             uint64  // the stored video's ref, as given to Add
	QueryPercent    float64 // 100 * QueryMatched / QueryFrames
	ComparedPercent float64 // 100 * ComparedMatched / ComparedFrames
	QueryMatched    int     // remaining query frames near some frame of the video
	QueryFrames     int     // remaining query frames
	ComparedMatched int     // remaining frames of the video near some query frame
	ComparedFrames  int     // remaining frames of the video
	Segments        []Segment
	Match           bool // both percentages meet their thresholds
}

// Prepare applies step 1 of the definition: the first frame of each
// distinct hash, in the given order, then those of quality >= minQuality.
func Prepare(frames []Frame, minQuality int) []Frame {
	seen := make(map[match.Hash]struct{}, len(frames))
	out := make([]Frame, 0, len(frames))
	for _, f := range frames {
		if _, ok := seen[f.Hash]; ok {
			continue
		}
		seen[f.Hash] = struct{}{}
		if int(f.Quality) >= minQuality {
			out = append(out, f)
		}
	}
	return out
}

func distance(a, b *match.Hash) int {
	n := 0
	for i := range a {
		n += bits.OnesCount8(a[i] ^ b[i])
	}
	return n
}

// Compare compares two videos by brute force, exactly as the package doc
// defines it; ref is copied into the result. Either side with no frame
// left after step 1 gives a zero Result with Match false.
func Compare(query, compared []Frame, ref uint64, p Params) Result {
	q, c := Prepare(query, p.MinQuality), Prepare(compared, p.MinQuality)
	r := Result{Ref: ref, QueryFrames: len(q), ComparedFrames: len(c)}
	if len(q) == 0 || len(c) == 0 {
		return Result{Ref: ref}
	}
	qm := make([]bool, len(q))
	cm := make([]bool, len(c))
	for i := range q {
		for j := range c {
			if distance(&q[i].Hash, &c[j].Hash) <= p.MaxDistance {
				qm[i], cm[j] = true, true
			}
		}
	}
	r.finish(q, qm, count(cm), p)
	return r
}

func count(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// finish fills the percentages, segments and verdict from the matched
// query frames and the count of matched compared frames.
func (r *Result) finish(q []Frame, qm []bool, comparedMatched int, p Params) {
	r.QueryMatched, r.ComparedMatched = count(qm), comparedMatched
	r.QueryPercent = 100 * float64(r.QueryMatched) / float64(r.QueryFrames)
	r.ComparedPercent = 100 * float64(r.ComparedMatched) / float64(r.ComparedFrames)
	for i := 0; i < len(q); i++ {
		if !qm[i] {
			continue
		}
		j := i
		for j+1 < len(q) && qm[j+1] {
			j++
		}
		r.Segments = append(r.Segments, Segment{From: q[i].Timestamp, To: q[j].Timestamp})
		i = j
	}
	r.Match = r.QueryMatched > 0 && r.QueryPercent >= p.QueryPercent && r.ComparedPercent >= p.ComparedPercent
}

// Limits of the index's refs: a frame's PDQ ref is video<<frameBits | position.
const (
	frameBits = 11
	// MaxFrames is the most frames a stored video may keep after step 1.
	MaxFrames = 1<<frameBits - 1
	// MaxRef is the largest video ref.
	MaxRef = 1<<(64-frameBits) - 1
)

// Index holds stored videos' frames for Query. Any number of goroutines
// may call Query while others call Add and Remove.
type Index struct {
	minQuality int
	pdq        *match.PDQIndex
	mu         sync.RWMutex
	frames     map[uint64]int // video ref -> its remaining frames
}

// NewIndex returns an empty index keeping frames of quality >= minQuality
// (Params.MinQuality of the queries it will answer).
func NewIndex(minQuality int) *Index {
	x := &Index{minQuality: minQuality, pdq: match.NewPDQIndex(), frames: map[uint64]int{}}
	x.pdq.MergeInBackground()
	return x
}

// Close stops the PDQ index's background work.
func (x *Index) Close() { x.pdq.Close() }

// MinQuality is the quality threshold the index was made with.
func (x *Index) MinQuality() int { return x.minQuality }

func (x *Index) prepare(ref uint64, frames []Frame) ([]Frame, error) {
	if ref > MaxRef {
		return nil, fmt.Errorf("vmatch: video ref %d is above %d", ref, MaxRef)
	}
	p := Prepare(frames, x.minQuality)
	if len(p) > MaxFrames {
		return nil, fmt.Errorf("vmatch: video %d keeps %d frames, more than %d", ref, len(p), MaxFrames)
	}
	return p, nil
}

// Build replaces the index's contents with the videos (refs[i],
// videos[i]); it is the start-up loader (see match.PDQIndex.Build). A
// loader that reads videos one at a time should use a [Builder] instead,
// which does not need them all in memory at once.
func (x *Index) Build(refs []uint64, videos [][]Frame) error {
	if len(refs) != len(videos) {
		return fmt.Errorf("vmatch: Build: %d refs but %d videos", len(refs), len(videos))
	}
	n := 0
	for _, v := range videos {
		n += len(v)
	}
	b := x.NewBuilder(len(refs), n)
	for i, ref := range refs {
		if err := b.Add(ref, videos[i]); err != nil {
			return err
		}
	}
	b.Finish()
	return nil
}

// Builder gathers videos for a bulk load of an Index (the start-up
// loader): Add each video, then Finish replaces the index's contents with
// them in one match.PDQIndex.Build. It keeps only the frames' hashes and
// refs (40 bytes a frame), not the frames given to Add, which the caller
// may reuse. One goroutine uses a Builder; the index answers queries with
// its old contents until Finish.
type Builder struct {
	x      *Index
	counts map[uint64]int // video ref -> its remaining frames
	hs     []match.Hash
	refs   []uint64
	seen   map[match.Hash]struct{} // Prepare's, reused between videos
	prefix []uint64                // the first 8 bytes of each hash of a video, sorted
	done   bool
}

// NewBuilder returns a Builder for about videos videos of frames frames
// in all (hints that size its arrays; more or fewer are fine).
func (x *Index) NewBuilder(videos, frames int) *Builder {
	return &Builder{
		x:      x,
		counts: make(map[uint64]int, max(videos, 0)),
		hs:     make([]match.Hash, 0, max(frames, 0)),
		refs:   make([]uint64, 0, max(frames, 0)),
		seen:   map[match.Hash]struct{}{},
	}
}

// Add gathers the video's frames under ref, which must not have been
// added before. On error nothing of the video is kept.
func (b *Builder) Add(ref uint64, frames []Frame) error {
	if b.done {
		return fmt.Errorf("vmatch: Builder: Add after Finish")
	}
	if ref > MaxRef {
		return fmt.Errorf("vmatch: video ref %d is above %d", ref, MaxRef)
	}
	if _, dup := b.counts[ref]; dup {
		return fmt.Errorf("vmatch: Build: video ref %d twice", ref)
	}
	// Prepare, appending straight to hs and refs. Most videos repeat no
	// hash, and sorting their hashes' first 8 bytes shows it for a tenth
	// of what filling a map costs; the map is needed only when two of
	// those are equal.
	b.prefix = b.prefix[:0]
	for i := range frames {
		b.prefix = append(b.prefix, binary.LittleEndian.Uint64(frames[i].Hash[:8]))
	}
	slices.Sort(b.prefix)
	dedupe := false
	for i := 1; i < len(b.prefix); i++ {
		if b.prefix[i] == b.prefix[i-1] {
			dedupe = true
			break
		}
	}
	clear(b.seen)
	n0 := len(b.hs)
	for _, f := range frames {
		if dedupe {
			if _, ok := b.seen[f.Hash]; ok {
				continue
			}
			b.seen[f.Hash] = struct{}{}
		}
		if int(f.Quality) < b.x.minQuality {
			continue
		}
		pos := len(b.hs) - n0
		if pos >= MaxFrames {
			b.hs, b.refs = b.hs[:n0], b.refs[:n0]
			return fmt.Errorf("vmatch: video %d keeps more than %d frames", ref, MaxFrames)
		}
		b.hs = append(b.hs, f.Hash)
		b.refs = append(b.refs, ref<<frameBits|uint64(pos))
	}
	b.counts[ref] = len(b.hs) - n0
	return nil
}

// Finish replaces the index's contents with the videos added, and makes
// the Builder unusable.
func (b *Builder) Finish() {
	if b.done {
		return
	}
	b.done = true
	x := b.x
	x.mu.Lock()
	defer x.mu.Unlock()
	x.pdq.Build(b.hs, b.refs)
	x.frames = b.counts
	b.hs, b.refs, b.counts, b.seen = nil, nil, nil, nil
}

// Add stores a video's frames under ref, which must not be stored yet.
func (x *Index) Add(ref uint64, frames []Frame) error {
	p, err := x.prepare(ref, frames)
	if err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, dup := x.frames[ref]; dup {
		return fmt.Errorf("vmatch: video ref %d is already stored", ref)
	}
	x.frames[ref] = len(p)
	for j, f := range p {
		x.pdq.Add(f.Hash, ref<<frameBits|uint64(j))
	}
	return nil
}

// Remove takes out the video stored under ref with these frames (the
// frames given to Add) and reports whether it was there.
func (x *Index) Remove(ref uint64, frames []Frame) bool {
	p, err := x.prepare(ref, frames)
	if err != nil {
		return false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, ok := x.frames[ref]; !ok {
		return false
	}
	delete(x.frames, ref)
	for j, f := range p {
		x.pdq.Remove(f.Hash, ref<<frameBits|uint64(j))
	}
	return true
}

// Videos returns the number of stored videos.
func (x *Index) Videos() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.frames)
}

// Frames returns the number of stored frame hashes.
func (x *Index) Frames() int { return x.pdq.Len() }

type candidate struct {
	qm []bool
	cm map[uint32]struct{}
}

// Query compares the query video with every stored video that has a frame
// within p.MaxDistance of one of the query's, and returns them: matches
// first, then by query percentage, compared percentage (both descending)
// and ref. Each Result equals Compare(query, stored, ref, p). It fails if
// p is not valid or p.MinQuality is not the index's.
func (x *Index) Query(query []Frame, p Params) ([]Result, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	if p.MinQuality != x.minQuality {
		return nil, fmt.Errorf("vmatch: query at quality %d, index built at %d", p.MinQuality, x.minQuality)
	}
	q := Prepare(query, p.MinQuality)
	if len(q) == 0 {
		return nil, nil
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	cands := map[uint64]*candidate{}
	for i, ms := range x.lookup(q, p.MaxDistance) {
		for _, m := range ms {
			ref, pos := m.Ref>>frameBits, uint32(m.Ref&MaxFrames)
			c := cands[ref]
			if c == nil {
				c = &candidate{qm: make([]bool, len(q)), cm: map[uint32]struct{}{}}
				cands[ref] = c
			}
			c.qm[i] = true
			c.cm[pos] = struct{}{}
		}
	}
	var out []Result
	for ref, c := range cands {
		n, ok := x.frames[ref]
		if !ok {
			continue
		}
		r := Result{Ref: ref, QueryFrames: len(q), ComparedFrames: n}
		r.finish(q, c.qm, len(c.cm), p)
		out = append(out, r)
	}
	slices.SortFunc(out, compareResults)
	return out, nil
}

// parallelFrom is the number of stored frames from which Query looks its
// frames up on several cores: below it a lookup costs less than handing
// it to another goroutine. Above it, at 10M frames, one lookup at distance
// 31 costs about 0.5 ms of CPU, and a 60-frame query is that 60 times.
var parallelFrom = 1 << 16 // a variable for tests

// lookup returns the PDQ index's matches of each query frame within t,
// out[i] those of q[i]. Each frame's lookup is independent of the
// others', so on a large index they are spread over GOMAXPROCS
// goroutines, each taking the next frame not yet taken; the caller's
// goroutine is one of them.
func (x *Index) lookup(q []Frame, t int) [][]match.PDQMatch {
	out := make([][]match.PDQMatch, len(q))
	workers := min(runtime.GOMAXPROCS(0), len(q))
	if workers < 2 || x.pdq.Len() < parallelFrom {
		for i := range q {
			out[i] = x.pdq.Query(q[i].Hash, t)
		}
		return out
	}
	var next atomic.Int32
	work := func() {
		for i := int(next.Add(1)) - 1; i < len(q); i = int(next.Add(1)) - 1 {
			out[i] = x.pdq.Query(q[i].Hash, t)
		}
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
	return out
}

func compareResults(a, b Result) int {
	if a.Match != b.Match {
		if a.Match {
			return -1
		}
		return 1
	}
	if c := cmp.Compare(b.QueryPercent, a.QueryPercent); c != 0 {
		return c
	}
	if c := cmp.Compare(b.ComparedPercent, a.ComparedPercent); c != 0 {
		return c
	}
	return cmp.Compare(a.Ref, b.Ref)
}
