package store

import (
	"testing"
	"time"

	"github.com/staydown/staydown/protocol"
)

// Each batch's arrivals take the batch's time; a batch stamped earlier
// than the one before takes the one before's (times never go back);
// ArrivalsBy finds the last arrival at or before a time, Arrivals
// reports each arrival's time; a Rebuild keeps them.
func TestArrivalTimes(t *testing.T) {
	s, w := mustOpen(t), newWorld(t)
	t0 := time.UnixMilli(1_800_000_000_000)
	batches := []struct {
		n   int
		now time.Time
	}{{3, t0}, {1, t0.Add(time.Second)}, {2, t0.Add(500 * time.Millisecond)}, {4, t0.Add(time.Minute)}}
	var want []int64 // time of arrival i+1
	for _, b := range batches {
		var es []*protocol.Entry
		for range b.n {
			es = append(es, w.A.next(addition(sha(string(rune('a'+len(want)+len(es)))))))
		}
		res, err := s.Commit(Batch{Entries: es, Now: b.now})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Outcome != Applied {
				t.Fatalf("%s: %v", r.Outcome, r.Err)
			}
		}
		ms := b.now.UnixMilli()
		if len(want) > 0 {
			ms = max(ms, want[len(want)-1])
		}
		for range b.n {
			want = append(want, ms)
		}
	}
	check := func() {
		t.Helper()
		var got []int64
		if err := s.Arrivals(0, 0, func(a Arrival) error {
			got = append(got, a.AddedMs)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%d arrivals, want %d", len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("arrival %d at %d, want %d", i+1, got[i], want[i])
			}
		}
		for _, tc := range []struct {
			ms   int64
			want uint64
		}{
			{t0.UnixMilli() - 1, 0}, {t0.UnixMilli(), 3}, {t0.UnixMilli() + 999, 3}, {t0.UnixMilli() + 1000, 6},
			{t0.Add(time.Minute).UnixMilli() - 1, 6}, {t0.Add(time.Minute).UnixMilli(), 10}, {t0.Add(time.Hour).UnixMilli(), 10},
		} {
			if got, err := s.ArrivalsBy(tc.ms); err != nil || got != tc.want {
				t.Errorf("ArrivalsBy(t0%+dms) = %d, %v; want %d", tc.ms-t0.UnixMilli(), got, err, tc.want)
			}
		}
	}
	check()
	if err := s.Rebuild(); err != nil {
		t.Fatal(err)
	}
	check()
	// Arrivals after a position take their times from the same rows.
	var first Arrival
	if err := s.Arrivals(4, 1, func(a Arrival) error { first = a; return nil }); err != nil {
		t.Fatal(err)
	}
	if first.N != 5 || first.AddedMs != want[4] {
		t.Errorf("arrival after 4: %d at %d, want 5 at %d", first.N, first.AddedMs, want[4])
	}
}

// An empty store has no arrivals by any time.
func TestArrivalsByEmpty(t *testing.T) {
	s := mustOpen(t)
	if n, err := s.ArrivalsBy(time.Now().UnixMilli()); err != nil || n != 0 {
		t.Errorf("ArrivalsBy on an empty store: %d, %v", n, err)
	}
}
