package match

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
)

const (
	// defaultMergeMin: a delta (plus removed entries) smaller than this is
	// never merged.
	defaultMergeMin = 1 << 16
	// mergeRatio: a delta (plus dead entries) of more than 1/mergeRatio of
	// the sorted segment is merged into it, so merging costs O(mergeRatio)
	// entry copies per Add, amortised, and the delta's extra memory stays
	// under 1/mergeRatio of the index's.
	mergeRatio = 8
)

// PDQIndex finds the stored PDQ hashes within a Hamming distance of a query,
// returning exactly what a scan of every stored pair returns (BruteForce in
// the tests). It holds a multiset of (hash, ref) pairs: a hash may be stored
// with many refs, and a pair added twice is stored twice.
//
// Any number of goroutines may call Query and Len while one calls Add,
// Remove or Build; writers are serialised, so several may call them, but the
// index is meant for a single writer (the node's apply loop). A query sees
// each write entirely or not at all.
type PDQIndex struct {
	// wmu allows one writer at a time. Holding it, a writer may read base
	// and delta without mu, since only writers change them, and does the
	// slow part of a Build or merge that way while queries go on. Lock
	// order: wmu, then mu.
	wmu sync.Mutex

	// mu guards base and delta: the pointers and every change to the
	// segments (appends to delta, dead bits, ndead). Query and Len hold it
	// for reading. Writers hold it for writing only to append one entry,
	// set one dead bit or swap in a new segment, never for a build.
	mu    sync.RWMutex
	base  *sortedSegment
	delta *deltaSegment
	// frozen, during a background merge, is the delta being merged with
	// base into a new sorted segment: no longer added to (Adds go to a new
	// delta), still searched, and its entries and base's may still be
	// removed. nil otherwise.
	frozen *deltaSegment

	// Background merges (MergeInBackground), guarded by wmu: whether one
	// runs, closed when it ends, the pairs removed from base or frozen
	// since it took its snapshot (to remove again from the merged
	// segment), and an epoch that Build bumps so that a merge of contents
	// Build replaced is dropped.
	background bool
	merging    bool
	mergeDone  chan struct{}
	removed    []removal
	epoch      uint64

	// Tuning, set by NewPDQIndex; tests change them to exercise merges,
	// the probing of large radii on small data, and geometries meant for
	// millions of entries on thousands.
	mergeMin  int                // smallest delta worth merging
	mergeHook func()             // if set, a background merge calls it before it swaps (tests)
	closed    atomic.Bool        // set by Close: a background merge gives up
	probeOnly bool               // never scan, however cheaper
	geometry  func(int) geometry // for a sorted segment of that many entries
}

type removal struct {
	w   words
	ref uint64
}

// MergeInBackground makes the merges of the delta into the sorted segment
// (see Add) run on a goroutine of their own instead of in the Add or
// Remove that triggers them, so that a writer is never kept waiting for
// one: the full delta is frozen (searched, no longer added to), Adds go
// to a new delta, and the merged segment replaces the old one and the
// frozen delta when it is ready. Queries are exact throughout. Call it
// before the first write.
func (x *PDQIndex) MergeInBackground() {
	x.wmu.Lock()
	x.background = true
	x.wmu.Unlock()
}

// Close stops a background merge that runs (it gives up at its next
// step, within a fraction of a second at ten million hashes) and waits for
// it to end. The index still answers queries, but must not be added to
// or removed from (an abandoned merge's frozen delta is not merged again):
// call it when the index is about to be dropped.
func (x *PDQIndex) Close() {
	x.closed.Store(true)
	x.WaitMerge()
}

// WaitMerge returns once no background merge runs.
func (x *PDQIndex) WaitMerge() {
	for {
		x.wmu.Lock()
		merging, done := x.merging, x.mergeDone
		x.wmu.Unlock()
		if !merging {
			return
		}
		<-done
	}
}

// NewPDQIndex returns an empty index.
func NewPDQIndex() *PDQIndex {
	return &PDQIndex{
		base:     &sortedSegment{},
		delta:    newDelta(),
		mergeMin: defaultMergeMin,
		geometry: geometryFor,
	}
}

// maxEntries: positions are uint32.
const maxEntries = math.MaxUint32

