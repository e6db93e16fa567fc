package pdq

import (
	"image"
	"math"
	"runtime"
	"sync"
)

// ThumbnailSize is the square an image is shrunk to fit before it is
// hashed, as the reference's Python file hasher does with Pillow's
// Image.thumbnail((512, 512)). See doc.go for why.
const ThumbnailSize = 512

// The thumbnail follows Pillow's Image.thumbnail as the reference's file
// hasher calls it (bicubic resampling, reducing_gap 2), in four steps:
//
//  1. Size: the aspect ratio kept, the shrunk side rounded to whichever
//     neighbour keeps the ratio closer (thumbnailSize).
//  2. JPEG draft: Pillow asks libjpeg to decode a JPEG at 1/2, 1/4 or 1/8
//     scale when the image is at least twice that many times 1024 pixels on
//     both sides. libjpeg's scaled inverse DCT is approximated here by
//     averaging 2x2, 4x4 or 8x8 blocks.
//  3. Reduce: when the image (after the draft) is still at least four times
//     the thumbnail along a side, Pillow first averages blocks of
//     floor(side/thumbnail/2) pixels along it (Image.reduce), edge blocks
//     over the pixels they have.
//  4. Resample: a separable bicubic filter (a = -0.5) whose support is
//     stretched by the shrink factor (antialiasing), with Pillow's tap
//     positions and normalised weights. Pillow filters along the rows, then
//     along the columns, rounding in between; in float the order does not
//     matter, and resample takes the cheaper one.
//     The part of the reduced image that maps onto the thumbnail is
//     fractional (the original size divided by the factors), as in Pillow.
//
// Pillow resamples 8-bit R, G and B and rounds after each pass; this
// resamples the luminance in float32. Luminance is linear in R, G and B,
// so the two differ only by that rounding (and by clipping where bicubic
// overshoots at a saturated edge): on the reference images the hashes are
// identical (pillow_test.go checks this against an 8-bit emulation), at
// a third of the cost.
//
// Paletted images (GIF, palette PNG: Pillow's "P" mode) are resampled by
// Pillow with nearest-neighbour whatever is asked, and so are they here.

