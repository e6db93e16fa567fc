package node

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// benchFederation initialises member directories (name=role) under dir
// and writes a roster of their blocks followed by extra blocks; listen
// ports are chosen by the kernel, so the roster has no addresses and the
// benchmark connects nodes itself.
func benchFederation(b testing.TB, dir string, extra []string, members ...string) map[string]*config.Node {
	b.Helper()
	roster := filepath.Join(dir, "roster.toml")
	var blocks strings.Builder
	var names []string
	for _, m := range members {
		name, role, _ := strings.Cut(m, "=")
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		api := ln.Addr().String()
		ln.Close()
		_, block, err := config.Init(config.InitOptions{
			Dir: filepath.Join(dir, name), Name: name, Role: protocol.Role(role), Federation: "test",
			Listen: []string{"/ip4/127.0.0.1/tcp/0"}, API: api, Roster: roster,
		})
		if err != nil {
			b.Fatal(err)
		}
		blocks.WriteString(addrsLine.ReplaceAllString(block, "addrs = []") + "\n")
		names = append(names, name)
	}
	for _, e := range extra {
		blocks.WriteString(e + "\n")
	}
	if err := os.WriteFile(roster, []byte(blocks.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	cfgs := map[string]*config.Node{}
	for _, name := range names {
		cfg, err := config.Load(filepath.Join(dir, name))
		if err != nil {
			b.Fatal(err)
		}
		cfgs[name] = cfg
	}
	return cfgs
}

// benchLogger keeps the nodes' warnings and errors on stderr and drops the
// rest, so the log does not weigh on the measurement.
func benchLogger(name string) *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", name)
}

// signLog signs count additions of key's log from seq 1 and hands them to
// each in batches of 4096, so memory holds one batch whatever count is.
func signLog(b *testing.B, key ed25519.PrivateKey, count int, each func([]*protocol.Entry)) {
	b.Helper()
	var prev protocol.ID
	batch := make([]*protocol.Entry, 0, 4096)
	for seq := uint64(1); seq <= uint64(count); seq++ {
		var sum [32]byte
		copy(sum[:], fmt.Sprintf("%032d", seq))
		body := &pb.Entry{Version: 1, Federation: "test", Seq: seq, TimestampMs: 1_700_000_000_000 + int64(seq),
			Payload: &pb.Entry_Addition{Addition: &pb.Addition{
				Signals: []*pb.Signal{{Value: &pb.Signal_Multihash{Multihash: append([]byte{0x12, 0x20}, sum[:]...)}}},
				Labels:  []*pb.Label{{Slug: "graphic-violence"}}}}}
		if seq > 1 {
			body.Prev = prev[:]
		}
		e, err := protocol.Sign(key, body)
		if err != nil {
			b.Fatal(err)
		}
		prev = e.ID
		batch = append(batch, e)
		if len(batch) == cap(batch) || seq == uint64(count) {
			each(batch)
			batch = batch[:0]
		}
	}
}

// applyAll applies entries to st and fails unless every one is Applied.
func applyAll(b *testing.B, st *store.Store, entries []*protocol.Entry) {
	b.Helper()
	res, err := st.Apply(entries)
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range res {
		if r.Outcome != store.Applied {
			b.Fatalf("seeding: %s %v", r.Outcome, r.Err)
		}
	}
}

// memory samples this process's resident set while a benchmark runs, and
// counts what it writes.
type memory struct {
	mu                sync.Mutex
	anon, file, heap  uint64 // peaks, bytes
	stop              chan struct{}
	done              chan struct{}
	hwmBefore, hwmEnd uint64
	written           uint64 // /proc/self/io write_bytes at the start
}

// writtenBytes is what this process has caused to be written to storage.
func writtenBytes() uint64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			return n
		}
	}
	return 0
}

// procStatus reads fields (in kB) of /proc/self/status.
func procStatus(fields ...string) map[string]uint64 {
	out := map[string]uint64{}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return out
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		for _, k := range fields {
			if v, ok := strings.CutPrefix(s.Text(), k+":"); ok {
				n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				out[k] = n << 10
			}
		}
	}
	return out
}