// Build replaces the contents of the index with the pairs (hs[i], refs[i]),
// as if the index were emptied and each pair added. It is the start-up
// loader: it sorts and indexes everything in one go, using every core
// (about 3 s for 10 million pairs), where adding them one at a time would
// merge over and over. Queries running meanwhile see the old contents
// until Build returns. Build does not retain hs or refs. It panics if they
// differ in length.
func (x *PDQIndex) Build(hs []Hash, refs []uint64) {
	if len(hs) != len(refs) {
		panic(fmt.Sprintf("match: Build: %d hashes but %d refs", len(hs), len(refs)))
	}
	if len(hs) > maxEntries {
		panic(fmt.Sprintf("match: Build: %d hashes, more than %d", len(hs), maxEntries))
	}
	x.wmu.Lock()
	defer x.wmu.Unlock()
	var w words
	base := buildSorted(len(hs), x.geometry(len(hs)), func(i int) (*words, uint64) {
		w = load(&hs[i])
		return &w, refs[i]
	}, nil)
	x.mu.Lock()
	x.base, x.delta, x.frozen = base, newDelta(), nil
	x.mu.Unlock()
	// A background merge still running merges what was there before: it
	// will see the epoch changed and drop its work.
	x.epoch++
	x.merging, x.removed = false, nil
}

// Add stores the pair (h, ref). It holds the write lock only to append to
// the delta's 16 maps, about 5 microseconds, except that once the delta and
// the removed entries reach both 65,536 and 1/8 of the sorted segment, it
// also merges them into a new sorted segment. The merge runs without
// blocking queries, in the caller's goroutine unless MergeInBackground
// was called; at 10 million entries it takes about as long as a Build of
// them (3 to 5 s: BenchmarkPDQMergeStall10M) and needs memory for both
// segments until it ends.
func (x *PDQIndex) Add(h Hash, ref uint64) {
	w := load(&h)
	x.wmu.Lock()
	defer x.wmu.Unlock()
	frozen := 0
	if x.frozen != nil {
		frozen = len(x.frozen.hashes)
	}
	if len(x.base.hashes)+frozen+len(x.delta.hashes) >= maxEntries {
		panic(fmt.Sprintf("match: Add: index full (%d entries)", maxEntries))
	}
	x.mu.Lock()
	x.delta.add(&w, ref)
	x.mu.Unlock()
	x.maybeMerge()
}

// Remove takes out one copy of the pair (h, ref) and reports whether there
// was one. Its cost is that of an exact lookup, plus a merge now and then as
// for Add.
func (x *PDQIndex) Remove(h Hash, ref uint64) bool {
	w := load(&h)
	x.wmu.Lock()
	defer x.wmu.Unlock()
	if i, ok := x.delta.find(&w, ref); ok {
		x.mu.Lock()
		x.delta.dead.set(i)
		x.delta.ndead++
		x.mu.Unlock()
	} else if i, ok := x.findFrozen(&w, ref); ok {
		x.mu.Lock()
		x.frozen.dead.set(i)
		x.frozen.ndead++
		x.mu.Unlock()
		x.removed = append(x.removed, removal{w, ref})
	} else if i, ok := x.base.find(&w, ref); ok {
		x.mu.Lock()
		x.base.dead.set(i)
		x.base.ndead++
		x.mu.Unlock()
		if x.merging {
			x.removed = append(x.removed, removal{w, ref})
		}
	} else {
		return false
	}
	x.maybeMerge()
	return true
}

func (x *PDQIndex) findFrozen(w *words, ref uint64) (uint32, bool) {
	if x.frozen == nil {
		return 0, false
	}
	return x.frozen.find(w, ref)
}

// maybeMerge folds the delta and the dead entries into a new sorted
// segment once they are worth it, unless a merge runs already. The caller
// holds wmu.
func (x *PDQIndex) maybeMerge() {
	if x.merging {
		return
	}
	pending := len(x.delta.hashes) + x.base.ndead
	if pending < max(x.mergeMin, len(x.base.hashes)/mergeRatio) {
		return
	}
	if x.background {
		x.mergeBackground()
		return
	}
	base, delta := x.base, x.delta
	merged := x.mergeOf(base, base.livePositions(), delta, delta.livePositions(), nil)
	x.mu.Lock()
	x.base, x.delta = merged, newDelta()
	x.mu.Unlock()
}

