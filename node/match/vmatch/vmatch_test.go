package vmatch

import (
	"reflect"
	"slices"
	"testing"

	"github.com/staydown/staydown/node/match"
)

func frameOf(h match.Hash, q uint8, ts uint32) Frame {
	return Frame{Hash: h, Quality: q, Timestamp: ts}
}

// flipBits returns h with its first n bits flipped.
func flipBits(h match.Hash, n int) match.Hash {
	for i := range n {
		h[i/8] ^= 1 << (i % 8)
	}
	return h
}

func TestCompareDefinition(t *testing.T) {
	g := newBank(3)
	a, b, c, d := g.hash(), g.hash(), g.hash(), g.hash() // about 128 bits apart
	p := DefaultParams()

	// Distance 31 matches (inclusive, as python-threatexchange), 32 does not.
	r := Compare([]Frame{frameOf(a, 100, 0)}, []Frame{frameOf(flipBits(a, 31), 100, 0)}, 7, p)
	if r.QueryPercent != 100 || r.ComparedPercent != 100 || !r.Match || r.Ref != 7 {
		t.Errorf("distance 31: %+v", r)
	}
	if r := Compare([]Frame{frameOf(a, 100, 0)}, []Frame{frameOf(flipBits(a, 32), 100, 0)}, 7, p); r.QueryMatched != 0 || r.Match {
		t.Errorf("distance 32: %+v", r)
	}

	// Quality 49 is ignored on either side, 50 counts.
	q := []Frame{frameOf(a, 100, 0), frameOf(b, 49, 1000), frameOf(c, 50, 2000)}
	s := []Frame{frameOf(a, 100, 0), frameOf(b, 100, 1000), frameOf(d, 100, 2000)}
	r = Compare(q, s, 1, p)
	if r.QueryFrames != 2 || r.QueryMatched != 1 || r.QueryPercent != 50 || r.ComparedFrames != 3 || r.ComparedMatched != 1 || r.Match {
		t.Errorf("quality: %+v", r)
	}

	// Dedupe keeps the first frame of a hash before the quality filter: a
	// hash first seen at quality 40 is gone even if it comes again at 90
	// (vpdq_util.dedupe then quality_filter, in match_VPDQ_hash_brute).
	q = []Frame{frameOf(a, 40, 0), frameOf(b, 100, 1000), frameOf(a, 90, 2000)}
	r = Compare(q, []Frame{frameOf(a, 100, 0)}, 1, p)
	if r.QueryFrames != 1 || r.QueryMatched != 0 {
		t.Errorf("dedupe then filter: %+v", r)
	}
	// Repeated hashes count once on each side.
	q = []Frame{frameOf(a, 100, 0), frameOf(b, 100, 1000), frameOf(a, 100, 2000), frameOf(a, 100, 3000)}
	r = Compare(q, []Frame{frameOf(a, 100, 0), frameOf(c, 100, 1000)}, 1, p)
	if r.QueryFrames != 2 || r.QueryMatched != 1 || r.ComparedMatched != 1 || r.ComparedPercent != 50 {
		t.Errorf("dedupe: %+v", r)
	}

	// Thresholds: 4 of 5 query frames is 80% and matches; the compared
	// threshold applies too.
	q = []Frame{frameOf(a, 100, 0), frameOf(b, 100, 1000), frameOf(d, 100, 2000), frameOf(c, 100, 3000), frameOf(g.flip(c, 70), 100, 4000)}
	s = []Frame{frameOf(a, 100, 0), frameOf(b, 100, 1000), frameOf(c, 100, 3000), frameOf(flipBits(d, 3), 100, 9000)}
	s = append(s, frameOf(g.flip(b, 90), 100, 10000), frameOf(g.hash(), 100, 11000))
	r = Compare(q, s, 1, p)
	if r.QueryPercent != 80 || !r.Match {
		t.Errorf("80%%: %+v", r)
	}
	if want := []Segment{{0, 3000}}; !reflect.DeepEqual(r.Segments, want) {
		t.Errorf("segments %v, want %v", r.Segments, want)
	}
	p2 := p
	p2.ComparedPercent = 70
	if r := Compare(q, s, 1, p2); r.Match || r.ComparedPercent != 4*100.0/6 {
		t.Errorf("compared threshold 70: %+v", r)
	}
	p2 = p
	p2.QueryPercent = 81
	if r := Compare(q, s, 1, p2); r.Match {
		t.Errorf("query threshold 81: %+v", r)
	}

	// Segments: runs of matched remaining query frames.
	q = []Frame{frameOf(a, 100, 0), frameOf(d, 100, 1000), frameOf(b, 100, 2000), frameOf(c, 10, 3000), frameOf(flipBits(b, 3), 100, 4000)}
	r = Compare(q, []Frame{frameOf(a, 100, 0), frameOf(b, 100, 5000)}, 1, p)
	if want := []Segment{{0, 0}, {2000, 4000}}; !reflect.DeepEqual(r.Segments, want) {
		t.Errorf("segments %v, want %v", r.Segments, want)
	}

	// Nothing left on a side: no match, no division by zero.
	if r := Compare([]Frame{frameOf(a, 10, 0)}, []Frame{frameOf(a, 100, 0)}, 3, p); r.Match || r.QueryFrames != 0 {
		t.Errorf("empty query: %+v", r)
	}
}

