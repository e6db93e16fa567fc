package store

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// TestWatchUnwatch: Watch adds what is not watched yet and says which,
// Unwatch removes what is and says which; the list outlives a reopen and
// a Rebuild; a key that is not a signal key is refused with nothing
// written.
func TestWatchUnwatch(t *testing.T) {
	x, y, z := key(sha("x")), key(sha("y")), key(sha("z"))
	u := key(&pb.Signal{Value: &pb.Signal_Url{Url: "https://example.org/a"}})
	type op struct {
		unwatch bool
		keys    [][]byte
		want    [][]byte // added or removed
		wantErr bool
	}
	tests := []struct {
		name        string
		ops         []op
		wantWatched [][]byte // in key order
	}{
		{"add", []op{{false, [][]byte{x, u}, [][]byte{x, u}, false}}, sortedKeys(x, u)},
		{"add twice in one call and again", []op{
			{false, [][]byte{x, x, y}, [][]byte{x, y}, false},
			{false, [][]byte{y, z}, [][]byte{z}, false},
		}, sortedKeys(x, y, z)},
		{"remove some, one unknown", []op{
			{false, [][]byte{x, y}, [][]byte{x, y}, false},
			{true, [][]byte{y, z, y}, [][]byte{y}, false},
		}, [][]byte{x}},
		{"remove all, add back", []op{
			{false, [][]byte{x}, [][]byte{x}, false},
			{true, [][]byte{x}, [][]byte{x}, false},
			{false, [][]byte{x}, [][]byte{x}, false},
		}, [][]byte{x}},
		{"not signal keys", []op{
			{false, [][]byte{x, {9, 1, 2}}, nil, true},
			{false, [][]byte{x[:10]}, nil, true},
			{false, [][]byte{{}}, nil, true},
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustOpen(t)
			for i, o := range tt.ops {
				var got [][]byte
				var err error
				if o.unwatch {
					got, err = s.Unwatch(o.keys)
				} else {
					err = s.Watch(o.keys, func(k []byte) { got = append(got, k) })
				}
				switch {
				case o.wantErr && !errors.Is(err, protocol.ErrSignal):
					t.Fatalf("op %d: %v, want ErrSignal", i, err)
				case !o.wantErr && err != nil:
					t.Fatalf("op %d: %v", i, err)
				case !equalNotes(got, o.want):
					t.Fatalf("op %d: %x, want %x", i, got, o.want)
				}
			}
			check := func(when string) {
				t.Helper()
				var got [][]byte
				if err := s.WatchedKeys(func(k []byte) error { got = append(got, bytes.Clone(k)); return nil }); err != nil {
					t.Fatal(err)
				}
				if !equalNotes(got, tt.wantWatched) {
					t.Errorf("%s: watched %x, want %x", when, got, tt.wantWatched)
				}
			}
			check("written")
			s.mustReopen()
			check("reopened")
			if err := s.Rebuild(); err != nil {
				t.Fatal(err)
			}
			check("rebuilt")
		})
	}
}

func sortedKeys(keys ...[]byte) [][]byte {
	return slices.SortedFunc(slices.Values(keys), bytes.Compare)
}

// watchHook is a node's after hook in miniature: every applied addition
// carrying a watched signal while active raises an alert (exact signals
// only). It records what it saw.
type watchHook struct {
	seen   []Attestation
	raised []Alert
	fail   error
}

func (h *watchHook) after(batch []*protocol.Entry) func(*Writes, []Result) error {
	return func(w *Writes, results []Result) error {
		if len(results) != len(batch) {
			return errors.New("results do not match the batch")
		}
		for i, r := range results {
			a := batch[i].Body.GetAddition()
			if r.Outcome != Applied || a == nil {
				continue
			}
			for _, sig := range a.Signals {
				if !w.Watched(key(sig)) {
					continue
				}
				atts, err := w.Match(key(sig))
				if err != nil {
					return err
				}
				for _, att := range atts {
					if att.EntryID != batch[i].ID {
						continue
					}
					h.seen = append(h.seen, att)
					if att.Status != StatusActive {
						continue
					}
					al, ok, err := w.Raise(Alert{RaisedMs: 42, Watched: sig, Signal: sig, EntryID: att.EntryID})
					if err != nil {
						return err
					}
					if ok {
						h.raised = append(h.raised, al)
					}
				}
			}
		}
		return h.fail
	}
}

