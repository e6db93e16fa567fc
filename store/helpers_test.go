package store

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(runsKillEnv); path != "" {
		runsKillChild(path) // never returns: it is killed
	}
	code := m.Run()
	closeMatchDB()
	os.Exit(code)
}

const (
	federation = "test"
	// t0 is the first entry's timestamp; seq n is signed at t0 + n s.
	t0 = int64(1_700_000_000_000)
)

// testStore is a Store in a test's temporary directory whose invariants are
// checked when the test ends, as bbolt's btesting does for its own tests.
type testStore struct {
	*Store
	tb   testing.TB
	path string
	// corrupt says the test damaged the file on purpose: the final Check
	// must then fail with ErrCorrupt instead of passing.
	corrupt bool
}

// mustOpen opens a new store and registers a cleanup that runs Check
// (failing the test on a violation) and closes it. Every test uses it.
func mustOpen(tb testing.TB) *testStore {
	tb.Helper()
	return mustOpenCopy(tb, "")
}

// mustOpenCopy is mustOpen on a copy of the (closed) store file at from,
// or on a new file if from is "".
func mustOpenCopy(tb testing.TB, from string) *testStore {
	tb.Helper()
	ts := &testStore{tb: tb, path: filepath.Join(tb.TempDir(), "staydown.db")}
	if from != "" {
		b, err := os.ReadFile(from)
		if err == nil {
			err = os.WriteFile(ts.path, b, 0o600)
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
	ts.mustReopen()
	tb.Cleanup(ts.cleanup)
	return ts
}

func (ts *testStore) cleanup() {
	if ts.Store == nil {
		ts.tb.Errorf("test ended with the store closed: no final invariant check")
		return
	}
	err := ts.Check()
	switch {
	case ts.corrupt && !errors.Is(err, ErrCorrupt):
		ts.tb.Errorf("final Check of a store corrupted on purpose: got %v, want ErrCorrupt", err)
	case !ts.corrupt && err != nil:
		ts.tb.Errorf("final invariant check: %v", err)
	}
	if err := ts.Close(); err != nil {
		ts.tb.Errorf("close: %v", err)
	}
}

// mustClose closes the store, keeping the file.
func (ts *testStore) mustClose() {
	ts.tb.Helper()
	if err := ts.Close(); err != nil {
		ts.tb.Fatalf("close: %v", err)
	}
	ts.Store = nil
}

// mustReopen opens the file again (closing it first if open).
func (ts *testStore) mustReopen() {
	ts.tb.Helper()
	if ts.Store != nil {
		ts.mustClose()
	}
	s, err := Open(ts.path)
	if err != nil {
		ts.tb.Fatalf("open: %v", err)
	}
	if _, bench := ts.tb.(*testing.B); !bench {
		// fsync latency on a shared test machine varies by seconds and
		// proves nothing here; benchmarks keep it, since that is what
		// they measure.
		s.db.NoSync = true
	}
	ts.Store = s
}

// mustApply applies entries and fails unless the outcomes are want.
func (ts *testStore) mustApply(want Outcome, entries ...*protocol.Entry) {
	ts.tb.Helper()
	res, err := ts.Apply(entries)
	if err != nil {
		ts.tb.Fatalf("apply: %v", err)
	}
	for i, r := range res {
		if r.Outcome != want {
			ts.tb.Fatalf("entry %d (seq %d): %s (%v), want %s", i, entries[i].Seq(), r.Outcome, r.Err, want)
		}
	}
}

// runHolding is the live run of index idx that holds key, or the newest
// run if none does: where a corruption test damages a run index.
func runHolding(tb testing.TB, tx *bolt.Tx, idx int, key []byte) *bolt.Bucket {
	tb.Helper()
	rs, err := openRunSet(tx, idx)
	if err != nil || len(rs.runs) == 0 {
		tb.Fatalf("%s: no runs (%v)", indexNames[idx], err)
	}
	for _, r := range rs.runs {
		if k, _ := r.b.Cursor().Seek(key); bytes.Equal(k, key) {
			return r.b
		}
	}
	return rs.runs[len(rs.runs)-1].b
}

// bolt changes the file behind the store's back, for corruption tests.
func (ts *testStore) bolt(fn func(tx *bolt.Tx) error) {
	ts.tb.Helper()
	if err := ts.db.Update(fn); err != nil {
		ts.tb.Fatalf("bbolt update: %v", err)
	}
}

// row is one key of the file: a value, or a nested bucket.
type row struct {
	path       [][]byte // bucket names from the top
	key, value []byte
	bucket     bool
}

func (r row) String() string {
	parts := []string{string(r.path[0])}
	for _, p := range r.path[1:] {
		parts = append(parts, fmt.Sprintf("%x", p))
	}
	return fmt.Sprintf("%s/%x", strings.Join(parts, "/"), r.key)
}

// rows lists every key and value of the file, nested buckets included.
func (ts *testStore) rows() []row {
	ts.tb.Helper()
	var out []row
	var walk func(path [][]byte, b *bolt.Bucket)
	walk = func(path [][]byte, b *bolt.Bucket) {
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			r := row{path: path, key: bytes.Clone(k), value: bytes.Clone(v)}
			if nb := b.Bucket(k); nb != nil {
				r.bucket, r.value = true, nil
				out = append(out, r)
				walk(append(slices.Clip(path), r.key), nb)
				continue
			}
			out = append(out, r)
		}
	}
	err := ts.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			walk([][]byte{bytes.Clone(name)}, b)
			return nil
		})
	})
	if err != nil {
		ts.tb.Fatalf("rows: %v", err)
	}
	return out
}

