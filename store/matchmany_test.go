package store

import (
	"reflect"
	"testing"
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
