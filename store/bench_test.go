package store

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// BenchmarkApply applies a chain of one-signal additions of one author,
// batch entries per Apply call, that is per write transaction and fsync.
func BenchmarkApply(b *testing.B) {
	for _, batch := range []int{1, 1000, 4000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s, a := mustOpen(b), newAuthor(b, 1)
			entries := make([]*protocol.Entry, b.N*batch)
			for i := range entries {
				entries[i] = a.next(addition(shaN(uint64(i))))
			}
			b.ResetTimer()
			for i := range b.N {
				res, err := s.Apply(entries[i*batch : (i+1)*batch])
				if err != nil {
					b.Fatal(err)
				}
				if res[batch-1].Outcome != Applied {
					b.Fatalf("%s: %v", res[batch-1].Outcome, res[batch-1].Err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

const (
	matchSignals   = 1_000_000
	signalsPerAdd  = protocol.MaxSignals
	additionsBatch = 100
)

// matchDB is one store holding matchSignals sha256 signals, built once per
// process because it takes seconds, and removed by TestMain.
var matchDB struct {
	once  sync.Once
	dir   string
	s     *Store
	build time.Duration
	err   error
}

func openMatchDB(b *testing.B) *Store {
	matchDB.once.Do(func() {
		start := time.Now()
		matchDB.dir, matchDB.err = os.MkdirTemp("", "staydown-bench-")
		if matchDB.err != nil {
			return
		}
		if matchDB.s, matchDB.err = Open(filepath.Join(matchDB.dir, "match.db")); matchDB.err != nil {
			return
		}
		a := newAuthor(b, 1)
		var batch []*protocol.Entry
		for n := uint64(0); n < matchSignals; n += signalsPerAdd {
			sigs := make([]*pb.Signal, signalsPerAdd)
			for i := range sigs {
				sigs[i] = shaN(n + uint64(i))
			}
			batch = append(batch, a.next(addition(sigs...)))
			if len(batch) == additionsBatch || n+signalsPerAdd >= matchSignals {
				if _, matchDB.err = matchDB.s.Apply(batch); matchDB.err != nil {
					return
				}
				batch = batch[:0]
			}
		}
		matchDB.build = time.Since(start)
	})
	if matchDB.err != nil {
		b.Fatal(matchDB.err)
	}
	b.Logf("%d signals stored in %v", matchSignals, matchDB.build.Round(time.Millisecond))
	return matchDB.s
}

func closeMatchDB() {
	if matchDB.s != nil {
		matchDB.s.Close()
	}
	if matchDB.dir != "" {
		os.RemoveAll(matchDB.dir)
	}
}

// BenchmarkMatch looks up one signal among a million stored ones.
func BenchmarkMatch(b *testing.B) {
	s := openMatchDB(b)
	for _, tt := range []struct {
		name string
		key  []byte
		want int
	}{
		{"present", key(shaN(matchSignals / 2)), 1},
		{"absent", key(shaN(matchSignals * 2)), 0},
	} {
		b.Run(tt.name, func(b *testing.B) {
			for b.Loop() {
				as, err := s.Match(tt.key)
				if err != nil || len(as) != tt.want {
					b.Fatalf("%d attestations %v, want %d", len(as), err, tt.want)
				}
			}
		})
	}
}
