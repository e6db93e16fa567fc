package pdq

import (
	"encoding/csv"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// referenceDir returns the PDQ reference data (shared/testdata/pdq, a
// sibling of the module root). go test runs in the package directory,
// node/match/pdq, four levels below the directory holding both. A missing
// directory fails the test: the hasher is unverified without it.
func referenceDir(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(wd, "..", "..", "..", "..", "shared", "testdata", "pdq")
	if _, err := os.Stat(filepath.Join(dir, "expected.csv")); err != nil {
		t.Fatalf("PDQ reference data missing: expected %s/{expected.csv,images/} "+
			"(shared/testdata/pdq next to the module root): %v", dir, err)
	}
	return dir
}

// decoded caches readImage's results: several tests hash the same photos.
var decoded sync.Map // path -> image.Image

// readImage decodes the image file at path with Decode. The result is
// shared between tests and must not be modified.
func readImage(t testing.TB, path string) image.Image {
	t.Helper()
	if img, ok := decoded.Load(path); ok {
		return img.(image.Image)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, _, err := Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	decoded.Store(path, img)
	return img
}

func mustParse(t testing.TB, s string) Hash {
	t.Helper()
	h, err := ParseHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

type referenceRow struct {
	file string // relative to the reference directory
	hash Hash
}

func referenceRows(t *testing.T, dir string) []referenceRow {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "expected.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(records) < 2 || records[0][0] != "file" || records[0][1] != "pdq_hex" {
		t.Fatalf("expected.csv: want a file,pdq_hex,... header and rows, got %d records", len(records))
	}
	var rows []referenceRow
	for _, r := range records[1:] {
		rows = append(rows, referenceRow{r[0], mustParse(t, r[1])})
	}
	return rows
}

// The reference suite accepts an independent implementation within 16 bits
// of its hashes.
const referenceTolerance = 16

// The reference treats hashes within 31 bits as the same picture.
const matchThreshold = 31

// TestReferenceHashes hashes every image in expected.csv through
// FromReader, the production path, which shrinks the image as the
// reference's Python hasher does before hashing it. Every hash must be
// within the reference suite's tolerance and the mean at most 4 bits. The
// full-size hash (what the C++ reference computes) is logged beside it to
// show why the thumbnail is taken.
func TestReferenceHashes(t *testing.T) {
	dir := referenceDir(t)
	var sum, fullSum int
	rows := referenceRows(t, dir)
	for _, row := range rows {
		path := filepath.Join(dir, row.file)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := FromReader(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", row.file, err)
		}
		img := readImage(t, path)
		full := FromImageFullSize(img)
		d, dFull := Distance(got.Hash, row.hash), Distance(full.Hash, row.hash)
		sum += d
		fullSum += dFull
		t.Logf("%-40s %4dx%-4d distance %2d (full size: %2d) quality %3d",
			row.file, img.Bounds().Dx(), img.Bounds().Dy(), d, dFull, got.Quality)
		if d > referenceTolerance {
			t.Errorf("%s: hash %s is %d bits from the reference %s, more than %d",
				row.file, got.Hash, d, row.hash, referenceTolerance)
		}
		if again := FromImage(img); again != got {
			t.Errorf("%s: FromImage %v differs from FromReader %v", row.file, again, got)
		}
	}
	mean := float64(sum) / float64(len(rows))
	t.Logf("mean distance over %d images: %.2f (full size: %.2f)", len(rows), mean, float64(fullSum)/float64(len(rows)))
	if mean > 4 {
		t.Errorf("mean distance from expected.csv is %.2f, want <= 4", mean)
	}
}

// fullSizeReference are published hashes of full-size images from other
// implementations that, like this package and the C++ reference, do not
// thumbnail: the dih--bridge set from the tests of the Rust pdqhash crate
// (generate_pdq_full_size), aaa-orig.jpg and c.png from ThreatExchange's
// OpenMediaMatch tests (the C++ reference through its Python binding).
var fullSizeReference = []struct{ file, hash string }{
	{"images/bridge-mods--aaa-orig.jpg", "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"},
	{"images/misc-images--c.png", "e64cc9d91c623882f8d1f1d9a398e78c9f199b3bd83924f2b7e11e0bf861b064"},
	{"images/dih--bridge-1-original.jpg", "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"},
	{"images/dih--bridge-2-rotate-90.jpg", "30a10efd71cc3d429013d48d0ffffc52e34e0e17ada952a9d29685211ea9e5af"},
	{"images/dih--bridge-3-rotate-180.jpg", "adad5a64b5a142e75b62a09857da895ae63b847fc23794b766b319361bc93188"},
	{"images/dih--bridge-4-rotate-270.jpg", "a5f0a457a48995e8c9065c275aaa5498b61ba4bdf8fcf80387c32f8b1bfc4f05"},
	{"images/dih--bridge-5-flipx.jpg", "f8f80f31e0f417b20e37f5cd028f980fb36ed02a9662c1e233e64c634e9c64dd"},
	{"images/dih--bridge-6-flipy.jpg", "0dad2599b1a1bd1a5362576742da32a5e63b7380c2374b4866b366c91bc9ce77"},
	{"images/dih--bridge-7-flip-plus-1.jpg", "f0a5e102f1ccc0bd945308720fff038de34ef1e8ada9a956d2967ade5ea91a50"},
	{"images/dih--bridge-8-flip-minus-1.jpg", "a5f05aa8a4896a17c906a2d85aaaab07b61b5b42f8fc07fc87c3d0741bfcb0fa"},
}

// TestFullSizeReference pins FromImageFullSize against full-size hashes
// from other implementations: only JPEG decoding and float rounding
// separate them.
func TestFullSizeReference(t *testing.T) {
	dir := referenceDir(t)
	sum := 0
	for _, ref := range fullSizeReference {
		got := FromImageFullSize(readImage(t, filepath.Join(dir, ref.file)))
		d := Distance(got.Hash, mustParse(t, ref.hash))
		sum += d
		t.Logf("%-40s distance %d", ref.file, d)
		if d > 4 {
			t.Errorf("%s: hash %s is %d bits from the full-size reference %s, want <= 4", ref.file, got.Hash, d, ref.hash)
		}
	}
	t.Logf("mean %.2f", float64(sum)/float64(len(fullSizeReference)))
}

// hexLayout renders a 16x16 bit matrix (bit[i][j] for DCT coefficient
// (i, j)) in one of the candidate layouts for TestBitOrder.
type hexLayout struct {
	name              string
	transpose         bool // word = column, bit = row
	wordsFirstToLast  bool // print word 0 first
	reverseBitsInWord bool // bit j is the word's (15-j)th
}

func (l hexLayout) render(bits *[16][16]bool) string {
	var words [16]uint16
	for i := range 16 {
		for j := range 16 {
			if !bits[i][j] {
				continue
			}
			w, b := i, j
			if l.transpose {
				w, b = j, i
			}
			if l.reverseBitsInWord {
				b = 15 - b
			}
			words[w] |= 1 << b
		}
	}
	var s strings.Builder
	for k := range 16 {
		w := 15 - k
		if l.wordsFirstToLast {
			w = k
		}
		fmt.Fprintf(&s, "%04x", words[w])
	}
	return s.String()
}

// TestBitOrder shows why Hash uses the layout it does: of the plausible
// ways to lay the 256 coefficient bits out as hex, only one lands near the
// reference hashes; every other is about as far as an unrelated hash.
func TestBitOrder(t *testing.T) {
	dir := referenceDir(t)
	var layouts []hexLayout
	for _, tr := range []bool{false, true} {
		for _, order := range []bool{false, true} {
			for _, rev := range []bool{false, true} {
				layouts = append(layouts, hexLayout{
					fmt.Sprintf("transpose=%v wordsFirstToLast=%v reverseBits=%v", tr, order, rev), tr, order, rev})
			}
		}
	}
	for _, row := range referenceRows(t, dir)[:3] {
		b, _ := coefficientsOf(readImage(t, filepath.Join(dir, row.file)), false)
		h := b.hash()
		var sorted []float32
		for i := range b {
			sorted = append(sorted, b[i][:]...)
		}
		slices.Sort(sorted)
		var bits [16][16]bool
		for i := range 16 {
			for j := range 16 {
				bits[i][j] = b[i][j] > sorted[127]
			}
		}
		for k, l := range layouts {
			d := Distance(mustParse(t, l.render(&bits)), row.hash)
			t.Logf("%s: %s: distance %d", row.file, l.name, d)
			if k == 0 {
				if got := l.render(&bits); got != h.String() {
					t.Fatalf("Hash.String %s disagrees with the documented layout %s", h, got)
				}
				if d > referenceTolerance {
					t.Errorf("%s: documented layout is %d bits from the reference", row.file, d)
				}
			} else if d <= 2*referenceTolerance {
				t.Errorf("%s: layout %s is only %d bits from the reference; the layout is ambiguous", row.file, l.name, d)
			}
		}
	}
}

// dihedralFiles maps the reference's rotated and mirrored copies of the
// bridge photo to the transform that produced them.
var dihedralFiles = []struct {
	file string
	d    Dihedral
}{
	{"images/dih--bridge-1-original.jpg", Original},
	{"images/dih--bridge-2-rotate-90.jpg", Rotate90},
	{"images/dih--bridge-3-rotate-180.jpg", Rotate180},
	{"images/dih--bridge-4-rotate-270.jpg", Rotate270},
	{"images/dih--bridge-5-flipx.jpg", FlipX},
	{"images/dih--bridge-6-flipy.jpg", FlipY},
	{"images/dih--bridge-7-flip-plus-1.jpg", FlipPlus1},
	{"images/dih--bridge-8-flip-minus-1.jpg", FlipMinus1},
}

// mirrorSlack bounds the distance between the hash of a rotated or
// mirrored photo and the variant derived from the original's DCT. The
// filtering is not exactly symmetric: the reference's box filter of even
// width reaches one sample further forward than back. The bridge photo's
// 512x321 thumbnail gets a window of 4 along its rows, so every transform
// that mirrors its columns (rotate90, rotate180, flipY, flipMinus1) shifts
// the filtered image by half a pixel and moves 16 to 18 bits; the others
// move none. The reference's own hashes of the files show the same
// distances from the derived variants, and all stay well within the match
// threshold of 31.
const mirrorSlack = 20

// TestDihedralFiles checks the eight hashes FromImageDihedral derives from
// the original photo against the hashes of the actually rotated and
// mirrored files, and that each file is nearest to its own transform (which
// pins the direction of the rotations and the axis of the flips).
func TestDihedralFiles(t *testing.T) {
	dir := referenceDir(t)
	expected := map[string]Hash{}
	for _, row := range referenceRows(t, dir) {
		expected[row.file] = row.hash
	}
	orig, variants := FromImageDihedral(readImage(t, filepath.Join(dir, dihedralFiles[0].file)))
	if orig.Hash != variants[Original] {
		t.Fatalf("Result.Hash %s differs from variants[Original] %s", orig.Hash, variants[Original])
	}
	for _, f := range dihedralFiles {
		own := FromImage(readImage(t, filepath.Join(dir, f.file)))
		d := Distance(own.Hash, variants[f.d])
		t.Logf("%-40s %-10v own hash vs variant from the original: %2d; vs reference hash of the file: %2d",
			f.file, f.d, d, Distance(expected[f.file], variants[f.d]))
		if d > mirrorSlack {
			t.Errorf("%s: hash %s is %d bits from the %v variant %s of the original", f.file, own.Hash, d, f.d, variants[f.d])
		}
		if ref, ok := expected[f.file]; !ok {
			t.Errorf("%s: no reference hash in expected.csv", f.file)
		} else if d := Distance(ref, variants[f.d]); d > matchThreshold {
			t.Errorf("%s: the %v variant %s of the original is %d bits from the file's reference hash %s",
				f.file, f.d, variants[f.d], d, ref)
		}
		for other := range Dihedral(8) {
			if other != f.d && Distance(own.Hash, variants[other]) <= matchThreshold {
				t.Errorf("%s: also matches the %v variant (distance %d)", f.file, other, Distance(own.Hash, variants[other]))
			}
		}
	}
}

// transformImage returns img rotated or mirrored by d, pixel for pixel.
func transformImage(img image.Image, d Dihedral) *image.RGBA {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	in := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(in, in.Bounds(), img, b.Min, draw.Src)
	ow, oh := w, h
	if dihedralOps[d].transpose {
		ow, oh = h, w
	}
	out := image.NewRGBA(image.Rect(0, 0, ow, oh))
	for y := range oh {
		for x := range ow {
			var sx, sy int
			switch d {
			case Original:
				sx, sy = x, y
			case Rotate90: // anticlockwise: the right column becomes the top row
				sx, sy = w-1-y, x
			case Rotate180:
				sx, sy = w-1-x, h-1-y
			case Rotate270: // clockwise
				sx, sy = y, h-1-x
			case FlipX: // top to bottom
				sx, sy = x, h-1-y
			case FlipY: // left to right
				sx, sy = w-1-x, y
			case FlipPlus1: // about the main diagonal
				sx, sy = y, x
			case FlipMinus1: // about the anti-diagonal
				sx, sy = w-1-y, h-1-x
			}
			copy(out.Pix[out.PixOffset(x, y):][:4], in.Pix[in.PixOffset(sx, sy):])
		}
	}
	return out
}

// photoLike is a deterministic image with detail at many scales (value
// noise: random lattice values, smoothly interpolated, summed over
// octaves), so that its DCT coefficients, like a photo's, are well spread
// around their median and its hash is stable.
func photoLike(w, h int) *image.RGBA {
	lattice := func(octave, i, j int) float64 {
		v := uint32(octave*73856093) ^ uint32(i*19349663) ^ uint32(j*83492791)
		v ^= v >> 13
		v *= 0x5bd1e995
		v ^= v >> 15
		return float64(v%1024)/512 - 1
	}
	noise := func(x, y float64) float64 {
		sum, amp := 0.0, 1.0
		for octave := range 5 {
			scale := float64(int(4) << octave)
			fx, fy := x*scale, y*scale
			i, j := int(fx), int(fy)
			tx, ty := fx-float64(i), fy-float64(j)
			tx, ty = tx*tx*(3-2*tx), ty*ty*(3-2*ty)
			a := lattice(octave, i, j)*(1-tx) + lattice(octave, i+1, j)*tx
			b := lattice(octave, i, j+1)*(1-tx) + lattice(octave, i+1, j+1)*tx
			sum += amp * (a*(1-ty) + b*ty)
			amp *= 0.6
		}
		return sum
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			v := min(max(128+70*noise(fx, fy), 0), 255)
			u := min(max(128+90*noise(fx+7, fy+3), 0), 255)
			img.Set(x, y, color.RGBA{uint8(v), uint8(u), uint8(255 - v), 255})
		}
	}
	return img
}

// TestDihedralExact checks the coefficient transforms against pixel
// transforms. On a 64x64 image the downsampling is the identity (box width
// 1, every sample kept), so the DCT of the transformed image must equal the
// transformed DCT up to float rounding.
func TestDihedralExact(t *testing.T) {
	img := photoLike(64, 64)
	b, _ := coefficientsOf(img, false)
	for d := range Dihedral(8) {
		want := b.transform(d)
		got, _ := coefficientsOf(transformImage(img, d), false)
		worst := 0.0
		for i := range 16 {
			for j := range 16 {
				worst = max(worst, math.Abs(float64(got[i][j]-want[i][j])))
			}
		}
		if worst > 1e-3 {
			t.Errorf("%v: coefficients of the transformed image differ from the transformed coefficients by up to %g", d, worst)
		}
		if h := FromImage(transformImage(img, d)).Hash; Distance(h, want.hash()) > 0 {
			t.Errorf("%v: hash of the transformed image is %d bits from the transformed hash", d, Distance(h, want.hash()))
		}
	}
}

// TestDihedralTransformedPhoto applies each transform to the decoded
// original photo in memory and hashes the result, as FromImage does (see
// mirrorSlack) and at full size. At full size the photo's 1004 rows give a
// window of 8, so mirroring the rows moves a few bits (8 here); mirroring
// the 1600 columns (width 13) moves none.
func TestDihedralTransformedPhoto(t *testing.T) {
	dir := referenceDir(t)
	img := readImage(t, filepath.Join(dir, dihedralFiles[0].file))
	_, variants := FromImageDihedral(img)
	full, _ := fullSizeCoefficients(img)
	for d := range Dihedral(8) {
		moved := transformImage(img, d)
		dist := Distance(FromImage(moved).Hash, variants[d])
		fullVariant := full.transform(d)
		distFull := Distance(FromImageFullSize(moved).Hash, fullVariant.hash())
		t.Logf("%-10v distance %2d (full size %2d)", d, dist, distFull)
		if dist > mirrorSlack {
			t.Errorf("%v: hash of the transformed photo is %d bits from the derived variant", d, dist)
		}
		if distFull > 12 {
			t.Errorf("%v: full size: hash of the transformed photo is %d bits from the derived variant", d, distFull)
		}
	}
}

// TestBridgeMods: edited copies of a photo still match it; unrelated photos
// do not.
func TestBridgeMods(t *testing.T) {
	dir := referenceDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "images", "*"))
	if err != nil {
		t.Fatal(err)
	}
	orig := FromImage(readImage(t, filepath.Join(dir, "images", "bridge-mods--aaa-orig.jpg")))
	var mods, unrelated int
	for _, path := range files {
		name := filepath.Base(path)
		res := FromImage(readImage(t, path))
		d := Distance(res.Hash, orig.Hash)
		switch {
		case strings.HasPrefix(name, "bridge-mods--"):
			mods++
			t.Logf("modified  %-36s distance %3d quality %3d", name, d, res.Quality)
			if d > matchThreshold {
				t.Errorf("%s is %d bits from the original, want <= %d", name, d, matchThreshold)
			}
		case strings.HasPrefix(name, "labelme-subset--"), strings.HasPrefix(name, "misc-images--"):
			unrelated++
			t.Logf("unrelated %-36s distance %3d quality %3d", name, d, res.Quality)
			if d <= matchThreshold {
				t.Errorf("%s is %d bits from the bridge photo, want > %d", name, d, matchThreshold)
			}
		}
	}
	if mods < 10 || unrelated < 8 {
		t.Fatalf("found %d modified and %d unrelated images in %s; the reference set has 12 and 10", mods, unrelated, dir)
	}
}

