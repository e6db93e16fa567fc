package store

import (
	"bytes"
	"cmp"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/replica"
)

// step is one Apply call and the outcome expected for each entry; errs,
// when set, holds the sentinel each Result.Err must wrap (nil: no error).
type step struct {
	in   []*protocol.Entry
	want []Outcome
	errs []error
}

func TestApply(t *testing.T) {
	tests := []struct {
		name  string
		steps func(w *world) []step
		check func(t *testing.T, s *testStore, w *world)
	}{{
		name: "in order, one entry per batch",
		steps: func(w *world) []step {
			var steps []step
			for _, s := range []string{"a", "b", "c"} {
				steps = append(steps, step{in: []*protocol.Entry{w.A.next(addition(sha(s)))}, want: []Outcome{Applied}})
			}
			return steps
		},
		check: func(t *testing.T, s *testStore, w *world) {
			wantHead(t, s, w.A.head)
			wantCount(t, s, 3)
		},
	}, {
		name: "one batch chains within authors, interleaved",
		steps: func(w *world) []step {
			a1, b1 := w.A.next(addition(sha("a"))), w.B.next(addition(sha("b")))
			a2, b2 := w.A.next(addition(sha("c"))), w.B.next(dispute(a1.ID, "no"))
			return []step{{in: []*protocol.Entry{a1, b1, a2, b2}, want: []Outcome{Applied, Applied, Applied, Applied}}}
		},
		check: func(t *testing.T, s *testStore, w *world) {
			wantHead(t, s, w.A.head)
			wantHead(t, s, w.B.head)
			wantCount(t, s, 4)
			if got := matchOne(t, s, sha("a")).Status; got != StatusDisputed {
				t.Errorf("status %s, want disputed", got)
			}
		},
	}, {
		name: "gap stores nothing, and later entries of the batch wait too",
		steps: func(w *world) []step {
			a1, a2, a3 := w.A.next(addition(sha("a"))), w.A.next(addition(sha("b"))), w.A.next(addition(sha("c")))
			return []step{
				{in: []*protocol.Entry{a1, a3}, want: []Outcome{Applied, Gap}, errs: []error{nil, protocol.ErrGap}},
				{in: []*protocol.Entry{a2, a3}, want: []Outcome{Applied, Applied}},
			}
		},
		check: func(t *testing.T, s *testStore, w *world) { wantHead(t, s, w.A.head) },
	}, {
		name: "gap at seq 1 of an unknown author",
		steps: func(w *world) []step {
			w.A.next(addition(sha("a")))
			return []step{{in: []*protocol.Entry{w.A.next(addition(sha("b")))}, want: []Outcome{Gap}, errs: []error{protocol.ErrGap}}}
		},
		check: func(t *testing.T, s *testStore, w *world) {
			wantHead(t, s, protocol.Head{Author: w.A.key})
			wantCount(t, s, 0)
		},
	}, {
		name: "wrong prev at head+1 is rejected",
		steps: func(w *world) []step {
			a1 := w.A.next(addition(sha("a")))
			bad := w.A.sign(2, protocol.IDOf([]byte("not an entry")), addition(sha("b")))
			return []step{{in: []*protocol.Entry{a1, bad}, want: []Outcome{Applied, Rejected}, errs: []error{nil, protocol.ErrChain}}}
		},
		check: func(t *testing.T, s *testStore, w *world) {
			wantHead(t, s, w.A.head)
			wantMatches(t, s, sha("b"), 0)
		},
	}, {
		name: "duplicate, in the same batch and in a later one",
		steps: func(w *world) []step {
			a1 := w.A.next(addition(sha("a")))
			return []step{
				{in: []*protocol.Entry{a1, a1}, want: []Outcome{Applied, Duplicate}},
				{in: []*protocol.Entry{a1}, want: []Outcome{Duplicate}},
			}
		},
		check: func(t *testing.T, s *testStore, w *world) { wantCount(t, s, 1) },
	}, {
		name: "equivocation keeps the log, stores evidence once, flags the author",
		steps: func(w *world) []step {
			a1, a2 := w.A.next(addition(sha("a"))), w.A.next(addition(sha("b")))
			f1 := w.A.sign(2, a1.ID, addition(sha("fork")))
			f2 := w.A.sign(2, a1.ID, dispute(a1.ID, "a third entry 2"))
			f3 := w.A.sign(1, protocol.ID{}, addition(sha("other first")))
			return []step{
				{in: []*protocol.Entry{a1, a2, f1}, want: []Outcome{Applied, Applied, Equivocation}, errs: []error{nil, nil, replica.ErrEquivocation}},
				{in: []*protocol.Entry{f1, f2, f3}, want: []Outcome{Duplicate, Equivocation, Equivocation}, errs: []error{nil, replica.ErrEquivocation, replica.ErrEquivocation}},
			}
		},
		check: func(t *testing.T, s *testStore, w *world) {
			wantHead(t, s, w.A.head)
			wantCount(t, s, 2)
			ev, err := s.Evidence()
			if err != nil {
				t.Fatal(err)
			}
			if len(ev) != 3 {
				t.Fatalf("%d pieces of evidence, want 3", len(ev))
			}
			for _, e := range ev {
				if e.Author != w.A.key || string(e.Stored) != string(w.A.log[e.Seq-1].Raw) || string(e.Conflicting) == string(e.Stored) {
					t.Errorf("evidence %s/%d does not pair the logged entry with another", e.Author, e.Seq)
				}
			}
			if f, _ := s.Flagged(); !slices.Equal(f, []protocol.AuthorKey{w.A.key}) {
				t.Errorf("flagged %v, want [%s]", f, w.A.key)
			}
			if f, _ := s.Flagged(); slices.Contains(f, w.B.key) {
				t.Errorf("B flagged")
			}
			if a := matchOne(t, s, sha("b")); !a.Equivocated || a.Status != StatusActive {
				t.Errorf("attestation %+v: want active and equivocated", a)
			}
			wantMatches(t, s, sha("fork"), 0)
			if _, err := s.Get(protocol.IDOf(w.A.sign(2, w.A.log[0].ID, addition(sha("fork"))).Raw)); !errors.Is(err, ErrNotFound) {
				t.Errorf("get evidence entry: %v, want ErrNotFound (only logged entries are found by id)", err)
			}
		},
	}, {
		name: "retraction of own addition",
		steps: func(w *world) []step {
			a1 := w.A.next(addition(sha("a")))
			return []step{{in: []*protocol.Entry{a1, w.A.next(retraction(a1.ID, "mistake"))}, want: []Outcome{Applied, Applied}}}
		},
		check: func(t *testing.T, s *testStore, w *world) {
			a := matchOne(t, s, sha("a"))
			want := []Reason{{Kind: protocol.KindRetraction, Author: w.A.key, EntryID: w.A.log[1].ID, Reason: "mistake"}}
			if a.Status != StatusRetracted || !slices.Equal(a.Reasons, want) {
				t.Errorf("got %s %+v, want retracted %+v", a.Status, a.Reasons, want)
			}
		},
	}, {
		name: "retraction of another author's addition is void: stored, no effect",
		steps: func(w *world) []step {
			b1 := w.B.next(addition(sha("b")))
			return []step{
				{in: []*protocol.Entry{b1, w.A.next(retraction(b1.ID, "not mine"))}, want: []Outcome{Applied, Void}, errs: []error{nil, ErrRule}},
				// The author's log goes on after a void entry.
				{in: []*protocol.Entry{w.A.next(addition(sha("a")))}, want: []Outcome{Applied}},
			}
		},
		check: func(t *testing.T, s *testStore, w *world) {
			wantHead(t, s, w.A.head)
			if a := matchOne(t, s, sha("b")); a.Status != StatusActive {
				t.Errorf("status %s, want active", a.Status)
			}
			wantVoid(t, s, w.A.log[0].ID, "not an earlier entry of the author's own log")
			if _, err := s.VoidReason(w.A.log[1].ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("VoidReason(valid entry) = %v, want ErrNotFound", err)
			}
		},
	}, {
		name: "retraction of a retraction, of an unknown entry, twice: void; of one's own dispute: applied",
		steps: func(w *world) []step {
			a1 := w.A.next(addition(sha("a")))
			a2 := w.A.next(dispute(a1.ID, "own goal"))
			a3 := w.A.next(retraction(a1.ID, "first"))
			r1 := w.A.next(retraction(a2.ID, "a dispute"))
			r2 := w.A.next(retraction(protocol.IDOf([]byte("nothing")), "unknown"))
			r3 := w.A.next(retraction(a1.ID, "again"))
			r4 := w.A.next(retraction(a3.ID, "a retraction"))
			return []step{
				{in: []*protocol.Entry{a1, a2, a3}, want: []Outcome{Applied, Applied, Applied}},
				{in: []*protocol.Entry{r1, r2, r3, r4}, want: []Outcome{Applied, Void, Void, Void}, errs: []error{nil, ErrRule, ErrRule, ErrRule}},
			}
		},
		check: func(t *testing.T, s *testStore, w *world) {
			wantHead(t, s, w.A.head)
			wantCount(t, s, 7)
			wantVoid(t, s, w.A.log[4].ID, "not an earlier entry of the author's own log")
			wantVoid(t, s, w.A.log[5].ID, "already retracted")
			wantVoid(t, s, w.A.log[6].ID, "is a retraction")
			// The first retraction is the one that counts.
			a := matchOne(t, s, sha("a"))
			var retractions []protocol.ID
			for _, r := range a.Reasons {
				if r.Kind == protocol.KindRetraction {
					retractions = append(retractions, r.EntryID)
				}
			}
			if a.Status != StatusRetracted || !slices.Equal(retractions, []protocol.ID{w.A.log[2].ID}) {
				t.Errorf("got %s %+v, want retracted by the first retraction only", a.Status, a.Reasons)
			}
		},
	}, {
		// #13 item 4: a dispute can be withdrawn by its author.
		name: "a withdrawn dispute no longer bears on its target",
		steps: func(w *world) []step {
			a1 := w.A.next(addition(sha("a")))
			d := w.B.next(dispute(a1.ID, "satire, I thought"))
			return []step{
				{in: []*protocol.Entry{a1, d}, want: []Outcome{Applied, Applied}},
				{in: []*protocol.Entry{w.B.next(retraction(d.ID, "it is not satire"))}, want: []Outcome{Applied}},
			}
		},
		check: func(t *testing.T, s *testStore, w *world) {
			if a := matchOne(t, s, sha("a")); a.Status != StatusActive || len(a.Reasons) != 0 {
				t.Errorf("got %s %+v, want active with no reasons: the only dispute is withdrawn", a.Status, a.Reasons)
			}
			if ds, err := s.Disputes(w.A.log[0].ID); err != nil || len(ds) != 0 {
				t.Errorf("Disputes: %v %v, want none standing", ds, err)
			}
		},
	}, {
		name: "dispute before its target arrives",
		steps: func(w *world) []step {
			a1 := w.A.next(addition(sha("a")))
			return []step{
				{in: []*protocol.Entry{w.B.next(dispute(a1.ID, "satire"))}, want: []Outcome{Applied}},
				{in: []*protocol.Entry{a1}, want: []Outcome{Applied}},
			}
		},
		check: func(t *testing.T, s *testStore, w *world) {
			a := matchOne(t, s, sha("a"))
			want := []Reason{{Kind: protocol.KindDispute, Author: w.B.key, EntryID: w.B.log[0].ID, Reason: "satire"}}
			if a.Status != StatusDisputed || !slices.Equal(a.Reasons, want) {
				t.Errorf("got %s %+v, want disputed %+v", a.Status, a.Reasons, want)
			}
		},
	}, {
		name: "dispute after its target",
		steps: func(w *world) []step {
			a1 := w.A.next(addition(sha("a")))
			return []step{{in: []*protocol.Entry{a1, w.B.next(dispute(a1.ID, "satire")), w.C.next(dispute(a1.ID, "news"))}, want: []Outcome{Applied, Applied, Applied}}}
		},
		check: func(t *testing.T, s *testStore, w *world) {
			if a := matchOne(t, s, sha("a")); a.Status != StatusDisputed || len(a.Reasons) != 2 {
				t.Errorf("got %s with %d reasons, want disputed with 2", a.Status, len(a.Reasons))
			}
		},
	}, {
		name: "allow by another member allowlists; retracting the allow restores active",
		steps: func(w *world) []step {
			a1 := w.A.next(addition(sha("a"), sha("b")))
			b1 := w.B.next(allow("news", "broadcast", sha("a")))
			return []step{
				{in: []*protocol.Entry{a1, b1}, want: []Outcome{Applied, Applied}},
				{in: []*protocol.Entry{w.B.next(retraction(b1.ID, "withdrawn"))}, want: []Outcome{Applied}},
			}
		},
		check: func(t *testing.T, s *testStore, w *world) {
			if a := matchOne(t, s, sha("a")); a.Status != StatusActive || len(a.Reasons) != 0 {
				t.Errorf("got %s %+v, want active without reasons", a.Status, a.Reasons)
			}
		},
	}, {
		name: "allow in force",
		steps: func(w *world) []step {
			return []step{{in: []*protocol.Entry{w.B.next(allow("news", "broadcast", sha("a"))), w.A.next(addition(sha("a")))}, want: []Outcome{Applied, Applied}}}
		},
		check: func(t *testing.T, s *testStore, w *world) {
			a := matchOne(t, s, sha("a"))
			want := []Reason{{Kind: protocol.KindAllow, Author: w.B.key, EntryID: w.B.log[0].ID, Category: "news", Reason: "broadcast"}}
			if a.Status != StatusAllowlisted || !slices.Equal(a.Reasons, want) {
				t.Errorf("got %s %+v, want allowlisted %+v", a.Status, a.Reasons, want)
			}
		},
	}, {
		name: "precedence: retracted > allowlisted > disputed",
		steps: func(w *world) []step {
			a1, a2 := w.A.next(addition(sha("r"))), w.A.next(addition(sha("l")))
			ins := []*protocol.Entry{a1, a2, w.A.next(retraction(a1.ID, "gone"))}
			for _, id := range []protocol.ID{a1.ID, a2.ID} {
				ins = append(ins, w.B.next(dispute(id, "disputed")))
			}
			ins = append(ins, w.C.next(allow("research", "study", sha("r"), sha("l"))))
			return []step{{in: ins, want: slices.Repeat([]Outcome{Applied}, len(ins))}}
		},
		check: func(t *testing.T, s *testStore, w *world) {
			r, l := matchOne(t, s, sha("r")), matchOne(t, s, sha("l"))
			if r.Status != StatusRetracted || len(r.Reasons) != 3 {
				t.Errorf("r: %s with %d reasons, want retracted with 3", r.Status, len(r.Reasons))
			}
			if !slices.IsSortedFunc(r.Reasons, func(x, y Reason) int {
				return cmp.Compare(string(x.Kind), string(y.Kind))
			}) || r.Reasons[0].Kind != protocol.KindAllow {
				t.Errorf("reasons not sorted by kind: %+v", r.Reasons)
			}
			if l.Status != StatusAllowlisted {
				t.Errorf("l: %s, want allowlisted", l.Status)
			}
		},
	}, {
		name: "notice update by its issuer; by another or of a non-notice void",
		steps: func(w *world) []step {
			n := w.A.next(notice(w.B.key, sha("a")))
			a2 := w.A.next(addition(sha("a")))
			u := w.A.next(noticeUpdate(n.ID))
			return []step{
				{in: []*protocol.Entry{n, a2, u}, want: []Outcome{Applied, Applied, Applied}},
				{in: []*protocol.Entry{w.A.next(noticeUpdate(a2.ID)), w.C.next(noticeUpdate(n.ID))}, want: []Outcome{Void, Void}, errs: []error{ErrRule, ErrRule}},
			}
		},
		check: func(t *testing.T, s *testStore, w *world) {
			th, err := s.Notice(w.A.log[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(th.Updates) != 1 || th.Updates[0].ID != w.A.log[2].ID || len(th.Replies) != 0 {
				t.Errorf("thread: %d updates, %d replies; want the one update", len(th.Updates), len(th.Replies))
			}
		},
	}, {
		name: "notice reply before its notice, and a reply by someone else",
		steps: func(w *world) []step {
			n := w.A.next(notice(w.B.key, sha("a")))
			return []step{
				{in: []*protocol.Entry{w.B.next(noticeReply(n.ID)), w.C.next(noticeReply(n.ID))}, want: []Outcome{Applied, Applied}},
				{in: []*protocol.Entry{n}, want: []Outcome{Applied}},
			}
		},
		check: func(t *testing.T, s *testStore, w *world) {
			th, err := s.Notice(w.A.log[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(th.Replies) != 1 || th.Replies[0].ID != w.B.log[0].ID {
				t.Errorf("replies %v, want only the addressee's", th.Replies)
			}
			ids, err := s.NoticesTo(w.B.key)
			if err != nil || !slices.Equal(ids, []protocol.ID{w.A.log[0].ID}) {
				t.Errorf("notices to B: %v %v", ids, err)
			}
			if _, err := s.Notice(w.B.log[0].ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("Notice(a reply): %v, want ErrNotFound", err)
			}
		},
	}, {
		name: "nil entry rejected, the rest of the batch applied",
		steps: func(w *world) []step {
			return []step{{in: []*protocol.Entry{nil, w.A.next(addition(sha("a")))}, want: []Outcome{Rejected, Applied}, errs: []error{protocol.ErrMalformed, nil}}}
		},
		check: func(t *testing.T, s *testStore, w *world) { wantCount(t, s, 1) },
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, w := mustOpen(t), newWorld(t)
			for i, st := range tt.steps(w) {
				res, err := s.Apply(st.in)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if len(res) != len(st.in) {
					t.Fatalf("step %d: %d results for %d entries", i, len(res), len(st.in))
				}
				for j, r := range res {
					if r.Outcome != st.want[j] {
						t.Errorf("step %d entry %d: %s (%v), want %s", i, j, r.Outcome, r.Err, st.want[j])
					}
					var want error
					if st.errs != nil {
						want = st.errs[j]
					}
					if (want == nil) != (r.Err == nil) || (want != nil && !errors.Is(r.Err, want)) {
						t.Errorf("step %d entry %d: error %v, want %v", i, j, r.Err, want)
					}
				}
			}
			tt.check(t, s, w)
		})
	}
}

func wantHead(t *testing.T, s *testStore, want protocol.Head) {
	t.Helper()
	if h, err := s.Head(want.Author); err != nil || h != want {
		t.Errorf("head of %s: %+v %v, want %+v", want.Author, h, err, want)
	}
}

func wantCount(t *testing.T, s *testStore, want uint64) {
	t.Helper()
	if n, err := s.Count(); err != nil || n != want {
		t.Errorf("count %d %v, want %d", n, err, want)
	}
}

func wantMatches(t *testing.T, s *testStore, sig *pb.Signal, want int) {
	t.Helper()
	if as, err := s.Match(key(sig)); err != nil || len(as) != want {
		t.Errorf("match %s: %d attestations %v, want %d", protocol.FormatSignal(sig), len(as), err, want)
	}
}

// Applying what is already stored, logged entries and evidence alike,
// changes no byte of the file.
func TestApplyTwiceChangesNothing(t *testing.T) {
	s, w := mustOpen(t), newWorld(t)
	logs, fork := w.rich()
	all := append(interleave(logs), fork)
	res, err := s.Apply(all)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		want := Applied
		if w.voids[all[i].ID] {
			want = Void
		}
		if all[i] == fork {
			if r.Outcome != Equivocation {
				t.Fatalf("fork: %s, want equivocation", r.Outcome)
			}
		} else if r.Outcome != want {
			t.Fatalf("entry %d: %s (%v)", i, r.Outcome, r.Err)
		}
	}
	before := s.physical()
	s.mustApply(Duplicate, all...)
	for _, e := range all {
		s.mustApply(Duplicate, e)
	}
	if d := diff(before, s.physical()); d != "" {
		t.Errorf("applying twice changed the file:\n%s", d)
	}
}

func TestAppend(t *testing.T) {
	s, a := mustOpen(t), newAuthor(t, 1)
	var heads []protocol.Head
	var last *protocol.Entry
	for i, sig := range []string{"a", "b", "c"} {
		e, err := s.Append(a.key, func(h protocol.Head) (*protocol.Entry, error) {
			heads = append(heads, h)
			return a.sign(h.Seq+1, h.ID, addition(sha(sig))), nil
		})
		if err != nil {
			t.Fatalf("append %d: %v", i+1, err)
		}
		if e.Seq() != uint64(i+1) || (i > 0 && e.Prev() != heads[i].ID) || heads[i].Seq != uint64(i) || heads[i].Author != a.key {
			t.Fatalf("append %d: seq %d prev %s after head %+v", i+1, e.Seq(), e.Prev(), heads[i])
		}
		last = e
	}
	head, _ := s.Head(a.key)
	before := s.physical()

	other := newAuthor(t, 2)
	errBuild := errors.New("signer unavailable")
	refused := []struct {
		name  string
		build func(h protocol.Head) (*protocol.Entry, error)
		want  error
	}{
		{"same seq again (would fork)", func(h protocol.Head) (*protocol.Entry, error) {
			return a.sign(h.Seq, h.ID, addition(sha("fork"))), nil
		}, protocol.ErrChain},
		{"skips a seq", func(h protocol.Head) (*protocol.Entry, error) { return a.sign(h.Seq+2, h.ID, addition(sha("d"))), nil }, protocol.ErrGap},
		{"wrong prev", func(h protocol.Head) (*protocol.Entry, error) {
			return a.sign(h.Seq+1, protocol.IDOf(nil), addition(sha("d"))), nil
		}, protocol.ErrChain},
		{"already stored", func(h protocol.Head) (*protocol.Entry, error) { return last, nil }, protocol.ErrChain},
		{"build fails", func(h protocol.Head) (*protocol.Entry, error) { return nil, errBuild }, errBuild},
		{"another author's entry", func(h protocol.Head) (*protocol.Entry, error) {
			return other.sign(1, protocol.ID{}, addition(sha("d"))), nil
		}, ErrRule},
		{"breaks a rule", func(h protocol.Head) (*protocol.Entry, error) {
			return a.sign(h.Seq+1, h.ID, retraction(other.sign(1, protocol.ID{}, addition(sha("d"))).ID, "not mine")), nil
		}, ErrRule},
		{"nil entry", func(h protocol.Head) (*protocol.Entry, error) { return nil, nil }, errNilEntry},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			e, err := s.Append(a.key, tt.build)
			if !errors.Is(err, tt.want) || e != nil {
				t.Fatalf("got %v, %v; want an error wrapping %v", e, err, tt.want)
			}
			if d := diff(before, s.physical()); d != "" {
				t.Errorf("a refused append changed the file:\n%s", d)
			}
			wantHead(t, s, head)
		})
	}
}

