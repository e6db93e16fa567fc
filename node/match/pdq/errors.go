package pdq

import "errors"

// Errors returned by this package. Callers test for them with errors.Is; the
// returned errors wrap them with the detail (format, dimensions, decoder
// message).
var (
	// ErrNotImage means the bytes are not in any format the decoder knows
	// (JPEG, PNG, GIF, WebP). The submitter sent something else.
	ErrNotImage = errors.New("pdq: not an image")

	// ErrMalformed means the format was recognised but the image could not be
	// decoded: truncated, corrupt, or zero-sized.
	ErrMalformed = errors.New("pdq: malformed image")

	// ErrTooLarge means the image header declares more than MaxPixels
	// pixels. The pixels are never allocated, so a small file that claims to
	// be enormous (a decompression bomb) costs nothing.
	ErrTooLarge = errors.New("pdq: image too large")
)
