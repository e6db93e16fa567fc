package vmatch

import (
	"reflect"
	"testing"
)

// framesOf cuts b into frames of 33 bytes (hash, quality mod 101),
// timestamps one second apart.
func framesOf(b []byte) []Frame {
	var out []Frame
	for i := 0; i+33 <= len(b); i += 33 {
		var f Frame
		copy(f.Hash[:], b[i:])
		f.Quality = b[i+32] % 101
		f.Timestamp = uint32(len(out)) * 1000
		out = append(out, f)
	}
	return out
}

// FuzzIndexEqualsCompare: for any three stored videos, a query and a
// distance, the index's answer is Compare's over every stored video.
func FuzzIndexEqualsCompare(f *testing.F) {
	g := newBank(9)
	enc := func(fs []Frame) []byte {
		var b []byte
		for _, fr := range fs {
			b = append(append(b, fr.Hash[:]...), fr.Quality)
		}
		return b
	}
	v := g.video(12)
	f.Add(enc(v), enc(g.video(8)), enc(g.video(5)), enc(g.reencode(v, 2, 9, 10)), uint8(31))
	f.Add([]byte{}, []byte{1}, enc(v), enc(v), uint8(0))
	f.Fuzz(func(t *testing.T, a, b, c, q []byte, dist uint8) {
		p := DefaultParams()
		p.MaxDistance = int(dist % 65)
		videos := map[uint64][]Frame{1: framesOf(a), 2: framesOf(b), 3: framesOf(c)}
		x := NewIndex(p.MinQuality)
		defer x.Close()
		// Add, not Build: Build sizes tables for millions (13 ms even for
		// three videos), which would starve the fuzzer; TestIndexEqualsBruteForce
		// covers Build.
		for ref := uint64(1); ref <= 3; ref++ {
			if err := x.Add(ref, videos[ref]); err != nil {
				t.Fatal(err)
			}
		}
		query := framesOf(q)
		got, err := x.Query(query, p)
		if err != nil {
			t.Fatal(err)
		}
		if want := bruteAll(videos, query, p); !reflect.DeepEqual(got, want) {
			t.Fatalf("index %+v\nbrute force %+v", got, want)
		}
	})
}
