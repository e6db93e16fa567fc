package pdq

import "fmt"

// FrameHasher hashes frames of one size given as packed 8-bit RGB (3 bytes
// a pixel, rows 3*width bytes apart, no padding), the form a video decoder
// pipes out. It hashes the frame at full size, with no thumbnail step, as the
// reference's C++ hasher and its vPDQ video hasher do. One FrameHasher may
// be used by several goroutines at once; each call hashes on the calling
// goroutine only, so a caller hashes several frames in parallel by calling
// from several goroutines.
type FrameHasher struct {
	w, h int
	plan *plan
}

// NewFrameHasher returns a hasher for w x h frames. Both must be positive.
func NewFrameHasher(w, h int) (*FrameHasher, error) {
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("%w: frame size %dx%d", ErrMalformed, w, h)
	}
	return &FrameHasher{w: w, h: h, plan: newPlan(h, w)}, nil
}

// Hash returns the PDQ hash and quality of the RGB frame pix, which must be
// exactly 3*w*h bytes.
func (f *FrameHasher) Hash(pix []byte) (Result, error) {
	if len(pix) != 3*f.w*f.h {
		return Result{}, fmt.Errorf("%w: %d bytes for a %dx%d RGB frame, want %d",
			ErrMalformed, len(pix), f.w, f.h, 3*f.w*f.h)
	}
	w := f.w
	src := func(y int, dst []float32) {
		p := pix[3*w*y:][:3*len(dst)]
		for x := range dst {
			q := p[3*x : 3*x+3 : 3*x+3]
			dst[x] = luma(q[0], q[1], q[2])
		}
	}
	var small [64][64]float32
	f.plan.downsampleBands(src, &small, 1)
	b := dct(&small)
	return Result{Hash: b.hash(), Quality: quality(&small)}, nil
}
