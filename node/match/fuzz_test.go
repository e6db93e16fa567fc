package match

import (
	"slices"
	"testing"
)

// FuzzPDQIndex builds a small index from the input and checks one query
// against BruteForce. The input is read as:
//
//	byte 0      threshold (0..255; with flag 0x40, 256 + the byte)
//	byte 1      flags: 0x08 probe only, 0x10 query is the seed's
//	            complement, 0x20 merge often, 0x40 see byte 0, 0x80 no
//	            Build, everything added
//	bytes 2-33  the seed hash (zero-padded)
//	then pairs  (op, arg): op%4 == 0 appends the seed, 1 flips bit arg of
//	            the last hash, 2 appends a copy of hash arg (same ref if
//	            op&4), 3 removes entry arg
//
// Hashes derived from one seed by bit flips sit at controlled distances, so
// small inputs reach every radius. The index has the geometry of small data
// (16 chunks): the wide chunks of large data need tables of megabytes per
// chunk, too slow to build per input; TestRandom covers them.
func FuzzPDQIndex(f *testing.F) {
	f.Add([]byte{31, 0x08})
	f.Add([]byte{0, 0x00, 1, 2, 3, 0, 0, 1, 5, 1, 200, 2, 0, 6, 0, 3, 1})
	f.Add([]byte{63, 0x08, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 1, 17, 1, 33, 1, 49, 1, 65, 0, 0, 1, 255, 1, 128, 2, 1, 3, 0})
	f.Add([]byte{100, 0x30, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
		0, 0, 2, 0, 6, 0, 3, 1})
	f.Add([]byte{0, 0xc8})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		threshold, flags := int(data[0]), data[1]
		if flags&0x40 != 0 {
			threshold += 256
		}
		var seed Hash
		copy(seed[:], data[2:])
		ops := data[min(len(data), 34):]
		if len(ops) > 200 {
			ops = ops[:200]
		}

		var hs []Hash
		var refs []uint64
		var removes []int
		for k := 0; k+1 < len(ops); k += 2 {
			op, arg := ops[k], int(ops[k+1])
			switch {
			case op%4 == 0 || len(hs) == 0:
				hs, refs = append(hs, seed), append(refs, uint64(len(hs)))
			case op%4 == 1:
				hs[len(hs)-1][arg/8] ^= 1 << (arg % 8)
			case op%4 == 2:
				ref := uint64(len(hs))
				if op&4 != 0 {
					ref = refs[arg%len(hs)]
				}
				hs, refs = append(hs, hs[arg%len(hs)]), append(refs, ref)
			default:
				removes = append(removes, arg)
			}
		}
		q := seed
		if flags&0x10 != 0 {
			for i := range q {
				q[i] ^= 0xff
			}
		}

		x := NewPDQIndex()
		// Beyond about 100 the probes cover every value of every chunk:
		// a million of them, slow and no different from 100.
		x.probeOnly = flags&0x08 != 0 && threshold <= 100
		if flags&0x20 != 0 {
			x.mergeMin = 8
		}
		want := &pairs{}
		built := len(hs) / 2
		if flags&0x80 != 0 {
			built = 0
		}
		x.Build(hs[:built], refs[:built])
		want.hs, want.refs = slices.Clone(hs[:built]), slices.Clone(refs[:built])
		for i := built; i < len(hs); i++ {
			x.Add(hs[i], refs[i])
			want.add(hs[i], refs[i])
		}
		for _, k := range removes {
			if len(hs) == 0 {
				break
			}
			h, ref := hs[k%len(hs)], refs[k%len(hs)]
			if got, exp := x.Remove(h, ref), want.remove(h, ref); got != exp {
				t.Fatalf("Remove(%x, %d) = %v, want %v", h, ref, got, exp)
			}
		}
		checkQuery(t, x, want, q, threshold)
		checkIndex(t, x, want)
	})
}