// snapshot is what the file holds, for comparing stores: every key and
// value, except that a run index (ids, attest) is listed as the rows of
// its live runs ("ids/KEY"), whichever runs they are in, and the state
// of a merge in progress is left out. Two stores that applied the same
// entries in different batches have the same snapshot.
func (ts *testStore) snapshot() map[string]string {
	ts.tb.Helper()
	out := map[string]string{}
	runIndex := map[string]bool{}
	for idx := range numIndexes {
		if isRunIndex[idx] {
			runIndex[string(indexNames[idx])] = true
			runIndex[string(mergeBucketName(idx))] = true
		}
	}
	for _, r := range ts.rows() {
		if !runIndex[string(r.path[0])] {
			if r.bucket {
				out[r.String()] = "(bucket)"
			} else {
				out[r.String()] = string(r.value)
			}
		}
	}
	err := ts.db.View(func(tx *bolt.Tx) error {
		for idx := range numIndexes {
			if !isRunIndex[idx] {
				continue
			}
			rows, err := runRows(tx, idx)
			if err != nil {
				return err
			}
			for _, r := range rows {
				out[row{path: [][]byte{indexNames[idx]}, key: r.k}.String()] = string(r.v)
			}
		}
		return nil
	})
	if err != nil {
		ts.tb.Fatalf("snapshot: %v", err)
	}
	return out
}

// runRows is every row of the live runs of a run index, in key order.
func runRows(tx *bolt.Tx, idx int) ([]kv, error) {
	rs, err := openRunSet(tx, idx)
	if err != nil {
		return nil, err
	}
	var rows []kv
	c := rs.cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		rows = append(rows, kv{bytes.Clone(k), bytes.Clone(v)})
	}
	return rows, nil
}

// physical is every key and value of the file, nested buckets and the
// runs' layout included: for "nothing changed" checks.
func (ts *testStore) physical() map[string]string {
	ts.tb.Helper()
	out := map[string]string{}
	for _, r := range ts.rows() {
		if r.bucket {
			out[r.String()] = "(bucket)"
		} else {
			out[r.String()] = string(r.value)
		}
	}
	return out
}

// diff describes how two snapshots differ, "" if they do not.
func diff(a, b map[string]string) string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			out = append(out, fmt.Sprintf("only before: %q", k))
		} else if v != w {
			out = append(out, fmt.Sprintf("changed: %q: %x -> %x", k, v, w))
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, fmt.Sprintf("only after: %q", k))
		}
	}
	sort.Strings(out)
	if len(out) > 10 {
		out = append(out[:10], fmt.Sprintf("... %d more", len(out)-10))
	}
	return strings.Join(out, "\n")
}

