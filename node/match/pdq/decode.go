package pdq

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // registers the decoders Decode accepts
	_ "image/jpeg"
	_ "image/png"
	"io"

	_ "golang.org/x/image/webp"
)

// MaxPixels is the largest image, in pixels (width times height), that Decode
// accepts. It is checked against the header before any pixel is decoded.
// 50 megapixels is more than ordinary photos have. Decoding an image at the
// limit still takes memory: 4 bytes a pixel for a typical PNG, 8 for a
// 16-bit one, and up to about 15 for a progressive JPEG, whose decoder
// keeps every DCT coefficient.
const MaxPixels = 50_000_000

// maxSide is the longest side Decode accepts, also checked against the
// header. No JPEG or WebP can be longer; a PNG or GIF of, say, 50,000,000 x 1
// pixels is within MaxPixels but is no photo, and the hasher's working rows
// (16 bytes per column) would cost more than the image itself.
const maxSide = 1 << 16

// formats are the formats Decode accepts, by the names the image package
// registers them under. Another package may register more decoders
// (BMP, TIFF); they are refused rather than silently accepted.
var formats = map[string]bool{"jpeg": true, "png": true, "gif": true, "webp": true}

// Decode decodes a JPEG, PNG, GIF (first frame) or WebP image and returns it
// with the format's name. It reads the header first and refuses, with
// ErrTooLarge, images of more than MaxPixels or with a side longer than
// 65,536 pixels. Errors wrap ErrNotImage, ErrMalformed or ErrTooLarge,
// except that a failure of r itself is returned as it is (wrapped), not
// blamed on the image.
//
// EXIF orientation is not applied, as in the reference: a photo stored
// sideways is hashed sideways (FromReaderDihedral covers the rotations).
func Decode(r io.Reader) (image.Image, string, error) {
	rr := &readRecorder{r: r}
	var header bytes.Buffer
	cfg, format, err := image.DecodeConfig(io.TeeReader(rr, &header))
	if format != "" && !formats[format] {
		return nil, format, fmt.Errorf("%w: unsupported format %q", ErrNotImage, format)
	}
	if err != nil {
		return nil, format, decodeError(rr, format, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, format, fmt.Errorf("%w: %s is %dx%d", ErrMalformed, format, cfg.Width, cfg.Height)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > MaxPixels {
		return nil, format, fmt.Errorf("%w: %s header says %dx%d, %d pixels; the limit is %d",
			ErrTooLarge, format, cfg.Width, cfg.Height, px, MaxPixels)
	}
	if cfg.Width > maxSide || cfg.Height > maxSide {
		return nil, format, fmt.Errorf("%w: %s header says %dx%d; no side may exceed %d pixels",
			ErrTooLarge, format, cfg.Width, cfg.Height, maxSide)
	}
	// DecodeConfig consumed the header (and whatever its buffering read
	// ahead); replay it in front of the rest.
	img, format, err := image.Decode(io.MultiReader(&header, rr))
	if err != nil {
		return nil, format, decodeError(rr, format, err)
	}
	return img, format, nil
}

func decodeError(rr *readRecorder, format string, err error) error {
	switch {
	case rr.err != nil:
		return fmt.Errorf("pdq: reading image: %w", rr.err)
	case errors.Is(err, image.ErrFormat):
		return fmt.Errorf("%w: unknown format", ErrNotImage)
	case errors.Is(err, io.EOF):
		// The decoders report a file that ends early inconsistently, some
		// as a bare io.EOF.
		return fmt.Errorf("%w: %s: %w", ErrMalformed, format, io.ErrUnexpectedEOF)
	default:
		return fmt.Errorf("%w: %s: %w", ErrMalformed, format, err)
	}
}

// readRecorder remembers the first error of the underlying reader other than
// io.EOF, so that a broken connection is reported as such and not as a
// malformed image.
type readRecorder struct {
	r   io.Reader
	err error
}

func (rr *readRecorder) Read(p []byte) (int, error) {
	n, err := rr.r.Read(p)
	if err != nil && err != io.EOF && rr.err == nil {
		rr.err = err
	}
	return n, err
}
