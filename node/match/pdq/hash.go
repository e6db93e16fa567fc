package pdq

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/bits"
)

// Hash is a 256-bit PDQ hash, stored in the byte order the reference prints
// it: String is the hexadecimal encoding of the 32 bytes, first byte first.
//
// Bit layout. The reference keeps the hash as sixteen 16-bit words and prints
// them most significant word first (word 15 down to word 0, four hex digits
// each). Word i holds row i of the 16x16 DCT output (vertical frequency i+1)
// and bit j of that word holds column j (horizontal frequency j+1), so DCT
// coefficient (i, j) is bit i*16+j of the 256-bit number. In this array that
// is byte 2*(15-i) for columns 8..15 and byte 2*(15-i)+1 for columns 0..7.
//
// This is the one ordering, out of the plausible ones (row-major or
// column-major coefficients, words printed first-to-last or last-to-first,
// bytes within a word either way round), that reproduces the reference
// hashes in the test data; TestBitOrder pins it by checking that every other
// candidate is far from expected.csv.
type Hash [32]byte

// String returns the 64 lower-case hex digits of h in the reference layout.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash parses 64 hexadecimal digits (either case) in the reference
// layout, the inverse of String.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return Hash{}, fmt.Errorf("%w: want %d hex characters, got %d", ErrBadHash, 2*len(h), len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return Hash{}, fmt.Errorf("%w: %w", ErrBadHash, err)
	}
	return h, nil
}

// Distance is the Hamming distance between a and b: the number of the 256
// bits in which they differ. The reference treats 31 or less as a match.
func Distance(a, b Hash) int {
	n := 0
	for i := 0; i < len(a); i += 8 {
		n += bits.OnesCount64(binary.BigEndian.Uint64(a[i:]) ^ binary.BigEndian.Uint64(b[i:]))
	}
	return n
}

// setCoefficient sets the bit for DCT output coefficient (row, col), both
// in 0..15; see the layout on Hash.
func (h *Hash) setCoefficient(row, col int) {
	h[2*(15-row)+1-col/8] |= 1 << (col % 8)
}
