package interop

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"io"
	"strings"

	"github.com/staydown/staydown/protocol"
)

// pytxWriter writes pytx's line format: SIGNAL_TYPE SIGNAL. Labels,
// authors and status have no place in it.
type pytxWriter struct{ w io.Writer }

func (p *pytxWriter) Write(r Record) error {
	typ, val, err := pytxValue(r)
	if err != nil {
		return err
	}
	_, err = io.WriteString(p.w, typ+" "+val+"\n")
	return err
}

func (p *pytxWriter) Close() error { return nil }

// pytxCSVWriter writes pytx's CSV with the columns its reader takes:
// signal_type, signal_str, and tags (our labels, separated by ';', which
// the reader splits on, as it splits on blanks: an other:TEXT label whose
// text holds a blank or a ';' is left out rather than cut in two).
type pytxCSVWriter struct{ cw *csv.Writer }

func newPyTXCSVWriter(w io.Writer) (*pytxCSVWriter, error) {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"signal_type", "signal_str", "tags"}); err != nil {
		return nil, err
	}
	return &pytxCSVWriter{cw}, nil
}

func (p *pytxCSVWriter) Write(r Record) error {
	typ, val, err := pytxValue(r)
	if err != nil {
		return err
	}
	var tags []string
	for _, l := range r.Labels {
		if !strings.ContainsAny(l, " \t;") {
			tags = append(tags, l)
		}
	}
	return p.cw.Write([]string{typ, val, strings.Join(tags, ";")})
}

func (p *pytxCSVWriter) Close() error { p.cw.Flush(); return p.cw.Error() }

// csvWriter writes our own CSV: TYPE:VALUE, then one label a column.
// Every attestation type fits; an allowlist entry does not (the format
// says what to match, not what never to action).
type csvWriter struct{ cw *csv.Writer }

func newCSVWriter(w io.Writer) *csvWriter { return &csvWriter{csv.NewWriter(w)} }

func (c *csvWriter) Write(r Record) error {
	if r.Allow != nil {
		return skip("an allowlist entry: the csv format has none", r)
	}
	return c.cw.Write(append([]string{protocol.FormatSignal(r.Signal)}, r.Labels...))
}

func (c *csvWriter) Close() error { c.cw.Flush(); return c.cw.Error() }

// tatWriter writes a TAT-shaped hash list: {"results": [...]}, each with
// the fields tat.go reads (hash_digest, algorithm, deleted) and an id
// counting from 1. An attestation that is not active is written
// deleted: true, as TAT marks a hash it withdrew. TAT has MD5, SHA256 and
// PDQ; labels do not map to TAT's ideology and are not written.
type tatWriter struct {
	bw *bufio.Writer
	n  int
}

type tatOut struct {
	ID         int    `json:"id"`
	HashDigest string `json:"hash_digest"`
	Algorithm  string `json:"algorithm"`
	Deleted    bool   `json:"deleted"`
	CreatedOn  string `json:"created_on"`
}

func newTATWriter(w io.Writer) (*tatWriter, error) {
	bw := bufio.NewWriter(w)
	_, err := bw.WriteString(`{"results":[`)
	return &tatWriter{bw: bw}, err
}

var tatNames = map[protocol.SignalType]string{
	protocol.SignalMD5: "MD5", protocol.SignalSHA256: "SHA256", protocol.SignalPDQ: "PDQ",
}

func (t *tatWriter) Write(r Record) error {
	if r.Allow != nil {
		return skip("an allowlist entry: TAT's hash list has none", r)
	}
	typ, val := protocol.SignalValue(r.Signal)
	alg, ok := tatNames[typ]
	if !ok {
		return skip("TAT's hash list has no algorithm for "+string(typ), r)
	}
	t.n++
	b, err := json.Marshal(tatOut{ID: t.n, HashDigest: val, Algorithm: alg, Deleted: r.Status != StatusActive, CreatedOn: stixTime(r.TimeMs)})
	if err != nil {
		return err
	}
	if t.n > 1 {
		t.bw.WriteByte(',')
	}
	_, err = t.bw.Write(b)
	return err
}

func (t *tatWriter) Close() error {
	if _, err := t.bw.WriteString("]}\n"); err != nil {
		return err
	}
	return t.bw.Flush()
}
