package interop

import (
	"encoding/csv"
	"errors"
	"io"
	"slices"
	"strings"

	"github.com/staydown/staydown/protocol"
)

// readCSV reads our own CSV: TYPE:VALUE (the form `staydown hash`
// prints), then the row's labels, one a column (a slug or other:TEXT), as
// many as the row has. A URL holding a comma is quoted, as CSV quotes.
// Blank lines and lines starting with # are skipped. A label outside our
// vocabulary is an error of the row here (the file is ours: a typo is not
// silently dropped).
func readCSV(r io.Reader, sink Sink) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.Comment = '#'
	cr.ReuseRecord = true
	return eachRecord(cr, sink, func(rec []string, where string) error {
		first := strings.TrimSpace(strings.TrimPrefix(rec[0], "\ufeff"))
		if len(rec) == 1 && first == "" {
			return nil
		}
		typ, value, ok := strings.Cut(first, ":")
		if !ok || !slices.Contains(protocol.SignalTypes, protocol.SignalType(typ)) {
			sink.Reject(Problem{where, first, "want TYPE:VALUE with TYPE one of sha256, md5, pdq, url, account, vpdq"})
			return nil
		}
		s, why := parse(protocol.SignalType(typ), value)
		if why != "" {
			sink.Reject(Problem{where, first, why})
			return nil
		}
		row := Row{Where: where, Signal: s}
		for _, l := range rec[1:] {
			l = strings.TrimSpace(l)
			if l == "" {
				continue
			}
			pl, err := protocol.ParseLabel(l)
			if err != nil {
				sink.Reject(Problem{where, l, "label: " + err.Error()})
				return nil
			}
			if f := protocol.FormatLabel(pl); !slices.Contains(row.Labels, f) {
				row.Labels = append(row.Labels, f)
			}
		}
		if len(row.Labels) > protocol.MaxLabels {
			sink.Reject(Problem{where, first, "more than 16 labels"})
			return nil
		}
		return sink.Row(row)
	})
}

// eachRecord reads cr's records to the end and calls fn with each and
// the line it starts on. A record that is not valid CSV is rejected by
// its line and the reading goes on; fn's error, or a read error, ends
// it.
func eachRecord(cr *csv.Reader, sink Sink, fn func(rec []string, where string) error) error {
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if pe, ok := errors.AsType[*csv.ParseError](err); ok {
			sink.Reject(Problem{Where: lineRef(pe.StartLine), Reason: "bad CSV: " + pe.Err.Error()})
			continue
		}
		if err != nil {
			return err
		}
		// FieldPos only after a record was read: on an error it panics.
		line, _ := cr.FieldPos(0)
		if err := fn(rec, lineRef(line)); err != nil {
			return err
		}
	}
}
