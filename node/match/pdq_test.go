package match

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// extraThresholds are checked beside 0..63: the first thresholds whose plan
// changes shape, the default switch to scanning, and everything.
var extraThresholds = []int{64, 65, 79, 80, 100, 128, 200, 255, 256, 300}

func allThresholds() []int {
	ts := make([]int, 64)
	for i := range ts {
		ts[i] = i
	}
	return append(ts, extraThresholds...)
}

// TestReference holds the index to the reference implementation's
// multi-index-hashing test: every needle against the haystack, at every
// threshold, both as built in bulk and as added one by one.
func TestReference(t *testing.T) {
	haystack := readHashes(t, "mih-haystack.txt")
	needles := readHashes(t, "mih-needles.txt")
	if len(haystack) != 1350 || len(needles) != 100 {
		t.Fatalf("read %d haystack hashes and %d needles, want 1350 and 100", len(haystack), len(needles))
	}
	want := &pairs{hs: haystack, refs: sequentialRefs(0, len(haystack))}

	built := NewPDQIndex()
	built.Build(want.hs, want.refs)
	probing := newProbingIndex(1 << 20)
	probing.Build(want.hs, want.refs)
	added := newProbingIndex(100) // merges every 100 adds: ends with a base and a delta
	for i := range want.hs {
		added.Add(want.hs[i], want.refs[i])
	}
	if len(added.base.hashes) == 0 || len(added.delta.hashes) == 0 {
		t.Fatalf("added: base %d, delta %d entries; want both non-empty", len(added.base.hashes), len(added.delta.hashes))
	}

	ths := allThresholds()
	totals := make([]int, len(ths))
	for k, q := range needles {
		for i, n := range checkThresholds(t, built, want, q, ths) {
			totals[i] += n
		}
		// Probing at large radii visits every bucket of every chunk (a
		// million probes): a few needles suffice there.
		probed := ths[:slices.Index(ths, 80)+1]
		if k < 3 {
			probed = ths
		}
		checkThresholds(t, probing, want, q, probed)
		checkThresholds(t, added, want, q, probed)
	}
	var log strings.Builder
	for i, th := range ths {
		fmt.Fprintf(&log, " %d:%d", th, totals[i])
	}
	t.Logf("matches over all needles, threshold:count%s", log.String())
	checkIndex(t, built, want)
	checkIndex(t, probing, want)
	checkIndex(t, added, want)
}

// TestRandom checks every threshold on a seeded bank with near-duplicate
// clusters, after a Build, after adds on top of it (with and without
// merges), and after removes from both segments.
func TestRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	hs := bank(rng, 20000)
	qs := queries(rng, hs, 200)
	ths := allThresholds()[:64]

	for _, tc := range []struct {
		name    string
		index   *PDQIndex
		queries int // fewer where they add little: the wide chunks of 12 or 13 probe 100,000s of values at 63
	}{
		{"default", NewPDQIndex(), 200},
		{"merging", newProbingIndex(500), 200},
		{"probing", newProbingIndex(1 << 20), 50},
		{"13 chunks", withChunks(newProbingIndex(1<<20), 13), 20},
		{"12 chunks merging", withChunks(newProbingIndex(500), 12), 20},
		{"merging in background", inBackground(newProbingIndex(500)), 200},
		{"12 chunks merging in background", inBackground(withChunks(newProbingIndex(500), 12)), 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := tc.queries
			if raceEnabled {
				// A quarter of the queries (at least 10) under the race
				// detector, which CI runs: the brute force behind each
				// check costs 5 to 10 times more there; the changes to the
				// index, what the race detector watches, are the same.
				n = max(n/4, 10)
			}
			qs := qs[:n]
			x := tc.index
			rng := rand.New(rand.NewPCG(13, 14)) // the same changes for each index
			want := &pairs{hs: slices.Clone(hs), refs: sequentialRefs(0, len(hs))}
			checkAll := func(stage string) {
				t.Helper()
				total := 0
				for _, q := range qs {
					for _, n := range checkThresholds(t, x, want, q, ths) {
						total += n
					}
				}
				checkIndex(t, x, want)
				x.mu.RLock()
				base, delta := len(x.base.hashes), len(x.delta.hashes)
				x.mu.RUnlock()
				t.Logf("%s: %d pairs (base %d, delta %d), %d matches over %d queries x 64 thresholds",
					stage, x.Len(), base, delta, total, len(qs))
			}

			x.Build(want.hs, want.refs)
			checkAll("built")

			// Near-duplicates of stored hashes, some with a stored hash's ref
			// too, so that duplicate pairs span both segments.
			for i := range 3000 {
				h := flipBits(rng, want.hs[rng.IntN(len(want.hs))], rng.IntN(25))
				ref := uint64(100000 + i)
				if i%10 == 0 {
					h, ref = want.hs[i], want.refs[i]
				}
				x.Add(h, ref)
				want.add(h, ref)
			}
			checkAll("added")

			for i := range 2000 {
				var h Hash
				var ref uint64
				if i%5 == 4 {
					h, ref = randomHash(rng), 7 // absent
				} else {
					k := rng.IntN(len(want.hs))
					h, ref = want.hs[k], want.refs[k]
				}
				if got, exp := x.Remove(h, ref), want.remove(h, ref); got != exp {
					t.Fatalf("Remove(%x, %d) = %v, want %v", h, ref, got, exp)
				}
			}
			checkAll("removed")
			x.WaitMerge()
			checkAll("merges done")
		})
	}
}

