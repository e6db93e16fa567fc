package protocol

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecodeVPDQ: the wire decoder never panics, fails only with
// ErrSignal, and what it accepts is canonical: encoding the frames again
// gives the same bytes.
func FuzzDecodeVPDQ(f *testing.F) {
	v, _ := EncodeVPDQ([]VPDQFrame{vpdqFrame(1, 100, 0), vpdqFrame(2, 50, 1000), vpdqFrame(3, 0, 1000)})
	f.Add(v)
	f.Add(v[:VPDQFrameSize])
	f.Add([]byte{})
	f.Add(append(v[VPDQFrameSize:], v[:VPDQFrameSize]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		frames, err := DecodeVPDQ(b)
		if err != nil {
			if !errors.Is(err, ErrSignal) {
				t.Fatalf("error %v is not ErrSignal", err)
			}
			return
		}
		again, err := EncodeVPDQ(frames)
		if err != nil {
			t.Fatalf("decoded frames do not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("accepted a non-canonical value:\n%x\n%x", b, again)
		}
		// The TYPE:VALUE form loses nothing: it parses back to b.
		s, err := ParseSignal("vpdq", FormatVPDQ(frames))
		if err != nil || !bytes.Equal(s.GetVpdq(), b) {
			t.Fatalf("FormatVPDQ does not read back: %v\n%x\n%x", err, b, s.GetVpdq())
		}
	})
}

// FuzzParseVPDQJSON: the interchange parser never panics; what it accepts
// encodes on the wire, formats to a string it accepts again, and after one
// such trip (Python's timestamp format keeps three significant digits)
// formatting and parsing are a fixed point.
func FuzzParseVPDQJSON(f *testing.F) {
	f.Add(pythonVPDQ)
	f.Add(`[]`)
	f.Add(`["` + pythonVPDQ[2:68] + `,5,1e+02"]`)
	f.Add(`["` + pythonVPDQ[2:68] + `,5,0.0005", "` + pythonVPDQ[2:68] + `,5,0.0015"]`)
	f.Fuzz(func(t *testing.T, s string) {
		frames, err := ParseVPDQJSON(s)
		if err != nil {
			if !errors.Is(err, ErrSignal) {
				t.Fatalf("error %v is not ErrSignal", err)
			}
			return
		}
		v, err := EncodeVPDQ(frames)
		if err != nil {
			t.Fatalf("parsed frames do not encode: %v", err)
		}
		if _, err := DecodeVPDQ(v); err != nil {
			t.Fatalf("encoded frames do not decode: %v", err)
		}
		once, err := ParseVPDQJSON(FormatVPDQJSON(frames))
		if err != nil {
			t.Fatalf("formatted frames do not parse: %v", err)
		}
		out := FormatVPDQJSON(once)
		twice, err := ParseVPDQJSON(out)
		if err != nil {
			t.Fatalf("formatted frames do not parse: %v", err)
		}
		if got := FormatVPDQJSON(twice); got != out {
			t.Fatalf("not a fixed point:\n%s\n%s", out, got)
		}
	})
}
