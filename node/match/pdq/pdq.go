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

// FromReaderDihedral decodes a JPEG, PNG, GIF or WebP image (see Decode)
// and hashes it the way the reference's file hasher does: shrunk to fit
// ThumbnailSize x ThumbnailSize first, if it is larger, a large JPEG first
// shrunk by 2, 4 or 8 as Pillow's draft mode would decode it (doc.go). It
// returns the hash and quality, and the hashes of the seven other images
// obtained by rotating and mirroring it, indexed by Dihedral
// (hashes[Original] is Result.Hash), from one pass over the pixels: each
// transform of the image is a transposition and sign changes of its DCT
// coefficients. The quality is the same for all eight.
func FromReaderDihedral(r io.Reader) (Result, [8]Hash, error) {
	img, format, err := Decode(r)
	if err != nil {
		return Result{}, [8]Hash{}, err
	}
	b, q := coefficientsOf(img, format == "jpeg")
	res, hashes := dihedralOf(&b, q)
	return res, hashes, nil
}

func dihedralOf(b *coefficients, q int) (Result, [8]Hash) {
	var hashes [8]Hash
	hashes[Original] = b.hash()
	for d := Rotate90; d <= FlipMinus1; d++ {
		t := b.transform(d)
		hashes[d] = t.hash()
	}
	return Result{Hash: hashes[Original], Quality: q}, hashes
}

// coefficientsOf returns the DCT coefficients and quality of img's
// thumbnail, or of img itself if it fits (jpeg: see thumbnail).
func coefficientsOf(img image.Image, jpeg bool) (coefficients, int) {
	t, ok := thumbnail(img, ThumbnailSize, jpeg)
	if !ok {
		return fullSizeCoefficients(img)
	}
	var small [64][64]float32
	newPlan(t.h, t.w).downsample(t.source(), &small)
	return dct(&small), quality(&small)
}

func fullSizeCoefficients(img image.Image) (coefficients, int) {
	size := img.Bounds().Size()
	if size.X <= 0 || size.Y <= 0 {
		return coefficients{}, 0
	}
	var small [64][64]float32
	newPlan(size.Y, size.X).downsample(newLumaSource(img), &small)
	return dct(&small), quality(&small)
}
