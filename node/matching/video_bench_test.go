package matching

import (
	"crypto/ed25519"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/node/match"
	"github.com/staydown/staydown/node/match/vmatch"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/prototest"
	"github.com/staydown/staydown/store"
)

// BenchmarkVideos fills a store with 100,000 videos of 100 random frames
// each (10 million frame hashes; 15 videos an addition), once, directly
// (not through a node), then measures:
//
//   - startup: what New costs for the videos (VPDQVideos reading them
//     from the store, decoding and building the frame index), with the
//     heap it leaves per million frames;
//   - process CPU time and RSS growth (all of it, and its anonymous
//     part, which excludes the store's mapped pages) per million frames,
//     then the image index's Build of as many random hashes, for
//     comparison;
//   - query: one 60-frame query (a clip of a stored video, each frame a
//     few bits off) through Matching.Match, with the median, and the same
//     query through vmatch.Index.Query alone, interleaved, with the
//     median and the ratio of the two.
//
// Run: go test -run '^$' -bench BenchmarkVideos -benchtime 200x ./node/matching/
func BenchmarkVideos(b *testing.B) {
	const videos, frames, perAddition = 100_000, 100, 15
	dir := b.TempDir()
	st, err := store.Open(filepath.Join(dir, "store.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	roster, err := protocol.NewRoster("test", []protocol.Member{{Name: "nru", Role: protocol.RoleReferral, AuthorKey: protocol.AuthorKeyOf(key)}})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	log := prototest.NewLog(key, "test")
	var batch []*protocol.Entry
	var clipOf [][]vmatch.Frame // a few stored videos' frames, for the queries
	for v := 0; v < videos; v += perAddition {
		sigs := make([]*pb.Signal, 0, perAddition)
		for range min(perAddition, videos-v) {
			fs := make([]match.Hash, frames)
			for i := range fs {
				fs[i] = randomHash(rng)
			}
			set := frameSet(rng, fs, 100)
			if len(clipOf) < 100 && rng.IntN(500) == 0 {
				clipOf = append(clipOf, set)
			}
			sigs = append(sigs, videoSignal(b, set))
		}
		if batch = append(batch, log.Next(b, prototest.Addition(sigs...))); len(batch) == 100 {
			if _, err := st.Apply(batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if _, err := st.Apply(batch); err != nil {
		b.Fatal(err)
	}
	start := func() *Matching {
		m, err := New(st, func() *protocol.Roster { return roster }, config.DefaultPolicy(), dir, prometheus.NewRegistry(), slog.New(slog.DiscardHandler), time.Now)
		if err != nil {
			b.Fatal(err)
		}
		if n := m.videos.x.Frames(); n != videos*frames {
			b.Fatalf("%d frames indexed, want %d", n, videos*frames)
		}
		return m
	}

	b.Run("startup", func(b *testing.B) {
		var took, read, cpu time.Duration
		var rssGrowth, anonGrowth int64
		for b.Loop() {
			var before, after runtime.MemStats
			runtime.GC()
			debug.FreeOSMemory()
			runtime.ReadMemStats(&before)
			rss0, anon0 := rss()
			c0 := processCPU()
			m := start()
			cpu += processCPU() - c0
			took += m.videoBuild
			read += m.videoRead
			runtime.GC()
			debug.FreeOSMemory()
			runtime.ReadMemStats(&after)
			rss1, anon1 := rss()
			rssGrowth += rss1 - rss0
			anonGrowth += anon1 - anon0
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20)/(videos*frames/1e6), "MiB-heap/Mframes")
			m.Close()
		}
		n := float64(b.N)
		b.ReportMetric(took.Seconds()/n, "s-videos/start")
		b.ReportMetric(read.Seconds()/n, "s-read/start")
		b.ReportMetric(cpu.Seconds()/n, "s-cpu/start")
		b.ReportMetric(float64(rssGrowth)/n/(1<<20)/(videos*frames/1e6), "MiB-RSS/Mframes")
		b.ReportMetric(float64(anonGrowth)/n/(1<<20)/(videos*frames/1e6), "MiB-anon/Mframes")

		// The image index's Build of as many random hashes, for comparison.
		hs := make([]match.Hash, videos*frames)
		for i := range hs {
			hs[i] = randomHash(rng)
		}
		x := match.NewPDQIndex()
		defer x.Close()
		t0, c0 := time.Now(), processCPU()
		x.Build(hs, make([]uint64, len(hs)))
		b.ReportMetric(time.Since(t0).Seconds(), "s-image-build")
		b.ReportMetric((processCPU() - c0).Seconds(), "s-cpu-image-build")
	})

	b.Run("query", func(b *testing.B) {
		m := start()
		defer m.Close()
		var queries []*pb.Signal
		for _, set := range clipOf {
			from := rng.IntN(frames - 60)
			q := make([]match.Hash, 60)
			for i := range q {
				q[i] = flip(rng, set[from+i].Hash, 8)
			}
			queries = append(queries, videoSignal(b, frameSet(rng, q, 90)))
		}
		var took, cpu, alone []time.Duration
		i := 0
		// CPU time too: the machine may be shared, and wall time then
		// counts others' work. The process's, as Query's lookups run on
		// several threads; nothing else runs in it meanwhile.
		p := m.videoParams()
		for b.Loop() {
			s := queries[i%len(queries)]
			t0, c0 := time.Now(), processCPU()
			f, err := m.Match([]Query{{Signal: s, Quality: NoQuality}})
			took = append(took, time.Since(t0))
			cpu = append(cpu, processCPU()-c0)
			if err != nil || len(f[0].Attestations) != 1 || f[0].Attestations[0].Video.QueryPercent != 100 {
				b.Fatalf("query %d found %d attestations: %v", i, len(f[0].Attestations), err)
			}
			// The same query through vmatch alone, interleaved so that
			// both see the same machine load.
			frames, err := protocol.DecodeVPDQ(s.GetVpdq())
			if err != nil {
				b.Fatal(err)
			}
			t0 = time.Now()
			if _, err := m.videos.x.Query(frames, p); err != nil {
				b.Fatal(err)
			}
			alone = append(alone, time.Since(t0))
			i++
		}
		median := func(ds []time.Duration) float64 {
			slices.Sort(ds)
			return float64(ds[len(ds)/2].Microseconds()) / 1000
		}
		mt, ma := median(took), median(alone)
		b.ReportMetric(mt, "ms-median")
		b.ReportMetric(median(cpu), "ms-cpu-median")
		b.ReportMetric(ma, "ms-vmatch-median")
		b.ReportMetric(mt/ma, "matching/vmatch")
	})
}
