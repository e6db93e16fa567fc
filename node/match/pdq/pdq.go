package pdq

import (
	"image"
	"io"
)

// MinQuality is the quality below which a hash is not matched by default.
// Hashes of flat or nearly featureless images (a single colour, a faint
// gradient) are dominated by noise and collide with each other, so matching
// them produces false positives; the reference recommends discarding them.
const MinQuality = 50

// Result is the PDQ hash of an image and its quality, 0..100.
type Result struct {
	Hash    Hash
	Quality int
}

// FromImage hashes img. An image with no pixels hashes to the zero Hash with
// quality 0.
func FromImage(img image.Image) Result {
	b, q := coefficientsOf(img)
	return Result{Hash: b.hash(), Quality: q}
}

// FromImageDihedral hashes img and the seven other images obtained from it by
// rotating and mirroring, indexed by Dihedral (hashes[Original] is
// Result.Hash), from one pass over the pixels: each transform of the image
// is a transposition and sign changes of its DCT coefficients. The quality is
// the same for all eight.
func FromImageDihedral(img image.Image) (Result, [8]Hash) {
	b, q := coefficientsOf(img)
	var hashes [8]Hash
	hashes[Original] = b.hash()
	for d := Rotate90; d <= FlipMinus1; d++ {
		t := b.transform(d)
		hashes[d] = t.hash()
	}
	return Result{Hash: hashes[Original], Quality: q}, hashes
}

// FromReader decodes a JPEG, PNG, GIF or WebP image (see Decode) and hashes
// it.
func FromReader(r io.Reader) (Result, error) {
	img, _, err := Decode(r)
	if err != nil {
		return Result{}, err
	}
	return FromImage(img), nil
}

func coefficientsOf(img image.Image) (coefficients, int) {
	size := img.Bounds().Size()
	if size.X <= 0 || size.Y <= 0 {
		return coefficients{}, 0
	}
	var small [64][64]float32
	newPlan(size.Y, size.X).downsample(newLumaSource(img), &small)
	return dct(&small), quality(&small)
}
