package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// smallRuns makes every kind of merge happen with a few rows: runs stop
// taking small flushes at 4 rows, two runs of a tier merge, merges of
// more than 6 rows go in steps of 5.
func smallRuns(t *testing.T) {
	t.Helper()
	tier0, fanIn, inline, step := runTier0, runFanIn, mergeInline, mergeStep
	runTier0, runFanIn, mergeInline, mergeStep = 4, 2, 6, 5
	t.Cleanup(func() { runTier0, runFanIn, mergeInline, mergeStep = tier0, fanIn, inline, step })
}

// runStats reads the live runs of an index and whether a stepped merge is
// in progress.
func runStats(t *testing.T, s *testStore, idx int) (runs int, merging bool) {
	t.Helper()
	err := s.db.View(func(tx *bolt.Tx) error {
		rs, err := openRunSet(tx, idx)
		if err != nil {
			return err
		}
		inputs, _, _ := rs.mergeState()
		runs, merging = len(rs.runs), len(inputs) > 0
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return runs, merging
}

// The run indexes under random batches, retractions (which read ids
// within the transaction, from this batch's rows and from the runs),
// signals repeated within an addition, and reopening between stepped
// merge steps: after every batch the store passes Check, every signal
// matches exactly the additions that carry it and every id resolves; at
// the end a Rebuild (one run per flush chunk) holds the same rows.
func TestRunsRandomBatches(t *testing.T) {
	smallRuns(t)
	rng := rand.New(rand.NewPCG(1, 2))
	s := mustOpen(t)
	authors := []*author{newAuthor(t, 1), newAuthor(t, 2), newAuthor(t, 3)}
	want := map[string]map[protocol.ID]bool{} // signal key -> additions carrying it
	var logged []*protocol.Entry
	var additions []*protocol.Entry
	retracted := map[protocol.ID]bool{}
	sawStepped, sawRunsOf := false, map[int]bool{}
	for round := range 120 {
		var batch []*protocol.Entry
		for range 1 + rng.IntN(14) {
			a := authors[rng.IntN(len(authors))]
			// A retraction of one of the author's own additions, now and
			// then: its target may be in this batch or in any run.
			var own []*protocol.Entry
			for _, e := range additions {
				if e.Author == a.key && !retracted[e.ID] {
					own = append(own, e)
				}
			}
			for _, e := range batch {
				if e.Author == a.key && e.Kind() == protocol.KindAddition && !retracted[e.ID] {
					own = append(own, e)
				}
			}
			if len(own) > 0 && rng.IntN(5) == 0 {
				target := own[rng.IntN(len(own))]
				retracted[target.ID] = true
				batch = append(batch, a.next(retraction(target.ID, "test")))
				continue
			}
			var sigs []*pb.Signal
			for range 1 + rng.IntN(3) {
				sigs = append(sigs, shaN(uint64(rng.IntN(60))))
			}
			if rng.IntN(6) == 0 {
				sigs = append(sigs, sigs[0]) // the same signal twice: one row
			}
			e := a.next(addition(sigs...))
			batch = append(batch, e)
		}
		s.mustApply(Applied, batch...)
		for _, e := range batch {
			logged = append(logged, e)
			if add := e.Body.GetAddition(); add != nil {
				additions = append(additions, e)
				for _, sig := range add.Signals {
					k := string(key(sig))
					if want[k] == nil {
						want[k] = map[protocol.ID]bool{}
					}
					want[k][e.ID] = true
				}
			}
		}
		if err := s.Check(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for _, idx := range []int{idxIDs, idxAttest} {
			n, merging := runStats(t, s, idx)
			sawStepped = sawStepped || merging
			sawRunsOf[n] = true
		}
		if rng.IntN(8) == 0 {
			s.mustReopen() // perhaps between two steps of a merge
		}
	}
	if !sawStepped {
		t.Error("no stepped merge was ever in progress: the test does not reach that code")
	}
	if len(sawRunsOf) < 3 {
		t.Errorf("run counts seen: %v; want the index to have been split into several runs", sawRunsOf)
	}
	for i := range 60 {
		sig := shaN(uint64(i))
		as, err := s.Match(key(sig))
		if err != nil {
			t.Fatal(err)
		}
		got := map[protocol.ID]bool{}
		for _, a := range as {
			got[a.EntryID] = true
			if want := retracted[a.EntryID]; (a.Status == StatusRetracted) != want {
				t.Errorf("signal %d: %s status %s, retracted %v", i, a.EntryID, a.Status, want)
			}
		}
		if len(got) != len(want[string(key(sig))]) || len(as) != len(got) {
			t.Errorf("signal %d: %d attestations (%d distinct), want %d", i, len(as), len(got), len(want[string(key(sig))]))
		}
		for id := range want[string(key(sig))] {
			if !got[id] {
				t.Errorf("signal %d: addition %s missing", i, id)
			}
		}
	}
	for _, e := range logged {
		got, err := s.Get(e.ID)
		if err != nil || !bytes.Equal(got.Raw, e.Raw) {
			t.Fatalf("Get %s: %v", e.ID, err)
		}
		if out, _, err := s.Preview(e); err != nil || out != Duplicate {
			t.Fatalf("Preview of logged %s: %s %v, want duplicate", e.ID, out, err)
		}
	}
	live := s.snapshot()
	if err := s.Rebuild(); err != nil {
		t.Fatal(err)
	}
	if d := diff(live, s.snapshot()); d != "" {
		t.Errorf("rebuild differs from live application:\n%s", d)
	}
}

// The policy bounds the number of runs a read looks in, logarithmically:
// 6,000 one-signal entries applied in batches of 40 (with the small
// settings, as 8192 is with the defaults) leave at most runFanIn-1 runs
// per tier, plus a stepped merge's inputs and what piles up beside it.
func TestRunsStayFew(t *testing.T) {
	smallRuns(t)
	s := mustOpen(t)
	a := newAuthor(t, 1)
	const total, batch = 6000, 40
	most := 0
	for lo := 0; lo < total; lo += batch {
		var entries []*protocol.Entry
		for i := lo; i < min(lo+batch, total); i++ {
			entries = append(entries, a.next(addition(shaN(uint64(i)))))
		}
		s.mustApply(Applied, entries...)
		n, _ := runStats(t, s, idxAttest)
		most = max(most, n)
	}
	// 6,000 rows in runs of 40 are tiers 3 to 10 (4 << 2*(t-1) rows
	// start tier t): a linear policy would leave 150 runs.
	if limit := 2 * runFanIn * tier(total); most > limit {
		t.Errorf("up to %d live runs, want at most %d", most, limit)
	}
	t.Logf("at most %d live runs for %d rows", most, total)
}

// Check finds damage to the runs themselves, and Rebuild repairs it.
func TestCheckCatchesRunDamage(t *testing.T) {
	smallRuns(t)
	for _, tt := range []struct {
		name   string
		damage func(tx *bolt.Tx) error
	}{
		{"run sequence off", func(tx *bolt.Tx) error {
			rs, _ := openRunSet(tx, idxIDs)
			r := rs.runs[0].b
			return r.SetSequence(r.Sequence() + 1)
		}},
		{"a value in the index bucket", func(tx *bolt.Tx) error {
			return tx.Bucket(indexNames[idxAttest]).Put([]byte("12345678"), []byte("x"))
		}},
		{"merge state without a merge", func(tx *bolt.Tx) error {
			return tx.Bucket(mergeBucketName(idxIDs)).Put(mergeLast, []byte("x"))
		}},
		{"merge input that is not a run", func(tx *bolt.Tx) error {
			mb := tx.Bucket(mergeBucketName(idxIDs))
			if err := mb.Put(mergeInputs, u64(999)); err != nil {
				return err
			}
			return mb.Put(mergeOutput, u64(998))
		}},
		{"same row in two runs", func(tx *bolt.Tx) error {
			rs, _ := openRunSet(tx, idxIDs)
			k, v := rs.runs[0].b.Cursor().First()
			last := rs.runs[len(rs.runs)-1].b
			if err := last.Put(bytes.Clone(k), bytes.Clone(v)); err != nil {
				return err
			}
			return last.SetSequence(last.Sequence() + 1)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := mustOpen(t)
			a := newAuthor(t, 1)
			for i := range 5 {
				var batch []*protocol.Entry
				for j := range 5 {
					batch = append(batch, a.next(addition(shaN(uint64(10*i+j)))))
				}
				s.mustApply(Applied, batch...)
			}
			if n, _ := runStats(t, s, idxIDs); n < 2 {
				t.Fatalf("%d runs; the damage needs two", n)
			}
			before := s.snapshot()
			s.bolt(tt.damage)
			if err := s.Check(); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Check: %v, want ErrCorrupt", err)
			}
			if err := s.Rebuild(); err != nil {
				t.Fatal(err)
			}
			if d := diff(before, s.snapshot()); d != "" {
				t.Errorf("rebuild did not restore the index:\n%s", d)
			}
		})
	}
}

// mergedCursor against a sorted slice: First, Seek to keys present and
// absent, and Next to the end, over runs of very different sizes (some
// empty), as the store has them.
func TestMergedCursor(t *testing.T) {
	s := mustOpen(t)
	rng := rand.New(rand.NewPCG(3, 4))
	var all [][]byte
	err := s.db.Update(func(tx *bolt.Tx) error {
		parent, err := tx.CreateBucket([]byte("test-runs"))
		if err != nil {
			return err
		}
		defer tx.DeleteBucket([]byte("test-runs"))
		var runs []run
		seen := map[string]bool{}
		for i, size := range []int{0, 1, 2, 7, 300, 5000, 0, 40} {
			b, err := parent.CreateBucket(u64(uint64(i)))
			if err != nil {
				return err
			}
			for range size {
				k := make([]byte, 1+rng.IntN(6))
				for j := range k {
					k[j] = byte(rng.IntN(8)) // short keys of few values: many neighbours
				}
				if seen[string(k)] {
					continue
				}
				seen[string(k)] = true
				all = append(all, k)
				if err := b.Put(k, append([]byte("v"), k...)); err != nil {
					return err
				}
			}
			runs = append(runs, run{uint64(i), b})
		}
		slices.SortFunc(all, bytes.Compare)
		m := mergeCursors(runs)
		check := func(what string, i int, k, v []byte) {
			t.Helper()
			if i == len(all) {
				if k != nil {
					t.Fatalf("%s: %x past the end", what, k)
				}
				return
			}
			if !bytes.Equal(k, all[i]) || !bytes.Equal(v, append([]byte("v"), all[i]...)) {
				t.Fatalf("%s: got %x=%x, want %x", what, k, v, all[i])
			}
		}
		k, v := m.First()
		for i := 0; i <= len(all); i++ {
			check("first/next", i, k, v)
			k, v = m.Next()
		}
		for range 200 {
			probe := make([]byte, rng.IntN(7))
			for j := range probe {
				probe[j] = byte(rng.IntN(8))
			}
			i, _ := slices.BinarySearchFunc(all, probe, bytes.Compare)
			k, v := m.Seek(probe)
			check(fmt.Sprintf("seek %x", probe), i, k, v)
			for j := i + 1; j <= min(i+20, len(all)); j++ {
				k, v = m.Next()
				check(fmt.Sprintf("seek %x, next", probe), j, k, v)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
