package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/staydown/staydown/protocol"
)

// richStore is a store holding world.rich, applied interleaved.
func richStore(t *testing.T) (*testStore, *world) {
	t.Helper()
	s, w := mustOpen(t), newWorld(t)
	logs, fork := w.rich()
	s.mustApplyRich(w, interleave(logs)...)
	s.mustApply(Equivocation, fork)
	return s, w
}

func TestCheckCatchesCorruption(t *testing.T) {
	idx := func(tx *bolt.Tx, i int) *bolt.Bucket { return tx.Bucket(indexNames[i]) }
	log := func(tx *bolt.Tx, a *author) *bolt.Bucket { return tx.Bucket(bucketLogs).Bucket(a.key[:]) }
	tests := []struct {
		name string
		// repairable: Rebuild fixes it (an index); otherwise the damage is
		// to source data and Check must keep failing.
		repairable bool
		damage     func(tx *bolt.Tx, w *world) error
	}{
		{"ids row deleted", true, func(tx *bolt.Tx, w *world) error {
			return runHolding(t, tx, idxIDs, w.B.log[2].ID[:]).Delete(w.B.log[2].ID[:])
		}},
		{"ids row points at another seq", true, func(tx *bolt.Tx, w *world) error {
			e := w.A.log[1]
			return runHolding(t, tx, idxIDs, w.A.log[0].ID[:]).Put(w.A.log[0].ID[:], idRowValue(e))
		}},
		{"ids row for no entry", true, func(tx *bolt.Tx, w *world) error {
			id := protocol.IDOf([]byte("ghost"))
			return runHolding(t, tx, idxIDs, id[:]).Put(id[:], idRowValue(w.A.log[0]))
		}},
		{"attest row for a signal the entry does not carry", true, func(tx *bolt.Tx, w *world) error {
			k := append(signalPrefix(key(sha("bogus"))), logKey(w.A.key, 1)...)
			return runHolding(t, tx, idxAttest, k).Put(k, nil)
		}},
		{"attest row deleted", true, func(tx *bolt.Tx, w *world) error {
			k := append(signalPrefix(key(sha("w"))), logKey(w.C.key, 1)...)
			return runHolding(t, tx, idxAttest, k).Delete(k)
		}},
		{"head behind the log", true, func(tx *bolt.Tx, w *world) error {
			return idx(tx, idxHeads).Put(w.A.key[:], headValue(protocol.Head{Seq: 1, ID: w.A.log[0].ID}))
		}},
		{"head for an author without a log (its log lost?)", false, func(tx *bolt.Tx, w *world) error {
			stranger := newAuthor(w.A.tb, 9).key
			return idx(tx, idxHeads).Put(stranger[:], headValue(w.A.head))
		}},
		{"count off by one", true, func(tx *bolt.Tx, w *world) error {
			return tx.Bucket(bucketMeta).Put(metaCount, u64(uint64(len(w.A.log)+len(w.B.log)+len(w.C.log)+1)))
		}},
		{"retraction row rewritten", true, func(tx *bolt.Tx, w *world) error {
			return idx(tx, idxRetractions).Put(w.A.log[1].ID[:], append(w.A.log[2].ID[:], "other reason"...))
		}},
		{"dispute row for nothing", true, func(tx *bolt.Tx, w *world) error {
			return idx(tx, idxDisputes).Put(append(w.A.log[0].ID[:], w.C.log[0].ID[:]...), w.C.key[:])
		}},
		{"allow value garbled", true, func(tx *bolt.Tx, w *world) error {
			return idx(tx, idxAllow).Put(append(signalPrefix(key(sha("y"))), w.B.log[6].ID[:]...), []byte{1, 2, 3})
		}},
		{"additions summary changed", true, func(tx *bolt.Tx, w *world) error {
			lk := logKey(w.B.key, 4)
			v := slices.Clone(idx(tx, idxAdditions).Get(lk))
			v[len(v)-1] ^= 1
			return idx(tx, idxAdditions).Put(lk, v)
		}},
		{"noticerefs row deleted", true, func(tx *bolt.Tx, w *world) error {
			return idx(tx, idxNoticeRefs).Delete(append(w.A.log[3].ID[:], w.B.log[2].ID[:]...))
		}},
		{"index bucket missing", true, func(tx *bolt.Tx, w *world) error {
			return tx.DeleteBucket(indexNames[idxNotices])
		}},
		{"hole in a log", false, func(tx *bolt.Tx, w *world) error {
			return log(tx, w.A).Delete(u64(2))
		}},
		{"newest entry cut off", false, func(tx *bolt.Tx, w *world) error {
			return log(tx, w.A).Delete(u64(uint64(len(w.A.log))))
		}},
		{"entry bytes flipped", false, func(tx *bolt.Tx, w *world) error {
			v := slices.Clone(log(tx, w.B).Get(u64(2)))
			v[len(v)/2] ^= 0x40
			return log(tx, w.B).Put(u64(2), v)
		}},
		{"head entry's signature flipped", false, func(tx *bolt.Tx, w *world) error {
			seq := uint64(len(w.B.log))
			v := slices.Clone(log(tx, w.B).Get(u64(seq)))
			v[len(v)-1] ^= 1
			return log(tx, w.B).Put(u64(seq), v)
		}},
		{"entry in another author's log", false, func(tx *bolt.Tx, w *world) error {
			return log(tx, w.A).Put(u64(1), w.B.log[0].Raw)
		}},
		{"log forked in place", false, func(tx *bolt.Tx, w *world) error {
			return log(tx, w.A).Put(u64(2), w.A.sign(2, w.A.log[0].ID, addition(sha("rewritten"))).Raw)
		}},
		{"evidence that is the logged entry", false, func(tx *bolt.Tx, w *world) error {
			e := w.A.log[0]
			return tx.Bucket(bucketEvidence).Put(evidenceKey(e.Author, 1, e.ID), e.Raw)
		}},
		{"evidence ahead of the log", false, func(tx *bolt.Tx, w *world) error {
			e := w.A.sign(uint64(len(w.A.log)+5), w.A.head.ID, addition(sha("future")))
			return tx.Bucket(bucketEvidence).Put(evidenceKey(e.Author, e.Seq(), e.ID), e.Raw)
		}},
		{"evidence under the wrong key", false, func(tx *bolt.Tx, w *world) error {
			e := w.A.sign(1, protocol.ID{}, addition(sha("fork")))
			return tx.Bucket(bucketEvidence).Put(evidenceKey(w.B.key, 1, e.ID), e.Raw)
		}},
		{"schema changed", false, func(tx *bolt.Tx, w *world) error {
			return tx.Bucket(bucketMeta).Put(metaSchema, u64(schemaVersion+1))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, w := richStore(t)
			s.bolt(func(tx *bolt.Tx) error { return tt.damage(tx, w) })
			err := s.Check()
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Check: %v, want ErrCorrupt", err)
			}
			t.Logf("Check: %v", err)
			rerr := s.Rebuild()
			switch {
			case tt.repairable && rerr != nil:
				t.Fatalf("Rebuild: %v", rerr)
			case tt.repairable:
				// The final Check in the cleanup proves the repair.
			case rerr != nil && !errors.Is(rerr, ErrCorrupt):
				t.Fatalf("Rebuild of damaged source data: %v, want nil or ErrCorrupt", rerr)
			default:
				s.corrupt = true
			}
		})
	}
}

