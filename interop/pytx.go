package interop

import (
	"encoding/csv"
	"fmt"
	"io"
	"strings"

	"github.com/staydown/staydown/protocol"
)

// python-threatexchange (facebook/ThreatExchange, python-threatexchange)
// names its signal types by short names: pdq, video_md5, url, vpdq, and
// others (raw_text, trend_query, url_md5) that carry no hash of content or
// an address we can match, so we refuse them by name.
var pytxTypes = map[string]protocol.SignalType{
	"pdq":       protocol.SignalPDQ,
	"video_md5": protocol.SignalMD5, // md5 of the video file's bytes: our md5
	"photo_md5": protocol.SignalMD5, // older pytx releases' name for an image file's md5
	"md5":       protocol.SignalMD5,
	"url":       protocol.SignalURL,
	"vpdq":      protocol.SignalVPDQ,
}

func pytxSignal(where, typ, value string) (Row, *Problem) {
	t, ok := pytxTypes[typ]
	if !ok {
		return Row{}, &Problem{where, typ, "python-threatexchange signal type with no Staydown equivalent; known: pdq, video_md5, photo_md5, url, vpdq"}
	}
	s, why := parse(t, value)
	if why != "" {
		return Row{}, &Problem{where, value, why}
	}
	return Row{Where: where, Signal: s}, nil
}

// readPyTX reads pytx's line format, as its local file exchange reads a
// file: SIGNAL_TYPE, blanks, then the signal string to the end of the line
// (a vpdq signal string holds blanks). Blank lines and # comments are
// skipped.
func readPyTX(r io.Reader, sink Sink) error {
	return lines(r, func(n int, line string) error {
		text := strings.TrimSpace(line)
		if text == "" || strings.HasPrefix(text, "#") {
			return nil
		}
		typ, value, ok := strings.Cut(text, " ")
		if !ok {
			if typ, value, ok = strings.Cut(text, "\t"); !ok {
				sink.Reject(Problem{lineRef(n), text, "want SIGNAL_TYPE SIGNAL (e.g. pdq HEX)"})
				return nil
			}
		}
		row, p := pytxSignal(lineRef(n), typ, strings.TrimSpace(value))
		if p != nil {
			sink.Reject(*p)
			return nil
		}
		return sink.Row(row)
	})
}

// readPyTXCSV reads pytx's CSV of signals: a header naming the columns,
// of which signal_type and signal_str are read; an optional tags column
// (blank- or semicolon-separated) gives labels of our vocabulary; other
// columns (pytx's metadata, opinions) are dropped.
func readPyTXCSV(r io.Reader, sink Sink) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return fmt.Errorf("%w: empty file: want a header line naming signal_type,signal_str", ErrFormat)
	}
	if err != nil {
		return fmt.Errorf("%w: header: %v", ErrFormat, err)
	}
	typeCol, strCol, tagsCol := -1, -1, -1
	for i, h := range header {
		switch strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")) {
		case "signal_type":
			typeCol = i
		case "signal_str", "signal":
			strCol = i
		case "tags":
			tagsCol = i
		}
	}
	if typeCol < 0 || strCol < 0 {
		return fmt.Errorf("%w: header %q names no signal_type and signal_str columns", ErrFormat, clip(strings.Join(header, ",")))
	}
	return eachRecord(cr, sink, func(rec []string, where string) error {
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			return nil
		}
		if len(rec) <= max(typeCol, strCol) {
			sink.Reject(Problem{where, strings.Join(rec, ","), fmt.Sprintf("%d columns, the header has %d", len(rec), len(header))})
			return nil
		}
		row, p := pytxSignal(where, strings.TrimSpace(rec[typeCol]), strings.TrimSpace(rec[strCol]))
		if p != nil {
			sink.Reject(*p)
			return nil
		}
		if tagsCol >= 0 && tagsCol < len(rec) {
			row.Labels = vocabLabels(strings.FieldsFunc(rec[tagsCol], func(r rune) bool { return r == ' ' || r == ';' }))
		}
		return sink.Row(row)
	})
}
