package pdq

import (
	"runtime"
	"sync"
)

// The downsampling to 64x64 follows the reference: two Jarosz passes, each a
// box filter along the rows and then along the columns, followed by
// decimation. The reference filters every pixel four times; here the work is
// fused so that the full-size image is never held in memory:
//
//   - each image row is converted to luma and box-filtered along the row
//     (pass 1, rows) as it is needed, into a ring of the last few rows;
//   - a running per-column sum over that ring is the pass-1 column filter;
//   - the pass-2 row filter is evaluated only at the 64 columns that
//     decimation keeps, and the pass-2 column filter only at the 64 rows.
//
// Every output sample is the same average of the same pixels as in the
// reference; only the float32 rounding differs (running sums restart at band
// boundaries, pass-2 windows are summed directly instead of incrementally).

// boxSize is the reference's box filter width along a dimension of n
// samples: n/128 rounded up, so that two passes span one 64th of the image.
func boxSize(n int) int { return (n + 2*64 - 1) / (2 * 64) }

// span is the range [lo, hi] of input samples a box filter averages for one
// output sample, with scale = 1/(hi-lo+1).
type span struct {
	lo, hi int
	scale  float32
}

// boxSpan is the span the reference's centred box filter of the given size
// averages for output o of a dimension of n samples. The window reaches
// size-half samples back and half-1 forward, clipped at the edges, so edge
// outputs average fewer samples.
func boxSpan(n, size, o int) span {
	half := (size + 2) / 2
	lo := max(0, o-(size-half))
	hi := min(n-1, o+half-1)
	return span{lo, hi, 1 / float32(hi-lo+1)}
}

// decimated is the input index that output sample k of 64 takes along a
// dimension of n: floor((k + 0.5) * n / 64), exactly.
func decimated(n, k int) int { return (2*k + 1) * n / 128 }

// plan is the filter geometry for one image size.
type plan struct {
	rows, cols int
	rowBox     int       // box size along a row (horizontal), from cols
	colBox     int       // box size along a column (vertical), from rows
	recip      []float32 // recip[c] = 1/c for c in 1..rowBox
	colSpans   [64]span  // pass-2 horizontal spans at the decimated columns
	rowSpans   [64]span  // pass-2 vertical spans at the decimated rows
}

func newPlan(rows, cols int) *plan {
	p := &plan{rows: rows, cols: cols, rowBox: boxSize(cols), colBox: boxSize(rows)}
	p.recip = make([]float32, p.rowBox+1)
	for c := 1; c <= p.rowBox; c++ {
		p.recip[c] = 1 / float32(c)
	}
	for k := range 64 {
		p.colSpans[k] = boxSpan(cols, p.rowBox, decimated(cols, k))
		p.rowSpans[k] = boxSpan(rows, p.colBox, decimated(rows, k))
	}
	return p
}

