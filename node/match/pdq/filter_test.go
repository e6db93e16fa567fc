package pdq

import (
	"math"
	"testing"
)

// naiveBox is the reference's centred box filter written as plainly as
// possible: output o is the mean of the input samples in
// [o-(size-half), o+half-1] that exist, half = (size+2)/2.
func naiveBox(src []float64, size int) []float64 {
	half := (size + 2) / 2
	out := make([]float64, len(src))
	for o := range src {
		sum, n := 0.0, 0
		for i := o - (size - half); i <= o+half-1; i++ {
			if i >= 0 && i < len(src) {
				sum += src[i]
				n++
			}
		}
		out[o] = sum / float64(n)
	}
	return out
}

func TestBoxRow(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5, 64, 127, 128, 129, 255, 256, 257, 1000, 1600, 4001} {
		size := boxSize(n)
		for _, size := range []int{size, 1, 2, 3, 4, 7, 8} {
			if size > n {
				continue
			}
			src := make([]float64, n)
			src32 := make([]float32, n)
			for i := range src {
				src[i] = float64((i*37 + i*i) % 256)
				src32[i] = float32(src[i])
			}
			recip := make([]float32, size+1)
			for c := 1; c <= size; c++ {
				recip[c] = 1 / float32(c)
			}
			got := make([]float32, n)
			boxRow(got, src32, size, recip)
			for o, want := range naiveBox(src, size) {
				if math.Abs(float64(got[o])-want) > 1e-3 {
					t.Fatalf("n=%d size=%d: output %d is %g, want %g", n, size, o, got[o], want)
				}
			}
		}
	}
}

// naiveDownsample is the reference's downsampling as published, on whole
// images in float64: two passes of (rows, then columns) box filtering,
// then decimation.
func naiveDownsample(luma [][]float64) [64][64]float64 {
	rows, cols := len(luma), len(luma[0])
	img := luma
	for range 2 {
		next := make([][]float64, rows)
		for y := range rows {
			next[y] = naiveBox(img[y], boxSize(cols))
		}
		column := make([]float64, rows)
		for x := range cols {
			for y := range rows {
				column[y] = next[y][x]
			}
			for y, v := range naiveBox(column, boxSize(rows)) {
				next[y][x] = v
			}
		}
		img = next
	}
	var out [64][64]float64
	for i := range 64 {
		for j := range 64 {
			out[i][j] = img[decimated(rows, i)][decimated(cols, j)]
		}
	}
	return out
}

// TestDownsample checks the fused, banded filter against the published
// four-pass one, for sizes around the box width steps and odd shapes.
func TestDownsample(t *testing.T) {
	for _, size := range [][2]int{{1, 1}, {3, 7}, {64, 64}, {100, 37}, {129, 300}, {256, 255}, {700, 513}, {1004, 1600}} {
		rows, cols := size[0], size[1]
		img := photoLike(cols, rows)
		src := newLumaSource(img)
		luma := make([][]float64, rows)
		line := make([]float32, cols)
		for y := range luma {
			src(y, line)
			luma[y] = make([]float64, cols)
			for x, v := range line {
				luma[y][x] = float64(v)
			}
		}
		want := naiveDownsample(luma)
		for _, bands := range []int{1, 2, 3} {
			var got [64][64]float32
			newPlan(rows, cols).downsampleBands(src, &got, bands)
			for i := range 64 {
				for j := range 64 {
					if d := math.Abs(float64(got[i][j]) - want[i][j]); d > 2e-3 {
						t.Fatalf("%dx%d, %d bands: sample (%d,%d) is %g, want %g", cols, rows, bands, i, j, got[i][j], want[i][j])
					}
				}
			}
		}
	}
}
