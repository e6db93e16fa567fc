package integration

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// seedBatch is how many entries one store transaction takes while seeding:
// large enough to amortise bbolt's fsync, small enough to keep memory low.
const seedBatch = 4096

// seedHash is the sha256 signal (hex) of entry seq of a seeded log (label
// names the log), so a test can match any seeded entry without keeping a
// list.
func seedHash(label string, seq uint64) string {
	s := sha256.Sum256([]byte(fmt.Sprintf("seeded/%s/%d", label, seq)))
	return hex.EncodeToString(s[:])
}

// writeLog signs count entries of key's log, each an addition of the
// signal seedHash(label, seq), and applies them to stores in batches of
// seedBatch: memory holds one batch. Several writeLogs may share stores.
func writeLog(key ed25519.PrivateKey, federation, label string, count int, stores ...*store.Store) error {
	var head protocol.Head
	batch := make([]*protocol.Entry, 0, seedBatch)
	flush := func() error {
		for i, st := range stores {
			res, err := st.Apply(batch)
			if err != nil {
				return fmt.Errorf("seeding store %d: %w", i, err)
			}
			for _, r := range res {
				if r.Outcome != store.Applied {
					return fmt.Errorf("seeding store %d: %s %v", i, r.Outcome, r.Err)
				}
			}
		}
		batch = batch[:0]
		return nil
	}
	for seq := uint64(1); seq <= uint64(count); seq++ {
		sig, err := protocol.ParseSignal("sha256", seedHash(label, seq))
		if err != nil {
			return err
		}
		body := &pb.Entry{Version: protocol.Version, Federation: federation, Seq: seq,
			TimestampMs: 1_700_000_000_000 + int64(seq),
			Payload: &pb.Entry_Addition{Addition: &pb.Addition{
				Signals: []*pb.Signal{sig},
				Labels:  []*pb.Label{{Slug: "graphic-violence"}},
				CaseRef: "seed"}}}
		if seq > 1 {
			body.Prev = head.ID[:]
		}
		e, err := protocol.Sign(key, body)
		if err != nil {
			return err
		}
		head = protocol.Head{Seq: seq, ID: e.ID}
		batch = append(batch, e)
		if len(batch) == seedBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if len(batch) > 0 {
		return flush()
	}
	return nil
}

// largeLog is the size of the logs that catch-up tests seed: two logs,
// of largeLog/2 entries each, by two authors.
const largeLog = 100_000

// largeLogKeys sign the two large seeded logs. They are fixed so that the
// logs are signed once per test binary and copied into every test that
// needs them: signing under the race detector costs about 0.3 ms an
// entry, and a log can only be signed in order (each entry names the id
// of the one before), so the two logs are signed in parallel.
var largeLogKeys = [2]ed25519.PrivateKey{
	ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x5e}, ed25519.SeedSize)),
	ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0xed}, ed25519.SeedSize)),
}

var largeLogTemplate struct {
	once sync.Once
	path string
	err  error
}

// largeLabel names large log i in seedHash.
func largeLabel(i int) string { return fmt.Sprintf("large-%d", i) }

// seedLarge makes authors[0] and authors[1] the signers of the two large
// logs (their author keys become largeLogKeys, in their directories and
// in the roster) and copies both logs, largeLog entries in all, of
// seedHash(largeLabel(i), seq) additions, into the stores of the nodes
// into. Call it before any of them starts.
func seedLarge(t *testing.T, c *cluster, authors [2]*node, into ...*node) {
	t.Helper()
	largeLogTemplate.once.Do(func() {
		start := time.Now()
		path := filepath.Join(filepath.Dir(binary), "large-logs.db")
		st, err := store.Open(path)
		if err != nil {
			largeLogTemplate.err = err
			return
		}
		errs := make(chan error, 2)
		for i, key := range largeLogKeys {
			go func() { errs <- writeLog(key, "itest", largeLabel(i), largeLog/2, st) }()
		}
		largeLogTemplate.err = errors.Join(<-errs, <-errs, st.Close())
		largeLogTemplate.path = path
		t.Logf("signed and stored the large logs (%d entries) in %v; later tests copy them", largeLog, time.Since(start).Round(time.Millisecond))
	})
	if largeLogTemplate.err != nil {
		t.Fatalf("large logs: %v", largeLogTemplate.err)
	}
	roster, err := os.ReadFile(c.roster)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range authors {
		old := authorKeyOf(t, string(roster), a.name)
		pub := protocol.AuthorKeyOf(largeLogKeys[i])
		roster = bytes.Replace(roster, []byte(old), []byte(pub.String()), 1)
		seed := hex.EncodeToString(largeLogKeys[i].Seed()) + "\n"
		if err := os.WriteFile(filepath.Join(a.dir, config.AuthorKeyFile), []byte(seed), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(c.roster, roster, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, n := range into {
		cfg, err := config.Load(n.dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := copyFile(largeLogTemplate.path, cfg.StorePath); err != nil {
			t.Fatal(err)
		}
	}
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// checkStore opens a stopped node's store and runs the full invariant
// check on it.
func checkStore(t *testing.T, n *node) {
	t.Helper()
	st := openStore(t, n)
	defer st.Close()
	if err := st.Check(); err != nil {
		t.Errorf("store of %s fails its invariant check: %v", n.name, err)
	}
}

// storeCount is the number of entries in a stopped node's store.
func storeCount(t *testing.T, n *node) uint64 {
	t.Helper()
	st := openStore(t, n)
	defer st.Close()
	count, err := st.Count()
	if err != nil {
		t.Fatal(err)
	}
	return count
}

// openStore opens a stopped node's store; the caller closes it.
func openStore(t *testing.T, n *node) *store.Store {
	t.Helper()
	cfg, err := config.Load(n.dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(cfg.StorePath)
	if err != nil {
		t.Fatalf("store of %s: %v", n.name, err)
	}
	return st
}
