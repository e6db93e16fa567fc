package protocol

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// SignalVPDQ is a video's frame hashes (SPEC.md 7.6).
const SignalVPDQ SignalType = "vpdq"

const tagVPDQ = 6

// vPDQ value limits (SPEC.md 7.6).
const (
	// VPDQFrameSize is one frame on the wire: 32 PDQ bytes, quality,
	// timestamp in milliseconds (uint32, big-endian).
	VPDQFrameSize = PDQSize + 1 + 4
	// MaxVPDQFrames bounds a vpdq value so that an addition carrying one
	// fits in MaxEntrySize with room for its labels and case reference.
	MaxVPDQFrames = 1500
	// MaxVPDQQuality is the highest PDQ quality.
	MaxVPDQQuality = 100
	// MaxVPDQTimestamp is the latest frame timestamp, in milliseconds.
	MaxVPDQTimestamp = math.MaxUint32
)

// VPDQFrame is one hashed frame of a video.
type VPDQFrame struct {
	Hash      [PDQSize]byte
	Quality   uint8  // 0 to 100
	Timestamp uint32 // milliseconds from the start of the video
}

// compareVPDQ orders frames canonically: by timestamp, then hash, then
// quality from high to low.
func compareVPDQ(a, b VPDQFrame) int {
	if a.Timestamp != b.Timestamp {
		if a.Timestamp < b.Timestamp {
			return -1
		}
		return 1
	}
	if c := bytes.Compare(a.Hash[:], b.Hash[:]); c != 0 {
		return c
	}
	return int(b.Quality) - int(a.Quality)
}

// CanonicalVPDQ returns frames in canonical order (SPEC.md 7.6): sorted by
// timestamp, then hash, then quality from high to low, keeping only the
// first of consecutive frames with the same hash. frames is not modified.
func CanonicalVPDQ(frames []VPDQFrame) []VPDQFrame {
	s := slices.Clone(frames)
	slices.SortStableFunc(s, compareVPDQ)
	out := s[:0]
	for i, f := range s {
		if i > 0 && f.Hash == out[len(out)-1].Hash {
			continue
		}
		out = append(out, f)
	}
	return out
}

// EncodeVPDQ returns the wire value of frames in canonical form. It fails
// on a quality above 100, no frames, or more than MaxVPDQFrames frames
// once canonical.
func EncodeVPDQ(frames []VPDQFrame) ([]byte, error) {
	c := CanonicalVPDQ(frames)
	if err := checkVPDQCount(len(c)); err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(c)*VPDQFrameSize)
	for i, f := range c {
		if f.Quality > MaxVPDQQuality {
			return nil, fmt.Errorf("%w: vpdq: frame %d: quality %d is above %d", ErrSignal, i, f.Quality, MaxVPDQQuality)
		}
		b = append(b, f.Hash[:]...)
		b = append(b, f.Quality)
		b = binary.BigEndian.AppendUint32(b, f.Timestamp)
	}
	return b, nil
}

func checkVPDQCount(n int) error {
	switch {
	case n == 0:
		return fmt.Errorf("%w: vpdq: no frames", ErrSignal)
	case n > MaxVPDQFrames:
		return fmt.Errorf("%w: vpdq: %d frames, at most %d (hash the video again: the hasher samples a longer video down)", ErrSignal, n, MaxVPDQFrames)
	}
	return nil
}

// DecodeVPDQ decodes and checks a vpdq wire value (SPEC.md 7.2, 7.6): a
// whole number of 37-byte frames, 1 to MaxVPDQFrames of them, quality at
// most 100, in canonical order with no two consecutive frames of the same
// hash.
func DecodeVPDQ(b []byte) ([]VPDQFrame, error) {
	if len(b)%VPDQFrameSize != 0 {
		return nil, fmt.Errorf("%w: vpdq: %d bytes is not a whole number of %d-byte frames", ErrSignal, len(b), VPDQFrameSize)
	}
	n := len(b) / VPDQFrameSize
	if err := checkVPDQCount(n); err != nil {
		return nil, err
	}
	frames := make([]VPDQFrame, n)
	for i := range frames {
		r := b[i*VPDQFrameSize : (i+1)*VPDQFrameSize]
		f := &frames[i]
		copy(f.Hash[:], r)
		f.Quality = r[PDQSize]
		f.Timestamp = binary.BigEndian.Uint32(r[PDQSize+1:])
		if f.Quality > MaxVPDQQuality {
			return nil, fmt.Errorf("%w: vpdq: frame %d: quality %d is above %d", ErrSignal, i, f.Quality, MaxVPDQQuality)
		}
		if i == 0 {
			continue
		}
		p := frames[i-1]
		if f.Hash == p.Hash {
			return nil, fmt.Errorf("%w: vpdq: frame %d: same hash as the frame before it", ErrSignal, i)
		}
		if compareVPDQ(p, *f) >= 0 {
			return nil, fmt.Errorf("%w: vpdq: frame %d: not in canonical order (timestamp, then hash)", ErrSignal, i)
		}
	}
	return frames, nil
}

// ParseVPDQJSON parses python-threatexchange's vpdq signal string: a JSON
// list of "PDQ_HEX,QUALITY,TIMESTAMP" strings, the timestamp in seconds
// (SPEC.md 7.6). The frames are returned in canonical form.
func ParseVPDQJSON(s string) ([]VPDQFrame, error) {
	var list []string
	if err := json.Unmarshal([]byte(s), &list); err != nil {
		return nil, fmt.Errorf("%w: vpdq: want a JSON list of \"pdq_hex,quality,timestamp\" strings: %v", ErrSignal, err)
	}
	// Bound the work before canonicalising: a value longer than this is
	// refused whatever its duplicates.
	if len(list) > 16*MaxVPDQFrames {
		return nil, fmt.Errorf("%w: vpdq: %d frames, at most %d", ErrSignal, len(list), MaxVPDQFrames)
	}
	frames := make([]VPDQFrame, len(list))
	for i, item := range list {
		f, err := parseVPDQFeature(item)
		if err != nil {
			return nil, fmt.Errorf("%w: vpdq: frame %d %q: %v", ErrSignal, i, item, err)
		}
		frames[i] = f
	}
	c := CanonicalVPDQ(frames)
	if err := checkVPDQCount(len(c)); err != nil {
		return nil, err
	}
	return c, nil
}

