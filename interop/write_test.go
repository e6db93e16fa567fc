package interop

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

func mustSignal(t testing.TB, typed string) *pb.Signal {
	t.Helper()
	typ, val, _ := strings.Cut(typed, ":")
	s, err := protocol.ParseSignal(typ, val)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func vpdqSample(t testing.TB) string {
	var frames []protocol.VPDQFrame
	for i := range 3 {
		f := protocol.VPDQFrame{Quality: uint8(90 + i), Timestamp: uint32(i * 1000)}
		for j := range f.Hash {
			f.Hash[j] = byte(i*37 + j)
		}
		frames = append(frames, f)
	}
	return "vpdq:" + protocol.FormatVPDQ(frames)
}

// sampleRecords is a store's worth of records of every signal type and
// status, with labels (one of them other:TEXT), a dispute and an
// allowlist entry.
func sampleRecords(t testing.TB) []Record {
	const (
		pdq = "pdq:f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
		md5 = "md5:d41d8cd98f00b204e9800998ecf8427e"
		sha = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
		url = "url:https://example.org/it's/a?q=1,2"
		acc = "account:example.com:someone"
	)
	rec := func(sig, author, status string, labels ...string) Record {
		return Record{Signal: mustSignal(t, sig), Author: author, EntryID: "e-" + author + sig, TimeMs: 1_700_000_000_000,
			Labels: labels, Status: status}
	}
	disputed := rec(md5, "bravo", StatusDisputed, "graphic-violence")
	disputed.Disputes = []Opinion{{Author: "charlie", EntryID: "d1", Reason: "it's news footage"}}
	allow := rec(url, "charlie", StatusActive)
	allow.Allow = &Allow{Category: "news", Reason: "a news report"}
	return []Record{
		rec(pdq, "alpha", StatusActive, "attacker-manifesto", "other:a b"),
		rec(sha, "alpha", StatusActive, "graphic-violence"),
		disputed,
		rec(url, "bravo", StatusActive, "recruitment-and-instruction"),
		rec(vpdqSample(t), "alpha", StatusActive, "branded-terrorist-publication"),
		rec(acc, "alpha", StatusActive, "recruitment-and-instruction"),
		rec(sha, "bravo", StatusRetracted, "graphic-violence"),
		allow,
	}
}

// what each format carries of a record, as the reader gives it back: the
// signal, the labels, and whether it is withdrawn (deleted).
type carries struct {
	types   []protocol.SignalType
	labels  bool     // all labels survive
	spaced  bool     // labels with blanks (other:TEXT) survive
	deleted []string // the statuses that read back deleted
	allow   bool     // writes allowlist entries (which its reader passes over)
}

var formatCarries = map[Format]carries{
	PyTX:    {types: []protocol.SignalType{protocol.SignalPDQ, protocol.SignalMD5, protocol.SignalURL, protocol.SignalVPDQ}},
	PyTXCSV: {types: []protocol.SignalType{protocol.SignalPDQ, protocol.SignalMD5, protocol.SignalURL, protocol.SignalVPDQ}, labels: true, deleted: nil},
	TAT:     {types: []protocol.SignalType{protocol.SignalPDQ, protocol.SignalMD5, protocol.SignalSHA256}, deleted: []string{StatusRetracted, StatusDisputed, StatusAllowlisted}},
	STIX:    {types: []protocol.SignalType{protocol.SignalPDQ, protocol.SignalMD5, protocol.SignalSHA256, protocol.SignalURL}, labels: true, spaced: true, deleted: []string{StatusRetracted}, allow: true},
	CSV:     {types: protocol.SignalTypes, labels: true, spaced: true},
	MISP:    {types: []protocol.SignalType{protocol.SignalPDQ, protocol.SignalMD5, protocol.SignalSHA256, protocol.SignalURL}, labels: true, spaced: true, deleted: []string{StatusRetracted, StatusDisputed, StatusAllowlisted}},
}

func writeAll(t testing.TB, f Format, recs []Record) (data []byte, skipped int) {
	t.Helper()
	var buf bytes.Buffer
	var w Writer
	var err error
	if f == MISP {
		meta := MISPEventMeta{UUID: MISPEventUUID("fed", "alpha", "0"), Info: "test", Date: "2023-11-14", Timestamp: 1, OrgName: "alpha", OrgUUID: MISPOrgUUID("fed", "alpha")}
		w, err = NewMISPEvent(&buf, nil, "fed", meta)
	} else {
		w, err = NewWriter(f, &buf, Meta{Federation: "fed", Exporter: "alpha", CreatedMs: 1_700_000_100_000})
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Write(r); errors.Is(err, ErrSkip) {
			skipped++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), skipped
}

// Every format writes what it can carry and its reader gives back the same
// signals, labels and withdrawals; what it cannot carry is skipped with
// ErrSkip, never written wrong. The allowlist entry is never read back as
// an attestation.
func TestWriteReadRoundTrip(t *testing.T) {
	recs := sampleRecords(t)
	for _, f := range Formats {
		t.Run(string(f), func(t *testing.T) {
			c := formatCarries[f]
			data, skipped := writeAll(t, f, recs)
			var want []string
			wantSkipped := 0
			for _, r := range recs {
				typ := protocol.TypeOf(r.Signal)
				if !slices.Contains(c.types, typ) || r.Allow != nil && !c.allow {
					wantSkipped++
					continue
				}
				if r.Allow != nil {
					continue // written, but never read back as an attestation
				}
				s := protocol.FormatSignal(r.Signal)
				var labels []string
				for _, l := range r.Labels {
					if c.labels && (c.spaced || !strings.Contains(l, " ")) {
						labels = append(labels, l)
					}
				}
				if len(labels) > 0 {
					s += " " + strings.Join(labels, "|")
				}
				if slices.Contains(c.deleted, r.Status) {
					s += " deleted"
				}
				want = append(want, s)
			}
			if skipped != wantSkipped {
				t.Errorf("skipped %d records, want %d", skipped, wantSkipped)
			}
			if got, err := Detect(data); err != nil || got != f {
				t.Errorf("Detect = %q, %v; want %q", got, err, f)
			}
			res, err := readAll(t, f, data)
			if err != nil {
				t.Fatalf("reading back: %v\n%s", err, data)
			}
			if len(res.problems) > 0 {
				t.Errorf("problems reading back: %q\n%s", res.problems, data)
			}
			var got []string
			for _, r := range res.rows {
				_, s, _ := strings.Cut(r, ": ")
				got = append(got, s)
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("read back\n %q\nwant\n %q\nfile:\n%s", got, want, data)
			}
		})
	}
}

func TestNewWriterUnknownFormat(t *testing.T) {
	_, err := NewWriter("xml", &bytes.Buffer{}, Meta{})
	if err == nil || !strings.Contains(err.Error(), `unknown format "xml"`) {
		t.Fatalf("err = %v", err)
	}
}
