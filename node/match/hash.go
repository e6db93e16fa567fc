package match

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"math/bits"
	"slices"
)

// Hash is a 256-bit PDQ perceptual hash, in the byte order of its usual
// 64-digit hex form.
type Hash = [32]byte

// PDQMatch is one stored (hash, ref) pair within the threshold of a query.
type PDQMatch struct {
	Hash     Hash
	Ref      uint64
	Distance int // Hamming distance to the query, 0..256
}

// sortMatches puts matches in the order Query promises: nearest first, then
// by hash bytes, then by ref.
func sortMatches(ms []PDQMatch) {
	slices.SortFunc(ms, func(a, b PDQMatch) int {
		if c := cmp.Compare(a.Distance, b.Distance); c != 0 {
			return c
		}
		if c := bytes.Compare(a.Hash[:], b.Hash[:]); c != 0 {
			return c
		}
		return cmp.Compare(a.Ref, b.Ref)
	})
}

// words is the form the index computes with: the hash's bytes as four
// little-endian words, so that a distance is four POPCNTs.
type words [4]uint64

func load(h *Hash) words {
	return words{
		binary.LittleEndian.Uint64(h[0:]),
		binary.LittleEndian.Uint64(h[8:]),
		binary.LittleEndian.Uint64(h[16:]),
		binary.LittleEndian.Uint64(h[24:]),
	}
}

func (w *words) hash() Hash {
	var h Hash
	binary.LittleEndian.PutUint64(h[0:], w[0])
	binary.LittleEndian.PutUint64(h[8:], w[1])
	binary.LittleEndian.PutUint64(h[16:], w[2])
	binary.LittleEndian.PutUint64(h[24:], w[3])
	return h
}

func distance(a, b *words) int {
	return bits.OnesCount64(a[0]^b[0]) + bits.OnesCount64(a[1]^b[1]) +
		bits.OnesCount64(a[2]^b[2]) + bits.OnesCount64(a[3]^b[3])
}
