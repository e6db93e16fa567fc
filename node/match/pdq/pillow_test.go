package pdq

import (
	"image"
	"image/draw"
	"math"
)

// The hashes in expected.csv come from the reference's pure-Python
// implementation, whose file hasher first shrinks the image with Pillow's
// Image.thumbnail((512, 512)) and hashes the thumbnail. The published
// algorithm, the C++ reference and this package hash the full-size image,
// which moves a large photo's hash by a few bits. To compare like with like,
// the tests also hash a thumbnail made the way Pillow makes it:
// pillowThumbnail reproduces Pillow's size choice and its separable,
// antialiased bicubic resampling (a = -0.5, support scaled by the shrink
// factor, 8-bit fixed-point weights with 22 fractional bits, horizontal pass
// first, each pass rounded and clamped to 8 bits). It is written from
// Pillow's documented behaviour and exists only to explain the reference
// data; the package never thumbnails.

const pillowPrecision = 22

func pillowBicubic(x float64) float64 {
	const a = -0.5
	x = math.Abs(x)
	switch {
	case x < 1:
		return ((a+2)*x-(a+3))*x*x + 1
	case x < 2:
		return (((x-5)*x+8)*x - 4) * a
	}
	return 0
}

// pillowTaps are the input span and fixed-point weights of one output
// sample.
type pillowTaps struct {
	first int
	k     []int32
}

func pillowWeights(in, out int) []pillowTaps {
	scale := float64(in) / float64(out)
	filterScale := max(scale, 1)
	support := 2 * filterScale
	taps := make([]pillowTaps, out)
	for o := range taps {
		center := (float64(o) + 0.5) * scale
		lo := max(int(center-support+0.5), 0)
		hi := min(int(center+support+0.5), in)
		w := make([]float64, hi-lo)
		total := 0.0
		for i := range w {
			w[i] = pillowBicubic((float64(lo+i) - center + 0.5) / filterScale)
			total += w[i]
		}
		k := make([]int32, len(w))
		for i := range w {
			if total != 0 {
				w[i] /= total
			}
			k[i] = int32(math.Round(w[i] * (1 << pillowPrecision)))
		}
		taps[o] = pillowTaps{lo, k}
	}
	return taps
}

func pillowClip(v int32) uint8 {
	return uint8(min(max(v>>pillowPrecision, 0), 255))
}

// pillowSize is the size Image.thumbnail((limit, limit)) picks: the aspect
// ratio kept, the shrunk side rounded to whichever neighbour keeps the ratio
// closer.
func pillowSize(w, h, limit int) (int, int) {
	aspect := float64(w) / float64(h)
	if aspect <= 1 {
		n := float64(limit) * aspect
		f, c := math.Floor(n), math.Ceil(n)
		if math.Abs(aspect-c/float64(limit)) < math.Abs(aspect-f/float64(limit)) {
			f = c
		}
		return max(int(f), 1), limit
	}
	n := float64(limit) / aspect
	f, c := math.Floor(n), math.Ceil(n)
	if math.Abs(aspect-float64(limit)/c) < math.Abs(aspect-float64(limit)/f) {
		f = c
	}
	return limit, max(int(f), 1)
}

// pillowThumbnail returns img shrunk as Image.thumbnail((limit, limit))
// shrinks it (alpha dropped), or img itself if it already fits. JPEG draft
// mode and Pillow's pre-reduction only start at shrink factors of 2 or more,
// which the reference images do not reach; they are not reproduced.
func pillowThumbnail(img image.Image, limit int) image.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= limit && h <= limit {
		return img
	}
	tw, th := pillowSize(w, h, limit)
	// Pillow's "RGB" mode: the colour channels, alpha dropped. The
	// reference images are opaque JPEGs and one PNG decoded as NRGBA.
	src := image.NewNRGBA(image.Rect(0, 0, w, h))
	if n, ok := img.(*image.NRGBA); ok {
		draw.Draw(src, src.Bounds(), n, b.Min, draw.Src)
	} else {
		rgba := image.NewRGBA(src.Bounds())
		draw.Draw(rgba, rgba.Bounds(), img, b.Min, draw.Src)
		copy(src.Pix, rgba.Pix)
	}
	for i := 3; i < len(src.Pix); i += 4 {
		src.Pix[i] = 0xff
	}
	across := image.NewNRGBA(image.Rect(0, 0, tw, h))
	horizontal := pillowWeights(w, tw)
	for y := range h {
		in := src.Pix[y*src.Stride:]
		row := across.Pix[y*across.Stride:]
		for x, t := range horizontal {
			for ch := range 3 {
				acc := int32(1 << (pillowPrecision - 1))
				for i, k := range t.k {
					acc += int32(in[4*(t.first+i)+ch]) * k
				}
				row[4*x+ch] = pillowClip(acc)
			}
			row[4*x+3] = 0xff
		}
	}
	out := image.NewNRGBA(image.Rect(0, 0, tw, th))
	for y, t := range pillowWeights(h, th) {
		row := out.Pix[y*out.Stride:]
		for x := range 4 * tw {
			if x%4 == 3 {
				row[x] = 0xff
				continue
			}
			acc := int32(1 << (pillowPrecision - 1))
			for i, k := range t.k {
				acc += int32(across.Pix[(t.first+i)*across.Stride+x]) * k
			}
			row[x] = pillowClip(acc)
		}
	}
	return out
}