// author signs entries with a fixed key and tracks its own head, as a node
// would.
type author struct {
	tb   testing.TB
	priv ed25519.PrivateKey
	key  protocol.AuthorKey
	head protocol.Head
	log  []*protocol.Entry // every entry made by next, log[i] is seq i+1
}

func newAuthor(tb testing.TB, seed byte) *author {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	k := protocol.AuthorKeyOf(priv)
	return &author{tb: tb, priv: priv, key: k, head: protocol.Head{Author: k}}
}

// next signs body as the entry after the author's head and advances it.
func (a *author) next(body *pb.Entry) *protocol.Entry {
	a.tb.Helper()
	e := a.sign(a.head.Seq+1, a.head.ID, body)
	a.head = protocol.Head{Author: a.key, Seq: e.Seq(), ID: e.ID}
	a.log = append(a.log, e)
	return e
}

// sign signs body at any seq and prev, leaving the head alone: for forks,
// gaps and broken chains.
func (a *author) sign(seq uint64, prev protocol.ID, body *pb.Entry) *protocol.Entry {
	a.tb.Helper()
	body.Version, body.Federation, body.Seq = protocol.Version, federation, seq
	if seq > 1 {
		body.Prev = bytes.Clone(prev[:])
	}
	if body.TimestampMs == 0 {
		body.TimestampMs = t0 + int64(seq)*1000
	}
	e, err := protocol.Sign(a.priv, body)
	if err != nil {
		a.tb.Fatalf("sign seq %d: %v", seq, err)
	}
	return e
}

// Payloads. Each returns a fresh body for author.next or author.sign.

func sha(s string) *pb.Signal {
	sum := sha256.Sum256([]byte(s))
	return &pb.Signal{Value: &pb.Signal_Multihash{Multihash: append([]byte{0x12, 0x20}, sum[:]...)}}
}

// shaN is the n-th of many distinct sha256 signals, for benchmarks.
func shaN(n uint64) *pb.Signal {
	sum := sha256.Sum256(binary.BigEndian.AppendUint64(nil, n))
	return &pb.Signal{Value: &pb.Signal_Multihash{Multihash: append([]byte{0x12, 0x20}, sum[:]...)}}
}

func key(s *pb.Signal) []byte { return protocol.SignalKey(s) }

func addition(sigs ...*pb.Signal) *pb.Entry {
	return &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{
		Signals: sigs,
		Labels:  []*pb.Label{{Slug: "graphic-violence"}, {Slug: "other", Text: "test material"}},
		CaseRef: "case-1",
	}}}
}

// retraction of target, naming sigs (none: all of target's).
func retraction(target protocol.ID, reason string, sigs ...*pb.Signal) *pb.Entry {
	return &pb.Entry{Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{Target: target[:], Reason: reason, Signals: named(sigs)}}}
}

// dispute of target, naming sigs (none: all of target's).
func dispute(target protocol.ID, reason string, sigs ...*pb.Signal) *pb.Entry {
	return &pb.Entry{Payload: &pb.Entry_Dispute{Dispute: &pb.Dispute{Target: target[:], Reason: reason, Signals: named(sigs)}}}
}

func named(sigs []*pb.Signal) []*pb.Signal {
	if len(sigs) == 0 {
		return nil
	}
	return protocol.SortSignals(sigs)
}

func allow(category, reason string, sigs ...*pb.Signal) *pb.Entry {
	return &pb.Entry{Payload: &pb.Entry_Allow{Allow: &pb.Allow{Signals: sigs, Category: category, Reason: reason}}}
}

func notice(to protocol.AuthorKey, sigs ...*pb.Signal) *pb.Entry {
	return &pb.Entry{Payload: &pb.Entry_Notice{Notice: &pb.Notice{
		Addressee:  to[:],
		Signals:    sigs,
		Category:   &pb.Label{Slug: "attacker-manifesto"},
		LegalBasis: "Regulation (EU) 2021/784, art. 3",
		Binding:    true,
		DeadlineMs: t0 + 1_000_000_000,
	}}}
}

func noticeUpdate(n protocol.ID) *pb.Entry {
	return &pb.Entry{Payload: &pb.Entry_NoticeUpdate{NoticeUpdate: &pb.NoticeUpdate{Notice: n[:], Withdraw: true}}}
}

