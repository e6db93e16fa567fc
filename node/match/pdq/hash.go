package pdq

import "encoding/hex"

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

// setCoefficient sets the bit for DCT output coefficient (row, col), both
// in 0..15; see the layout on Hash.
func (h *Hash) setCoefficient(row, col int) {
	h[2*(15-row)+1-col/8] |= 1 << (col % 8)
}
