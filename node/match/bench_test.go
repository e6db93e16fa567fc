package match

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The 10-million-hash bank is built once per process, and only by a
// benchmark that needs it: plain test runs never touch it.
var (
	bank10MOnce sync.Once
	bank10M     struct {
		hs      []Hash
		refs    []uint64
		queries []Hash
		index   *PDQIndex
		build   time.Duration
		heap    uint64 // HeapAlloc after the build, with hs and refs still live
		input   uint64 // HeapAlloc before it: hs and refs
		rss     string // VmRSS and VmHWM after the build
	}
)

const size10M = 10_000_000

func load10M(b *testing.B) {
	bank10MOnce.Do(func() {
		rng := rand.New(rand.NewPCG(10, 10))
		t0 := time.Now()
		bank10M.hs = bank(rng, size10M)
		bank10M.refs = sequentialRefs(0, size10M)
		bank10M.queries = queries(rng, bank10M.hs, 1000)
		gen := time.Since(t0)
		bank10M.input = heapAlloc()

		t0 = time.Now()
		x := NewPDQIndex()
		x.Build(bank10M.hs, bank10M.refs)
		bank10M.build = time.Since(t0)
		bank10M.index = x
		bank10M.heap = heapAlloc()
		bank10M.rss = procStatus("VmRSS", "VmHWM")
		b.Logf("10M bank: generated in %v; Build took %v; HeapAlloc %d MiB before (input hashes and refs), %d MiB after: index %d MiB; %s",
			gen.Round(time.Millisecond), bank10M.build.Round(time.Millisecond),
			bank10M.input>>20, bank10M.heap>>20, (bank10M.heap-bank10M.input)>>20, bank10M.rss)

		// The figures mean nothing unless the answers are right.
		t0 = time.Now()
		total := 0
		for _, q := range bank10M.queries[:20] {
			got := x.Query(q, 31)
			want := BruteForce(bank10M.hs, bank10M.refs, q, 31)
			if !slices.Equal(got, want) {
				b.Fatalf("10M: Query(%x, 31): %s", q, diffMatches(got, want))
			}
			total += len(got)
		}
		b.Logf("10M: 20 queries at threshold 31 equal BruteForce (%d matches), checked in %v", total, time.Since(t0).Round(time.Millisecond))
	})
	if bank10M.index == nil {
		b.Fatal("10M bank: setup failed")
	}
}

func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// procStatus returns the named lines of /proc/self/status, or a note that
// there is none (not Linux).
func procStatus(keys ...string) string {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return "RSS unknown"
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		for _, k := range keys {
			if v, ok := strings.CutPrefix(sc.Text(), k+":"); ok {
				out = append(out, k+" "+strings.Join(strings.Fields(v), " "))
			}
		}
	}
	return strings.Join(out, ", ")
}

// BenchmarkPDQQuery10M queries the 10M bank at threshold 31, on one
// goroutine (per-core rate) and on GOMAXPROCS goroutines (machine rate).
func BenchmarkPDQQuery10M(b *testing.B) {
	load10M(b)
	x, qs := bank10M.index, bank10M.queries
	b.Run("serial", func(b *testing.B) {
		i := 0
		for b.Loop() {
			x.Query(qs[i%len(qs)], 31)
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := rand.IntN(len(qs))
			for pb.Next() {
				x.Query(qs[i%len(qs)], 31)
				i++
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
	})
}

// BenchmarkPDQThresholds10M measures a query at thresholds up to where
// scanning becomes cheaper, probing and scanning: the figures behind
// scanRatio.
func BenchmarkPDQThresholds10M(b *testing.B) {
	load10M(b)
	x, qs := bank10M.index, bank10M.queries
	for _, th := range []int{15, 31, 39, 47, 55, 63, 71} {
		p := x.base.geo.plan(th, len(x.base.hashes))
		b.Run(fmt.Sprintf("t=%d/probe", th), func(b *testing.B) {
			i := 0
			for b.Loop() {
				x.base.search(ptr(load(&qs[i%len(qs)])), th, &p, nil)
				i++
			}
			b.ReportMetric(p.probes, "probes")
			b.ReportMetric(p.cands, "candidates")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(p.probes+p.cands), "ns/miss")
		})
	}
	b.Run("scan", func(b *testing.B) {
		i := 0
		for b.Loop() {
			x.base.scan(ptr(load(&qs[i%len(qs)])), 63, nil)
			i++
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(x.base.hashes)), "ns/entry")
	})
}

