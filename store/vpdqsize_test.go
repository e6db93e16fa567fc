package store

import (
	"testing"
)

// VPDQSize bounds what VPDQVideos hands out from above, not by far: an
// empty store has none; videos of 3, 40 and 1,500 frames (the last one
// over overflow pages), one carried twice, count at least as many
// videos and frames, and at most a key's and a page header's worth more
// a video.
func TestVPDQSize(t *testing.T) {
	s, w := mustOpen(t), newWorld(t)
	if v, f, err := s.VPDQSize(); err != nil || v != 0 || f != 0 {
		t.Fatalf("empty store: %d videos, %d frames, %v", v, f, err)
	}
	v1, v2, v3 := vpdqSignal(t, "one", 3), vpdqSignal(t, "two", 40), vpdqSignal(t, "three", 1500)
	s.mustApply(Applied, w.A.next(addition(v1, v2)), w.B.next(addition(v1, v3)))
	nv, nf, err := s.VPDQSize()
	if err != nil {
		t.Fatal(err)
	}
	const frames, rows = 3 + 40 + 1500 + 3, 4 // v1 under two additions
	if nv != rows || nf < frames || nf > frames+rows*4 {
		t.Errorf("VPDQSize: %d videos, %d frames; want %d videos, %d to %d frames", nv, nf, rows, frames, frames+rows*4)
	}
}