// Appends racing on one log each build on the head the previous one left:
// no fork, no lost entry.
func TestAppendConcurrent(t *testing.T) {
	s, a := mustOpen(t), newAuthor(t, 1)
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := s.Append(a.key, func(h protocol.Head) (*protocol.Entry, error) {
				return a.sign(h.Seq+1, h.ID, addition(shaN(uint64(i)))), nil
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	wantCount(t, s, n)
	if ev, _ := s.Evidence(); len(ev) != 0 {
		t.Errorf("%d pieces of evidence against ourselves", len(ev))
	}
}

func TestOutcomeString(t *testing.T) {
	_ = mustOpen(t)
	for o, want := range map[Outcome]string{Applied: "applied", Duplicate: "duplicate", Equivocation: "equivocation", Gap: "gap", Rejected: "rejected", 9: "Outcome(9)"} {
		if o.String() != want {
			t.Errorf("%d: %q, want %q", int(o), o.String(), want)
		}
	}
}

func wantVoid(t *testing.T, s *testStore, id protocol.ID, why string) {
	t.Helper()
	reason, err := s.VoidReason(id)
	if err != nil || !strings.Contains(reason, why) {
		t.Errorf("VoidReason(%s) = %q, %v; want a reason containing %q", id, reason, err, why)
	}
}

// TestResultsCarryEvidence: a result that an operator or auditor acts on
// carries the entries: an equivocation both signed entries (still intact
// after the transaction that read the logged one has ended: bbolt says
// its bytes are valid only within it), a void entry
// itself and its target, a rejected entry itself and the head it should
// have followed.
func TestResultsCarryEvidence(t *testing.T) {
	s, w := mustOpen(t), newWorld(t)
	a1 := w.A.next(addition(sha("a")))
	b1 := w.B.next(addition(sha("b")))
	a2 := w.A.next(retraction(b1.ID, "not mine")) // void: B's entry
	fork := w.A.sign(2, a1.ID, addition(sha("fork")))
	broken := w.A.sign(3, fork.ID, addition(sha("after the fork")))
	s.mustApply(Applied, a1, b1)
	res, err := s.Apply([]*protocol.Entry{a2, fork, broken})
	if err != nil {
		t.Fatal(err)
	}
	var rule *replica.RuleError
	if !errors.As(res[0].Err, &rule) || rule.Entry != a2 || !bytes.Equal(rule.Target, b1.ID[:]) || !errors.Is(res[0].Err, ErrRule) {
		t.Errorf("void: %s %#v", res[0].Outcome, res[0].Err)
	}
	var eq *replica.EquivocationError
	if !errors.As(res[1].Err, &eq) || !errors.Is(res[1].Err, replica.ErrEquivocation) {
		t.Fatalf("equivocation: %s %#v", res[1].Outcome, res[1].Err)
	}
	s.mustApply(Applied, w.B.next(addition(sha("a later transaction"))))
	ev := eq.Evidence()
	if eq.Author != w.A.key || eq.Seq != 2 || !bytes.Equal(ev[0], a2.Raw) || !bytes.Equal(ev[1], fork.Raw) {
		t.Errorf("evidence: author %s seq %d, %d and %d bytes", eq.Author, eq.Seq, len(ev[0]), len(ev[1]))
	}
	var chain *replica.ChainError
	if !errors.As(res[2].Err, &chain) || chain.Entry != broken || chain.Head.ID != a2.ID || !errors.Is(res[2].Err, protocol.ErrChain) {
		t.Errorf("rejected: %s %#v", res[2].Outcome, res[2].Err)
	}
}