// mergeOf builds one sorted segment of base's entries at positions bl
// and delta's at dl. It returns nil if stop (nil: never) says so meanwhile.
func (x *PDQIndex) mergeOf(base *sortedSegment, bl []uint32, delta *deltaSegment, dl []uint32, stop func() bool) *sortedSegment {
	n := len(bl) + len(dl)
	return buildSorted(n, x.geometry(n), func(i int) (*words, uint64) {
		if i < len(bl) {
			return &base.hashes[bl[i]], base.refs[bl[i]]
		}
		i = int(dl[i-len(bl)])
		return &delta.hashes[i], delta.refs[i]
	}, stop)
}

// mergeBackground freezes the delta and merges it with base on a new
// goroutine. The caller holds wmu. Base's entries and the frozen delta's
// do not change while the merge reads them, but for dead bits: the merge
// reads copies taken now, and removes again from the merged segment what
// was removed since (x.removed).
func (x *PDQIndex) mergeBackground() {
	base, frozen := x.base, x.delta
	baseDead, frozenDead := append(bitset(nil), base.dead...), append(bitset(nil), frozen.dead...)
	x.mu.Lock()
	x.frozen, x.delta = frozen, newDelta()
	x.mu.Unlock()
	x.merging, x.removed = true, nil
	epoch, done := x.epoch, make(chan struct{})
	x.mergeDone = done
	go func() {
		defer close(done)
		merged := x.mergeOf(base, livePositions(len(base.hashes), baseDead), frozen, livePositions(len(frozen.hashes), frozenDead), x.closed.Load)
		if x.mergeHook != nil {
			x.mergeHook()
		}
		x.wmu.Lock()
		defer x.wmu.Unlock()
		if merged == nil {
			// Closed: the index is being dropped, the merge with it.
			if x.epoch == epoch {
				x.merging = false
			}
			return
		}
		if x.epoch != epoch {
			return // Build replaced the contents meanwhile
		}
		for _, r := range x.removed {
			i, ok := merged.find(&r.w, r.ref)
			if !ok {
				panic(fmt.Sprintf("match: background merge: removed pair %x/%d not in the merged segment", r.w.hash(), r.ref))
			}
			merged.dead.set(i)
			merged.ndead++
		}
		x.mu.Lock()
		x.base, x.frozen = merged, nil
		x.mu.Unlock()
		x.merging, x.removed = false, nil
		x.maybeMerge() // the new delta may have grown enough meanwhile
	}()
}

// Len returns the number of pairs stored.
func (x *PDQIndex) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	n := x.base.live() + x.delta.live()
	if x.frozen != nil {
		n += x.frozen.live()
	}
	return n
}

// Query returns every stored pair whose hash is within threshold bits of q
// (Distance <= threshold), nearest first, then by hash bytes, then by ref:
// exactly BruteForce's answer. A negative threshold matches nothing; 256
// or more matches everything. The caller owns the slice.
//
// Each segment is probed or scanned, whichever its cost model says is
// cheaper (doc.go). At 10 million entries, thresholds up to 71 probe
// (threshold 31: 0.4 ms); from 72 a query scans every entry, about 8 ns
// each on the development machine (80 ms at 10 million), holding the read
// lock throughout, so delaying Add. Callers serving untrusted requests
// should cap the threshold.
func (x *PDQIndex) Query(q Hash, threshold int) []PDQMatch {
	if threshold < 0 {
		return nil
	}
	qw := load(&q)
	var out []PDQMatch
	x.mu.RLock()
	if b := x.base; len(b.hashes) > 0 {
		if p := b.geo.plan(threshold, len(b.hashes)); x.probeOnly || !p.scanCheaper(len(b.hashes)) {
			out = b.search(&qw, threshold, &p, out)
		} else {
			out = b.scan(&qw, threshold, out)
		}
	}
	for _, d := range [2]*deltaSegment{x.frozen, x.delta} {
		if d == nil || len(d.hashes) == 0 {
			continue
		}
		if p := deltaGeometry.plan(threshold, len(d.hashes)); x.probeOnly || !p.scanCheaper(len(d.hashes)) {
			out = d.search(&qw, threshold, &p, out)
		} else {
			out = d.scan(&qw, threshold, out)
		}
	}
	x.mu.RUnlock()
	sortMatches(out)
	return out
}
