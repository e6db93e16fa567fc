package match

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
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

// Distance returns the Hamming distance between a and b: the number of bits
// in which they differ, 0..256.
func Distance(a, b Hash) int {
	wa, wb := load(&a), load(&b)
	return distance(&wa, &wb)
}

// ParseHash decodes the 64-hex-digit text form of a PDQ hash. Upper and lower
// case are accepted; nothing else (no prefix, no spaces). Errors wrap
// ErrHashFormat.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return Hash{}, fmt.Errorf("%w: want %d hex digits, got %d characters", ErrHashFormat, 2*len(h), len(s))
	}
	for i := range h {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			at := 2 * i
			if ok1 {
				at++
			}
			return Hash{}, fmt.Errorf("%w: %q at offset %d is not a hex digit", ErrHashFormat, s[at], at)
		}
		h[i] = hi<<4 | lo
	}
	return h, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// BruteForce is the reference the index is held to: it compares q with
// every hs[i] and returns each (hs[i], refs[i]) within threshold, sorted
// like PDQIndex.Query. A negative threshold matches nothing. It panics if hs
// and refs differ in length.
func BruteForce(hs []Hash, refs []uint64, q Hash, threshold int) []PDQMatch {
	if len(hs) != len(refs) {
		panic(fmt.Sprintf("match: BruteForce: %d hashes but %d refs", len(hs), len(refs)))
	}
	qw := load(&q)
	var out []PDQMatch
	for i := range hs {
		w := load(&hs[i])
		if d := distance(&w, &qw); d <= threshold {
			out = append(out, PDQMatch{Hash: hs[i], Ref: refs[i], Distance: d})
		}
	}
	sortMatches(out)
	return out
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