func TestQuality(t *testing.T) {
	flat := image.NewRGBA(image.Rect(0, 0, 300, 200))
	draw.Draw(flat, flat.Bounds(), image.NewUniform(color.RGBA{90, 140, 200, 255}), image.Point{}, draw.Src)
	a, b := FromImage(flat), FromImage(flat)
	if a.Quality != 0 {
		t.Errorf("flat image: quality %d, want 0", a.Quality)
	}
	if a != b {
		t.Errorf("flat image hashes differently on two runs: %v, %v", a, b)
	}
	if photo := FromImage(photoLike(640, 480)); photo.Quality < MinQuality {
		t.Errorf("synthetic photo: quality %d, want >= %d", photo.Quality, MinQuality)
	}
	dir := referenceDir(t)
	if q := FromImage(readImage(t, filepath.Join(dir, "images", "bridge-mods--aaa-orig.jpg"))).Quality; q < MinQuality {
		t.Errorf("bridge photo: quality %d, want >= %d", q, MinQuality)
	}
	if got := FromImage(image.NewRGBA(image.Rectangle{})); got != (Result{}) {
		t.Errorf("empty image: got %v, want the zero Result", got)
	}
}

// opaqueImage hides an image's concrete type, forcing the At path.
type opaqueImage struct{ image.Image }

