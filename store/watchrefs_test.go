package store

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/staydown/staydown/protocol/pb"
)

// TestCheckWatchRef: a ref is 1 to 512 bytes of printable UTF-8, spaces
// inside only.
func TestCheckWatchRef(t *testing.T) {
	for _, tt := range []struct {
		ref  string
		want string // "" for accepted
	}{
		{"upload-123", ""},
		{"https://video.example/watch?v=1", ""},
		{"Ordner 7 / Datei ä", ""},
		{strings.Repeat("x", MaxWatchRefBytes), ""},
		{strings.Repeat("é", MaxWatchRefBytes/2), ""},
		{"", "empty"},
		{strings.Repeat("x", MaxWatchRefBytes+1), "513 bytes, limit 512"},
		{"a\tb", `"a\tb" holds the unprintable character U+0009`},
		{"a\nb", "unprintable character U+000A"},
		{"a\x00b", "unprintable character U+0000"},
		{"a\u200bb", "unprintable character U+200B"},
		{" lead", "begins or ends with white space"},
		{"trail ", "begins or ends with white space"},
		{"\xff", `"\xff" is not UTF-8`},
	} {
		err := CheckWatchRef(tt.ref)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: %v", tt.ref, err)
		case tt.want != "" && (!errors.Is(err, ErrWatchRef) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%q: %v, want ErrWatchRef saying %q", tt.ref, err, tt.want)
		}
	}
}

// watchedRefs is the watchlist as TYPE:VALUE -> refs (sha256 test keys
// by their sha() name).
func watchedRefs(t *testing.T, s *testStore) map[string][]string {
	t.Helper()
	page, more, err := s.Watchlist(nil, 1000)
	if err != nil || more {
		t.Fatalf("Watchlist: more %v, %v", more, err)
	}
	out := map[string][]string{}
	for _, w := range page {
		out[fmt.Sprintf("%x", w.Key)] = w.Refs
	}
	return out
}

func refsOf(names ...any) map[string][]string {
	out := map[string][]string{}
	for i := 0; i < len(names); i += 2 {
		out[fmt.Sprintf("%x", key(sha(names[i].(string))))] = names[i+1].([]string)
	}
	return out
}