func ptr[T any](v T) *T { return &v }

// BenchmarkBruteForce10M is the scan the index replaces, on the same data.
func BenchmarkBruteForce10M(b *testing.B) {
	load10M(b)
	hs, refs, qs := bank10M.hs, bank10M.refs, bank10M.queries
	b.Run("serial", func(b *testing.B) {
		i := 0
		for b.Loop() {
			BruteForce(hs, refs, qs[i%len(qs)], 31)
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := rand.IntN(len(qs))
			for pb.Next() {
				BruteForce(hs, refs, qs[i%len(qs)], 31)
				i++
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
	})
}

// BenchmarkPDQBuild10M times Build of the 10M bank (about a second each:
// run it with a small -benchtime such as 3x).
func BenchmarkPDQBuild10M(b *testing.B) {
	load10M(b)
	b.ReportMetric(float64(bank10M.heap-bank10M.input)/(1<<20), "index-MiB")
	for b.Loop() {
		NewPDQIndex().Build(bank10M.hs, bank10M.refs)
	}
}

// BenchmarkPDQAdd adds hashes one at a time to an index, starting empty:
// the cost per Add includes its share of the merges.
func BenchmarkPDQAdd(b *testing.B) {
	rng := rand.New(rand.NewPCG(2, 2))
	hs := bank(rng, 1<<20)
	x := NewPDQIndex()
	i := 0
	for b.Loop() {
		x.Add(hs[i%len(hs)], uint64(i))
		i++
	}
}

// BenchmarkPDQMergeStall10M measures how long one Add can keep its caller
// (the node's apply loop) waiting at 10 million entries: starting from an
// index built of the 10M bank, it adds fresh hashes one at a time until
// the delta is merged into the sorted segment (1/mergeRatio of it, 1.25
// million Adds), then 200,000 more, and reports the slowest Add (the
// merging one), the 99.9th percentile and the median, merging in place (in the Add) and in the background
// (MergeInBackground, as the node does). Each iteration builds its own
// index.
func BenchmarkPDQMergeStall10M(b *testing.B) {
	load10M(b)
	rng := rand.New(rand.NewPCG(3, 3))
	// The first 1/mergeRatio trigger the merge; the rest run during it.
	adds := bank(rng, size10M/mergeRatio+200_000)
	b.Run("in-place", func(b *testing.B) { benchMergeStall(b, adds, false) })
	b.Run("background", func(b *testing.B) { benchMergeStall(b, adds, true) })
}

func benchMergeStall(b *testing.B, adds []Hash, background bool) {
	var slowest, p999, median, merges float64
	for b.Loop() {
		b.StopTimer()
		x := NewPDQIndex()
		if background {
			x.MergeInBackground()
		}
		x.Build(bank10M.hs, bank10M.refs)
		times := make([]time.Duration, len(adds))
		b.StartTimer()
		for i, h := range adds {
			t0 := time.Now()
			x.Add(h, uint64(size10M+i))
			times[i] = time.Since(t0)
		}
		b.StopTimer()
		x.WaitMerge()
		if x.Len() != size10M+len(adds) {
			b.Fatalf("%d entries", x.Len())
		}
		x.mu.RLock()
		if len(x.delta.hashes) < len(adds) {
			merges++
		}
		x.mu.RUnlock()
		slices.Sort(times)
		slowest += times[len(times)-1].Seconds()
		median += times[len(times)/2].Seconds()
		p999 += times[len(times)*999/1000].Seconds()
		b.StartTimer()
	}
	N := float64(b.N)
	b.ReportMetric(slowest/N, "slowest-add-s")
	b.ReportMetric(median/N*1e6, "median-add-µs")
	b.ReportMetric(p999/N*1e6, "p99.9-add-µs")
	b.ReportMetric(merges/N, "merges")
}
