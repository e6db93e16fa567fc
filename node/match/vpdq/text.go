package vpdq

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// maxTextLine bounds one line of the text form; a valid line is under 100
// bytes.
const maxTextLine = 256

// AppendText appends f in the reference's text form,
// `frame,quality,pdq_hex,timestamp` with the timestamp in seconds to three
// decimals, and a newline.
func AppendText(b []byte, f Frame) []byte {
	b = strconv.AppendInt(b, int64(f.Frame), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(f.Quality), 10)
	b = append(b, ',')
	b = hex.AppendEncode(b, f.PDQ[:])
	b = append(b, ',')
	b = strconv.AppendFloat(b, f.Timestamp, 'f', 3, 64)
	return append(b, '\n')
}

// WriteText writes frames in the reference's text form, one line each.
func WriteText(w io.Writer, frames []Frame) error {
	var b []byte
	for _, f := range frames {
		b = AppendText(b[:0], f)
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// ParseText reads the reference's text form: one frame a line,
// `frame,quality,pdq_hex,timestamp`. Blank lines are skipped. Frame numbers
// are non-negative integers, qualities 0..100, hashes 64 hex digits,
// timestamps finite non-negative seconds. An error names the line and
// quotes it.
func ParseText(r io.Reader) ([]Frame, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, maxTextLine), maxTextLine)
	var frames []Frame
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		f, err := ParseLine(line)
		if err != nil {
			return nil, fmt.Errorf("vpdq: line %d: %w", n, err)
		}
		frames = append(frames, f)
	}
	if err := sc.Err(); err != nil {
		if err == bufio.ErrTooLong {
			return nil, fmt.Errorf("vpdq: line %d longer than %d bytes", len(frames)+1, maxTextLine)
		}
		return nil, fmt.Errorf("vpdq: reading frames: %w", err)
	}
	return frames, nil
}

// ParseLine parses one line of the text form (without its newline).
func ParseLine(line string) (Frame, error) {
	fields := strings.Split(line, ",")
	if len(fields) != 4 {
		return Frame{}, fmt.Errorf("%q: want 4 comma-separated fields frame,quality,pdq_hex,timestamp, got %d", line, len(fields))
	}
	var f Frame
	n, err := strconv.ParseUint(fields[0], 10, 31)
	if err != nil {
		return Frame{}, fmt.Errorf("frame number %q: not a non-negative integer", fields[0])
	}
	f.Frame = int(n)
	q, err := strconv.ParseUint(fields[1], 10, 8)
	if err != nil || q > 100 {
		return Frame{}, fmt.Errorf("quality %q: not an integer 0..100", fields[1])
	}
	f.Quality = int(q)
	if len(fields[2]) != 2*len(f.PDQ) {
		return Frame{}, fmt.Errorf("pdq hash %q: want %d hex digits", fields[2], 2*len(f.PDQ))
	}
	if _, err := hex.Decode(f.PDQ[:], []byte(fields[2])); err != nil {
		return Frame{}, fmt.Errorf("pdq hash %q: not hexadecimal", fields[2])
	}
	ts, err := strconv.ParseFloat(fields[3], 64)
	if err != nil || math.IsNaN(ts) || math.IsInf(ts, 0) || ts < 0 || ts > maxTimestamp {
		return Frame{}, fmt.Errorf("timestamp %q: not a number of seconds 0..%d", fields[3], int64(maxTimestamp))
	}
	f.Timestamp = ts
	return f, nil
}

// maxTimestamp bounds a parsed timestamp (about 31 years), so that
// formatting it back never switches to exponent notation.
const maxTimestamp = 1e9
