package pdq

import (
	"bytes"
	"image"
	"image/color"
	"math"
	"path/filepath"
	"testing"
)

// TestThumbnailMatchesPillow8Bit hashes every reference image, and
// synthetic photos large enough to be reduced before resampling, through
// the package's float-luminance thumbnail and through the 8-bit RGB
// emulation of Pillow in pillow_test.go. The hashes must agree to within a
// bit or two; on the reference images they are identical.
func TestThumbnailMatchesPillow8Bit(t *testing.T) {
	dir := referenceDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "images", "*"))
	if err != nil || len(files) < 30 {
		t.Fatalf("want the 31 reference images, found %d (%v)", len(files), err)
	}
	images := map[string]image.Image{
		"synthetic 2400x1800 (reduced by 2)":  photoLike(2400, 1800),
		"synthetic 5000x700 (reduced by 4x2)": photoLike(5000, 700),
		"synthetic 300x2600 (reduced by 1x2)": photoLike(300, 2600),
	}
	for _, f := range files {
		images[filepath.Base(f)] = readImage(t, f)
	}
	worst := 0
	for name, img := range images {
		got := FromImage(img)
		want := FromImage(pillowThumbnail8bit(img, ThumbnailSize))
		d := Distance(got.Hash, want.Hash)
		worst = max(worst, d)
		if d > 0 {
			t.Logf("%s: distance %d", name, d)
		}
		if d > 2 || got.Quality != want.Quality {
			t.Errorf("%s: hash %v quality %d, the 8-bit emulation %v quality %d (distance %d)",
				name, got.Hash, got.Quality, want.Hash, want.Quality, d)
		}
	}
	t.Logf("%d images, largest distance from the 8-bit emulation %d", len(images), worst)
}

