package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/export"
	"github.com/staydown/staydown/protocol/pb"
)

// BenchmarkAudit audits an export of STAYDOWN_BENCH_AUDIT entries
// (default 100,000; the target is 1,000,000 in under 60 s and 512 MiB):
// four authors' logs of additions of one sha256 signal each. Signing the
// file is not timed. STAYDOWN_BENCH_AUDIT_DIR keeps the files.
func BenchmarkAudit(b *testing.B) {
	n := 100_000
	if v := os.Getenv("STAYDOWN_BENCH_AUDIT"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	// STAYDOWN_BENCH_AUDIT_DIR keeps the roster and the export there, to
	// time the CLI as a process (staydown audit DIR/bench.export --roster
	// DIR/roster.toml).
	dir := os.Getenv("STAYDOWN_BENCH_AUDIT_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	const authors = 4
	var roster bytes.Buffer
	var keys []ed25519.PrivateKey
	for i := range authors {
		k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(i + 1)}, 32))
		keys = append(keys, k)
		fmt.Fprintf(&roster, "[[member]]\nname = \"m%d\"\nrole = \"referral\"\nauthor_key = \"%s\"\npeer_id = \"%s\"\naddrs = []\n\n",
			i, protocol.AuthorKeyOf(k).String(), peerIDOf(b, k))
	}
	rosterPath := filepath.Join(dir, "roster.toml")
	if err := os.WriteFile(rosterPath, roster.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "bench.export")
	start := time.Now()
	writeBenchExport(b, path, keys, n)
	b.Logf("signed and wrote %d entries in %v", n, time.Since(start).Round(time.Millisecond))
	for b.Loop() {
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		res, err := auditFile(path, rosterPath)
		took := time.Since(start)
		if err != nil || len(res.Violations) != 0 || res.Entries != uint64(n) {
			b.Fatalf("audit: %v, %d violations, %d entries", err, len(res.Violations), res.Entries)
		}
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(n)/took.Seconds(), "entries/s")
		b.ReportMetric(float64(after.Sys)/(1<<20), "sys-MiB")
	}
}

func writeBenchExport(b *testing.B, path string, keys []ed25519.PrivateKey, n int) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w, err := export.NewWriter(f, &pb.ExportHeader{Federation: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	per := n / len(keys)
	for a, k := range keys {
		count := per
		if a == len(keys)-1 {
			count = n - per*(len(keys)-1)
		}
		var head protocol.Head
		for i := range count {
			sum := sha256.Sum256(binary.BigEndian.AppendUint64([]byte{byte(a)}, uint64(i)))
			body := &pb.Entry{Version: protocol.Version, Federation: "bench", Seq: head.Seq + 1, TimestampMs: 1_700_000_000_000 + int64(i),
				Payload: &pb.Entry_Addition{Addition: &pb.Addition{
					Signals: []*pb.Signal{{Value: &pb.Signal_Multihash{Multihash: append([]byte{0x12, 0x20}, sum[:]...)}}},
					Labels:  []*pb.Label{{Slug: "graphic-violence"}}}}}
			if head.Seq > 0 {
				body.Prev = head.ID[:]
			}
			e, err := protocol.Sign(k, body)
			if err != nil {
				b.Fatal(err)
			}
			head = protocol.Head{Author: e.Author, Seq: e.Seq(), ID: e.ID}
			if err := w.Entry(e.Raw); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
}

// peerIDOf derives a libp2p peer ID from a transport key seeded apart
// from the author key k (the roster refuses the author key's own).
func peerIDOf(b *testing.B, k ed25519.PrivateKey) string {
	seed := sha256.Sum256(append([]byte("transport "), k.Seed()...))
	priv, _, err := crypto.KeyPairFromStdKey(ptr(ed25519.NewKeyFromSeed(seed[:])))
	if err != nil {
		b.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		b.Fatal(err)
	}
	return id.String()
}

func ptr[T any](v T) *T { return &v }
