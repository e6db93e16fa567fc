package pdq

import (
	"errors"
	"image"
	"path/filepath"
	"testing"
)

// TestFrameHasherMatchesImage checks that hashing a photo's pixels as a
// packed RGB frame gives exactly the full-size hash of the decoded image:
// the frame path is the image hasher fed another pixel layout.
func TestFrameHasherMatchesImage(t *testing.T) {
	dir := referenceDir(t)
	paths, err := filepath.Glob(filepath.Join(dir, "images", "*.png"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no PNG reference images in %s: %v", dir, err)
	}
	for _, path := range paths[:min(len(paths), 4)] {
		img := readImage(t, path)
		b := img.Bounds()
		w, h := b.Dx(), b.Dy()
		rgba := image.NewNRGBA(image.Rect(0, 0, w, h))
		pix := make([]byte, 0, 3*w*h)
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				r, g, bb, _ := img.At(x, y).RGBA()
				pix = append(pix, byte(r>>8), byte(g>>8), byte(bb>>8))
				i := rgba.PixOffset(x-b.Min.X, y-b.Min.Y)
				rgba.Pix[i], rgba.Pix[i+1], rgba.Pix[i+2], rgba.Pix[i+3] = byte(r>>8), byte(g>>8), byte(bb>>8), 0xff
			}
		}
		want, wantQ := fullSizeCoefficients(rgba)
		fh, err := NewFrameHasher(w, h)
		if err != nil {
			t.Fatal(err)
		}
		got, err := fh.Hash(pix)
		if err != nil {
			t.Fatal(err)
		}
		if got.Hash != want.hash() || got.Quality != wantQ {
			t.Errorf("%s: frame hash %s q%d, image hash %s q%d", filepath.Base(path), got.Hash, got.Quality, want.hash(), wantQ)
		}
	}
}

func TestFrameHasherRejectsBadSizes(t *testing.T) {
	if _, err := NewFrameHasher(0, 10); !errors.Is(err, ErrMalformed) {
		t.Errorf("NewFrameHasher(0, 10) = %v, want ErrMalformed", err)
	}
	fh, err := NewFrameHasher(4, 4)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.Hash(make([]byte, 47)); !errors.Is(err, ErrMalformed) {
		t.Errorf("Hash of 47 bytes for 4x4 = %v, want ErrMalformed", err)
	}
}
