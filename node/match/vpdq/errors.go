package vpdq

import "errors"

// Errors returned by this package; the returned errors wrap them with the
// detail. Callers test for them with errors.Is.
var (
	// ErrNoFFmpeg means ffmpeg or ffprobe could not be found or run.
	ErrNoFFmpeg = errors.New("vpdq: ffmpeg not available (install it with `apt-get install ffmpeg`)")

	// ErrNotVideo means the input is empty or has no video stream ffmpeg
	// can read.
	ErrNotVideo = errors.New("vpdq: not a video")

	// ErrMalformed means the input is a video but could not be decoded to
	// the end: truncated, corrupt, or ffmpeg failed or was killed.
	ErrMalformed = errors.New("vpdq: malformed video")

	// ErrTooLarge means the video's declared frame size exceeds MaxDimension
	// or MaxPixels, or the input exceeds Options.MaxBytes.
	ErrTooLarge = errors.New("vpdq: video too large")

	// ErrTimeout means ffmpeg did not finish within the time allowed.
	ErrTimeout = errors.New("vpdq: hashing timed out")
)