// TestImageTypes hashes the same pixels carried by each image type the
// hasher reads directly, and through At; all must agree.
func TestImageTypes(t *testing.T) {
	const w, h = 203, 151 // odd, to exercise the chroma edge cases
	patterns := map[string]func(x, y int) (yy, cb, cr uint8){
		"gradient": func(x, y int) (uint8, uint8, uint8) {
			return uint8(x * 255 / w), uint8(64 + y*127/h), uint8(200 - x*150/w)
		},
		"checkerboard": func(x, y int) (uint8, uint8, uint8) {
			if (x/17+y/13)%2 == 0 {
				return 40, 30, 220 // saturated: clamps in RGB
			}
			return 220, 128, 128
		},
	}
	ratios := []image.YCbCrSubsampleRatio{
		image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420,
		image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410,
	}
	for name, pattern := range patterns {
		for _, ratio := range ratios {
			src := image.NewYCbCr(image.Rect(0, 0, w+1, h+1), ratio)
			for y := range h + 1 {
				for x := range w + 1 {
					yy, cb, cr := pattern(x, y)
					src.Y[src.YOffset(x, y)] = yy
					src.Cb[src.COffset(x, y)] = cb
					src.Cr[src.COffset(x, y)] = cr
				}
			}
			for _, origin := range []image.Point{{0, 0}, {1, 1}} {
				ycc := src.SubImage(image.Rect(origin.X, origin.Y, origin.X+w, origin.Y+h)).(*image.YCbCr)
				rgba := image.NewRGBA(image.Rect(0, 0, w, h))
				draw.Draw(rgba, rgba.Bounds(), ycc, ycc.Bounds().Min, draw.Src)
				nrgba := image.NewNRGBA(image.Rect(0, 0, w, h))
				draw.Draw(nrgba, nrgba.Bounds(), ycc, ycc.Bounds().Min, draw.Src)
				want := FromImage(rgba)
				carriers := map[string]image.Image{"YCbCr": ycc, "NRGBA": nrgba, "At": opaqueImage{ycc},
					"NYCbCrA": &image.NYCbCrA{YCbCr: *ycc, A: make([]uint8, w*h), AStride: w}}
				for kind, img := range carriers {
					if got := FromImage(img); Distance(got.Hash, want.Hash) > 0 || got.Quality != want.Quality {
						t.Errorf("%s %v origin %v: %s hashes to %v, RGBA to %v (distance %d)",
							name, ratio, origin, kind, got, want, Distance(got.Hash, want.Hash))
					}
				}
			}
		}
		// Grey pixels: Gray and Paletted against RGBA and YCbCr with neutral
		// chroma.
		gray := image.NewGray(image.Rect(0, 0, w, h))
		palette := make(color.Palette, 256)
		for i := range palette {
			palette[i] = color.Gray{uint8(i)}
		}
		paletted := image.NewPaletted(gray.Bounds(), palette)
		neutral := image.NewYCbCr(gray.Bounds(), image.YCbCrSubsampleRatio420)
		for y := range h {
			for x := range w {
				v, _, _ := pattern(x, y)
				gray.SetGray(x, y, color.Gray{v})
				paletted.SetColorIndex(x, y, v)
				neutral.Y[neutral.YOffset(x, y)] = v
				neutral.Cb[neutral.COffset(x, y)] = 128
				neutral.Cr[neutral.COffset(x, y)] = 128
			}
		}
		rgba := image.NewRGBA(gray.Bounds())
		draw.Draw(rgba, rgba.Bounds(), gray, image.Point{}, draw.Src)
		want := FromImage(rgba)
		for kind, img := range map[string]image.Image{"Gray": gray, "Paletted": paletted, "YCbCr": neutral, "At": opaqueImage{gray}} {
			if got := FromImage(img); Distance(got.Hash, want.Hash) > 0 || got.Quality != want.Quality {
				t.Errorf("%s grey: %s hashes to %v, RGBA to %v (distance %d)", name, kind, got, want, Distance(got.Hash, want.Hash))
			}
		}
	}
}