// scratch holds one band's working memory. Scratches are pooled because a
// large photo's ring is a few hundred kilobytes.
type scratch struct {
	line []float32       // one row of luma
	ring []float32       // colBox+1 rows after the pass-1 row filter
	sums []float32       // per-column running sums over the ring
	acc  [64][64]float32 // the band's share of the pass-2 column sums
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func resize(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// minBandRows keeps bands tall enough that the rows a band re-reads at its
// top edge (up to colBox) and the goroutine cost stay small.
const minBandRows = 256

// minParallelPixels is the image size below which a second goroutine costs
// more than it saves.
const minParallelPixels = 1 << 18

// downsample computes the 64x64 Jarosz-filtered, decimated luma of an image
// of the plan's size read through src. Large images are split into bands
// of rows filtered concurrently, one per available CPU.
func (p *plan) downsample(src lumaSource, out *[64][64]float32) {
	bands := min(runtime.GOMAXPROCS(0), p.rows/minBandRows)
	if p.rows*p.cols < minParallelPixels {
		bands = 1
	}
	p.downsampleBands(src, out, bands)
}

func (p *plan) downsampleBands(src lumaSource, out *[64][64]float32, bands int) {
	bands = max(bands, 1)
	scratches := make([]*scratch, bands)
	for b := range scratches {
		scratches[b] = scratchPool.Get().(*scratch)
		defer scratchPool.Put(scratches[b])
	}
	var wg sync.WaitGroup
	for b := 1; b < bands; b++ {
		wg.Go(func() { p.band(scratches[b], src, b*p.rows/bands, (b+1)*p.rows/bands) })
	}
	p.band(scratches[0], src, 0, p.rows/bands)
	wg.Wait()

	for i, rs := range p.rowSpans {
		for j := range out[i] {
			var sum float32
			for _, s := range scratches {
				sum += s.acc[i][j]
			}
			out[i][j] = sum * rs.scale
		}
	}
}

// band runs pass 1 (rows, then columns) for output rows [o0, o1), the
// pass-2 row filter at the decimated columns, and adds each result row into
// the pass-2 column sums (s.acc) of the decimated rows whose windows cover
// it.
func (p *plan) band(s *scratch, src lumaSource, o0, o1 int) {
	cols := p.cols
	ringRows := p.colBox + 1
	line := resize(s.line, cols)
	ring := resize(s.ring, ringRows*cols)
	sums := resize(s.sums, cols)
	s.line, s.ring, s.sums = line, ring, sums
	clear(sums)
	s.acc = [64][64]float32{}

	// Rows enter the running sums (added) and leave them (removed) as in
	// the reference: the new bottom row is read before the old top row is
	// dropped, so at most colBox+1 rows are live at once, hence the ring
	// size.
	added := boxSpan(p.rows, p.colBox, o0).lo
	removed := added
	k := 0 // first rowSpan that may still cover o
	var row [64]float32
	for o := o0; o < o1; o++ {
		w := boxSpan(p.rows, p.colBox, o)
		// In the middle of the image one row enters and one leaves per
		// output row; both are applied in one sweep over the sums.
		if added == w.hi && removed == w.lo-1 {
			in := ring[(added%ringRows)*cols:][:len(sums)]
			src(added, line)
			boxRow(in, line, p.rowBox, p.recip)
			out := ring[(removed%ringRows)*cols:][:len(sums)]
			for x, v := range in {
				sums[x] += v - out[x]
			}
			added++
			removed++
		}
		for ; added <= w.hi; added++ {
			t := ring[(added%ringRows)*cols:][:len(sums)]
			src(added, line)
			boxRow(t, line, p.rowBox, p.recip)
			for x, v := range t {
				sums[x] += v
			}
		}
		for ; removed < w.lo; removed++ {
			t := ring[(removed%ringRows)*cols:][:len(sums)]
			for x, v := range t {
				sums[x] -= v
			}
		}
		for k < len(p.rowSpans) && p.rowSpans[k].hi < o {
			k++
		}
		if k == len(p.rowSpans) || p.rowSpans[k].lo > o {
			continue // no decimated row's window reaches row o
		}
		for j, cs := range p.colSpans {
			var acc float32
			for _, v := range sums[cs.lo : cs.hi+1] {
				acc += v
			}
			row[j] = acc * w.scale * cs.scale
		}
		// Windows of neighbouring decimated rows may overlap in small
		// images; the row counts towards each.
		for i := k; i < len(p.rowSpans) && p.rowSpans[i].lo <= o; i++ {
			if p.rowSpans[i].hi < o {
				continue
			}
			a := &s.acc[i]
			for j, v := range row {
				a[j] += v
			}
		}
	}
}

// boxRow is the reference's one-dimensional box filter of the given size
// over src into dst, with the running sum updated in the same order. recip
// holds 1/c for each window count c.
func boxRow(dst, src []float32, size int, recip []float32) {
	n := len(src)
	dst = dst[:n]
	half := (size + 2) / 2
	var sum float32
	// Windows grow from half to size samples at the left edge...
	for ri := 0; ri < half-1; ri++ {
		sum += src[ri]
	}
	o := 0
	for ri := half - 1; ri < size; ri++ {
		sum += src[ri]
		dst[o] = sum * recip[ri+1]
		o++
	}
	// ...are full in the middle (the reference adds the entering sample and
	// then subtracts the leaving one; adding their difference keeps one
	// addition, not two, on the running sum's dependency chain, and changes
	// only the last bits)...
	r := recip[size]
	entering := src[size:]
	leaving := src[:len(entering)]
	full := dst[size-half+1:][:len(entering)]
	for i, v := range entering {
		sum += v - leaving[i]
		full[i] = sum * r
	}
	o = n - half + 1
	// ...and shrink again at the right edge.
	for li := n - size; o < n; li++ {
		sum -= src[li]
		dst[o] = sum * recip[n-1-li]
		o++
	}
}