// TestWatchRefs: refs are kept per signal in the order added, each once;
// a ref removed alone leaves the signal with the others, its last one
// removed takes the signal off, a signal removed without a ref goes with
// all its refs; refs outlive a reopen and a Rebuild; a bad ref or one
// too many is refused with nothing written.
func TestWatchRefs(t *testing.T) {
	x, y := key(sha("x")), key(sha("y"))
	type op struct {
		unwatch bool
		items   []WatchItem
		want    string // outcome, %+v
		wantErr string
	}
	many := make([]WatchItem, MaxWatchRefs)
	for i := range many {
		many[i] = WatchItem{Key: x, Ref: fmt.Sprintf("up-%d", i)}
	}
	tests := []struct {
		name string
		ops  []op
		want map[string][]string
	}{
		{"refs kept in order, each once", []op{
			{false, []WatchItem{{Key: x, Ref: "up-2"}, {Key: x, Ref: "up-1"}, {Key: y, Ref: ""}, {Key: x, Ref: "up-2"}}, "{Added:2 Known:2 Refs:2}", ""},
			{false, []WatchItem{{Key: y, Ref: "up-9"}, {Key: x, Ref: ""}}, "{Added:0 Known:2 Refs:1}", ""},
		}, refsOf("x", []string{"up-2", "up-1"}, "y", []string{"up-9"})},
		{"one ref removed, then the last", []op{
			{false, []WatchItem{{Key: x, Ref: "up-1"}, {Key: x, Ref: "up-2"}}, "{Added:1 Known:1 Refs:2}", ""},
			{true, []WatchItem{{Key: x, Ref: "up-1"}, {Key: x, Ref: "up-7"}}, "{Removed:[] Refs:1 Unknown:1}", ""},
			{true, []WatchItem{{Key: x, Ref: "up-2"}}, fmt.Sprintf("{Removed:[%v] Refs:0 Unknown:0}", x), ""},
		}, refsOf()},
		{"signal removed with all its refs", []op{
			{false, []WatchItem{{Key: x, Ref: "up-1"}, {Key: x, Ref: "up-2"}, {Key: y, Ref: "up-3"}}, "{Added:2 Known:1 Refs:3}", ""},
			{true, []WatchItem{{Key: x, Ref: ""}, {Key: x, Ref: "up-1"}}, fmt.Sprintf("{Removed:[%v] Refs:0 Unknown:1}", x), ""},
		}, refsOf("y", []string{"up-3"})},
		{"as many refs as allowed, then one more", []op{
			{false, many, fmt.Sprintf("{Added:1 Known:%d Refs:%d}", MaxWatchRefs-1, MaxWatchRefs), ""},
			{false, []WatchItem{{Key: y, Ref: "up-y"}, {Key: x, Ref: "up-0"}, {Key: x, Ref: "one-too-many"}}, "", `item 2: the signal has 32 refs already, the most it may have: "one-too-many" is one too many`},
		}, refsOf("x", func() (r []string) {
			for _, it := range many {
				r = append(r, it.Ref)
			}
			return r
		}())},
		{"bad ref: nothing written", []op{
			{false, []WatchItem{{Key: y, Ref: "ok"}, {Key: x, Ref: "bad\tref"}}, "", `"bad\tref" holds the unprintable character`},
		}, refsOf()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustOpen(t)
			for i, o := range tt.ops {
				before := s.physical()
				var got any
				var err error
				if o.unwatch {
					got, err = s.UnwatchRefs(o.items)
				} else {
					got, err = s.WatchRefs(o.items, nil)
				}
				if o.wantErr != "" {
					if !errors.Is(err, ErrWatchRef) || !strings.Contains(err.Error(), o.wantErr) {
						t.Fatalf("op %d: %v, want ErrWatchRef saying %s", i, err, o.wantErr)
					}
					if d := diff(before, s.physical()); d != "" {
						t.Fatalf("op %d: a refused call changed the store:\n%s", i, d)
					}
					continue
				}
				if err != nil {
					t.Fatalf("op %d: %v", i, err)
				}
				if g := fmt.Sprintf("%+v", got); g != o.want {
					t.Fatalf("op %d: %s, want %s", i, g, o.want)
				}
			}
			for _, when := range []string{"written", "reopened", "rebuilt"} {
				switch when {
				case "reopened":
					s.mustReopen()
				case "rebuilt":
					if err := s.Rebuild(); err != nil {
						t.Fatal(err)
					}
				}
				got := watchedRefs(t, s)
				if len(got) != len(tt.want) {
					t.Fatalf("%s: watchlist %v, want %v", when, got, tt.want)
				}
				for k, refs := range tt.want {
					if !slices.Equal(got[k], refs) {
						t.Errorf("%s: %s has refs %q, want %q", when, k, got[k], refs)
					}
				}
			}
		})
	}
}

// TestWatchlistPages: the watchlist pages in key order; each page starts
// after the key given; more says whether a page follows, and reading
// every page gives every key once.
func TestWatchlistPages(t *testing.T) {
	s := mustOpen(t)
	var items []WatchItem
	var keys [][]byte
	for i := range 25 {
		k := key(sha(fmt.Sprint(i)))
		keys = append(keys, k)
		items = append(items, WatchItem{Key: k, Ref: fmt.Sprintf("up-%d", i)})
	}
	if _, err := s.WatchRefs(items, nil); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(keys, bytes.Compare)
	for _, limit := range []int{1, 7, 25, 26, 1000} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			var all [][]byte
			var after []byte
			for pages := 0; ; pages++ {
				page, more, err := s.Watchlist(after, limit)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) > limit || more && len(page) != limit {
					t.Fatalf("page %d: %d keys, more %v, limit %d", pages, len(page), more, limit)
				}
				for _, w := range page {
					all = append(all, w.Key)
					if len(w.Refs) != 1 || !strings.HasPrefix(w.Refs[0], "up-") {
						t.Errorf("%x: refs %q", w.Key, w.Refs)
					}
				}
				if !more {
					break
				}
				after = page[len(page)-1].Key
			}
			if !equalNotes(all, keys) {
				t.Errorf("pages gave %x, want %x", all, keys)
			}
		})
	}
	// A cursor need not be a watched key: the page starts after it.
	page, more, err := s.Watchlist(append(bytes.Clone(keys[3]), 0), 2)
	if err != nil || more != true || !equalNotes([][]byte{page[0].Key, page[1].Key}, keys[4:6]) {
		t.Errorf("after a key not watched: %x, %v, %v", page, more, err)
	}
	if page, more, err := s.Watchlist(bytes.Repeat([]byte{0xff}, 40), 5); err != nil || more || len(page) != 0 {
		t.Errorf("after the last key: %v, %v, %v", page, more, err)
	}
	if _, _, err := s.Watchlist(nil, 0); err == nil {
		t.Error("limit 0 accepted")
	}
}