// TestAlphaIgnored: like the reference, which converts to RGB by dropping
// alpha, transparency does not change the hash; a premultiplied RGBA image
// hashes as its unpremultiplied colours.
func TestAlphaIgnored(t *testing.T) {
	opaque := photoLike(120, 90)
	nrgba := image.NewNRGBA(opaque.Bounds())
	rgba := image.NewRGBA(opaque.Bounds())
	for y := range 90 {
		for x := range 120 {
			c := opaque.RGBAAt(x, y)
			n := color.NRGBA{c.R, c.G, c.B, uint8(255 - x)}
			nrgba.SetNRGBA(x, y, n)
			rgba.Set(x, y, n)
		}
	}
	want := FromImage(opaque).Hash
	if got := FromImage(nrgba).Hash; got != want {
		t.Errorf("NRGBA with alpha: distance %d from opaque", Distance(got, want))
	}
	// Premultiplying to 8 bits loses precision at low alpha; a few bits may
	// move.
	if got := FromImage(rgba).Hash; Distance(got, want) > 8 {
		t.Errorf("premultiplied RGBA: distance %d from opaque", Distance(got, want))
	}
	if a, b := FromImage(rgba), FromImage(opaqueImage{rgba}); a != b {
		t.Errorf("RGBA fast path %v and At path %v disagree", a, b)
	}
}

