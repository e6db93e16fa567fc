package matching

import (
	"crypto/ed25519"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"runtime"
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
//   - query: one 60-frame query (a clip of a stored video, each frame a
//     few bits off) through Matching.Match, with the median.
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
		var took, read time.Duration
		for b.Loop() {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			m := start()
			took += m.videoBuild
			read += m.videoRead
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20)/(videos*frames/1e6), "MiB-heap/Mframes")
			m.Close()
		}
		b.ReportMetric(took.Seconds()/float64(b.N), "s-videos/start")
		b.ReportMetric(read.Seconds()/float64(b.N), "s-read/start")
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
		var took, cpu []time.Duration
		i := 0
		// CPU time of the querying thread too: the machine may be shared,
		// and wall time then counts others' work.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for b.Loop() {
			t0, c0 := time.Now(), threadCPU()
			f, err := m.Match([]Query{{Signal: queries[i%len(queries)], Quality: NoQuality}})
			took = append(took, time.Since(t0))
			cpu = append(cpu, threadCPU()-c0)
			if err != nil || len(f[0].Attestations) != 1 || f[0].Attestations[0].Video.QueryPercent != 100 {
				b.Fatalf("query %d found %d attestations: %v", i, len(f[0].Attestations), err)
			}
			i++
		}
		slices.Sort(took)
		slices.Sort(cpu)
		b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "ms-median")
		b.ReportMetric(float64(cpu[len(cpu)/2].Microseconds())/1000, "ms-cpu-median")
	})
}
