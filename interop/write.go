package interop

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// Record is one thing an export writes: a member's attestation of a
// signal (an addition that carries it), with its status now and the
// disputes bearing on it, or, when Allow is set, a member's allowlist
// entry for the signal. The node builds records from its store
// (node.Node.ExportSignals); the writers of this package turn them into
// the field's formats, the same mapping as the readers, reversed.
type Record struct {
	Signal *pb.Signal
	Author string // the attesting (or allowing) member's name
	// EntryID is the text form of the addition's (or allow's) entry id:
	// the writers derive stable object ids from it.
	EntryID string
	TimeMs  int64    // the entry's timestamp (the author's claim)
	Labels  []string // protocol.FormatLabel form
	// Status is the attestation's status now: active, retracted,
	// disputed or allowlisted (store.Status's names).
	Status   string
	Disputes []Opinion
	Allow    *Allow // non-nil: an allowlist entry, not an attestation
}

// Opinion is a dispute of an attestation by another member.
type Opinion struct {
	Author  string
	EntryID string
	Reason  string
}

// Allow describes an allowlist entry: the signal is counter-speech, news,
// research or other, never to be actioned.
type Allow struct {
	Category string
	Reason   string
}

// Statuses of a Record, as the export filters name them.
const (
	StatusActive      = "active"
	StatusRetracted   = "retracted"
	StatusDisputed    = "disputed"
	StatusAllowlisted = "allowlisted"
)

// Meta is what a writer says about the export as a whole.
type Meta struct {
	Federation string
	Exporter   string // the exporting node's member name
	CreatedMs  int64
}

// Writer writes records in one format. Write returns ErrSkip (wrapped)
// for a record the format cannot represent (a signal type it has no name
// for, an allowlist entry in a format without one); the caller counts
// those and goes on. Close ends the document (a JSON array, a bundle)
// and must be called after the last Write.
type Writer interface {
	Write(Record) error
	Close() error
}

// ErrSkip is wrapped by Write's error for a record the format cannot
// carry; nothing was written for it.
var ErrSkip = fmt.Errorf("not representable in this format")

// NewWriter makes the writer of format f to w. MISP is a feed of several
// files, not one stream: see NewMISPEvent and MISPManifest.
func NewWriter(f Format, w io.Writer, meta Meta) (Writer, error) {
	switch f {
	case PyTX:
		return &pytxWriter{w: w}, nil
	case PyTXCSV:
		return newPyTXCSVWriter(w)
	case TAT:
		return newTATWriter(w)
	case STIX:
		return newSTIXWriter(w, meta)
	case CSV:
		return newCSVWriter(w), nil
	case MISP:
		return nil, fmt.Errorf("format misp is a feed (manifest.json, one file per event, hashes.csv), not one file: write it to a directory")
	}
	return nil, fmt.Errorf("unknown format %q; use one of %s", f, formatNames())
}

func skip(why string, r Record) error {
	return fmt.Errorf("%w: %s: %s", ErrSkip, protocol.FormatSignal(r.Signal), why)
}

// stableUUID makes a name-based UUID (version 5, RFC 9562, as STIX 2.1
// recommends for deterministic ids) of parts, in a namespace of our own:
// the same parts give the same id on every node and export, so that a
// consumer that ingests a second export updates, not duplicates.
func stableUUID(parts ...string) string {
	return uuid.NewSHA1(staydownNS, []byte(strings.Join(parts, "\x00"))).String()
}

// staydownNS is the namespace of stableUUID: the v5 UUID of our module
// path in the URL namespace.
var staydownNS = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/staydown/staydown"))

// stixTime writes a time as STIX and MISP want it: RFC 3339, UTC, to the
// millisecond.
func stixTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}

// pytxValue is a signal as python-threatexchange names and writes it: its
// signal type name and signal string. vpdq is written in pytx's own form
// (protocol.FormatVPDQJSON), which reads back to the same frames up to
// pytx's three significant digits of the seconds.
func pytxValue(r Record) (string, string, error) {
	if r.Allow != nil {
		return "", "", skip("an allowlist entry: pytx formats have none", r)
	}
	typ, val := protocol.SignalValue(r.Signal)
	switch typ {
	case protocol.SignalPDQ:
		return "pdq", val, nil
	case protocol.SignalMD5:
		// pytx's one md5 type is video_md5; its reader here takes it back
		// as our md5 (of any file).
		return "video_md5", val, nil
	case protocol.SignalURL:
		return "url", val, nil
	case protocol.SignalVPDQ:
		frames, err := protocol.DecodeVPDQ(r.Signal.GetVpdq())
		if err != nil {
			return "", "", skip("undecodable vpdq", r)
		}
		return "vpdq", protocol.FormatVPDQJSON(frames), nil
	}
	return "", "", skip("python-threatexchange has no signal type for "+string(typ), r)
}