func inBackground(x *PDQIndex) *PDQIndex {
	x.MergeInBackground()
	return x
}

// TestBackgroundMerge holds a background merge before it swaps, and
// meanwhile adds, removes (from the old sorted segment, from the frozen
// delta and from the new one) and queries: every answer is exact before,
// during and after the swap, and Build drops a merge it overtakes.
func TestBackgroundMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	hs := bank(rng, 3000)
	want := &pairs{hs: slices.Clone(hs[:1000]), refs: sequentialRefs(0, 1000)}
	x := inBackground(newProbingIndex(100))
	x.Build(want.hs, want.refs)
	hold, release := make(chan struct{}), make(chan struct{})
	x.mergeHook = func() { hold <- struct{}{}; <-release }
	checkAll := func(stage string) {
		t.Helper()
		for _, q := range queries(rng, hs, 30) {
			checkQuery(t, x, want, q, 40)
		}
		checkIndex(t, x, want)
	}
	// 125 adds (1/8 of 1,000) trigger a merge, which then waits.
	for i := 1000; i < 1125; i++ {
		x.Add(hs[i], uint64(i))
		want.add(hs[i], uint64(i))
	}
	<-hold
	x.wmu.Lock()
	frozen := x.frozen
	x.wmu.Unlock()
	if frozen == nil || len(frozen.hashes) != 125 {
		t.Fatalf("no frozen delta of 125 entries during the merge")
	}
	checkAll("merge running")
	for i := 1125; i < 1200; i++ { // into the new delta
		x.Add(hs[i], uint64(i))
		want.add(hs[i], uint64(i))
	}
	for _, k := range []int{3, 500, 999, 1000, 1100, 1124, 1150, 1199} { // base, frozen, new delta
		if !x.Remove(hs[k], uint64(k)) || !want.remove(hs[k], uint64(k)) {
			t.Fatalf("Remove(hs[%d]) = false", k)
		}
	}
	x.Add(hs[3], 3) // removed from the old base, added again
	want.add(hs[3], 3)
	checkAll("merge running, changed")
	release <- struct{}{}
	x.WaitMerge()
	x.wmu.Lock()
	if x.frozen != nil || len(x.base.hashes) != 1125 || x.base.ndead != 6 {
		t.Errorf("after the merge: frozen %v, base %d entries, %d dead; want 1125, 6 dead", x.frozen != nil, len(x.base.hashes), x.base.ndead)
	}
	x.wmu.Unlock()
	checkAll("merged")

	// A Build while a merge runs: the merge's result is dropped.
	for i := 1200; i < 1400; i++ {
		x.Add(hs[i], uint64(i))
		want.add(hs[i], uint64(i))
	}
	<-hold
	want = &pairs{hs: slices.Clone(hs[2000:]), refs: sequentialRefs(2000, 1000)}
	x.Build(want.hs, want.refs)
	release <- struct{}{}
	x.WaitMerge()
	x.mergeHook = nil
	checkAll("built over a merge")
}

