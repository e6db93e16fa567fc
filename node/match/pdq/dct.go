package pdq

import (
	"math"
	"slices"
	"strconv"
)

// dctMatrix is rows 1..16 of the 64-point DCT-II basis (row 0, the DC
// term, is skipped): dctMatrix[i][j] = sqrt(2/64) cos(pi/128 (i+1)(2j+1)).
var dctMatrix [16][64]float32

func init() {
	for i := range 16 {
		for j := range 64 {
			dctMatrix[i][j] = float32(math.Sqrt(2.0/64) * math.Cos(math.Pi/(2*64)*float64(i+1)*float64(2*j+1)))
		}
	}
}

// coefficients is the 16x16 DCT output: row i is vertical frequency i+1,
// column j horizontal frequency j+1.
type coefficients [16][16]float32

// dct returns D A Dᵀ, the low-frequency corner of the 2-D DCT of a, as two
// matrix products.
func dct(a *[64][64]float32) coefficients {
	var t [16][64]float32 // D A
	for i := range t {
		ti := &t[i]
		for k, d := range &dctMatrix[i] {
			ak := &a[k]
			for j := range ti {
				ti[j] += d * ak[j]
			}
		}
	}
	var b coefficients
	for i := range b {
		for j := range b[i] {
			var s float32
			for k, d := range &dctMatrix[j] {
				s += t[i][k] * d
			}
			b[i][j] = s
		}
	}
	return b
}

// hash sets the bit of each coefficient greater than the median. The
// median of 256 values is taken as the 128th smallest, as the reference's
// Torben median does; with distinct values that sets exactly 128 bits.
func (b *coefficients) hash() Hash {
	var sorted [256]float32
	for i := range b {
		copy(sorted[16*i:], b[i][:])
	}
	slices.Sort(sorted[:])
	median := sorted[127]
	var h Hash
	for i := range b {
		for j, v := range b[i] {
			if v > median {
				h.setCoefficient(i, j)
			}
		}
	}
	return h
}

// Dihedral names the eight symmetries of a square, the transforms
// FromReaderDihedral returns hashes for. The names and the direction of the
// rotations follow the reference, and the test images dih--bridge-* show
// what each does: FlipX mirrors top to bottom (about the horizontal axis),
// FlipY left to right, FlipPlus1 transposes (about the main diagonal),
// FlipMinus1 about the other diagonal, and Rotate90 turns the image a
// quarter turn anticlockwise.
type Dihedral int

const (
	Original   Dihedral = iota // the image as it is
	Rotate90                   // a quarter turn anticlockwise
	Rotate180                  // a half turn
	Rotate270                  // a quarter turn clockwise
	FlipX                      // mirrored top to bottom
	FlipY                      // mirrored left to right
	FlipPlus1                  // transposed: mirrored about the main diagonal
	FlipMinus1                 // mirrored about the anti-diagonal
)

var dihedralNames = [...]string{"original", "rotate90", "rotate180", "rotate270", "flipX", "flipY", "flipPlus1", "flipMinus1"}

func (d Dihedral) String() string {
	if d < 0 || int(d) >= len(dihedralNames) {
		return "Dihedral(" + strconv.Itoa(int(d)) + ")"
	}
	return dihedralNames[d]
}

// How each transform of the image acts on its DCT coefficients.
//
// Mirroring the 64 columns (x -> 63-x) maps the basis function of horizontal
// frequency f to cos(pi f - theta) = (-1)^f cos(theta), so coefficient (i, j),
// of frequency j+1, changes sign iff j is even; mirroring rows does the same
// by i. Transposing the image transposes the coefficients. Every element of
// the dihedral group is a transpose or not followed by mirrors, so each is
// a transpose flag and two sign flags, applied to the output position.
var dihedralOps = [8]struct {
	transpose  bool
	negEvenRow bool // negate output (i, j) when i is even
	negEvenCol bool // negate output (i, j) when j is even
}{
	Original:   {},
	Rotate90:   {transpose: true, negEvenRow: true},
	Rotate180:  {negEvenRow: true, negEvenCol: true},
	Rotate270:  {transpose: true, negEvenCol: true},
	FlipX:      {negEvenRow: true},
	FlipY:      {negEvenCol: true},
	FlipPlus1:  {transpose: true},
	FlipMinus1: {transpose: true, negEvenRow: true, negEvenCol: true},
}

// transform returns the coefficients the image would have after d.
func (b *coefficients) transform(d Dihedral) coefficients {
	op := dihedralOps[d]
	var out coefficients
	for i := range out {
		for j := range out[i] {
			v := b[i][j]
			if op.transpose {
				v = b[j][i]
			}
			if op.negEvenRow && i%2 == 0 {
				v = -v
			}
			if op.negEvenCol && j%2 == 0 {
				v = -v
			}
			out[i][j] = v
		}
	}
	return out
}

// quality is the reference's image-domain quality metric: the sum of the
// absolute differences between neighbouring samples of the 64x64 image, each
// scaled to 0..100 and truncated, divided by 90 and capped at 100. A flat or
// nearly flat image scores near 0; its hash is mostly noise.
func quality(a *[64][64]float32) int {
	sum := 0
	step := func(u, v float32) {
		d := int((u - v) * 100 / 255)
		sum += max(d, -d)
	}
	for i := range 63 {
		for j := range 64 {
			step(a[i][j], a[i+1][j])
		}
	}
	for i := range 64 {
		for j := range 63 {
			step(a[i][j], a[i][j+1])
		}
	}
	return min(sum/90, 100)
}