func TestPlanShrink(t *testing.T) {
	tests := []struct {
		name          string
		w, h          int
		jpeg, nearest bool
		fits          bool
		want          shrinkPlan
	}{
		{"fits", 512, 512, true, false, true, shrinkPlan{}},
		{"fits small", 34, 42, false, false, true, shrinkPlan{}},
		{"bridge photo", 1600, 1004, true, false, false, shrinkPlan{tw: 512, th: 321, draft: 1, fx: 1, fy: 1, boxW: 1600, boxH: 1004}},
		{"portrait", 1004, 1600, false, false, false, shrinkPlan{tw: 321, th: 512, draft: 1, fx: 1, fy: 1, boxW: 1004, boxH: 1600}},
		{"one pixel over", 513, 100, false, false, false, shrinkPlan{tw: 512, th: 100, draft: 1, fx: 1, fy: 1, boxW: 513, boxH: 100}},
		{"phone photo, PNG: reduce by 3", 4032, 3024, false, false, false,
			shrinkPlan{tw: 512, th: 384, draft: 1, fx: 3, fy: 3, boxW: 1344, boxH: 1008}},
		{"phone photo, JPEG: draft 1/2", 4032, 3024, true, false, false,
			shrinkPlan{tw: 512, th: 384, draft: 2, fx: 1, fy: 1, boxW: 2016, boxH: 1512}},
		{"huge JPEG: draft 1/8, then reduce by 2", 16384, 16384, true, false, false,
			shrinkPlan{tw: 512, th: 512, draft: 8, fx: 2, fy: 2, boxW: 1024, boxH: 1024}},
		{"odd size JPEG: fractional box", 4001, 3001, true, false, false,
			shrinkPlan{tw: 512, th: 384, draft: 2, fx: 1, fy: 1, boxW: 2000.5, boxH: 1500.5}},
		{"banner", 20000, 100, false, false, false, shrinkPlan{tw: 512, th: 3, draft: 1, fx: 19, fy: 16, boxW: 20000.0 / 19, boxH: 100.0 / 16}},
		{"a line", 65536, 1, false, false, false, shrinkPlan{tw: 512, th: 1, draft: 1, fx: 64, fy: 1, boxW: 1024, boxH: 1}},
		{"paletted: nearest, no reduce", 4032, 3024, false, true, false,
			shrinkPlan{tw: 512, th: 384, draft: 1, fx: 1, fy: 1, boxW: 4032, boxH: 3024, nearest: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := planShrink(tt.w, tt.h, ThumbnailSize, tt.jpeg, tt.nearest)
			if ok == tt.fits {
				t.Fatalf("shrink %v, want %v", ok, !tt.fits)
			}
			if got != tt.want {
				t.Errorf("plan %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestThumbnailSize checks Pillow's rounding of the shrunk side: the
// neighbour that keeps the aspect ratio closer, the lower one on a tie,
// never 0.
func TestThumbnailSize(t *testing.T) {
	tests := []struct{ w, h, tw, th int }{
		{1600, 1004, 512, 321}, // 321.28
		{1004, 1600, 321, 512},
		{1000, 999, 512, 511}, // 511.49: 512/511 is closer to 1000/999 than 512/512
		{3, 2000, 1, 512},     // 0.77: never 0
		{2000, 3, 512, 1},
		{1025, 1024, 512, 512},
		{700, 701, 511, 512},
	}
	for _, tt := range tests {
		if tw, th := thumbnailSize(tt.w, tt.h, 512); tw != tt.tw || th != tt.th {
			t.Errorf("%dx%d: %dx%d, want %dx%d", tt.w, tt.h, tw, th, tt.tw, tt.th)
		}
	}
}

func TestReduced(t *testing.T) {
	const w, h = 5, 3
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(10 * i) // row y, column x: 10*(5y+x)
	}
	src, rw, rh := reduced(newLumaSource(img), w, h, 2, 2)
	if rw != 3 || rh != 2 {
		t.Fatalf("size %dx%d, want 3x2", rw, rh)
	}
	want := [][]float32{
		{(0 + 10 + 50 + 60) / 4.0, (20 + 30 + 70 + 80) / 4.0, (40 + 90) / 2.0},
		{(100 + 110) / 2.0, (120 + 130) / 2.0, 140},
	}
	row := make([]float32, rw)
	for y := range rh {
		src(y, row)
		for x := range row {
			if math.Abs(float64(row[x]-want[y][x])) > 0.01 {
				t.Errorf("(%d, %d): %v, want %v", x, y, row[x], want[y][x])
			}
		}
	}
	if s, w2, h2 := reduced(newLumaSource(img), w, h, 1, 1); w2 != w || h2 != h || s == nil {
		t.Errorf("factor 1 changed the size to %dx%d", w2, h2)
	}
}

// TestBicubicTaps compares the float taps with the oracle's fixed-point
// ones and checks that each output's weights sum to 1 within the input.
func TestBicubicTaps(t *testing.T) {
	for _, tt := range []struct {
		in  int
		box float64
		out int
	}{{1600, 1600, 512}, {1004, 1004, 321}, {2001, 2000.5, 512}, {7, 7, 3}, {600, 600, 512}, {100, 6.25, 3}} {
		got := bicubicTaps(tt.in, tt.box, tt.out)
		want := pillowWeights(tt.in, tt.box, tt.out)
		for o := range tt.out {
			k := got.k[o*got.stride:][:got.n[o]]
			if got.first[o] != want[o].first || len(k) != len(want[o].k) {
				t.Fatalf("%v output %d: taps [%d, +%d), oracle [%d, +%d)", tt, o, got.first[o], len(k), want[o].first, len(want[o].k))
			}
			if got.first[o] < 0 || got.first[o]+len(k) > tt.in {
				t.Errorf("%v output %d: taps [%d, +%d) outside the input", tt, o, got.first[o], len(k))
			}
			sum := 0.0
			for i, v := range k {
				sum += float64(v)
				if d := math.Abs(float64(v) - float64(want[o].k[i])/(1<<pillowPrecision)); d > 1e-6 {
					t.Errorf("%v output %d tap %d: %v, oracle %v", tt, o, i, v, float64(want[o].k[i])/(1<<pillowPrecision))
				}
			}
			if math.Abs(sum-1) > 1e-5 {
				t.Errorf("%v output %d: weights sum to %v", tt, o, sum)
			}
		}
	}
}

// TestJPEGDraft: a JPEG large enough for Pillow's draft mode is shrunk by
// 2 before resampling; the hash stays close to the one without the draft
// (libjpeg's scaled decoding is approximated, not reproduced).
func TestJPEGDraft(t *testing.T) {
	img := photoLike(2600, 2100) // min(2600, 2100)/1024 = 2: draft 1/2
	if p, _ := planShrink(2600, 2100, ThumbnailSize, true, false); p.draft != 2 {
		t.Fatalf("plan %+v, want draft 2", p)
	}
	data := encodeJPEG(t, img)
	got, err := FromReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	decoded, _, err := Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	noDraft := FromImage(decoded)
	d := Distance(got.Hash, noDraft.Hash)
	t.Logf("draft vs no draft: distance %d, quality %d vs %d", d, got.Quality, noDraft.Quality)
	if d > 8 {
		t.Errorf("draft hash %v is %d bits from the hash without draft %v", got.Hash, d, noDraft.Hash)
	}
	_, variants, err := FromReaderDihedral(bytes.NewReader(data))
	if err != nil || variants[Original] != got.Hash {
		t.Errorf("FromReaderDihedral: %v, original %v, want %v", err, variants[Original], got.Hash)
	}
}

// TestNearestForPaletted: a paletted image is shrunk by sampling, as
// Pillow resizes "P" images, not by averaging.
func TestNearestForPaletted(t *testing.T) {
	const w, h = 1024, 600
	img := image.NewPaletted(image.Rect(0, 0, w, h), color.Palette{color.Black, color.White})
	for y := range h {
		for x := range w {
			if x%2 == 1 { // odd columns white: sampling every other column hits only those
				img.SetColorIndex(x, y, 1)
			}
		}
	}
	tp, ok := thumbnail(img, ThumbnailSize, false)
	if !ok || tp.w != 512 || tp.h != 300 {
		t.Fatalf("thumbnail %v %dx%d, want 512x300", ok, tp.w, tp.h)
	}
	for i, v := range tp.pix {
		if v != lumaGray[255] {
			t.Fatalf("pixel %d is %v: averaged, not sampled", i, v)
		}
	}
}

func BenchmarkThumbnail(b *testing.B) {
	img, _, err := Decode(bytes.NewReader(benchmarkPhoto(b)))
	if err != nil {
		b.Fatal(err)
	}
	reportCPU(b, func() { thumbnail(img, ThumbnailSize, true) })
}