// TestAlertsRaisedInApply: Apply's after hook sees the batch's own rows
// (an addition and its retraction in one batch: retracted), raises
// alerts in the batch's transaction, once per entry and watched signal;
// a hook that fails takes the whole batch back with it.
func TestAlertsRaisedInApply(t *testing.T) {
	tests := []struct {
		name string
		// batches returns the batches to apply in turn; the last one's
		// hook fails if fail is set.
		batches    func(w *world) [][]*protocol.Entry
		watch      []*pb.Signal
		unwatch    []*pb.Signal // after the first batch
		fail       bool
		wantSeen   []Status
		wantAlerts []string // watched signal of each alert, in seq order
	}{
		{"one addition, two watched signals, one not watched", func(w *world) [][]*protocol.Entry {
			return [][]*protocol.Entry{{w.A.next(addition(sha("x"), sha("y"), sha("n")))}}
		}, []*pb.Signal{sha("x"), sha("y")}, nil, false, []Status{StatusActive, StatusActive}, []string{"x", "y"}},
		{"retracted in the same batch: seen, no alert", func(w *world) [][]*protocol.Entry {
			a := w.A.next(addition(sha("x")))
			return [][]*protocol.Entry{{a, w.A.next(retraction(a.ID, "oops"))}}
		}, []*pb.Signal{sha("x")}, nil, false, []Status{StatusRetracted}, nil},
		{"allowlisted before: no alert", func(w *world) [][]*protocol.Entry {
			return [][]*protocol.Entry{{w.B.next(allow("news", "clip", sha("x")))}, {w.A.next(addition(sha("x")))}}
		}, []*pb.Signal{sha("x")}, nil, false, []Status{StatusAllowlisted}, nil},
		{"duplicate applied again: no second alert", func(w *world) [][]*protocol.Entry {
			a := w.A.next(addition(sha("x")))
			return [][]*protocol.Entry{{a}, {a}}
		}, []*pb.Signal{sha("x")}, nil, false, []Status{StatusActive}, []string{"x"}},
		{"unwatched after the first batch", func(w *world) [][]*protocol.Entry {
			return [][]*protocol.Entry{{w.A.next(addition(sha("x")))}, {w.A.next(addition(sha("x")))}}
		}, []*pb.Signal{sha("x")}, []*pb.Signal{sha("x")}, false, []Status{StatusActive}, []string{"x"}},
		{"hook fails: the batch and its alerts are gone", func(w *world) [][]*protocol.Entry {
			return [][]*protocol.Entry{{w.A.next(addition(sha("x"))), w.B.next(addition(sha("x")))}}
		}, []*pb.Signal{sha("x")}, nil, true, []Status{StatusActive, StatusActive}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, w := mustOpen(t), newWorld(t)
			var keys [][]byte
			for _, sig := range tt.watch {
				keys = append(keys, key(sig))
			}
			if err := s.Watch(keys, nil); err != nil {
				t.Fatal(err)
			}
			h := &watchHook{}
			batches := tt.batches(w)
			for i, batch := range batches {
				if i == 1 && tt.unwatch != nil {
					if _, err := s.Unwatch([][]byte{key(tt.unwatch[0])}); err != nil {
						t.Fatal(err)
					}
				}
				last := i == len(batches)-1
				if last && tt.fail {
					h.fail = errors.New("hook failed")
				}
				before := s.physical()
				_, err := s.Apply(batch, h.after(batch))
				if last && tt.fail {
					if !errors.Is(err, h.fail) {
						t.Fatalf("Apply with a failing hook: %v, want the hook's error", err)
					}
					if d := diff(before, s.physical()); d != "" {
						t.Fatalf("a failed hook left changes:\n%s", d)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			var seen []Status
			for _, a := range h.seen {
				seen = append(seen, a.Status)
			}
			if !slices.Equal(seen, tt.wantSeen) {
				t.Errorf("hook saw %v, want %v", seen, tt.wantSeen)
			}
			alerts, err := s.Alerts(0)
			if err != nil {
				t.Fatal(err)
			}
			if len(alerts) != len(tt.wantAlerts) {
				t.Fatalf("%d alerts, want %d: %+v", len(alerts), len(tt.wantAlerts), alerts)
			}
			for i, a := range alerts {
				want := sha(tt.wantAlerts[i])
				if a.Seq != uint64(i+1) || protocol.FormatSignal(a.Watched) != protocol.FormatSignal(want) || a.RaisedMs != 42 {
					t.Errorf("alert %d: %+v, want seq %d for %s", i, a, i+1, protocol.FormatSignal(want))
				}
				if !tt.fail && (len(h.raised) <= i || h.raised[i].Seq != a.Seq) {
					t.Errorf("alert %d: the hook was told %+v", i, h.raised)
				}
			}
		})
	}
}

// TestRaiseAlerts: alerts raised in a transaction of their own, for
// additions already stored, once per entry and watched signal whatever
// the signal matched; Alerts lists those after a seq; an error from fn
// keeps nothing.
func TestRaiseAlerts(t *testing.T) {
	s, w := mustOpen(t), newWorld(t)
	a1, a2 := w.A.next(addition(sha("x"))), w.A.next(addition(sha("y")))
	s.mustApply(Applied, a1, a2)
	near := &pb.Signal{Value: &pb.Signal_Pdq{Pdq: bytes.Repeat([]byte{1}, protocol.PDQSize)}}
	tests := []struct {
		name      string
		raise     []Alert
		wantOK    []bool
		wantTotal int
	}{
		{"two", []Alert{{Watched: sha("x"), Signal: sha("x"), EntryID: a1.ID}, {Watched: sha("y"), Signal: sha("y"), EntryID: a2.ID}}, []bool{true, true}, 2},
		{"again: none", []Alert{{Watched: sha("x"), Signal: sha("x"), EntryID: a1.ID}}, []bool{false}, 2},
		{"same entry, another watched signal", []Alert{{Watched: near, Signal: sha("x"), Distance: 3, EntryID: a1.ID}}, []bool{true}, 3},
		{"same pair twice in one transaction", []Alert{{Watched: sha("z"), Signal: sha("z"), EntryID: a2.ID}, {Watched: sha("z"), Signal: sha("y"), EntryID: a2.ID}}, []bool{true, false}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []bool
			err := s.RaiseAlerts(func(w *Writes) error {
				for _, a := range tt.raise {
					_, ok, err := w.Raise(a)
					if err != nil {
						return err
					}
					got = append(got, ok)
				}
				return nil
			})
			if err != nil || !slices.Equal(got, tt.wantOK) {
				t.Fatalf("raised %v (%v), want %v", got, err, tt.wantOK)
			}
			all, err := s.Alerts(0)
			if err != nil || len(all) != tt.wantTotal {
				t.Fatalf("%d alerts (%v), want %d", len(all), err, tt.wantTotal)
			}
			if after, err := s.Alerts(uint64(tt.wantTotal - 1)); err != nil || len(after) != 1 || after[0].Seq != uint64(tt.wantTotal) {
				t.Errorf("alerts after %d: %+v (%v)", tt.wantTotal-1, after, err)
			}
		})
	}
	if all, _ := s.Alerts(0); all[2].Distance != 3 || protocol.FormatSignal(all[2].Watched) != protocol.FormatSignal(near) {
		t.Errorf("the PDQ alert came back as %+v", all[2])
	}
	before := s.physical()
	failed := errors.New("fn failed")
	err := s.RaiseAlerts(func(w *Writes) error {
		if _, _, err := w.Raise(Alert{Watched: sha("v"), Signal: sha("v"), EntryID: a1.ID}); err != nil {
			return err
		}
		return failed
	})
	if !errors.Is(err, failed) {
		t.Errorf("RaiseAlerts: %v, want fn's error", err)
	}
	if _, _, err := (&Writes{}).Raise(Alert{Watched: &pb.Signal{}, Signal: sha("v")}); !errors.Is(err, protocol.ErrSignal) {
		t.Errorf("an alert for an empty signal: %v, want ErrSignal", err)
	}
	if d := diff(before, s.physical()); d != "" {
		t.Errorf("a failed RaiseAlerts left changes:\n%s", d)
	}
}
