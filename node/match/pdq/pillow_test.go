package pdq

import (
	"image"
	"image/draw"
	"math"
)

// pillowThumbnail8bit is the test's oracle for thumbnail.go: an emulation
// of Pillow's Image.thumbnail((limit, limit)) on 8-bit RGB, written apart
// from the package's code and computing the way Pillow computes: reduce
// (Image.reduce, each block's mean rounded to 8 bits), then separable,
// antialiased bicubic resampling (a = -0.5, support scaled by the shrink
// factor, weights in fixed point with 22 fractional bits, horizontal pass
// first, each pass rounded and clamped to 8 bits). The package resamples
// float luminance instead; the tests check that the hashes agree. JPEG
// draft mode is not emulated (it happens inside libjpeg), nor is the
// nearest-neighbour resize of paletted images; the oracle is for RGB
// images.

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

// pillowWeights resamples the extent [0, box) of an input of in samples to
// out samples.
func pillowWeights(in int, box float64, out int) []pillowTaps {
	scale := box / float64(out)
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

// rgbOf copies img into an opaque NRGBA (Pillow's "RGB" mode: the colour
// channels, alpha dropped).
func rgbOf(img image.Image) *image.NRGBA {
	b := img.Bounds()
	src := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
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
	return src
}

// pillowReduce8bit averages blocks of fx x fy pixels, each channel's mean
// rounded to the nearest 8-bit value; edge blocks average what they have.
func pillowReduce8bit(src *image.NRGBA, fx, fy int) *image.NRGBA {
	w, h := src.Bounds().Dx(), src.Bounds().Dy()
	ow, oh := (w+fx-1)/fx, (h+fy-1)/fy
	out := image.NewNRGBA(image.Rect(0, 0, ow, oh))
	for y := range oh {
		for x := range ow {
			var sum [3]int
			n := 0
			for sy := y * fy; sy < min(y*fy+fy, h); sy++ {
				for sx := x * fx; sx < min(x*fx+fx, w); sx++ {
					p := src.Pix[src.PixOffset(sx, sy):]
					sum[0] += int(p[0])
					sum[1] += int(p[1])
					sum[2] += int(p[2])
					n++
				}
			}
			q := out.Pix[out.PixOffset(x, y):]
			for c := range 3 {
				q[c] = uint8((sum[c] + n/2) / n)
			}
			q[3] = 0xff
		}
	}
	return out
}

// pillowThumbnail8bit returns img shrunk as Image.thumbnail((limit,
// limit)) shrinks a non-JPEG RGB image, or img itself if it already fits.
// The geometry (thumbnail size, reduce factors, fractional box) is
// recomputed here from Pillow's rules, not taken from planShrink.
func pillowThumbnail8bit(img image.Image, limit int) image.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= limit && h <= limit {
		return img
	}
	aspect := float64(w) / float64(h)
	tw, th := limit, limit
	roundAspect := func(n float64, key func(float64) float64) int {
		f, c := math.Floor(n), math.Ceil(n)
		if key(c) < key(f) {
			f = c
		}
		return max(int(f), 1)
	}
	if aspect <= 1 {
		tw = roundAspect(float64(limit)*aspect, func(n float64) float64 { return math.Abs(aspect - n/float64(limit)) })
	} else {
		th = roundAspect(float64(limit)/aspect, func(n float64) float64 {
			if n == 0 {
				return 0
			}
			return math.Abs(aspect - float64(limit)/n)
		})
	}
	src := rgbOf(img)
	fx, fy := max(int(float64(w)/float64(tw)/2), 1), max(int(float64(h)/float64(th)/2), 1)
	boxW, boxH := float64(w)/float64(fx), float64(h)/float64(fy)
	if fx > 1 || fy > 1 {
		src = pillowReduce8bit(src, fx, fy)
		w, h = src.Bounds().Dx(), src.Bounds().Dy()
	}
	across := image.NewNRGBA(image.Rect(0, 0, tw, h))
	horizontal := pillowWeights(w, boxW, tw)
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
	for y, t := range pillowWeights(h, boxH, th) {
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