func TestParamsCheck(t *testing.T) {
	if err := DefaultParams().Check(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []Params{
		{MinQuality: -1, MaxDistance: 31, QueryPercent: 80},
		{MinQuality: 101, MaxDistance: 31, QueryPercent: 80},
		{MinQuality: 50, MaxDistance: 65, QueryPercent: 80},
		{MinQuality: 50, MaxDistance: 31, QueryPercent: 0},
		{MinQuality: 50, MaxDistance: 31, QueryPercent: 101},
		{MinQuality: 50, MaxDistance: 31, QueryPercent: 80, ComparedPercent: -1},
	} {
		if p.Check() == nil {
			t.Errorf("%+v accepted", p)
		}
	}
	x := NewIndex(50)
	defer x.Close()
	p := DefaultParams()
	p.MinQuality = 60
	if _, err := x.Query(nil, p); err == nil {
		t.Error("query at another quality than the index's accepted")
	}
}

// bruteAll is Index.Query's answer computed by Compare over every stored
// video: those with a frame in common, sorted as Query sorts.
func bruteAll(videos map[uint64][]Frame, q []Frame, p Params) []Result {
	var out []Result
	for ref, v := range videos {
		if r := Compare(q, v, ref, p); r.QueryMatched > 0 {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, compareResults)
	return out
}

func TestIndexEqualsBruteForce(t *testing.T) {
	g := newBank(1)
	videos := map[uint64][]Frame{}
	var refs []uint64
	var vs [][]Frame
	for i := range 150 {
		v := g.video(20 + g.r.IntN(80))
		ref := uint64(i*7 + 3)
		videos[ref] = v
		refs, vs = append(refs, ref), append(vs, v)
	}
	x := NewIndex(50)
	defer x.Close()
	if err := x.Build(refs, vs); err != nil {
		t.Fatal(err)
	}
	var queries [][]Frame
	for range 25 {
		v := vs[g.r.IntN(len(vs))]
		from := g.r.IntN(len(v) - 10)
		to := from + 10 + g.r.IntN(len(v)-from-10+1)
		queries = append(queries, g.reencode(v, from, to, 12+g.r.IntN(20)))
	}
	for range 5 {
		queries = append(queries, g.video(60)) // unrelated
	}
	// Two stored videos spliced together.
	queries = append(queries, append(g.reencode(vs[0], 0, 15, 8), g.reencode(vs[1], 0, 15, 8)...))
	for _, p := range []Params{DefaultParams(), {MinQuality: 50, MaxDistance: 30, QueryPercent: 50, ComparedPercent: 20}, {MinQuality: 50, MaxDistance: 40, QueryPercent: 100}} {
		matches := 0
		for i, q := range queries {
			got, err := x.Query(q, p)
			if err != nil {
				t.Fatal(err)
			}
			want := bruteAll(videos, q, p)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("params %+v query %d: index gives %d results, brute force %d\n%+v\n%+v", p, i, len(got), len(want), got, want)
			}
			if len(got) > 0 && got[0].Match {
				matches++
			}
		}
		if matches < 20 {
			t.Errorf("params %+v: only %d of %d queries matched something: the test data is too easy to miss", p, matches, len(queries))
		}
	}

	// After removing and adding videos, still equal.
	for i := range 40 {
		ref := refs[i]
		if !x.Remove(ref, videos[ref]) {
			t.Fatalf("remove %d", ref)
		}
		delete(videos, ref)
	}
	for i := range 20 {
		ref := uint64(10000 + i)
		v := g.video(50)
		if err := x.Add(ref, v); err != nil {
			t.Fatal(err)
		}
		videos[ref] = v
		queries = append(queries, g.reencode(v, 10, 40, 10))
	}
	if err := x.Add(refs[100], vs[100]); err == nil {
		t.Error("adding a stored ref twice accepted")
	}
	if x.Videos() != 130 {
		t.Errorf("%d videos, want 130", x.Videos())
	}
	for i, q := range queries {
		got, _ := x.Query(q, DefaultParams())
		if want := bruteAll(videos, q, DefaultParams()); !reflect.DeepEqual(got, want) {
			t.Fatalf("after removes and adds, query %d: index %v, brute force %v", i, got, want)
		}
	}
}

// A clip cut from a longer stored video and re-encoded matches it: query
// match near 100%, compared match its share of the long video.
func TestClipOfLongerVideo(t *testing.T) {
	g := newBank(2)
	long := g.video(600)
	other := g.video(600)
	x := NewIndex(50)
	defer x.Close()
	if err := x.Build([]uint64{1, 2}, [][]Frame{long, other}); err != nil {
		t.Fatal(err)
	}
	clip := g.reencode(long, 200, 260, 16)
	rs, err := x.Query(clip, DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Ref != 1 || !rs[0].Match || rs[0].QueryPercent < 95 || rs[0].ComparedPercent > 20 {
		t.Fatalf("clip: %+v", rs)
	}
	if len(rs[0].Segments) == 0 || rs[0].Segments[0].From > 2000 {
		t.Errorf("segments %v", rs[0].Segments)
	}
}
