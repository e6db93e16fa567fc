// Package interop reads the hash-list formats of the field into Staydown
// signals: python-threatexchange's line format and CSV (pytx, pytx-csv),
// Tech Against Terrorism's hash-list JSON (tat), STIX 2.1 bundles (stix),
// MISP events (misp) and our own CSV of TYPE:VALUE signals (csv).
//
// It is pure code: a reader comes in, rows and problems go out, no I/O
// beyond the io.Reader. Each format has its own file (pytx.go, tat.go,
// stix.go, misp.go, csv.go) so that the writers of the same formats can sit
// beside their readers. The caller owns what it does with the rows
// (cmd/staydown's import validates a whole file first, then publishes).
package interop

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// Format names a file format as the command line and the API name it.
type Format string

// The formats.
const (
	PyTX    Format = "pytx"     // SIGNAL_TYPE SIGNAL, one a line
	PyTXCSV Format = "pytx-csv" // signal_type,signal_str,... with a header
	TAT     Format = "tat"      // {"results": [{"hash_digest", "algorithm", ...}]}
	STIX    Format = "stix"     // a STIX 2.1 bundle of indicators
	MISP    Format = "misp"     // a MISP event (or a list of events)
	CSV     Format = "csv"      // TYPE:VALUE,label,label...
)

// Formats lists the formats in the order --help shows them.
var Formats = []Format{PyTX, PyTXCSV, TAT, STIX, MISP, CSV}

// ErrFormat is wrapped by every error that makes a whole file unreadable
// (the wrong format, a broken JSON document, a wrong encoding), as opposed
// to a Problem with one row.
var ErrFormat = errors.New("unreadable file")

// Row is one signal read from a file.
type Row struct {
	// Where names the row for messages: "line 12", "results[3]",
	// "indicator--UUID".
	Where  string
	Signal *pb.Signal // parsed and normalised (protocol.ParseSignal)
	// Labels are the row's own labels, in protocol.FormatLabel form: only
	// those that name a label of our vocabulary (the others are dropped,
	// as README's mapping table says).
	Labels []string
	// Deleted: the source marks the signal withdrawn (TAT's deleted, a
	// revoked STIX indicator, a deleted MISP attribute); the importer
	// retracts its own attestation of it.
	Deleted bool
}

// Problem is a row that cannot be imported: where it is, the value as
// given and why.
type Problem struct {
	Where  string
	Value  string
	Reason string
}

func (p Problem) Error() string {
	if p.Value == "" {
		return p.Where + ": " + p.Reason
	}
	return fmt.Sprintf("%s: %q: %s", p.Where, clip(p.Value), p.Reason)
}

