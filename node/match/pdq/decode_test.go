package pdq

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func encodeGIF(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := gif.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pngClaiming is a PNG whose header declares w x h pixels but that carries
// the pixel data of a 1x1 image: a decompression bomb's header.
func pngClaiming(t testing.TB, w, h uint32) []byte {
	t.Helper()
	data := encodePNG(t, image.NewGray(image.Rect(0, 0, 1, 1)))
	// Signature (8 bytes), then the IHDR chunk: length (4), type (4), width
	// (4), height (4), ..., CRC over type and data.
	const ihdr = 8
	binary.BigEndian.PutUint32(data[ihdr+8:], w)
	binary.BigEndian.PutUint32(data[ihdr+12:], h)
	binary.BigEndian.PutUint32(data[ihdr+8+13:], crc32.ChecksumIEEE(data[ihdr+4:ihdr+8+13]))
	return data
}

// failingReader returns its data and then a transport error.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestDecode(t *testing.T) {
	photo := photoLike(64, 48)
	jpg := encodeJPEG(t, photo)
	paletted := image.NewPaletted(photo.Bounds(), color.Palette{color.Black, color.White, color.RGBA{200, 30, 30, 255}})
	for y := range 48 {
		for x := range 64 {
			paletted.SetColorIndex(x, y, uint8((x/8+y/8)%3))
		}
	}
	broken := errors.New("connection reset")
	tests := []struct {
		name    string
		r       io.Reader
		format  string
		wantErr error  // nil: must decode
		wantMsg string // substring of the error
	}{
		{"png", bytes.NewReader(encodePNG(t, photo)), "png", nil, ""},
		{"jpeg", bytes.NewReader(jpg), "jpeg", nil, ""},
		{"gif", bytes.NewReader(encodeGIF(t, paletted)), "gif", nil, ""},
		{"empty", bytes.NewReader(nil), "", ErrNotImage, "not an image: unknown format"},
		{"text", strings.NewReader("hello, this is not a picture"), "", ErrNotImage, "not an image: unknown format"},
		{"truncated jpeg", bytes.NewReader(jpg[:len(jpg)/2]), "jpeg", ErrMalformed, "malformed image: jpeg"},
		{"header only jpeg", bytes.NewReader(jpg[:4]), "jpeg", ErrMalformed, "malformed image"},
		{"bomb", bytes.NewReader(pngClaiming(t, 100_000, 100_000)), "png", ErrTooLarge, "100000x100000"},
		{"just over", bytes.NewReader(pngClaiming(t, 10_000, 5_001)), "png", ErrTooLarge, "limit is 50000000"},
		{"too long", bytes.NewReader(pngClaiming(t, 10_000_000, 2)), "png", ErrTooLarge, "no side may exceed 65536"},
		{"zero width", bytes.NewReader(pngClaiming(t, 0, 10)), "png", ErrMalformed, ""},
		{"reader fails", &failingReader{jpg[:100], broken}, "jpeg", broken, "reading image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, format, err := Decode(tt.r)
			if format != tt.format {
				t.Errorf("format %q, want %q", format, tt.format)
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if img.Bounds().Empty() {
					t.Fatal("empty image")
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want one wrapping %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tt.wantMsg)
			}
			if tt.wantErr == broken && errors.Is(err, ErrMalformed) {
				t.Errorf("a reader failure is blamed on the image: %v", err)
			}
		})
	}
}

// Formats another package registers are refused: the hasher promises JPEG,
// PNG, GIF and WebP only.
func TestDecodeUnsupportedFormat(t *testing.T) {
	image.RegisterFormat("pdqtest", "PDQTEST!", func(io.Reader) (image.Image, error) {
		return image.NewGray(image.Rect(0, 0, 8, 8)), nil
	}, func(io.Reader) (image.Config, error) {
		return image.Config{ColorModel: color.GrayModel, Width: 8, Height: 8}, nil
	})
	_, _, err := Decode(strings.NewReader("PDQTEST!...."))
	if !errors.Is(err, ErrNotImage) || !strings.Contains(err.Error(), `unsupported format "pdqtest"`) {
		t.Fatalf("error %v, want ErrNotImage naming the format", err)
	}
}

// Two 1x1 WebP files, one lossy (VP8) and one lossless (VP8L), as used by
// browsers' WebP feature detection. Neither the standard library nor
// x/image has a WebP encoder to make bigger ones.
var (
	webpLossy, _    = base64.StdEncoding.DecodeString("UklGRiIAAABXRUJQVlA4IBYAAAAwAQCdASoBAAEADsD+JaQAA3AAAAAA")
	webpLossless, _ = base64.StdEncoding.DecodeString("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")
)

func TestDecodeWebP(t *testing.T) {
	for name, data := range map[string][]byte{"lossy": webpLossy, "lossless": webpLossless} {
		img, format, err := Decode(bytes.NewReader(data))
		if err != nil || format != "webp" || img.Bounds() != image.Rect(0, 0, 1, 1) {
			t.Errorf("%s: format %q, error %v", name, format, err)
			continue
		}
		if res := FromImage(img); res.Quality != 0 {
			t.Errorf("%s: a single pixel has quality %d, want 0", name, res.Quality)
		}
	}
	_, format, err := Decode(bytes.NewReader(webpLossy[:20]))
	if format != "webp" || !errors.Is(err, ErrMalformed) {
		t.Errorf("truncated: format %q, error %v; want webp and ErrMalformed", format, err)
	}
}

func TestFromReader(t *testing.T) {
	dir := referenceDir(t)
	path := filepath.Join(dir, "images", "misc-images--c.png")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := FromReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if want := FromImage(readImage(t, path)); got != want {
		t.Errorf("FromReader %v, FromImage %v", got, want)
	}
	if _, err := FromReader(strings.NewReader("nope")); !errors.Is(err, ErrNotImage) {
		t.Errorf("FromReader(text): %v, want ErrNotImage", err)
	}
}

// FuzzFromReader: any input either hashes or fails with one of the
// package's errors; nothing panics, and input with no image signature is
// never taken for an image.
func FuzzFromReader(f *testing.F) {
	photo := photoLike(40, 30)
	jpg := encodeJPEG(f, photo)
	f.Add(encodePNG(f, photo))
	f.Add(encodePNG(f, image.NewGray(image.Rect(0, 0, 3, 2))))
	f.Add(jpg)
	f.Add(jpg[:len(jpg)/3])
	f.Add(jpg[:200])
	f.Add(encodeGIF(f, image.NewPaletted(image.Rect(0, 0, 5, 5), color.Palette{color.Black, color.White})))
	f.Add(pngClaiming(f, 70_000, 70_000))
	f.Add(webpLossy)
	f.Add(webpLossless)
	f.Add([]byte("not an image"))
	dir := referenceDir(f)
	if wee, err := os.ReadFile(filepath.Join(dir, "images", "misc-images--wee.jpg")); err == nil {
		f.Add(wee)
	}
	signatures := []string{"\xff\xd8", "\x89PNG\r\n\x1a\n", "GIF87a", "GIF89a", "RIFF"}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := FromReader(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrNotImage) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error outside the package's families: %v", err)
			}
			return
		}
		if res.Quality < 0 || res.Quality > 100 {
			t.Fatalf("quality %d out of range", res.Quality)
		}
		for _, sig := range signatures {
			if bytes.HasPrefix(data, []byte(sig)) {
				return
			}
		}
		t.Fatalf("input without an image signature hashed as an image: %q", data[:min(len(data), 16)])
	})
}
