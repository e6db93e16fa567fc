package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// localStore is richStore with rows in every local bucket: two latest
// checkpoints, two conflicts, two watched signals, two alerts.
func localStore(t *testing.T) (*testStore, *world) {
	t.Helper()
	s, w := richStore(t)
	for _, err := range []error{
		s.SaveCheckpoint(w.A.key, checkpointNote(t, w.A, 3, 1)),
		s.SaveCheckpoint(w.B.key, checkpointNote(t, w.B, 2, 1)),
		s.SaveCheckpointConflict(checkpointNote(t, w.A, 3, 2)),
		s.SaveCheckpointConflict(checkpointNote(t, w.C, 1, 2)),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Watch([][]byte{key(sha("x")), key(sha("w"))}, nil); err != nil {
		t.Fatal(err)
	}
	err := s.RaiseAlerts(func(wr *Writes) error {
		for _, e := range []*protocol.Entry{w.A.log[0], w.C.log[0]} {
			if _, _, err := wr.Raise(Alert{RaisedMs: 7, Watched: sha("x"), Signal: sha("x"), EntryID: e.ID}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, w
}

// localRow is the nested local bucket parent/name in a test's bbolt
// transaction.
func localRow(tx *bolt.Tx, parent, name []byte) *bolt.Bucket { return tx.Bucket(parent).Bucket(name) }

// TestCheckCatchesLocalDamage: Check finds damage to the node's own
// buckets; Rebuild, which derives only indexes, leaves it (and it stays
// found).
func TestCheckCatchesLocalDamage(t *testing.T) {
	latest := func(tx *bolt.Tx) *bolt.Bucket { return localRow(tx, bucketCheckpoints, ckptLatest) }
	conflicts := func(tx *bolt.Tx) *bolt.Bucket { return localRow(tx, bucketCheckpoints, ckptConflicts) }
	signals := func(tx *bolt.Tx) *bolt.Bucket { return localRow(tx, bucketWatchlist, watchSignals) }
	alerts := func(tx *bolt.Tx) *bolt.Bucket { return localRow(tx, bucketWatchlist, watchAlerts) }
	alerted := func(tx *bolt.Tx) *bolt.Bucket { return localRow(tx, bucketWatchlist, watchAlerted) }
	once := func(e *protocol.Entry, sig *pb.Signal) []byte { return cat(e.ID[:], key(sig)) }
	tests := []struct {
		name   string
		damage func(tx *bolt.Tx, w *world) error
	}{
		{"latest keyed by a short key", func(tx *bolt.Tx, w *world) error {
			return latest(tx).Put(w.A.key[:31], checkpointNote(t, w.A, 1, 1))
		}},
		{"latest of another log", func(tx *bolt.Tx, w *world) error {
			return latest(tx).Put(w.A.key[:], checkpointNote(t, w.B, 5, 1))
		}},
		{"latest without signatures", func(tx *bolt.Tx, w *world) error {
			v := latest(tx).Get(w.A.key[:])
			return latest(tx).Put(w.A.key[:], bytes.Clone(v[:bytes.Index(v, []byte("\n\n"))+2]))
		}},
		{"latest root garbled", func(tx *bolt.Tx, w *world) error {
			v := bytes.Replace(latest(tx).Get(w.A.key[:]), []byte("\n3\n"), []byte("\n3\n!"), 1)
			return latest(tx).Put(w.A.key[:], v)
		}},
		{"conflict deleted: a gap", func(tx *bolt.Tx, w *world) error { return conflicts(tx).Delete(u64(1)) }},
		{"last conflict deleted: the sequence is ahead", func(tx *bolt.Tx, w *world) error { return conflicts(tx).Delete(u64(2)) }},
		{"conflict under key 0", func(tx *bolt.Tx, w *world) error {
			return conflicts(tx).Put(u64(0), checkpointNote(t, w.A, 1, 1))
		}},
		{"conflict not a checkpoint", func(tx *bolt.Tx, w *world) error { return conflicts(tx).Put(u64(2), []byte("x\n\n— sig\n")) }},
		{"watched value not 1", func(tx *bolt.Tx, w *world) error { return signals(tx).Put(key(sha("x")), []byte{2}) }},
		{"watched ref length past the end", func(tx *bolt.Tx, w *world) error { return signals(tx).Put(key(sha("x")), []byte{1, 5, 'a'}) }},
		{"watched ref empty", func(tx *bolt.Tx, w *world) error { return signals(tx).Put(key(sha("x")), []byte{1, 0}) }},
		{"watched ref twice", func(tx *bolt.Tx, w *world) error {
			return signals(tx).Put(key(sha("x")), watchedValue([]string{"up-1", "up-1"}))
		}},
		{"watched ref with a tab", func(tx *bolt.Tx, w *world) error {
			return signals(tx).Put(key(sha("x")), watchedValue([]string{"a\tb"}))
		}},
		{"alert ref unprintable", func(tx *bolt.Tx, w *world) error {
			v := bytes.Replace(alerts(tx).Get(u64(1)), []byte(`}`), []byte(`,"refs":["a\u0000"]}`), 1)
			return alerts(tx).Put(u64(1), v)
		}},
		{"watched key of no signal type", func(tx *bolt.Tx, w *world) error { return signals(tx).Put([]byte{0x7f, 1, 2}, watchedValue(nil)) }},
		{"watched sha256 key too short", func(tx *bolt.Tx, w *world) error { return signals(tx).Put(key(sha("v"))[:20], watchedValue(nil)) }},
		{"alert not JSON", func(tx *bolt.Tx, w *world) error { return alerts(tx).Put(u64(1), []byte("{")) }},
		{"alert names no entry", func(tx *bolt.Tx, w *world) error {
			return alerts(tx).Put(u64(1), []byte(`{"raised_ms":7,"watched":"sha256:00","signal":"sha256:00","entry":"ab"}`))
		}},
		{"alert deleted", func(tx *bolt.Tx, w *world) error { return alerts(tx).Delete(u64(2)) }},
		{"alert sequence moved on", func(tx *bolt.Tx, w *world) error { return alerts(tx).SetSequence(3) }},
		{"alerted row deleted", func(tx *bolt.Tx, w *world) error { return alerted(tx).Delete(once(w.A.log[0], sha("x"))) }},
		{"alerted row for no alert", func(tx *bolt.Tx, w *world) error { return alerted(tx).Put(once(w.B.log[0], sha("x")), u64(9)) }},
		{"alerted row for another pair's alert", func(tx *bolt.Tx, w *world) error { return alerted(tx).Put(once(w.B.log[0], sha("x")), u64(1)) }},
		{"alerted row names the other alert", func(tx *bolt.Tx, w *world) error { return alerted(tx).Put(once(w.A.log[0], sha("x")), u64(2)) }},
		{"alerted value truncated", func(tx *bolt.Tx, w *world) error { return alerted(tx).Put(once(w.A.log[0], sha("x")), []byte{1}) }},
		{"a local bucket missing", func(tx *bolt.Tx, w *world) error { return tx.Bucket(bucketWatchlist).DeleteBucket(watchAlerted) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, w := localStore(t)
			s.bolt(func(tx *bolt.Tx) error { return tt.damage(tx, w) })
			if err := s.Check(); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Check: %v, want ErrCorrupt", err)
			} else {
				t.Logf("Check: %v", err)
			}
			if err := s.Rebuild(); err != nil {
				t.Fatalf("Rebuild (the logs are sound): %v", err)
			}
			s.corrupt = true // the final Check must still find it
		})
	}
}

// TestOpenAddsLocalBuckets: a file of this schema without the local
// buckets (written before they moved into the store) gets them, empty,
// when opened, and nothing else changes.
func TestOpenAddsLocalBuckets(t *testing.T) {
	tests := []struct {
		name   string
		remove func(tx *bolt.Tx) error
	}{
		{"both", func(tx *bolt.Tx) error {
			return errors.Join(tx.DeleteBucket(bucketCheckpoints), tx.DeleteBucket(bucketWatchlist))
		}},
		{"checkpoints", func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketCheckpoints) }},
		{"one nested", func(tx *bolt.Tx) error { return tx.Bucket(bucketWatchlist).DeleteBucket(watchAlerts) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := richStore(t)
			want := s.physical()
			s.bolt(tt.remove)
			if err := s.Check(); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Check without the buckets: %v, want ErrCorrupt", err)
			}
			s.mustReopen()
			if d := diff(want, s.physical()); d != "" {
				t.Errorf("reopened file differs:\n%s", d)
			}
		})
	}
}

// legacyFile writes a bbolt side file at path as the node wrote
// checkpoints.db and watchlist.db: top-level buckets of rows, with a
// sequence.
type legacyBucket struct {
	rows []kv
	seq  uint64
}

func legacyFile(tb testing.TB, path string, buckets map[string]legacyBucket) {
	tb.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		for name, lb := range buckets {
			b, err := tx.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			for _, r := range lb.rows {
				if err := b.Put(r.k, r.v); err != nil {
					return err
				}
			}
			if err := b.SetSequence(lb.seq); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// TestImportLegacy: the side files' rows come into the store in one
// transaction, the files untouched; importing the same again changes
// nothing; a store holding other rows, a file with a bucket the store
// does not know, or rows that fail Check are ErrImport, with nothing
// changed.
func TestImportLegacy(t *testing.T) {
	w := newWorld(t)
	a1 := w.A.next(addition(sha("x")))
	note, conflict := checkpointNote(t, w.A, 1, 1), checkpointNote(t, w.A, 1, 2)
	alert := fmt.Sprintf(`{"raised_ms":1700000000000,"watched":%q,"signal":%q,"entry":%q}`,
		protocol.FormatSignal(sha("x")), protocol.FormatSignal(sha("x")), a1.ID)
	checkpointsDB := map[string]legacyBucket{
		"latest":    {rows: []kv{{w.A.key[:], note}}},
		"conflicts": {rows: []kv{{u64(1), conflict}}, seq: 1},
	}
	watchlistDB := map[string]legacyBucket{
		"signals": {rows: []kv{{key(sha("x")), []byte{1}}, {key(sha("y")), []byte{1}}}},
		"alerts":  {rows: []kv{{u64(1), []byte(alert)}}, seq: 1},
		"alerted": {rows: []kv{{cat(a1.ID[:], key(sha("x"))), u64(1)}}},
	}
	tests := []struct {
		name    string
		files   []map[string]legacyBucket
		before  func(s *testStore) // what the store holds already
		want    error
		wantAll bool // the store holds both files' rows after
	}{
		{"both", []map[string]legacyBucket{checkpointsDB, watchlistDB}, nil, nil, true},
		{"empty files (a node that never watched)", []map[string]legacyBucket{
			{"latest": {}, "conflicts": {}}, {"signals": {}, "alerts": {}, "alerted": {}},
		}, nil, nil, false},
		{"already imported", []map[string]legacyBucket{checkpointsDB, watchlistDB}, func(s *testStore) {
			if err := s.ImportLegacy(writeLegacy(t, checkpointsDB), writeLegacy(t, watchlistDB)); err != nil {
				t.Fatal(err)
			}
		}, nil, true},
		{"the store watches other signals", []map[string]legacyBucket{checkpointsDB, watchlistDB}, func(s *testStore) {
			if err := s.Watch([][]byte{key(sha("z"))}, nil); err != nil {
				t.Fatal(err)
			}
		}, ErrImport, false},
		{"a bucket the store does not know", []map[string]legacyBucket{{"latest": {}, "notes": {}}}, nil, ErrImport, false},
		{"an alert without its alerted row", []map[string]legacyBucket{{
			"signals": watchlistDB["signals"], "alerts": watchlistDB["alerts"],
		}}, nil, ErrImport, false},
		{"a latest checkpoint under another log's key", []map[string]legacyBucket{{
			"latest": {rows: []kv{{w.B.key[:], note}}},
		}}, nil, ErrImport, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustOpen(t)
			s.mustApply(Applied, a1)
			if tt.before != nil {
				tt.before(s)
			}
			var paths []string
			var contents [][]byte
			for _, f := range tt.files {
				p := writeLegacy(t, f)
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				paths, contents = append(paths, p), append(contents, b)
			}
			before := s.physical()
			err := s.ImportLegacy(paths...)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("ImportLegacy: %v, want %v", err, tt.want)
			}
			if err != nil {
				t.Logf("ImportLegacy: %v", err)
				if d := diff(before, s.physical()); d != "" {
					t.Errorf("a refused import changed the store:\n%s", d)
				}
			}
			for i, p := range paths {
				if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, contents[i]) {
					t.Errorf("%s changed (%v)", p, err)
				}
			}
			if !tt.wantAll {
				return
			}
			if got, err := s.LatestCheckpoints(); err != nil || !equalNotes(got, [][]byte{note}) {
				t.Errorf("latest checkpoints %q (%v)", got, err)
			}
			if got, err := s.CheckpointConflicts(); err != nil || !equalNotes(got, [][]byte{conflict}) {
				t.Errorf("checkpoint conflicts %q (%v)", got, err)
			}
			var watched [][]byte
			if err := s.WatchedKeys(func(k []byte) error { watched = append(watched, bytes.Clone(k)); return nil }); err != nil || len(watched) != 2 {
				t.Errorf("watched %x (%v)", watched, err)
			}
			alerts, err := s.Alerts(0)
			if err != nil || len(alerts) != 1 || alerts[0].EntryID != a1.ID || alerts[0].Seq != 1 || alerts[0].RaisedMs != 1_700_000_000_000 {
				t.Errorf("alerts %+v (%v)", alerts, err)
			}
			// The sequences came along: the next alert and conflict follow.
			if err := s.SaveCheckpointConflict(note); err != nil {
				t.Fatal(err)
			}
			err = s.RaiseAlerts(func(w *Writes) error {
				a, ok, err := w.Raise(Alert{Watched: sha("y"), Signal: sha("y"), EntryID: a1.ID})
				if err == nil && (!ok || a.Seq != 2) {
					err = fmt.Errorf("raised %+v, %v: want seq 2", a, ok)
				}
				return err
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
}

// writeLegacy writes a side file in a new temporary directory and
// returns its path.
func writeLegacy(tb testing.TB, buckets map[string]legacyBucket) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "side.db")
	legacyFile(tb, p, buckets)
	return p
}