// Every read of a damaged file returns an error, never panics, and the
// error says ErrCorrupt (or ErrNotFound where the damage removed the row
// asked for). Rows are damaged at random, with a fixed seed.
func TestDamagedFileNeverPanics(t *testing.T) {
	template, w := richStore(t)
	template.mustClose()
	defer template.mustReopen()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 150 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			s := mustOpenCopy(t, template.path)
			var rows []row
			for _, r := range s.rows() {
				if !r.bucket {
					rows = append(rows, r)
				}
			}
			r := rows[rng.IntN(len(rows))]
			v := r.value
			var how string
			switch op := rng.IntN(4); {
			case op == 0:
				how, v = "deleted", nil
			case op == 1 && len(v) > 0:
				how, v = "truncated", v[:rng.IntN(len(v))]
			case op == 2:
				how, v = "extended", append(v, byte(rng.IntN(256)))
			default:
				how = "flipped"
				if len(v) == 0 {
					v = []byte{0}
				} else {
					v[rng.IntN(len(v))] ^= byte(1 + rng.IntN(255))
				}
			}
			t.Logf("%s %s", r, how)
			s.bolt(func(tx *bolt.Tx) error {
				b := tx.Bucket(r.path[0])
				for _, n := range r.path[1:] {
					b = b.Bucket(n)
				}
				if v == nil {
					return b.Delete(r.key)
				}
				return b.Put(r.key, v)
			})
			readEverything(t, s, w)
			top := string(r.path[0])
			index := top != string(bucketLogs) && top != string(bucketEvidence) && !(top == string(bucketMeta) && string(r.key) == string(metaSchema))
			if err := s.Check(); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Check: %v, want ErrCorrupt", err)
			}
			err := s.Rebuild()
			switch {
			case err != nil && !errors.Is(err, ErrCorrupt):
				t.Fatalf("Rebuild: %v", err)
			case index && err != nil:
				t.Fatalf("Rebuild of a damaged index: %v", err)
			case index:
				// repaired: the final Check must pass
			default:
				s.corrupt = true
				readEverything(t, s, w)
			}
		})
	}
}

