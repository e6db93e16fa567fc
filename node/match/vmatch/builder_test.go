package vmatch

import (
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/staydown/staydown/node/match"
)

// A Builder fed one video at a time (reusing the caller's buffer, as the
// node's start-up loader does) gives the index Build gives, and Query's
// parallel lookups (forced on this small index, on 4 goroutines) answer
// as brute force does.
func TestBuilderAndParallelQueryEqualBruteForce(t *testing.T) {
	defer func(n int) { parallelFrom = n }(parallelFrom)
	parallelFrom = 0
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))

	g := newBank(7)
	videos := map[uint64][]Frame{}
	var refs []uint64
	var vs [][]Frame
	for i := range 120 {
		v := g.video(20 + g.r.IntN(80))
		if i%10 == 0 { // a hash repeated, not consecutively: dedupe keeps the first
			v = append(v, v[0])
		}
		ref := uint64(i*5 + 1)
		videos[ref] = v
		refs, vs = append(refs, ref), append(vs, v)
	}
	built := NewIndex(50)
	defer built.Close()
	if err := built.Build(refs, vs); err != nil {
		t.Fatal(err)
	}
	x := NewIndex(50)
	defer x.Close()
	b := x.NewBuilder(1, 1) // hints too small: the arrays grow
	var buf []Frame
	for i, ref := range refs {
		buf = append(buf[:0], vs[i]...)
		if err := b.Add(ref, buf); err != nil {
			t.Fatal(err)
		}
		for j := range buf { // the Builder must not keep the caller's frames
			buf[j] = Frame{}
		}
	}
	if x.Videos() != 0 {
		t.Fatalf("%d videos before Finish", x.Videos())
	}
	b.Finish()
	if x.Videos() != built.Videos() || x.Frames() != built.Frames() {
		t.Fatalf("builder: %d videos %d frames, Build: %d videos %d frames", x.Videos(), x.Frames(), built.Videos(), built.Frames())
	}
	if err := b.Add(1000, vs[0]); err == nil {
		t.Error("Add after Finish accepted")
	}

	matches := 0
	for i := range 30 {
		var q []Frame
		switch i % 6 {
		case 5:
			q = g.video(60) // unrelated
		case 4: // a clip between unrelated frames: matches end inside the query
			v := vs[g.r.IntN(len(vs))]
			q = append(append(g.video(5), g.reencode(v, 3, 15, 10)...), g.video(5)...)
		default:
			v := vs[g.r.IntN(len(vs))]
			from := g.r.IntN(len(v) - 10)
			q = g.reencode(v, from, from+10+g.r.IntN(len(v)-from-10+1), 12+g.r.IntN(20))
		}
		for _, p := range []Params{DefaultParams(), {MinQuality: 50, MaxDistance: 40, QueryPercent: 50, ComparedPercent: 10}} {
			got, err := x.Query(q, p)
			if err != nil {
				t.Fatal(err)
			}
			if want := bruteAll(videos, q, p); !reflect.DeepEqual(got, want) {
				t.Fatalf("params %+v query %d: index %+v\nbrute force %+v", p, i, got, want)
			}
			if len(got) > 0 && got[0].Match {
				matches++
			}
		}
	}
	if matches < 30 {
		t.Errorf("only %d of 60 queries matched something: the test data is too easy to miss", matches)
	}
}

// A Builder refuses a ref twice, a ref too large and a video with too
// many frames, keeping nothing of the refused video, and the index keeps
// its contents until Finish.
func TestBuilderRefuses(t *testing.T) {
	g := newBank(8)
	x := NewIndex(50)
	defer x.Close()
	old := g.video(30)
	if err := x.Add(99, old); err != nil {
		t.Fatal(err)
	}
	b := x.NewBuilder(4, 400)
	v := g.video(40)
	if err := b.Add(1, v); err != nil {
		t.Fatal(err)
	}
	long := make([]Frame, MaxFrames+1)
	for i := range long {
		var h match.Hash
		h[0], h[1], h[2] = byte(i), byte(i>>8), 0xa5
		long[i] = Frame{Hash: h, Quality: 100, Timestamp: uint32(i)}
	}
	for _, c := range []struct {
		ref    uint64
		frames []Frame
		want   string
	}{
		{1, g.video(10), "video ref 1 twice"},
		{MaxRef + 1, g.video(10), "is above"},
		{2, long, "more than 2047 frames"},
	} {
		if err := b.Add(c.ref, c.frames); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Add(%d, %d frames): %v, want %q", c.ref, len(c.frames), err, c.want)
		}
	}
	if rs, _ := x.Query(old, DefaultParams()); len(rs) != 1 || rs[0].Ref != 99 {
		t.Fatalf("before Finish, the old contents: %+v", rs)
	}
	// MaxFrames frames are fine.
	if err := b.Add(3, long[:MaxFrames]); err != nil {
		t.Fatal(err)
	}
	b.Finish()
	if x.Videos() != 2 || x.Frames() != 40+MaxFrames {
		t.Fatalf("after Finish: %d videos, %d frames; want 2 and %d", x.Videos(), x.Frames(), 40+MaxFrames)
	}
	if rs, _ := x.Query(v, DefaultParams()); len(rs) != 1 || rs[0].Ref != 1 || rs[0].ComparedFrames != 40 {
		t.Fatalf("video 1 after Finish: %+v", rs)
	}
	if rs, _ := x.Query(old, DefaultParams()); len(rs) != 0 {
		t.Fatalf("old contents after Finish: %+v", rs)
	}
}

// FuzzBuilderAdd: for any video, the frames a Builder keeps (hashes and
// positions) are Prepare's, whether or not hashes repeat or share their
// first 8 bytes (the Builder's shortcut). Finish is not called: the PDQ
// index's Build is covered by the tests above.
func FuzzBuilderAdd(f *testing.F) {
	g := newBank(10)
	enc := func(fs []Frame) []byte {
		var b []byte
		for _, fr := range fs {
			b = append(append(b, fr.Hash[:]...), fr.Quality)
		}
		return b
	}
	v := g.video(12)
	f.Add(enc(append(v, v[3], v[0])))
	w := slices.Clone(v)
	w[5].Hash = w[2].Hash
	w[5].Hash[31] ^= 1 // same first 8 bytes as frame 2, another hash
	f.Add(enc(w))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, a []byte) {
		frames := framesOf(a)
		x := NewIndex(50)
		defer x.Close()
		b := x.NewBuilder(1, 0)
		err := b.Add(7, frames)
		want := Prepare(frames, 50)
		if len(want) > MaxFrames {
			if err == nil {
				t.Fatalf("%d frames kept, more than %d, accepted", len(want), MaxFrames)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(b.hs) != len(want) || b.counts[7] != len(want) {
			t.Fatalf("kept %d frames (count %d), Prepare %d", len(b.hs), b.counts[7], len(want))
		}
		for i, fr := range want {
			if b.hs[i] != fr.Hash || b.refs[i] != 7<<frameBits|uint64(i) {
				t.Fatalf("frame %d: %x ref %x, Prepare %x", i, b.hs[i], b.refs[i], fr.Hash)
			}
		}
	})
}