func parseVPDQFeature(item string) (VPDQFrame, error) {
	var f VPDQFrame
	parts := strings.Split(item, ",")
	if len(parts) != 3 {
		return f, fmt.Errorf("want 3 comma-separated fields, got %d", len(parts))
	}
	h := strings.ToLower(parts[0])
	if len(h) != 2*PDQSize {
		return f, fmt.Errorf("hash: want %d hex characters, got %d", 2*PDQSize, len(h))
	}
	if _, err := hex.Decode(f.Hash[:], []byte(h)); err != nil {
		return f, fmt.Errorf("hash: not hex")
	}
	q, err := strconv.Atoi(parts[1])
	if err != nil || q < 0 || q > MaxVPDQQuality {
		return f, fmt.Errorf("quality %q: want an integer from 0 to %d", parts[1], MaxVPDQQuality)
	}
	f.Quality = uint8(q)
	ms, err := parseVPDQSeconds(parts[2])
	if err != nil {
		return f, err
	}
	f.Timestamp = ms
	return f, nil
}

// parseVPDQSeconds parses a decimal number of seconds (plain or with an
// exponent, as Python writes floats) into milliseconds, rounded to the
// nearest.
func parseVPDQSeconds(s string) (uint32, error) {
	bad := fmt.Errorf("timestamp %q: want seconds from 0 to %d, e.g. 1.5 or 1.23e+02", s, MaxVPDQTimestamp/1000)
	if s == "" || strings.Trim(s, "0123456789.eE+-") != "" {
		return 0, bad
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || math.IsNaN(v) {
		return 0, bad
	}
	ms := math.Round(v * 1000)
	if ms > MaxVPDQTimestamp {
		return 0, bad
	}
	return uint32(ms), nil
}

// FormatVPDQ writes frames in the vpdq TYPE:VALUE form of the CLI and
// the API (SPEC.md 7.6): python-threatexchange's JSON list of
// "PDQ_HEX,QUALITY,SECONDS" strings, but with the seconds written to the
// millisecond ("12.012"), so that it parses back to the same wire value
// and key. python-threatexchange reads it as it is.
func FormatVPDQ(frames []VPDQFrame) string {
	return formatVPDQ(frames, func(ms uint32) string {
		return strconv.FormatUint(uint64(ms/1000), 10) + "." + fmt.Sprintf("%03d", ms%1000)
	})
}

// FormatVPDQJSON writes frames as python-threatexchange's vpdq signal
// string, byte for byte as its vpdq_to_json does: json.dumps of a list of
// "PDQ_HEX,QUALITY,TIMESTAMP", the timestamp in seconds formatted as
// Python's "{:.3}" (three significant digits; see FormatVPDQSeconds).
// It is lossy past 0.999 s (three significant digits): the export in
// python-threatexchange's own formats uses it; FormatVPDQ does not lose.
func FormatVPDQJSON(frames []VPDQFrame) string {
	return formatVPDQ(frames, FormatVPDQSeconds)
}

func formatVPDQ(frames []VPDQFrame, seconds func(ms uint32) string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, f := range frames {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('"')
		b.WriteString(hex.EncodeToString(f.Hash[:]))
		b.WriteByte(',')
		b.WriteString(strconv.Itoa(int(f.Quality)))
		b.WriteByte(',')
		b.WriteString(seconds(f.Timestamp))
		b.WriteByte('"')
	}
	b.WriteByte(']')
	return b.String()
}

// FormatVPDQSeconds writes a timestamp in milliseconds as seconds the way
// Python formats a float with "{:.3}": rounded to three significant
// digits; in exponent form when the decimal exponent is below -4 or at
// least 2 ("1.23e+02"), otherwise in fixed form with trailing zeros
// removed but at least one digit after the point ("12.3", "1.0").
func FormatVPDQSeconds(ms uint32) string {
	v := float64(ms) / 1000
	if v == 0 {
		return "0.0"
	}
	e := strconv.FormatFloat(v, 'e', 2, 64) // d.dde±XX, correctly rounded
	mant, expStr, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expStr)
	digits := strings.Replace(mant, ".", "", 1)
	if exp < -4 || exp >= 2 {
		d := strings.TrimRight(digits, "0")
		m := d[:1]
		if len(d) > 1 {
			m += "." + d[1:]
		}
		sign := "+"
		if exp < 0 {
			sign, exp = "-", -exp
		}
		return fmt.Sprintf("%se%s%02d", m, sign, exp)
	}
	var ip, fp string
	if exp >= 0 {
		ip, fp = digits[:exp+1], digits[exp+1:]
	} else {
		ip, fp = "0", strings.Repeat("0", -exp-1)+digits
	}
	fp = strings.TrimRight(fp, "0")
	if fp == "" {
		fp = "0"
	}
	return ip + "." + fp
}

// vpdqKey is the index key of a vpdq value: the tag, then the SHA-256 of
// the (canonical) wire value.
func vpdqKey(v []byte) []byte {
	d := sha256.Sum256(v)
	return append([]byte{tagVPDQ}, d[:]...)
}