func readEverything(t *testing.T, s *testStore, w *world) {
	t.Helper()
	ok := func(what string, err error) {
		t.Helper()
		if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v, want nil, ErrCorrupt or ErrNotFound", what, err)
		}
	}
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("panic reading a damaged store: %v", p)
		}
	}()
	_, err := s.Heads()
	ok("Heads", err)
	_, err = s.Count()
	ok("Count", err)
	_, err = s.Evidence()
	ok("Evidence", err)
	_, err = s.Flagged()
	ok("Flagged", err)
	for _, a := range []*author{w.A, w.B, w.C} {
		_, err = s.Head(a.key)
		ok("Head", err)
		ok("Range", s.Range(a.key, 1, 100, func(*protocol.Entry) error { return nil }))
		_, err = s.NoticesTo(a.key)
		ok("NoticesTo", err)
		for _, e := range a.log {
			_, err = s.Get(e.ID)
			ok("Get", err)
			_, err = s.Notice(e.ID)
			ok("Notice", err)
		}
	}
	for _, sig := range []string{"x", "y", "z", "w", "v"} {
		_, err = s.Match(key(sha(sig)))
		ok("Match", err)
	}
}

// The write paths refuse to build on a damaged head or count.
func TestWritesRefuseDamagedRows(t *testing.T) {
	tests := []struct {
		name   string
		damage func(tx *bolt.Tx, w *world) error
	}{
		{"head truncated", func(tx *bolt.Tx, w *world) error {
			return tx.Bucket(indexNames[idxHeads]).Put(w.A.key[:], []byte{0, 1})
		}},
		{"count truncated", func(tx *bolt.Tx, w *world) error {
			return tx.Bucket(bucketMeta).Put(metaCount, []byte{1})
		}},
		{"ids row garbled", func(tx *bolt.Tx, w *world) error {
			id := w.A.log[len(w.A.log)-2].ID[:]
			return runHolding(t, tx, idxIDs, id).Put(id, []byte("garbage"))
		}},
		{"a value among the ids runs", func(tx *bolt.Tx, w *world) error {
			return tx.Bucket(indexNames[idxIDs]).Put([]byte("not a run"), []byte("x"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, w := mustOpen(t), newWorld(t)
			a1 := w.A.next(addition(sha("a")))
			a2 := w.A.next(addition(sha("b")))
			s.mustApply(Applied, a1, a2)
			s.bolt(func(tx *bolt.Tx) error { return tt.damage(tx, w) })
			before := s.physical()
			next := w.A.next(retraction(a1.ID, "x"))
			if _, err := s.Apply([]*protocol.Entry{next}); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Apply: %v, want ErrCorrupt", err)
			}
			if _, err := s.Append(w.A.key, func(h protocol.Head) (*protocol.Entry, error) { return next, nil }); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Append: %v, want ErrCorrupt", err)
			}
			if d := diff(before, s.physical()); d != "" {
				t.Errorf("a refused write changed the file:\n%s", d)
			}
			if err := s.Rebuild(); err != nil {
				t.Fatal(err)
			}
			s.mustApply(Applied, next)
		})
	}
}