func noticeReply(n protocol.ID) *pb.Entry {
	return &pb.Entry{Payload: &pb.Entry_NoticeReply{NoticeReply: &pb.NoticeReply{
		Notice: n[:], Status: pb.ReplyStatus_REPLY_STATUS_REMOVED, ActionTimeMs: t0 + 5000,
	}}}
}

// world is a small federation of fixed authors with fresh heads.
type world struct {
	A, B, C *author
	voids   map[protocol.ID]bool // entries of rich that break a stateful rule
}

func newWorld(tb testing.TB) *world {
	return &world{A: newAuthor(tb, 1), B: newAuthor(tb, 2), C: newAuthor(tb, 3)}
}

// rich signs logs that use every payload kind and cross-reference each
// other, plus a fork of C's seq 2, and returns them log by log (the fork
// last).
func (w *world) rich() (logs [][]*protocol.Entry, fork *protocol.Entry) {
	A, B, C := w.A, w.B, w.C
	a1 := A.next(addition(sha("x"), sha("y"), sha("x")))
	a2 := A.next(addition(sha("z")))
	A.next(retraction(a2.ID, "wrong file"))
	n := A.next(notice(B.key, sha("x")))
	A.next(noticeUpdate(n.ID))
	a6 := A.next(allow("research", "dataset", sha("v")))
	A.next(retraction(a6.ID, "dataset withdrawn"))
	c1ID := C.sign(1, protocol.ID{}, addition(sha("x"), sha("w"))).ID

	B.next(dispute(a1.ID, "this is a news clip"))
	b2 := B.next(allow("news", "broadcast footage", sha("x")))
	B.next(noticeReply(n.ID))
	B.next(addition(sha("z")))
	B.next(retraction(b2.ID, "misfiled"))
	B.next(dispute(c1ID, "satire"))
	B.next(allow("counter-speech", "rebuttal video", sha("y")))

	C.next(addition(sha("x"), sha("w")))
	C.next(allow("other", "parody", sha("z")))
	C.next(dispute(a2.ID, "retracted anyway"))
	// Void entries: stored, no effect, and rebuilt the same.
	w.voids = map[protocol.ID]bool{
		A.next(retraction(a2.ID, "retracted twice")).ID:    true,
		C.next(retraction(a1.ID, "not C's to retract")).ID: true,
	}
	fork = C.sign(2, C.log[0].ID, allow("news", "a different entry 2", sha("z")))
	return [][]*protocol.Entry{A.log, B.log, C.log}, fork
}

// interleave takes entries round-robin from the logs, starting with the
// last log: an arrival order unlike Rebuild's walk in key order.
func interleave(logs [][]*protocol.Entry) []*protocol.Entry {
	var out []*protocol.Entry
	for i := 0; ; i++ {
		added := false
		for j := len(logs) - 1; j >= 0; j-- {
			if i < len(logs[j]) {
				out = append(out, logs[j][i])
				added = true
			}
		}
		if !added {
			return out
		}
	}
}

// matchOne matches a signal and expects exactly one attestation.
func matchOne(tb testing.TB, s *testStore, sig *pb.Signal) Attestation {
	tb.Helper()
	as, err := s.Match(key(sig))
	if err != nil {
		tb.Fatalf("match: %v", err)
	}
	if len(as) != 1 {
		tb.Fatalf("match %s: %d attestations, want 1: %+v", protocol.FormatSignal(sig), len(as), as)
	}
	return as[0]
}

// mustApplyRich applies entries of world.rich: each is Applied, or Void if
// rich made it void.
func (ts *testStore) mustApplyRich(w *world, entries ...*protocol.Entry) {
	ts.tb.Helper()
	res, err := ts.Apply(entries)
	if err != nil {
		ts.tb.Fatal(err)
	}
	for i, r := range res {
		want := Applied
		if w.voids[entries[i].ID] {
			want = Void
		}
		if r.Outcome != want {
			ts.tb.Fatalf("entry %d (seq %d): %s (%v), want %s", i, entries[i].Seq(), r.Outcome, r.Err, want)
		}
	}
}
