package api

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/staydown/staydown/protocol"
)

// TestTAXIIAccepts: which Accept headers admit TAXII 2.1's answers.
func TestTAXIIAccepts(t *testing.T) {
	for accept, want := range map[string]bool{
		"":                                    true,
		"application/taxii+json;version=2.1":  true,
		"application/taxii+json; version=2.1": true,
		"application/taxii+json":              true,
		"*/*":                                 true,
		"application/*":                       true,
		"application/json, application/taxii+json;version=2.1;q=0.5": true,
		"application/taxii+json;version=2.0":                         false,
		"application/json":                                           false,
		"application/stix+json;version=2.1":                          false,
		"*/*;q=0":                                                    false,
		"application/taxii+json;q=0, text/html":                      false,
		"garbage;;":                                                  false,
	} {
		if got := taxiiAccepts(accept); got != want {
			t.Errorf("taxiiAccepts(%q) = %v, want %v", accept, got, want)
		}
	}
}

// TestTAXIIRoute: paths under the collections map to their routes; other
// paths stay themselves (404).
func TestTAXIIRoute(t *testing.T) {
	for path, want := range map[string]string{
		"/taxii2/":                                             taxiiPrefixRoute,
		"/taxii2/staydown/collections/":                        taxiiCollsPath,
		"/taxii2/staydown/collections/c/":                      taxiiCollRoute,
		"/taxii2/staydown/collections/c/objects/":              taxiiObjectsRoute,
		"/taxii2/staydown/collections/c/objects/indicator--x/": taxiiObjectRoute,
		"/taxii2/staydown/collections/c/manifest/":             taxiiManifestRoute,
		"/taxii2/staydown/collections/c":                       "/taxii2/staydown/collections/c",
		"/taxii2/staydown/collections//objects/":               "/taxii2/staydown/collections//objects/",
		"/taxii2/staydown/collections/c/objects/x/versions/":   "/taxii2/staydown/collections/c/objects/x/versions/",
		"/taxii2/staydown/collections/c/status/":               "/taxii2/staydown/collections/c/status/",
	} {
		if got := taxiiRoute(path); got != want {
			t.Errorf("taxiiRoute(%q) = %q, want %q", path, got, want)
		}
	}
}

const taxiiPrefixRoute = TAXIIPrefix

// arrivals is a TAXIISource of arrivals with given numbers of objects,
// the k-th object of arrival n by member "m<k%2>"; it counts the objects
// it makes.
type arrivals struct {
	counts []int
	made   int
}

func (a *arrivals) Federation() string { return "f" }

func (a *arrivals) TAXIIArrivalsBy(_ context.Context, ms int64) (uint64, error) {
	return uint64(min(max(ms, 0), int64(len(a.counts)))), nil // arrival n at time n
}

func (a *arrivals) TAXIIArrivals(_ context.Context, after uint64, max int) ([]TAXIIArrival, error) {
	var out []TAXIIArrival
	for n := after + 1; n <= uint64(len(a.counts)) && len(out) < max; n++ {
		out = append(out, TAXIIArrival{N: n, EntryID: protocol.ID{byte(n)}, AddedMs: int64(n), Objects: func() ([]TAXIIObject, error) {
			var objs []TAXIIObject
			for k := range a.counts[n-1] {
				objs = append(objs, TAXIIObject{Key: []byte{1, byte(k)}, ID: fmt.Sprintf("x--%d-%d", n, k), Type: "x", Author: fmt.Sprintf("m%d", k%2)})
			}
			a.made += len(objs)
			return objs, nil
		}})
	}
	return out, nil
}

// walkTAXII pages through arrivals of uneven sizes (pages that end inside
// an arrival, empty arrivals) and lists every object once, in order, for
// any limit; a filter that keeps half; added_after starts after the
// arrivals at or before it; the scan's bound ends a page early with more
// true; and a page makes the objects of the arrivals it reaches only.
func TestWalkTAXII(t *testing.T) {
	src := &arrivals{counts: []int{3, 0, 5, 1, 0, 0, 7, 2}}
	var all []string
	for n, c := range src.counts {
		for k := range c {
			all = append(all, fmt.Sprintf("x--%d-%d", n+1, k))
		}
	}
	walk := func(q taxiiQuery) (ids []string, pages int) {
		t.Helper()
		for {
			page, err := walkTAXII(context.Background(), src, q)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if len(page.objects) > q.limit {
				t.Fatalf("page of %d, limit %d", len(page.objects), q.limit)
			}
			for _, o := range page.objects {
				ids = append(ids, o.obj.ID)
			}
			if !page.more {
				return ids, pages
			}
			c, err := ParseTAXIICursor(page.next)
			if err != nil {
				t.Fatal(err)
			}
			q.cursor = &c
			if pages > 100 {
				t.Fatal("next does not move")
			}
		}
	}
	for limit := 1; limit <= 20; limit++ {
		if got, _ := walk(taxiiQuery{limit: limit}); !slices.Equal(got, all) {
			t.Errorf("limit %d: %q, want %q", limit, got, all)
		}
	}
	var m1 []string
	for _, id := range all {
		var n, k int
		fmt.Sscanf(id, "x--%d-%d", &n, &k)
		if k%2 == 1 {
			m1 = append(m1, id)
		}
	}
	if got, _ := walk(taxiiQuery{limit: 2, filter: taxiiFilter{member: "m1"}}); !slices.Equal(got, m1) {
		t.Errorf("member m1: %q, want %q", got, m1)
	}
	after := int64(3) // arrivals 1 to 3 were added at or before
	at := timeOfMs(after)
	if got, _ := walk(taxiiQuery{limit: 4, addedAfter: &at}); !slices.Equal(got, all[8:]) {
		t.Errorf("added after arrival 3: %q, want %q", got, all[8:])
	}
	// One object a page: the page makes the first arrival's three objects
	// (the second tells it there is more), not the rest.
	src.made = 0
	page, err := walkTAXII(context.Background(), src, taxiiQuery{limit: 1})
	if err != nil || !page.more || src.made != 3 {
		t.Errorf("first page: more %v, %d objects made, %v", page.more, src.made, err)
	}
	// The scan's bound: 10,000 arrivals without an object of the filter.
	big := &arrivals{counts: make([]int, 10_050)}
	big.counts[10_040] = 1
	p1, err := walkTAXII(context.Background(), big, taxiiQuery{limit: 5})
	if err != nil || len(p1.objects) != 0 || !p1.more {
		t.Fatalf("first page over 10,050 empty arrivals: %d objects, more %v, %v", len(p1.objects), p1.more, err)
	}
	c, _ := ParseTAXIICursor(p1.next)
	p2, err := walkTAXII(context.Background(), big, taxiiQuery{limit: 5, cursor: &c})
	if err != nil || len(p2.objects) != 1 || p2.more {
		t.Errorf("second page: %d objects, more %v, %v", len(p2.objects), p2.more, err)
	}
}

func timeOfMs(ms int64) time.Time { return time.UnixMilli(ms) }
