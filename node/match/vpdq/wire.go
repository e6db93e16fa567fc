package vpdq

import (
	"fmt"
	"math"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// WireFrames returns the video's frames as the vpdq signal carries them
// (SPEC.md 7.6): timestamps rounded to the millisecond, in canonical order
// (consecutive frames with the same hash kept once). It fails when no
// frame was hashed or when more than protocol.MaxVPDQFrames remain (every
// frame of a video longer than about a minute; the default sampling
// widens its interval to stay within the bound).
func (v Video) WireFrames() ([]protocol.VPDQFrame, error) {
	out := make([]protocol.VPDQFrame, 0, len(v.Frames))
	for _, f := range v.Frames {
		ms := math.Round(f.Timestamp * 1000)
		if !(ms >= 0 && ms <= protocol.MaxVPDQTimestamp) {
			return nil, fmt.Errorf("vpdq: frame %d: timestamp %v s is out of range", f.Frame, f.Timestamp)
		}
		out = append(out, protocol.VPDQFrame{Hash: f.PDQ, Quality: uint8(min(max(f.Quality, 0), protocol.MaxVPDQQuality)), Timestamp: uint32(ms)})
	}
	out = protocol.CanonicalVPDQ(out)
	switch {
	case len(out) == 0:
		return nil, fmt.Errorf("%w: no frame was hashed", ErrNotVideo)
	case len(out) > protocol.MaxVPDQFrames:
		return nil, fmt.Errorf("vpdq: %d distinct frames, more than the %d a signal carries: hash at the default rate (one frame a second, widened for long videos), not every frame", len(out), protocol.MaxVPDQFrames)
	}
	return out, nil
}

// Signal returns the video's vpdq signal (WireFrames, encoded).
func (v Video) Signal() (*pb.Signal, error) {
	frames, err := v.WireFrames()
	if err != nil {
		return nil, err
	}
	b, err := protocol.EncodeVPDQ(frames)
	if err != nil {
		return nil, err
	}
	return &pb.Signal{Value: &pb.Signal_Vpdq{Vpdq: b}}, nil
}
