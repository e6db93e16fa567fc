package node

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"
	"time"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/node/match"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// BenchmarkStartupPDQ starts a whole node (store, libp2p host, matching,
// API) on a store that holds N PDQ signals, measured directly: the time
// Start takes, of which the PDQ index rebuild from the store (the gauge
// staydown_pdq_index_build_seconds: pdq-build-s, of which pdq-read-s
// reading the hashes from the store), and this process's resident set once
// the node is up (VmRSS, its anonymous and file-backed parts: the latter is
// bbolt's memory map of the pages the rebuild read) and its peak during the
// start (VmHWM, reset before each start).
//
// N is STAYDOWN_BENCH_STARTUP_PDQ (default 1,000,000), in additions of
// 1,000 PDQ signals: 90% uniform, 10% in clusters of 10 near-duplicates
// within 0..20 bits of a random centre (the shape of node/match's bank).
// The store is built by a child process (this test binary, running
// BenchmarkBuildStartupStore), so that none of the building's memory counts in
// the figures; with STAYDOWN_BENCH_STARTUP_DIR it is kept there and reused
// by later runs. STAYDOWN_BENCH_STARTUP_COLD=1 drops the store file from
// the page cache before each start (a start after a reboot):
//
//	STAYDOWN_BENCH_STARTUP_PDQ=10000000 STAYDOWN_BENCH_STARTUP_DIR=/var/tmp/startup10m \
//	  go test -run '^$' -bench StartupPDQ -benchtime 1x -count 3 -timeout 3h ./node/
func BenchmarkStartupPDQ(b *testing.B) {
	count := startupSignals(b)
	dir := os.Getenv("STAYDOWN_BENCH_STARTUP_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	done := filepath.Join(dir, fmt.Sprintf("built-%d", count))
	if _, err := os.Stat(done); err != nil {
		start := time.Now()
		cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^BenchmarkBuildStartupStore$", "-test.benchtime=1x", "-test.v", "-test.timeout=0")
		cmd.Env = append(os.Environ(), "STAYDOWN_STARTUP_BUILD_DIR="+dir, "STAYDOWN_BENCH_STARTUP_PDQ="+strconv.Itoa(count))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			b.Fatalf("building the store: %v", err)
		}
		b.Logf("built a store of %d PDQ signals in %v", count, time.Since(start).Round(time.Second))
	}
	cfg, err := config.Load(filepath.Join(dir, "nru"))
	if err != nil {
		b.Fatal(err)
	}
	if fi, err := os.Stat(cfg.StorePath); err == nil {
		b.ReportMetric(float64(fi.Size())/(1<<20), "store-MiB")
	}
	// STAYDOWN_BENCH_STARTUP_COLD=1: the store's pages are dropped from
	// the page cache before each start, as after a reboot.
	cold := os.Getenv("STAYDOWN_BENCH_STARTUP_COLD") == "1"
	const mib = 1 << 20
	var took, exact, read, build, rss, anon, file, hwm, heap float64
	for b.Loop() {
		runtime.GC()
		debug.FreeOSMemory()
		// Writing 5 to clear_refs resets VmHWM to the current RSS.
		os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
		if cold {
			dropCached(b, cfg.StorePath)
		}
		t0 := time.Now()
		n, err := Start(context.Background(), cfg, benchLogger("nru"))
		if err != nil {
			b.Fatal(err)
		}
		took += time.Since(t0).Seconds()
		su := n.matcher.Startup()
		exact += su.ExactRead.Seconds()
		read += su.PDQRead.Seconds()
		build += su.PDQBuild.Seconds()
		st := procStatus("VmRSS", "RssAnon", "RssFile", "VmHWM")
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		rss, anon, file, hwm, heap = rss+float64(st["VmRSS"]), anon+float64(st["RssAnon"]), file+float64(st["RssFile"]), hwm+float64(st["VmHWM"]), heap+float64(ms.HeapInuse)
		got := su.PDQHashes
		if got < count*9/10 {
			b.Fatalf("%d hashes indexed of %d signals", got, count)
		}
		b.ReportMetric(float64(got), "hashes")
		if err := n.Close(); err != nil {
			b.Fatal(err)
		}
	}
	N := float64(b.N)
	b.ReportMetric(took/N, "start-s")
	b.ReportMetric(exact/N, "exact-read-s")
	b.ReportMetric(read/N, "pdq-read-s")
	b.ReportMetric(build/N, "pdq-build-s")
	b.ReportMetric(rss/N/mib, "RSS-MiB")
	b.ReportMetric(anon/N/mib, "anon-MiB")
	b.ReportMetric(file/N/mib, "file-MiB")
	b.ReportMetric(hwm/N/mib, "peak-RSS-MiB")
	b.ReportMetric(heap/N/mib, "heap-MiB")
}