func TestEdgeCases(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	a, b := randomHash(rng), randomHash(rng)
	near := flipBits(rng, a, 5)
	for _, tc := range []struct {
		name      string
		build     []Hash // loaded with Build, refs 0..
		add       []Hash // then added, refs 1000..
		q         Hash
		threshold int
		want      []PDQMatch
	}{
		{name: "empty", q: a, threshold: 256},
		{name: "empty built", build: []Hash{}, q: a, threshold: 31},
		{name: "negative threshold", build: []Hash{a}, q: a, threshold: -1},
		{name: "threshold 0 exact", build: []Hash{a, near, b}, q: a, threshold: 0,
			want: []PDQMatch{{a, 0, 0}}},
		{name: "threshold 0 miss", build: []Hash{near, b}, q: a, threshold: 0},
		{name: "threshold 4 misses 5", build: []Hash{near}, q: a, threshold: 4},
		{name: "threshold 5 finds 5", build: []Hash{near}, q: a, threshold: 5,
			want: []PDQMatch{{near, 0, 5}}},
		{name: "query equals stored", build: []Hash{b, near, a}, q: a, threshold: 31,
			want: []PDQMatch{{a, 2, 0}, {near, 1, 5}}},
		{name: "duplicates across segments", build: []Hash{a, b, a}, add: []Hash{a, near}, q: a, threshold: 10,
			want: []PDQMatch{{a, 0, 0}, {a, 2, 0}, {a, 1000, 0}, {near, 1001, 5}}},
		{name: "threshold 256", build: []Hash{a, b}, add: []Hash{near}, q: a, threshold: 256,
			want: BruteForce([]Hash{a, b, near}, []uint64{0, 1, 1000}, a, 256)},
		{name: "threshold above 256", build: []Hash{a, b}, q: b, threshold: 1 << 40,
			want: BruteForce([]Hash{a, b}, []uint64{0, 1}, b, 256)},
		{name: "complement", build: []Hash{a}, q: flipBits(rng, a, 256), threshold: 255},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, x := range []*PDQIndex{NewPDQIndex(), newProbingIndex(1)} {
				want := &pairs{}
				if tc.build != nil {
					refs := sequentialRefs(0, len(tc.build))
					x.Build(tc.build, refs)
					want.hs, want.refs = slices.Clone(tc.build), refs
				}
				for i, h := range tc.add {
					x.Add(h, 1000+uint64(i))
					want.add(h, 1000+uint64(i))
				}
				got := x.Query(tc.q, tc.threshold)
				if !slices.Equal(got, tc.want) {
					t.Errorf("Query: %s", diffMatches(got, tc.want))
				}
				if len(tc.want) == 0 && got != nil {
					t.Errorf("Query = %v, want nil", got)
				}
				checkQuery(t, x, want, tc.q, tc.threshold)
				checkIndex(t, x, want)
			}
		})
	}
}

func TestRemove(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	a, b := randomHash(rng), randomHash(rng)
	x := NewPDQIndex()
	x.Build([]Hash{a, a, b}, []uint64{1, 1, 2})
	x.Add(a, 1)
	x.Add(b, 3)
	want := &pairs{hs: []Hash{a, a, b, a, b}, refs: []uint64{1, 1, 2, 1, 3}}
	for _, step := range []struct {
		h    Hash
		ref  uint64
		want bool
	}{
		{a, 2, false}, // hash stored, not with this ref
		{b, 3, true},  // from the delta
		{b, 3, false},
		{a, 1, true}, // three copies: delta first, then base
		{a, 1, true},
		{a, 1, true},
		{a, 1, false},
		{b, 2, true},
		{b, 2, false},
	} {
		if got := x.Remove(step.h, step.ref); got != step.want {
			t.Fatalf("Remove(%x, %d) = %v, want %v", step.h[:4], step.ref, got, step.want)
		}
		want.remove(step.h, step.ref)
		checkQuery(t, x, want, a, 256)
		checkIndex(t, x, want)
	}
	if x.Len() != 0 {
		t.Fatalf("Len = %d after removing everything", x.Len())
	}
	x.Add(a, 9) // an emptied index still works
	want.add(a, 9)
	checkQuery(t, x, want, a, 0)
	checkIndex(t, x, want)
}

// TestMergeCompacts checks that enough removes fold the dead entries out of
// the sorted segment.
func TestMergeCompacts(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	hs := bank(rng, 1000)
	want := &pairs{hs: slices.Clone(hs), refs: sequentialRefs(0, len(hs))}
	x := newProbingIndex(100)
	x.Build(want.hs, want.refs)
	for _, h := range hs[:150] {
		if !x.Remove(h, want.refs[0]) {
			t.Fatalf("Remove(%x, %d) = false", h, want.refs[0])
		}
		want.remove(h, want.refs[0])
	}
	if x.base.ndead >= 100 || len(x.base.hashes) > 1000-100 {
		t.Fatalf("base has %d entries, %d dead: no merge after 150 removes", len(x.base.hashes), x.base.ndead)
	}
	for _, q := range queries(rng, hs, 20) {
		checkQuery(t, x, want, q, 40)
	}
	checkIndex(t, x, want)
}