// thumbnailSize is the size Image.thumbnail((limit, limit)) picks for a
// w x h image that does not fit.
func thumbnailSize(w, h, limit int) (int, int) {
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

// shrinkPlan is the geometry of one thumbnail.
type shrinkPlan struct {
	tw, th     int     // thumbnail size
	draft      int     // JPEG draft scale: 1, 2, 4 or 8
	fx, fy     int     // reduce factors after the draft
	boxW, boxH float64 // the extent, in reduced pixels, that maps onto the thumbnail
	nearest    bool    // paletted: nearest-neighbour, no draft, no reduce
}

// planShrink returns the geometry of the thumbnail of a w x h image, and
// false if the image fits in limit x limit and is hashed as it is.
func planShrink(w, h, limit int, jpeg, nearest bool) (shrinkPlan, bool) {
	if w <= limit && h <= limit {
		return shrinkPlan{}, false
	}
	p := shrinkPlan{draft: 1, fx: 1, fy: 1, nearest: nearest}
	p.tw, p.th = thumbnailSize(w, h, limit)
	p.boxW, p.boxH = float64(w), float64(h)
	if nearest {
		return p, true
	}
	const reducingGap = 2
	if jpeg {
		scale := min(w/(limit*reducingGap), h/(limit*reducingGap))
		for _, s := range []int{8, 4, 2} {
			if scale >= s {
				p.draft = s
				break
			}
		}
		p.boxW, p.boxH = float64(w)/float64(p.draft), float64(h)/float64(p.draft)
	}
	p.fx = max(int(p.boxW/float64(p.tw)/reducingGap), 1)
	p.fy = max(int(p.boxH/float64(p.th)/reducingGap), 1)
	p.boxW /= float64(p.fx)
	p.boxH /= float64(p.fy)
	return p, true
}

// lumaPlane is a luminance image held in memory, row-major.
type lumaPlane struct {
	w, h int
	pix  []float32
}

func (p *lumaPlane) source() lumaSource {
	return func(y int, dst []float32) { copy(dst, p.pix[y*p.w:][:len(dst)]) }
}

// thumbnail returns the luminance of img shrunk as the reference's hasher
// shrinks it, and false if img fits in limit x limit. jpeg says the image
// was decoded from a JPEG, which Pillow would have decoded in draft mode.
func thumbnail(img image.Image, limit int, jpeg bool) (*lumaPlane, bool) {
	size := img.Bounds().Size()
	_, paletted := img.(*image.Paletted)
	p, ok := planShrink(size.X, size.Y, limit, jpeg, paletted)
	if !ok {
		return nil, false
	}
	src := newLumaSource(img)
	if p.nearest {
		return nearestPlane(src, size.X, size.Y, p.tw, p.th), true
	}
	w, h := size.X, size.Y
	src, w, h = reduced(src, w, h, p.draft, p.draft)
	src, w, h = reduced(src, w, h, p.fx, p.fy)
	return resample(src, w, h, p), true
}

// nearestPlane samples, for each thumbnail pixel, the pixel its centre
// falls on, as Pillow's nearest-neighbour resize does.
func nearestPlane(src lumaSource, w, h, tw, th int) *lumaPlane {
	out := &lumaPlane{w: tw, h: th, pix: make([]float32, tw*th)}
	cols := make([]int, tw)
	for x := range cols {
		cols[x] = min(int((float64(x)+0.5)*float64(w)/float64(tw)), w-1)
	}
	line := make([]float32, w)
	for y := range th {
		src(min(int((float64(y)+0.5)*float64(h)/float64(th)), h-1), line)
		row := out.pix[y*tw:][:tw]
		for x, c := range cols {
			row[x] = line[c]
		}
	}
	return out
}

// linePool holds row buffers for reduced sources, which may be read from
// several goroutines at once.
var linePool sync.Pool // *[]float32

func getLine(n int) *[]float32 {
	if p, ok := linePool.Get().(*[]float32); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	s := make([]float32, n)
	return &s
}

// reduced returns src averaged over blocks of fx x fy pixels, as Pillow's
// Image.reduce does; blocks at the right and bottom edges average the
// pixels they have. It returns the reduced source and its size.
func reduced(src lumaSource, w, h, fx, fy int) (lumaSource, int, int) {
	if fx == 1 && fy == 1 {
		return src, w, h
	}
	ow, oh := (w+fx-1)/fx, (h+fy-1)/fy
	return func(y int, dst []float32) {
		buf := getLine(w)
		defer linePool.Put(buf)
		line := *buf
		y0, y1 := y*fy, min(y*fy+fy, h)
		clear(dst)
		for sy := y0; sy < y1; sy++ {
			src(sy, line)
			for x := range dst {
				var s float32
				for _, v := range line[x*fx : min(x*fx+fx, w)] {
					s += v
				}
				dst[x] += s
			}
		}
		rows := float32(y1 - y0)
		for x := range dst {
			dst[x] /= rows * float32(min(x*fx+fx, w)-x*fx)
		}
	}, ow, oh
}

// taps are the input span and weights of every output sample of one
// resampling pass: output o reads in[first[o]:][:n[o]] with weights
// k[o*stride:][:n[o]].
type taps struct {
	first, n []int
	k        []float32
	stride   int
}

// bicubic is the Keys cubic with a = -0.5, Pillow's BICUBIC filter.
func bicubic(x float64) float64 {
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

// bicubicTaps computes the taps that resample the extent [0, box) of an
// input of inSize samples to out samples, as Pillow's precompute_coeffs
// does: output o is centred at (o+0.5)*scale, the filter is stretched by
// the shrink factor, taps outside the input are dropped and the rest
// normalised to sum to 1.
func bicubicTaps(inSize int, box float64, out int) taps {
	const support = 2 // of the bicubic filter
	scale := box / float64(out)
	filterScale := max(scale, 1)
	reach := support * filterScale
	stride := int(math.Ceil(reach))*2 + 1
	t := taps{first: make([]int, out), n: make([]int, out), k: make([]float32, out*stride), stride: stride}
	w := make([]float64, stride)
	for o := range out {
		center := (float64(o) + 0.5) * scale
		lo := max(int(center-reach+0.5), 0)
		hi := min(int(center+reach+0.5), inSize)
		n := max(hi-lo, 0)
		total := 0.0
		for i := range n {
			w[i] = bicubic((float64(lo+i) - center + 0.5) / filterScale)
			total += w[i]
		}
		k := t.k[o*stride:][:n]
		for i := range k {
			if total != 0 {
				k[i] = float32(w[i] / total)
			} else {
				k[i] = float32(w[i])
			}
		}
		t.first[o], t.n[o] = lo, n
	}
	return t
}

// minResampleRows: below this many input rows a second goroutine costs
// more than it saves.
const minResampleRows = 256

// resample shrinks the w x h source to the plan's thumbnail. Without
// rounding between the passes their order does not matter, so it takes
// the column pass first, over whole rows (out = sum of k * row: an
// independent multiply-add per pixel, four source rows per sweep), then
// the row pass on the thumbnail's rows only, a third as many as the
// source's. On the 1600x1004 bridge photo, one core: 5.2 ms for the
// thumbnail, against 7.0 ms rows first (luminance conversion included in
// both). Each output row needs a window of at most stride source rows,
// which move forward with it: they are read once each into a ring. Output
// rows are split over the available CPUs, each band reading its own rows.
func resample(src lumaSource, w, h int, p shrinkPlan) *lumaPlane {
	across := bicubicTaps(w, p.boxW, p.tw)
	down := bicubicTaps(h, p.boxH, p.th)
	out := &lumaPlane{w: p.tw, h: p.th, pix: make([]float32, p.tw*p.th)}
	bands := max(min(runtime.GOMAXPROCS(0), h/minResampleRows), 1)
	parallel(bands, p.th, func(y0, y1 int) {
		ring := make([]float32, down.stride*w)
		column := make([]float32, w)
		next := 0 // the first source row not read yet
		for y := y0; y < y1; y++ {
			first, k := down.first[y], down.k[y*down.stride:][:down.n[y]]
			for r := max(first, next); r < first+len(k); r++ {
				src(r, ring[(r%down.stride)*w:][:w])
			}
			next = max(next, first+len(k))
			// Four source rows per sweep over column: one load and
			// store of column for four multiply-adds.
			clear(column)
			row := func(i int) []float32 { return ring[((first+i)%down.stride)*w:][:len(column)] }
			i := 0
			for ; i+4 <= len(k); i += 4 {
				r0, r1, r2, r3 := row(i), row(i+1), row(i+2), row(i+3)
				k0, k1, k2, k3 := k[i], k[i+1], k[i+2], k[i+3]
				for x := range column {
					column[x] += r0[x]*k0 + r1[x]*k1 + r2[x]*k2 + r3[x]*k3
				}
			}
			for ; i < len(k); i++ {
				r, kv := row(i), k[i]
				for x := range column {
					column[x] += r[x] * kv
				}
			}
			outRow := out.pix[y*p.tw:][:p.tw]
			for x := range outRow {
				// Four partial sums keep four additions in flight
				// instead of one chain of dependent ones.
				k := across.k[x*across.stride:][:across.n[x]]
				in := column[across.first[x]:][:len(k)]
				var s0, s1, s2, s3 float32
				i := 0
				for ; i+4 <= len(k); i += 4 {
					a, b := in[i:i+4:i+4], k[i:i+4:i+4]
					s0 += a[0] * b[0]
					s1 += a[1] * b[1]
					s2 += a[2] * b[2]
					s3 += a[3] * b[3]
				}
				for ; i < len(k); i++ {
					s0 += in[i] * k[i]
				}
				outRow[x] = (s0 + s1) + (s2 + s3)
			}
		}
	})
	return out
}

// parallel runs fn over [0, n) split into bands contiguous ranges, one
// goroutine each, and waits for them.
func parallel(bands, n int, fn func(lo, hi int)) {
	var wg sync.WaitGroup
	for b := 1; b < bands; b++ {
		wg.Go(func() { fn(b*n/bands, (b+1)*n/bands) })
	}
	fn(0, n/bands)
	wg.Wait()
}