// watchMemory resets the process's peak RSS (so VmHWM covers what follows,
// not the seeding) and samples RssAnon, RssFile and the Go heap every 50
// ms until end.
func watchMemory() *memory {
	runtime.GC()
	debug.FreeOSMemory()
	m := &memory{stop: make(chan struct{}), done: make(chan struct{})}
	m.hwmBefore = procStatus("VmHWM")["VmHWM"]
	m.written = writtenBytes()
	// Writing 5 to clear_refs resets VmHWM to the current RSS (Linux 4.0+).
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	go func() {
		defer close(m.done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			st := procStatus("RssAnon", "RssFile")
			runtime.ReadMemStats(&ms)
			m.mu.Lock()
			m.anon, m.file, m.heap = max(m.anon, st["RssAnon"]), max(m.file, st["RssFile"]), max(m.heap, ms.HeapInuse)
			m.mu.Unlock()
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

// end stops the sampling and reports the peaks, and the bytes written
// per entry caught up.
func (m *memory) end(b *testing.B, entries int) {
	close(m.stop)
	<-m.done
	m.hwmEnd = procStatus("VmHWM")["VmHWM"]
	const mib = 1 << 20
	b.ReportMetric(float64(writtenBytes()-m.written)/float64(entries), "written-B/entry")
	b.ReportMetric(float64(m.hwmEnd)/mib, "peak-RSS-MiB")
	b.ReportMetric(float64(m.anon)/mib, "peak-anon-MiB")
	b.ReportMetric(float64(m.file)/mib, "peak-file-MiB")
	b.ReportMetric(float64(m.heap)/mib, "peak-heap-MiB")
}

// BenchmarkCatchUp: one node holds a log of N entries (seeded straight
// into its store), a fresh node connects to it over loopback libp2p and
// catches up through the real sync: hellos, ranges, CheckRange, batched
// apply. N is 100,000, or STAYDOWN_BENCH_CATCHUP. Each iteration is a
// fresh node with an empty store. Reported: entries/s, and this process's
// peak resident set during the catch-ups (both nodes live in this process;
// the file-backed part is bbolt's memory map of the two stores), its
// anonymous and file-backed parts and the Go heap.
//
// Both nodes are started under the pprof label phase=catchup, which their
// goroutines inherit, so a profile taken with -cpuprofile can be narrowed
// to the catch-up, without the seeding:
//
//	go test -run '^$' -bench CatchUp -benchtime 1x -cpuprofile cpu.out ./node/
//	go tool pprof -tagfocus phase=catchup -top cpu.out
func BenchmarkCatchUp(b *testing.B) {
	count := 100_000
	if v := os.Getenv("STAYDOWN_BENCH_CATCHUP"); v != "" {
		var err error
		if count, err = strconv.Atoi(v); err != nil || count < 1 {
			b.Fatalf("STAYDOWN_BENCH_CATCHUP=%q: want a positive number of entries", v)
		}
	}
	dir := b.TempDir()
	cfgs := benchFederation(b, dir, nil, "nru=referral", "pa=platform")
	key, err := cfgs["nru"].AuthorKey()
	if err != nil {
		b.Fatal(err)
	}
	author := protocol.AuthorKeyOf(key)
	start := time.Now()
	st, err := store.Open(cfgs["nru"].StorePath)
	if err != nil {
		b.Fatal(err)
	}
	signLog(b, key, count, func(batch []*protocol.Entry) { applyAll(b, st, batch) })
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d entries in %v", count, time.Since(start).Round(time.Millisecond))

	ctx := context.Background()
	var src *Node
	pprof.Do(ctx, pprof.Labels("phase", "catchup"), func(ctx context.Context) {
		src, err = Start(ctx, cfgs["nru"], benchLogger("nru"))
	})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()

	mem := watchMemory()
	var applyBusy float64 // seconds the fresh nodes' apply loops spent in Apply
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		cfg := *cfgs["pa"]
		cfg.StorePath = filepath.Join(b.TempDir(), "store.db")
		var fresh *Node
		pprof.Do(ctx, pprof.Labels("phase", "catchup"), func(ctx context.Context) {
			fresh, err = Start(ctx, &cfg, benchLogger("pa"))
		})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := fresh.Connect(ctx, peer.AddrInfo{ID: src.host.ID(), Addrs: src.host.Addrs()}); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Minute)
		for {
			h, err := fresh.store.Head(author)
			if err != nil {
				b.Fatal(err)
			}
			if h.Seq == uint64(count) {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("no catch-up after 30 minutes: head %d of %d", h.Seq, count)
			}
			time.Sleep(5 * time.Millisecond)
		}
		b.StopTimer()
		applyBusy += histogramSum(b, fresh.metrics.applySeconds)
		if err := fresh.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	mem.end(b, count*b.N)
	b.ReportMetric(float64(count)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	// The share of the catch-up the single writer was busy: near 100%, the
	// store is the bottleneck; well below, fetching and checking are.
	b.ReportMetric(100*applyBusy/b.Elapsed().Seconds(), "apply-busy-%")
}

func histogramSum(b *testing.B, h prometheus.Histogram) float64 {
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		b.Fatal(err)
	}
	return m.GetHistogram().GetSampleSum()
}

// BenchmarkHeadExchange measures what a federation of 200 authors pays for
// a sync round in which nothing is missing (the periodic sync, most of the
// time): two real nodes holding the same 200 logs of 3 entries each. The
// roster has 200 members: the two nodes and 198 that only write (their
// keys are made here). Reported: bytes per hello (protobuf, with its
// length prefix) and, per sub-benchmark, the time of
//   - hello: building this node's hello from the store, encoding and
//     decoding it and checking the peer's (what each side does once per
//     round);
//   - round: a whole sync round over loopback libp2p (stream, both hellos,
//     a check of each of the 200 heads against the local log).
func BenchmarkHeadExchange(b *testing.B) {
	const authors, perLog = 200, 3
	dir := b.TempDir()
	keys := make([]ed25519.PrivateKey, 0, authors)
	var extra []string
	for i := 2; i < authors; i++ {
		_, priv, err := ed25519.GenerateKey(nil)
		if err != nil {
			b.Fatal(err)
		}
		nodeKey, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			b.Fatal(err)
		}
		id, err := peer.IDFromPrivateKey(nodeKey)
		if err != nil {
			b.Fatal(err)
		}
		keys = append(keys, priv)
		extra = append(extra, config.MemberBlock(protocol.Member{Name: fmt.Sprintf("m%03d", i), Role: protocol.RoleReferral,
			AuthorKey: protocol.AuthorKeyOf(priv), PeerID: id.String()}))
	}
	cfgs := benchFederation(b, dir, extra, "nru=referral", "pa=platform")
	for _, name := range []string{"nru", "pa"} {
		k, err := cfgs[name].AuthorKey()
		if err != nil {
			b.Fatal(err)
		}
		keys = append(keys, k)
	}
	var logs [][]*protocol.Entry
	for _, k := range keys {
		signLog(b, k, perLog, func(batch []*protocol.Entry) { logs = append(logs, append([]*protocol.Entry(nil), batch...)) })
	}
	for _, name := range []string{"nru", "pa"} {
		st, err := store.Open(cfgs[name].StorePath)
		if err != nil {
			b.Fatal(err)
		}
		for _, l := range logs {
			applyAll(b, st, l)
		}
		if err := st.Close(); err != nil {
			b.Fatal(err)
		}
	}
	a, err := Start(context.Background(), cfgs["nru"], benchLogger("nru"))
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	p, err := Start(context.Background(), cfgs["pa"], benchLogger("pa"))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	if err := a.Connect(context.Background(), peer.AddrInfo{ID: p.host.ID(), Addrs: p.host.Addrs()}); err != nil {
		b.Fatal(err)
	}
	hello, err := a.sync.Hello()
	if err != nil {
		b.Fatal(err)
	}
	if len(hello.Heads) != authors {
		b.Fatalf("hello has %d heads, want %d", len(hello.Heads), authors)
	}
	wire, err := protodelim.MarshalTo(io.Discard, hello)
	if err != nil {
		b.Fatal(err)
	}

	b.Run("hello", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			h, err := a.sync.Hello()
			if err != nil {
				b.Fatal(err)
			}
			raw, err := proto.Marshal(h)
			if err != nil {
				b.Fatal(err)
			}
			var got pb.SyncHello
			if err := proto.Unmarshal(raw, &got); err != nil {
				b.Fatal(err)
			}
			if _, err := p.sync.PeerHeads(a.host.ID(), &got); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(wire), "bytes/hello")
	})
	b.Run("round", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if err := a.sync.With(context.Background(), p.host.ID()); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(wire), "bytes/hello")
	})
	if da, dp := headsDigest(b, a), headsDigest(b, p); da != dp {
		b.Fatalf("the nodes disagree after the rounds: %s %s", da, dp)
	}
}

func headsDigest(tb testing.TB, n *Node) [32]byte {
	tb.Helper()
	heads, err := n.store.Heads()
	if err != nil {
		tb.Fatal(err)
	}
	return protocol.HeadsDigest(heads)
}