// TestBuildReplaces checks that Build drops what was there, delta included.
func TestBuildReplaces(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	old, fresh := bank(rng, 300), bank(rng, 200)
	x := NewPDQIndex()
	x.Build(old, sequentialRefs(0, len(old)))
	x.Add(old[0], 77)
	x.Build(fresh, sequentialRefs(500, len(fresh)))
	want := &pairs{hs: fresh, refs: sequentialRefs(500, len(fresh))}
	checkQuery(t, x, want, old[0], 256)
	checkIndex(t, x, want)
}

// TestConcurrent runs queries while one writer adds (merging often) and
// removes; run it with -race. Every query must find the pinned hashes,
// stored before the readers start and never removed, whatever merge is
// under way, and may return only pairs that were added.
func TestConcurrent(t *testing.T) {
	t.Run("merging in place", func(t *testing.T) { testConcurrent(t, newProbingIndex(300)) })
	t.Run("merging in background", func(t *testing.T) { testConcurrent(t, inBackground(newProbingIndex(300))) })
}

func testConcurrent(t *testing.T, x *PDQIndex) {
	rng := rand.New(rand.NewPCG(11, 12))
	hs := bank(rng, 4000)
	pinned := hs[:50]
	x.Build(pinned, sequentialRefs(0, len(pinned)))

	var stop atomic.Bool
	var queriesRun atomic.Int64
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 99))
			for !stop.Load() {
				k := rng.IntN(len(pinned))
				th := rng.IntN(70)
				got := x.Query(pinned[k], th)
				queriesRun.Add(1)
				if !slices.ContainsFunc(got, func(m PDQMatch) bool { return m.Hash == pinned[k] && m.Ref == uint64(k) }) {
					t.Errorf("Query(pinned[%d], %d) lost it", k, th)
					return
				}
				for _, m := range got {
					if m.Distance != Distance(m.Hash, pinned[k]) || m.Distance > th {
						t.Errorf("Query(pinned[%d], %d) returned %x at distance %d", k, th, m.Hash, m.Distance)
						return
					}
				}
				if n := x.Len(); n < len(pinned) {
					t.Errorf("Len = %d, fewer than the pinned %d", n, len(pinned))
					return
				}
			}
		})
	}
	want := &pairs{hs: slices.Clone(pinned), refs: sequentialRefs(0, len(pinned))}
	for i, h := range hs[len(pinned):] {
		ref := uint64(len(pinned) + i)
		x.Add(h, ref)
		want.add(h, ref)
		if i%3 == 2 {
			k := len(pinned) + rng.IntN(len(want.hs)-len(pinned))
			h, ref := want.hs[k], want.refs[k]
			if !x.Remove(h, ref) {
				t.Errorf("Remove(%x, %d) = false", h, ref)
			}
			want.remove(h, ref)
		}
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d queries ran during %d adds", queriesRun.Load(), len(hs)-len(pinned))
	for _, q := range queries(rng, hs, 50) {
		checkQuery(t, x, want, q, 45)
	}
	checkIndex(t, x, want)
	x.WaitMerge()
	checkIndex(t, x, want)
}

func TestGeometry(t *testing.T) {
	for chunks := minChunks; chunks <= maxChunks; chunks++ {
		g := makeGeometry(chunks)
		var all words
		for c := range chunks {
			if c > 0 && g.width[c] > g.width[c-1] {
				t.Errorf("%d chunks: chunk %d wider than chunk %d", chunks, c, c-1)
			}
			// Each chunk reads its own bits and no others.
			var w words
			for i := range w {
				w[i] = ^uint64(0)
			}
			if v := g.chunk(&w, c); v != 1<<g.width[c]-1 {
				t.Errorf("%d chunks: chunk %d of all ones = %x", chunks, c, v)
			}
			for b := g.offset[c]; b < g.offset[c]+g.width[c]; b++ {
				all[b/64] |= 1 << (b % 64)
				w[b/64] &^= 1 << (b % 64)
			}
			if v := g.chunk(&w, c); v != 0 {
				t.Errorf("%d chunks: chunk %d reads bits outside it: %x", chunks, c, v)
			}
		}
		if all != (words{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}) || g.offset[chunks-1]+g.width[chunks-1] != 256 {
			t.Errorf("%d chunks do not tile the hash: %+v", chunks, g)
		}
	}
	for _, tc := range []struct{ n, chunks int }{
		{0, 16}, {1350, 16}, {1 << 17, 16}, {1 << 18, 15}, {1_000_000, 14}, {1 << 20, 13},
		{3_000_000, 13}, {1 << 22, 12}, {10_000_000, 12}, {1 << 30, 12},
	} {
		if g := geometryFor(tc.n); g.chunks != tc.chunks {
			t.Errorf("geometryFor(%d) has %d chunks, want %d", tc.n, g.chunks, tc.chunks)
		}
	}
}