// clip shortens a quoted value so that a garbage row of a megabyte makes a
// readable message.
func clip(s string) string {
	const max = 120
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// Sink receives what a reader finds, in file order: Row for a row that
// parsed, Reject for one that did not. A non-nil error from Row stops the
// reading and is returned.
type Sink struct {
	Row    func(Row) error
	Reject func(Problem)
}

// Read reads r in format f, handing every row to sink. It returns an error
// (wrapping ErrFormat) only when the file as a whole cannot be read; bad
// rows go to sink.Reject and the reading goes on.
func Read(f Format, r io.Reader, sink Sink) error {
	switch f {
	case PyTX:
		return readPyTX(r, sink)
	case PyTXCSV:
		return readPyTXCSV(r, sink)
	case TAT:
		return readTAT(r, sink)
	case STIX:
		return readSTIX(r, sink)
	case MISP:
		return readMISP(r, sink)
	case CSV:
		return readCSV(r, sink)
	}
	return fmt.Errorf("unknown format %q; use one of %s", f, formatNames())
}

// ParseFormat checks a format name as a user gives it.
func ParseFormat(s string) (Format, error) {
	if slices.Contains(Formats, Format(s)) {
		return Format(s), nil
	}
	return "", fmt.Errorf("unknown format %q; use one of %s", s, formatNames())
}

func formatNames() string {
	names := make([]string, len(Formats))
	for i, f := range Formats {
		names[i] = string(f)
	}
	return strings.Join(names, ", ")
}

// SniffSize is how many bytes of a file's start Detect wants.
const SniffSize = 8 << 10

// Detect names the format of a file from its first bytes (up to
// SniffSize; less for a short file). An error says why none fits.
func Detect(head []byte) (Format, error) {
	switch {
	case bytes.HasPrefix(head, []byte{0xff, 0xfe}), bytes.HasPrefix(head, []byte{0xfe, 0xff}):
		return "", fmt.Errorf("%w: the file is UTF-16; convert it to UTF-8", ErrFormat)
	}
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	trimmed := bytes.TrimLeft(head, " \t\r\n")
	if len(trimmed) == 0 {
		return "", fmt.Errorf("%w: the file is empty", ErrFormat)
	}
	if trimmed[0] == '{' || trimmed[0] == '[' {
		s := string(trimmed)
		switch {
		case strings.Contains(s, `"results"`):
			return TAT, nil
		case strings.Contains(s, `"bundle"`), strings.Contains(s, `"spec_version"`), strings.Contains(s, `"indicator"`):
			return STIX, nil
		case strings.Contains(s, `"Event"`), strings.Contains(s, `"Attribute"`):
			return MISP, nil
		}
		return "", fmt.Errorf("%w: a JSON document, but not a TAT hash list (results), a STIX bundle or a MISP event (Event); give --format", ErrFormat)
	}
	sc := bufio.NewScanner(bytes.NewReader(trimmed))
	sc.Buffer(nil, SniffSize)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !utf8.ValidString(line) {
			return "", fmt.Errorf("%w: the first line %q is not UTF-8 text", ErrFormat, clip(line))
		}
		first, _, _ := strings.Cut(line, ",")
		if strings.TrimSpace(first) == "signal_type" {
			return PyTXCSV, nil
		}
		if p, _, ok := strings.Cut(line, ":"); ok && slices.Contains(protocol.SignalTypes, protocol.SignalType(p)) {
			return CSV, nil
		}
		if p, _, ok := strings.Cut(line, " "); ok {
			if _, known := pytxTypes[p]; known {
				return PyTX, nil
			}
		}
		return "", fmt.Errorf("%w: cannot tell the format from the first line %q; give --format (%s)", ErrFormat, clip(line), formatNames())
	}
	return "", fmt.Errorf("%w: the file holds no rows", ErrFormat)
}

// parse parses one value of our type typ, with a reason fit for a Problem.
func parse(typ protocol.SignalType, value string) (*pb.Signal, string) {
	if !utf8.ValidString(value) {
		return nil, "not UTF-8 text"
	}
	s, err := protocol.ParseSignal(string(typ), value)
	if err != nil {
		return nil, strings.TrimPrefix(err.Error(), protocol.ErrSignal.Error()+": ")
	}
	return s, ""
}

// vocabLabels keeps the labels of tags that name a label of our
// vocabulary (slugs, or other:TEXT), in FormatLabel form, without repeats.
func vocabLabels(tags []string) []string {
	var out []string
	for _, t := range tags {
		t = strings.TrimSpace(t)
		slug, _, _ := strings.Cut(t, ":")
		if !slices.Contains(protocol.Labels, strings.TrimSpace(slug)) {
			continue
		}
		l, err := protocol.ParseLabel(t)
		if err != nil {
			continue
		}
		if f := protocol.FormatLabel(l); !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// lines calls fn with each line of r, numbered from 1, without its end of
// line. A line longer than maxLine is an error of the file.
func lines(r io.Reader, fn func(n int, line string) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		line, err := readLine(br)
		if err == io.EOF && line == "" {
			return nil
		}
		if errors.Is(err, errLongLine) {
			return fmt.Errorf("%w: line %d is longer than %d bytes", ErrFormat, n, maxLine)
		}
		if err != nil && err != io.EOF {
			return err
		}
		if n == 1 {
			line = strings.TrimPrefix(line, "\xef\xbb\xbf")
		}
		if ferr := fn(n, strings.TrimRight(line, "\r")); ferr != nil {
			return ferr
		}
		if err == io.EOF {
			return nil
		}
	}
}

// maxLine bounds a line: a vpdq signal of a long video is the longest
// legitimate one (SPEC 7.6 bounds it by the entry size, 64 KiB).
const maxLine = 1 << 20

var errLongLine = errors.New("line too long")

func readLine(br *bufio.Reader) (string, error) {
	var buf []byte
	for {
		frag, err := br.ReadSlice('\n')
		buf = append(buf, frag...)
		if len(buf) > maxLine {
			return "", errLongLine
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return string(buf), err
		}
		return string(buf[:len(buf)-1]), nil
	}
}

func lineRef(n int) string { return fmt.Sprintf("line %d", n) }
