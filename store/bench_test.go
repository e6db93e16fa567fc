package store

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/membership/membershiptest"
	"github.com/staydown/staydown/protocol/pb"
)

// BenchmarkApply applies a chain of one-signal additions of one author,
// batch entries per Apply call, that is per write transaction and fsync.
// With judged, every entry is judged against a membership of 200 members
// and 1,000 amendments (SetMembers): the cost of SPEC 12.5 on apply.
func BenchmarkApply(b *testing.B) {
	for _, c := range []struct {
		batch  int
		judged bool
	}{{1, false}, {1000, false}, {4000, false}, {4000, true}} {
		batch := c.batch
		name := fmt.Sprintf("batch=%d", batch)
		if c.judged {
			name += "/judged"
		}
		b.Run(name, func(b *testing.B) {
			s, a := mustOpen(b), newAuthor(b, 1)
			if c.judged {
				s.judgeAs(b, a)
			}
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

// BenchmarkImportLookup looks up an import batch (10,000 signals, none
// stored, as in a fresh import) among a million stored ones: MatchMany,
// which an import asked before, against AdditionsBy, which it asks now.
func BenchmarkImportLookup(b *testing.B) {
	s := openMatchDB(b)
	keys := make([][]byte, 10_000)
	for i := range keys {
		keys[i] = key(shaN(matchSignals*2 + uint64(i)*7919))
	}
	author := newAuthor(b, 1).key
	b.Run("MatchMany", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.MatchMany(keys); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AdditionsBy", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.AdditionsBy(author, keys); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkApplyLog applies one author's log of N one-signal additions
// (STAYDOWN_BENCH_APPLYLOG, default 200,000) to a fresh store in
// transactions of 8192 entries, as a node catching up does (node's
// maxBatch), and reports entries/s and the bytes this process wrote per
// entry. Signing a million entries takes longer than applying them: set
// STAYDOWN_BENCH_ENTRIES to a file path to keep the signed log there
// between runs.
func BenchmarkApplyLog(b *testing.B) {
	count := 200_000
	if v := os.Getenv("STAYDOWN_BENCH_APPLYLOG"); v != "" {
		var err error
		if count, err = strconv.Atoi(v); err != nil || count < 1 {
			b.Fatalf("STAYDOWN_BENCH_APPLYLOG=%q: want a positive number", v)
		}
	}
	entries := benchLog(b, count, os.Getenv("STAYDOWN_BENCH_ENTRIES"))
	const batch = 8192
	b.ResetTimer()
	var written uint64
	for range b.N {
		b.StopTimer()
		s := mustOpen(b)
		w0 := writtenBytes()
		b.StartTimer()
		for lo := 0; lo < len(entries); lo += batch {
			hi := min(lo+batch, len(entries))
			res, err := s.Apply(entries[lo:hi])
			if err != nil {
				b.Fatal(err)
			}
			if r := res[hi-lo-1]; r.Outcome != Applied {
				b.Fatalf("%s: %v", r.Outcome, r.Err)
			}
		}
		b.StopTimer()
		written += writtenBytes() - w0
		if fi, err := os.Stat(s.path); err == nil {
			b.ReportMetric(float64(fi.Size())/(1<<20), "file-MiB")
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(count*b.N)/b.Elapsed().Seconds(), "entries/s")
	b.ReportMetric(float64(written)/float64(count*b.N), "written-B/entry")
}

// benchLog signs count one-signal additions of one author, or reads them
// from cache if it holds that many (and writes them there otherwise).
func benchLog(b *testing.B, count int, cache string) []*protocol.Entry {
	b.Helper()
	if cache != "" {
		if raw, err := os.ReadFile(cache); err == nil {
			var entries []*protocol.Entry
			for len(raw) > 0 {
				n, m := binary.Uvarint(raw)
				if m <= 0 || uint64(len(raw)-m) < n {
					b.Fatalf("%s: truncated", cache)
				}
				e, err := protocol.Decode(raw[m : m+int(n)])
				if err != nil {
					b.Fatalf("%s: %v", cache, err)
				}
				entries = append(entries, e)
				raw = raw[m+int(n):]
			}
			if len(entries) == count {
				return entries
			}
		}
	}
	a := newAuthor(b, 1)
	entries := make([]*protocol.Entry, count)
	head := a.head
	var out []byte
	for i := range entries {
		e := a.sign(head.Seq+1, head.ID, addition(shaN(uint64(i))))
		head = protocol.Head{Author: a.key, Seq: e.Seq(), ID: e.ID}
		entries[i] = e
		if cache != "" {
			out = binary.AppendUvarint(out, uint64(len(e.Raw)))
			out = append(out, e.Raw...)
		}
	}
	if cache != "" {
		if err := os.WriteFile(cache, out, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	return entries
}

// writtenBytes is what this process has caused to be written to storage
// (/proc/self/io), 0 where that is not available.
func writtenBytes() uint64 {
	raw, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			return n
		}
	}
	return 0
}

// judgeAs has the store judge entries under a membership of 200 voters and
// 1,000 amendments in which a is the first referral unit.
func (ts *testStore) judgeAs(b *testing.B, a *author) {
	b.Helper()
	g, es, keys := membershiptest.Big(b, federation, 200, 1000)
	ms := slices.Clone(g.Roster.Members)
	ms[0].AuthorKey = a.key
	_ = keys
	r, err := protocol.NewRoster(federation, ms)
	if err != nil {
		b.Fatal(err)
	}
	g2, err := membership.NewGenesis(r, membership.Rule{})
	if err != nil {
		b.Fatal(err)
	}
	// The amendments were signed by the first key of Big's federation,
	// which is a's now: keep the others' (they pass without it).
	h := membership.Compute(g2, es)
	if _, err := ts.SetMembers(h, nil); err != nil {
		b.Fatal(err)
	}
	if v, why := h.Judge(a.key, 1, addition(shaN(1))); v != membership.In {
		b.Fatalf("the benchmark's author is not in: %v %s", v, why)
	}
}

// BenchmarkMembershipEntries reads the membership entries of a 200-member
// roster with 1,000 amendments in its history (101,000 entries): what a
// node reads at every start (node/members.Open).
func BenchmarkMembershipEntries(b *testing.B) {
	_, es, _ := membershiptest.Big(b, federation, 200, 1000)
	ts := mustOpen(b)
	for lo := 0; lo < len(es); lo += 4096 {
		if _, err := ts.Apply(es[lo:min(lo+4096, len(es))]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		got, err := ts.MembershipEntries()
		if err != nil || len(got) != len(es) {
			b.Fatalf("%d entries, %v", len(got), err)
		}
	}
}