func TestPlan(t *testing.T) {
	// The probe counts quoted in doc.go.
	g16, g12 := makeGeometry(16), makeGeometry(12)
	for _, tc := range []struct {
		g         *geometry
		threshold int
		probes    float64
	}{
		{&g16, 0, 1}, {&g16, 15, 16}, {&g16, 16, 17 + 15}, {&g16, 31, 16 * 17},
		{&g16, 32, 137 + 15*17}, {&g16, 47, 16 * 137}, {&g16, 63, 16 * 697},
		{&g12, 0, 1}, {&g12, 11, 12}, {&g12, 23, 4*23 + 8*22},
		// 31 = 2*12 + 7: chunks 0..3 (22 bits) and 4..7 (21 bits) within 2, 8..11 within 1.
		{&g12, 31, 4*(1+22+231) + 4*(1+21+210) + 4*22},
	} {
		if p := tc.g.plan(tc.threshold, 0); p.probes != tc.probes {
			t.Errorf("%d chunks: plan(%d).probes = %v, want %v (radii %v)", tc.g.chunks, tc.threshold, p.probes, tc.probes, p.radius)
		}
	}
	// At 10M entries, threshold 31 probes and the largest thresholds scan.
	g := geometryFor(10_000_000)
	if p := g.plan(31, 10_000_000); p.scanCheaper(10_000_000) {
		t.Errorf("10M, threshold 31 would scan: %+v", p)
	}
	if p := g.plan(100, 10_000_000); !p.scanCheaper(10_000_000) {
		t.Errorf("10M, threshold 100 would probe: %+v", p)
	}
}

// TestEachProbe checks the enumeration of flip masks against a count of
// bits, for every radius of small widths.
func TestEachProbe(t *testing.T) {
	for width := uint(1); width <= 12; width++ {
		for r := 0; r <= int(width); r++ {
			v := uint32(0x5a5 & (1<<width - 1))
			seen := make(map[uint32]bool)
			eachProbe(v, width, r, func(u uint32) {
				if seen[u] || u >= 1<<width || bits.OnesCount32(u^v) > r {
					t.Fatalf("width %d radius %d: probe %x repeated or out of range", width, r, u)
				}
				seen[u] = true
			})
			want := 0
			for u := range uint32(1) << width {
				if bits.OnesCount32(u^v) <= r {
					want++
				}
			}
			if len(seen) != want {
				t.Fatalf("width %d radius %d: %d probes, want %d", width, r, len(seen), want)
			}
		}
	}
}

func TestDistance(t *testing.T) {
	var zero, ones, low Hash
	for i := range ones {
		ones[i] = 0xff
	}
	low[31] = 0x01
	low[0] = 0x80
	for _, tc := range []struct {
		a, b Hash
		want int
	}{
		{zero, zero, 0}, {zero, ones, 256}, {zero, low, 2}, {ones, low, 254},
	} {
		if got := Distance(tc.a, tc.b); got != tc.want {
			t.Errorf("Distance(%x, %x) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// Close stops a background merge that runs: it gives up (the index keeps
// its segments as they were and answers as before) and Close returns once
// it has ended.
func TestCloseStopsBackgroundMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	hs := bank(rng, 600)
	want := &pairs{hs: slices.Clone(hs[:400]), refs: sequentialRefs(0, 400)}
	x := inBackground(newProbingIndex(100))
	x.Build(want.hs[:300], want.refs[:300])
	// Closed before the merge's first step: the merge that the next adds
	// start gives up at once, deterministically.
	x.closed.Store(true)
	for i := 300; i < 400; i++ {
		x.Add(want.hs[i], want.refs[i])
	}
	x.Close()
	x.wmu.Lock()
	merging, base, frozen := x.merging, len(x.base.hashes), x.frozen != nil
	x.wmu.Unlock()
	if !frozen {
		t.Fatal("no merge began: the test proves nothing")
	}
	if merging || base != 300 {
		t.Fatalf("after Close: merging %v, base of %d hashes; want no merge and the base as built (300)", merging, base)
	}
	for _, q := range queries(rng, hs, 30) {
		checkQuery(t, x, want, q, 40)
	}
}
