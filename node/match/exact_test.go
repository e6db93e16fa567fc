package match

import (
	"fmt"
	"slices"
	"sync"
	"testing"
)

func TestExactIndex(t *testing.T) {
	x := NewExactIndex()
	type step struct {
		op   string // add, remove, lookup
		key  string
		ref  uint64
		ok   bool     // remove's result
		refs []uint64 // lookup's result
		n    int      // Len after the step
	}
	for i, s := range []step{
		{op: "lookup", key: "a", n: 0},
		{op: "add", key: "a", ref: 1, n: 1},
		{op: "add", key: "a", ref: 2, n: 2},
		{op: "add", key: "a", ref: 1, n: 3}, // a pair twice is stored twice
		{op: "add", key: "b", ref: 1, n: 4},
		{op: "add", key: "", ref: 9, n: 5}, // the empty key is a key
		{op: "lookup", key: "a", refs: []uint64{1, 2, 1}, n: 5},
		{op: "lookup", key: "", refs: []uint64{9}, n: 5},
		{op: "lookup", key: "a\x00", n: 5},
		{op: "remove", key: "a", ref: 3, ok: false, n: 5},
		{op: "remove", key: "c", ref: 1, ok: false, n: 5},
		{op: "remove", key: "a", ref: 1, ok: true, n: 4},
		{op: "lookup", key: "a", refs: []uint64{2, 1}, n: 4},
		{op: "remove", key: "a", ref: 1, ok: true, n: 3},
		{op: "remove", key: "a", ref: 2, ok: true, n: 2},
		{op: "remove", key: "a", ref: 2, ok: false, n: 2},
		{op: "lookup", key: "a", n: 2},
		{op: "lookup", key: "b", refs: []uint64{1}, n: 2},
	} {
		switch s.op {
		case "add":
			x.Add(s.key, s.ref)
		case "remove":
			if got := x.Remove(s.key, s.ref); got != s.ok {
				t.Fatalf("step %d: Remove(%q, %d) = %v, want %v", i, s.key, s.ref, got, s.ok)
			}
		case "lookup":
			if got := x.Lookup(s.key); !slices.Equal(got, s.refs) || (s.refs == nil) != (got == nil) {
				t.Fatalf("step %d: Lookup(%q) = %v, want %v", i, s.key, got, s.refs)
			}
		}
		if got := x.Len(); got != s.n {
			t.Fatalf("step %d (%s %q %d): Len = %d, want %d", i, s.op, s.key, s.ref, got, s.n)
		}
	}
	if len(x.refs) != 2 {
		t.Fatalf("%d keys in the map, want 2: emptied keys must go", len(x.refs))
	}
}

// TestExactLookupCopies checks that the caller may change what Lookup
// returns.
func TestExactLookupCopies(t *testing.T) {
	x := NewExactIndex()
	x.Add("k", 1)
	x.Add("k", 2)
	got := x.Lookup("k")
	got[0] = 99
	_ = append(got[:1], 98)
	if again := x.Lookup("k"); !slices.Equal(again, []uint64{1, 2}) {
		t.Fatalf("Lookup after changing its result = %v, want [1 2]", again)
	}
}

// TestExactConcurrent runs lookups while one writer adds and removes; run
// it with -race.
func TestExactConcurrent(t *testing.T) {
	x := NewExactIndex()
	for i := range 100 {
		x.Add(fmt.Sprint("pinned", i), uint64(i))
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := (i + r) % 100
				if got := x.Lookup(fmt.Sprint("pinned", k)); len(got) != 1 || got[0] != uint64(k) {
					t.Errorf("Lookup(pinned%d) = %v", k, got)
					return
				}
				x.Lookup(fmt.Sprint("churn", i%50))
			}
		})
	}
	for i := range 5000 {
		x.Add(fmt.Sprint("churn", i%50), uint64(i))
		if i%2 == 1 {
			x.Remove(fmt.Sprint("churn", (i-1)%50), uint64(i-1))
		}
	}
	close(stop)
	wg.Wait()
	if got := x.Len(); got != 100+2500 {
		t.Fatalf("Len = %d, want %d", got, 100+2500)
	}
}
