package store

import (
	"reflect"
	"testing"

	"github.com/staydown/staydown/protocol"
)

// MatchMany answers every key as Match does, in order, unknown keys with
// none.
func TestMatchMany(t *testing.T) {
	s, w := mustOpen(t), newWorld(t)
	a1 := w.A.next(addition(sha("x"), sha("y")))
	s.mustApply(Applied, a1, w.B.next(addition(sha("y"))), w.A.next(retraction(a1.ID, "x was wrong", sha("x"))))
	keys := [][]byte{key(sha("y")), key(sha("none")), key(sha("x"))}
	got, err := s.MatchMany(keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(keys) {
		t.Fatalf("%d answers for %d keys", len(got), len(keys))
	}
	for i, k := range keys {
		want, err := s.Match(k)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("key %d: MatchMany %+v, Match %+v", i, got[i], want)
		}
	}
	if len(got[0]) != 2 || len(got[1]) != 0 || got[2][0].Status != StatusRetracted {
		t.Errorf("answers: %+v", got)
	}
}

// AdditionsBy gives, for each key, exactly the attestations of MatchMany
// that are the author's additions, with the same status, whatever runs
// and merges the attest index is in (smallRuns: the rows spread over
// several runs, a stepped merge in progress at some point).
func TestAdditionsBy(t *testing.T) {
	smallRuns(t)
	s, w := mustOpen(t), newWorld(t)
	logs, _ := w.rich()
	for _, e := range interleave(logs) {
		s.mustApplyRich(w, e) // one transaction each: many runs
	}
	// More of A's additions, some of which it retracts, and keys
	// nobody attests.
	var keys [][]byte
	for i := range 12 {
		e := w.A.next(addition(shaN(uint64(i)), sha("x")))
		s.mustApply(Applied, e)
		if i%3 == 0 {
			s.mustApply(Applied, w.A.next(retraction(e.ID, "wrong", shaN(uint64(i)))))
		}
		keys = append(keys, key(shaN(uint64(i))), key(shaN(uint64(100+i))))
	}
	for _, name := range []string{"x", "y", "z", "w", "v", "none"} {
		keys = append(keys, key(sha(name)))
	}
	all, err := s.MatchMany(keys)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, a := range []*author{w.A, w.B, w.C} {
		got, err := s.AdditionsBy(a.key, keys)
		if err != nil {
			t.Fatal(err)
		}
		for i := range keys {
			var want []Attestation
			for _, at := range all[i] {
				if at.Author == a.key && at.Kind == protocol.KindAddition {
					want = append(want, at)
				}
			}
			if !reflect.DeepEqual(got[i], want) {
				t.Errorf("author %x, key %d: AdditionsBy %+v, MatchMany's %+v", a.key[:4], i, got[i], want)
			}
			found += len(got[i])
		}
	}
	if found < 12+3 {
		t.Fatalf("only %d attestations found: the test checks little", found)
	}
	if runs, _ := runStats(t, s, idxAttest); runs < 2 {
		t.Fatalf("attest index in %d run(s): the test checks no merged lookup", runs)
	}
}