// BenchmarkBuildStartupStore builds a store of STAYDOWN_BENCH_STARTUP_PDQ
// PDQ signals (default 1,000,000) in STAYDOWN_STARTUP_BUILD_DIR (default a
// temporary directory) and reports signals stored per second.
// BenchmarkStartupPDQ runs it as a child process to build its store.
func BenchmarkBuildStartupStore(b *testing.B) {
	count := startupSignals(b)
	dir := os.Getenv("STAYDOWN_STARTUP_BUILD_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	var took time.Duration
	for b.Loop() {
		start := time.Now()
		buildStartupStore(b, dir, count)
		took += time.Since(start)
	}
	b.ReportMetric(float64(count)*float64(b.N)/took.Seconds(), "signals/s")
}

// startupSignals is STAYDOWN_BENCH_STARTUP_PDQ, default 1,000,000.
func startupSignals(b *testing.B) int {
	count := 1_000_000
	if v := os.Getenv("STAYDOWN_BENCH_STARTUP_PDQ"); v != "" {
		var err error
		if count, err = strconv.Atoi(v); err != nil || count < 1 {
			b.Fatalf("STAYDOWN_BENCH_STARTUP_PDQ=%q: want a positive number of signals", v)
		}
	}
	return count
}

// buildStartupStore writes a store of count PDQ signals into dir, anew.
func buildStartupStore(t testing.TB, dir string, count int) {
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	cfgs := benchFederation(t, dir, nil, "nru=referral")
	key, err := cfgs["nru"].AuthorKey()
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(cfgs["nru"].StorePath)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rng := rand.New(rand.NewPCG(10, 10))
	random := func() match.Hash {
		var h match.Hash
		for j := 0; j < len(h); j += 8 {
			binary.LittleEndian.PutUint64(h[j:], rng.Uint64())
		}
		return h
	}
	// Each addition carries up to MaxSignals hashes: 90% uniform, then
	// clusters of 10 within 0..20 bits of a centre.
	var prev protocol.ID
	var batch []*protocol.Entry
	for seq, left := uint64(1), count; left > 0; seq++ {
		n := min(left, protocol.MaxSignals)
		left -= n
		sigs := make([]*pb.Signal, 0, n)
		for len(sigs) < n*9/10 {
			sigs = append(sigs, pdqSignal(random()))
		}
		for len(sigs) < n {
			centre := random()
			for range min(10, n-len(sigs)) {
				h := centre
				for _, bit := range rng.Perm(256)[:rng.IntN(21)] {
					h[bit/8] ^= 1 << (bit % 8)
				}
				sigs = append(sigs, pdqSignal(h))
			}
		}
		e, err := signAddition(key, seq, prev, sigs)
		if err != nil {
			t.Fatal(err)
		}
		prev = e.ID
		// 250 additions, 250,000 signals, a transaction: the signal index
		// takes random keys, so a transaction rewrites much of it.
		if batch = append(batch, e); len(batch) == 250 || left == 0 {
			res, err := st.Apply(batch)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				if r.Outcome != store.Applied {
					t.Fatalf("seq %d: %s %v", seq, r.Outcome, r.Err)
				}
			}
			batch = batch[:0]
			t.Logf("%d signals stored, %v", count-left, time.Since(start).Round(time.Second))
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("built-%d", count)), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func signAddition(key ed25519.PrivateKey, seq uint64, prev protocol.ID, sigs []*pb.Signal) (*protocol.Entry, error) {
	body := &pb.Entry{Version: protocol.Version, Federation: "test", Seq: seq, TimestampMs: 1_700_000_000_000 + int64(seq),
		Payload: &pb.Entry_Addition{Addition: &pb.Addition{Signals: sigs, Labels: []*pb.Label{{Slug: "graphic-violence"}}}}}
	if seq > 1 {
		body.Prev = prev[:]
	}
	return protocol.Sign(key, body)
}
