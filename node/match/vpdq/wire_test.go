package vpdq

import (
	"errors"
	"strings"
	"testing"

	"github.com/staydown/staydown/protocol"
)

// WireFrames rounds timestamps to the millisecond, keeps consecutive
// repeats once, and refuses what a signal cannot carry.
func TestWireFrames(t *testing.T) {
	var a, b [32]byte
	a[0], b[0] = 1, 2
	v := Video{Frames: []Frame{
		{PDQ: a, Quality: 100, Frame: 0, Timestamp: 0},
		{PDQ: a, Quality: 90, Frame: 1, Timestamp: 1.0004},
		{PDQ: b, Quality: 70, Frame: 2, Timestamp: 2.0006},
	}}
	got, err := v.WireFrames()
	if err != nil {
		t.Fatal(err)
	}
	want := []protocol.VPDQFrame{{Hash: a, Quality: 100, Timestamp: 0}, {Hash: b, Quality: 70, Timestamp: 2001}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("WireFrames = %+v, want %+v", got, want)
	}
	sig, err := v.Signal()
	if err != nil {
		t.Fatal(err)
	}
	if _, s := protocol.SignalValue(sig); !strings.Contains(s, "2.0") {
		t.Errorf("signal %q lacks the second frame's time", s)
	}

	if _, err := (Video{}).WireFrames(); !errors.Is(err, ErrNotVideo) {
		t.Errorf("no frames: %v", err)
	}
	var long Video
	for i := range protocol.MaxVPDQFrames + 1 {
		var h [32]byte
		h[0], h[1] = byte(i), byte(i>>8)
		long.Frames = append(long.Frames, Frame{PDQ: h, Quality: 100, Frame: i, Timestamp: float64(i)})
	}
	if _, err := long.WireFrames(); err == nil || !strings.Contains(err.Error(), "1501 distinct frames") {
		t.Errorf("too many frames: %v", err)
	}
	long.Frames = long.Frames[:protocol.MaxVPDQFrames]
	if _, err := long.Signal(); err != nil {
		t.Errorf("%d frames: %v", protocol.MaxVPDQFrames, err)
	}
}