// TestAlertCarriesRefs: an alert keeps the refs its watched signal had
// when it was raised, also once the signal is unwatched.
func TestAlertCarriesRefs(t *testing.T) {
	s, w := mustOpen(t), newWorld(t)
	a1, a2 := w.A.next(addition(sha("x"))), w.A.next(addition(sha("y")))
	s.mustApply(Applied, a1, a2)
	if _, err := s.WatchRefs([]WatchItem{{Key: key(sha("x")), Ref: "upload-123"}, {Key: key(sha("x")), Ref: "https://host.example/v/9"}, {Key: key(sha("y")), Ref: ""}}, nil); err != nil {
		t.Fatal(err)
	}
	var raised []Alert
	err := s.RaiseAlerts(func(wr *Writes) error {
		for _, a := range []Alert{{Watched: sha("x"), Signal: sha("x"), EntryID: a1.ID}, {Watched: sha("y"), Signal: sha("y"), EntryID: a2.ID}} {
			al, _, err := wr.Raise(a)
			if err != nil {
				return err
			}
			raised = append(raised, al)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"upload-123", "https://host.example/v/9"}, nil}
	for i := range raised {
		if !slices.Equal(raised[i].Refs, want[i]) {
			t.Errorf("raised alert %d: refs %q, want %q", i, raised[i].Refs, want[i])
		}
	}
	if _, err := s.Unwatch([][]byte{key(sha("x"))}); err != nil {
		t.Fatal(err)
	}
	s.mustReopen()
	all, err := s.Alerts(0)
	if err != nil || len(all) != 2 {
		t.Fatalf("%d alerts, %v", len(all), err)
	}
	for i := range all {
		if !slices.Equal(all[i].Refs, want[i]) {
			t.Errorf("stored alert %d: refs %q, want %q", i, all[i].Refs, want[i])
		}
	}
}

// FuzzParseWatched: a watched key's value decodes to refs that each pass
// CheckWatchRef and encode back to the same bytes, or is an error;
// never a panic.
func FuzzParseWatched(f *testing.F) {
	f.Add([]byte{1})
	f.Add(watchedValue([]string{"upload-123", "https://x.example/ä"}))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 'a'})
	f.Add([]byte{1, 2, 'a', 'a', 2, 'a', 'a'})
	f.Add([]byte{2})
	f.Fuzz(func(t *testing.T, v []byte) {
		refs, err := parseWatched(v)
		if err != nil {
			return
		}
		if len(refs) > MaxWatchRefs {
			t.Fatalf("%d refs", len(refs))
		}
		for _, r := range refs {
			if err := CheckWatchRef(r); err != nil {
				t.Fatalf("ref %q accepted: %v", r, err)
			}
		}
		if got := watchedValue(refs); !bytes.Equal(got, v) {
			t.Fatalf("%x decodes to %q, which encodes to %x", v, refs, got)
		}
	})
}

// TestRekeyKeepsRefs: when re-deriving the watchlist's url keys in the v2
// form makes two watched spellings of a URL one signal, that signal keeps
// the refs of both.
func TestRekeyKeepsRefs(t *testing.T) {
	const (
		v1 = "https://b%C3%BCcher.example/%7euser/%c3%a4"
		v2 = "https://xn--bcher-kva.example/~user/%C3%A4"
	)
	s := mustOpen(t)
	newKey := key(&pb.Signal{Value: &pb.Signal_Url{Url: v2}})
	oldKey := append([]byte{newKey[0]}, v1...)
	if _, err := s.WatchRefs([]WatchItem{{Key: newKey, Ref: "up-new"}, {Key: newKey, Ref: "up-both"}, {Key: oldKey, Ref: "up-old"}, {Key: oldKey, Ref: "up-both"}}, nil); err != nil {
		t.Fatal(err)
	}
	s.bolt(func(tx *bolt.Tx) error { return rekeyWatchlistURLs(tx) })
	page, _, err := s.Watchlist(nil, 10)
	if err != nil || len(page) != 1 || !bytes.Equal(page[0].Key, newKey) || !slices.Equal(page[0].Refs, []string{"up-new", "up-both", "up-old"}) {
		t.Fatalf("after rekeying: %+v, %v", page, err)
	}
}
