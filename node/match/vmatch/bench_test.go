package vmatch

import (
	"os"
	"reflect"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	benchVideos = 100_000
	benchFrames = 100
	benchQuery  = 60
)

var bench100k struct {
	once    sync.Once
	x       *Index
	sample  map[uint64][]Frame // every 50th video, for the brute-force check
	queries [][]Frame
	rssMB   float64 // RSS growth of the index, MB
	heapMB  float64
}

// rssMB reads the process's resident set size from /proc (Linux).
func rssMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

func heapMB() float64 {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapInuse) / (1 << 20)
}

// load100k builds 100,000 videos of 100 frames (10M frame hashes) from
// the deterministic clustered generator, and the queries: 60-frame
// re-encoded clips of stored videos, and unrelated 60-frame videos.
func load100k(b *testing.B) {
	bench100k.once.Do(func() {
		g := newBank(100)
		h0, r0 := heapMB(), rssMB()
		refs := make([]uint64, benchVideos)
		videos := make([][]Frame, benchVideos)
		bench100k.sample = map[uint64][]Frame{}
		for i := range videos {
			refs[i] = uint64(i)
			videos[i] = g.video(benchFrames)
			if i%50 == 0 {
				bench100k.sample[uint64(i)] = videos[i]
			}
		}
		for i := range 40 {
			v := videos[g.r.IntN(benchVideos)]
			from := g.r.IntN(benchFrames - benchQuery)
			bench100k.queries = append(bench100k.queries, g.reencode(v, from, from+benchQuery, 16))
			if i%4 == 0 {
				bench100k.queries = append(bench100k.queries, g.video(benchQuery))
			}
		}
		t0 := time.Now()
		x := NewIndex(50)
		if err := x.Build(refs, videos); err != nil {
			b.Fatal(err)
		}
		took := time.Since(t0)
		refs, videos = nil, nil
		_, _ = refs, videos
		bench100k.x = x
		bench100k.heapMB = heapMB() - h0 - sampleMB()
		bench100k.rssMB = rssMB() - r0
		b.Logf("built %d videos, %d frame hashes in %v", x.Videos(), x.Frames(), took.Round(time.Millisecond))
	})
	if bench100k.x == nil {
		b.Fatal("setup failed")
	}
}

// sampleMB is the memory of what the benchmark keeps beside the index.
func sampleMB() float64 {
	n := 0
	for _, v := range bench100k.sample {
		n += cap(v)
	}
	for _, q := range bench100k.queries {
		n += cap(q)
	}
	return float64(n) * float64(40) / (1 << 20)
}

// BenchmarkVideoMatch: one 60-frame query against 100,000 stored videos of
// 100 frames (10M frame hashes) at the default parameters. It reports the
// median and 95th percentile query time and the memory per million stored
// frame hashes (Go heap in use, and RSS growth, which includes the
// generator's garbage the runtime has not returned). Before timing, every
// query's results are checked against Compare: each result equals Compare
// with that video, and brute force over a 2,000-video sample finds no
// video the index missed.
func BenchmarkVideoMatch(b *testing.B) {
	load100k(b)
	x, qs, p := bench100k.x, bench100k.queries, DefaultParams()
	t0 := time.Now()
	matched := 0
	for i, q := range qs {
		got, err := x.Query(q, p)
		if err != nil {
			b.Fatal(err)
		}
		byRef := map[uint64]Result{}
		for _, r := range got {
			byRef[r.Ref] = r
		}
		if len(got) > 0 && got[0].Match {
			matched++
		}
		for ref, v := range bench100k.sample {
			want := Compare(q, v, ref, p)
			r, ok := byRef[ref]
			switch {
			case want.QueryMatched == 0 && ok:
				b.Fatalf("query %d: index returns video %d, which shares no frame", i, ref)
			case want.QueryMatched > 0 && !reflect.DeepEqual(r, want):
				b.Fatalf("query %d, video %d: index %+v, brute force %+v", i, ref, r, want)
			}
		}
	}
	b.Logf("%d queries (%d matched) equal brute force on a %d-video sample, checked in %v", len(qs), matched, len(bench100k.sample), time.Since(t0).Round(time.Millisecond))

	var times []time.Duration
	i := 0
	for b.Loop() {
		s := time.Now()
		if _, err := x.Query(qs[i%len(qs)], p); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(s))
		i++
	}
	slices.Sort(times)
	mframes := float64(x.Frames()) / 1e6
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(times[len(times)*95/100].Microseconds())/1000, "p95-ms")
	b.ReportMetric(bench100k.heapMB/mframes, "heap-MB/Mframes")
	b.ReportMetric(bench100k.rssMB/mframes, "RSS-MB/Mframes")
}