func TestHashText(t *testing.T) {
	const s = "d8f8f0cce0f4a84f0e370a22028f67f0b36e2ed596623e1d33e6b39c4e9c9b22"
	h := mustParse(t, s)
	if h.String() != s {
		t.Errorf("round trip: got %s", h)
	}
	if u, err := ParseHash(strings.ToUpper(s)); err != nil || u != h {
		t.Errorf("upper case: %v, %v", u, err)
	}
	var all Hash
	for i := range all {
		all[i] = 0xff
	}
	if d := Distance(Hash{}, all); d != 256 {
		t.Errorf("Distance(zero, ones) = %d", d)
	}
	if d := Distance(h, h); d != 0 {
		t.Errorf("Distance(h, h) = %d", d)
	}
	var one Hash
	one.setCoefficient(0, 0)
	if one.String() != strings.Repeat("0", 63)+"1" {
		t.Errorf("coefficient (0,0) renders as %s, want the lowest bit", one)
	}
	one = Hash{}
	one.setCoefficient(15, 15)
	if one.String() != "8"+strings.Repeat("0", 63) {
		t.Errorf("coefficient (15,15) renders as %s, want the highest bit", one)
	}
}

func TestDihedralString(t *testing.T) {
	want := "original rotate90 rotate180 rotate270 flipX flipY flipPlus1 flipMinus1"
	var names []string
	for d := range Dihedral(8) {
		names = append(names, d.String())
	}
	if got := strings.Join(names, " "); got != want {
		t.Errorf("names %q, want %q", got, want)
	}
}
