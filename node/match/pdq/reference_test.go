package pdq

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"image"
	"io"
	"math/bits"
)

// The package hashes only encoded images, with their dihedral variants
// (FromReaderDihedral). The tests also hash decoded images, one variant at
// a time, and the full-size image as the published algorithm does, to hold
// the hashes to the reference's; these are those entry points.

// FromImage hashes img the way the reference's file hasher does: shrunk to
// fit ThumbnailSize x ThumbnailSize first, if it is larger (see doc.go). An
// image with no pixels hashes to the zero Hash with quality 0.
func FromImage(img image.Image) Result {
	b, q := coefficientsOf(img, false)
	return Result{Hash: b.hash(), Quality: q}
}

// FromImageFullSize hashes img without shrinking it first, as the published
// algorithm and the C++ reference do. Its hashes are a few bits from
// FromImage's on large photos (doc.go).
func FromImageFullSize(img image.Image) Result {
	b, q := fullSizeCoefficients(img)
	return Result{Hash: b.hash(), Quality: q}
}

// FromImageDihedral hashes img as FromImage does, together with the seven
// rotated and mirrored variants, as FromReaderDihedral does.
func FromImageDihedral(img image.Image) (Result, [8]Hash) {
	b, q := coefficientsOf(img, false)
	return dihedralOf(&b, q)
}

// FromReader is FromReaderDihedral without the variants.
func FromReader(r io.Reader) (Result, error) {
	res, _, err := FromReaderDihedral(r)
	return res, err
}

// ParseHash parses 64 hexadecimal digits (either case) in the reference
// layout, the inverse of String.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return Hash{}, fmt.Errorf("want %d hex characters, got %d", 2*len(h), len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return Hash{}, err
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
