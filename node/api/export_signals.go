package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/staydown/staydown/interop"
	"github.com/staydown/staydown/protocol"
)

// SignalExporter is what GET /v1/signals/export and the MISP feed
// (/v1/misp-feed/...) need of a node (node.Node implements it).
type SignalExporter interface {
	// ExportSignals calls fn with every record f selects, log by log,
	// reading the store in bounded chunks.
	ExportSignals(ctx context.Context, f interop.Filter, fn func(interop.Record) error) error
	// ExportSignalsRange is ExportSignals over seqs from to to of one log.
	ExportSignalsRange(ctx context.Context, author protocol.AuthorKey, from, to uint64, f interop.Filter, fn func(interop.Record) error) error
	// MISPFeed lists the events of the MISP feed.
	MISPFeed(ctx context.Context) ([]interop.MISPFeedEvent, error)
	// Federation is the federation's name.
	Federation() string
}

// mispFeedPrefix is the MISP feed's stable path: a MISP instance
// subscribes to it as a feed of format "MISP Feed", with the header
// "Authorization: Bearer TOKEN" of a read token.
const mispFeedPrefix = "/v1/misp-feed/"

// mispEventRoute is the route table's name of every event file of the
// feed (/v1/misp-feed/UUID.json: the path parameter is UUID.json); route maps
// the paths to it.
const mispEventRoute = mispFeedPrefix + "{event}"

// mispEventPath reports whether path names an event file of the feed.
func mispEventPath(path string) (uuid string, ok bool) {
	rest, ok := strings.CutPrefix(path, mispFeedPrefix)
	if !ok {
		return "", false
	}
	uuid, ok = strings.CutSuffix(rest, ".json")
	return uuid, ok && uuid != "manifest" && uuid != "" && !strings.Contains(uuid, "/")
}

func (s *server) signalExporter(w http.ResponseWriter) SignalExporter {
	ex, ok := s.backend.(SignalExporter)
	if !ok {
		s.fail(w, http.StatusNotImplemented, "this backend does not export signals")
	}
	return ex
}

// exportFilter reads the filter parameters: author, label, status
// (repeatable), since.
func exportFilter(q url.Values, roster *protocol.Roster) (interop.Filter, error) {
	var f interop.Filter
	for _, name := range q["author"] {
		if _, ok := roster.ByName(name); !ok {
			return f, fieldErr("author", "%q is not in the roster (%s)", name, roster.Names())
		}
		f.Authors = append(f.Authors, name)
	}
	labels, err := interop.ParseLabels(q["label"])
	if err != nil {
		return f, fieldErr("label", "%v", err)
	}
	f.Labels = labels
	for _, st := range q["status"] {
		sts, err := interop.ParseStatus(st)
		if err != nil {
			return f, fieldErr("status", "%v", err)
		}
		f.Statuses = append(f.Statuses, sts...)
	}
	if v := q["since"]; len(v) > 0 {
		if len(v) > 1 {
			return f, fieldErr("since", "given %d times", len(v))
		}
		ms, err := interop.ParseSince(v[0])
		if err != nil {
			return f, fieldErr("since", "%v", err)
		}
		f.SinceMs = ms
	}
	return f, nil
}

func checkKnown(q url.Values, known ...string) error {
	for k := range q {
		if !slices.Contains(known, k) {
			return fieldErr(queryField(k), "unknown query parameter; use %s", strings.Join(known, ", "))
		}
	}
	return nil
}

var exportContentTypes = map[interop.Format]string{
	interop.PyTX:    "text/plain; charset=utf-8",
	interop.PyTXCSV: "text/csv; charset=utf-8",
	interop.CSV:     "text/csv; charset=utf-8",
	interop.TAT:     "application/json",
	interop.STIX:    "application/stix+json;version=2.1",
}

// exportSignals streams the selected records in one format (not misp:
// that is a feed of files, /v1/misp-feed/). The number of records the
// format could not carry is logged. An error once the body has begun
// aborts the response (the client sees it cut short, not a valid file).
func (s *server) exportSignals(w http.ResponseWriter, r *http.Request) {
	ex := s.signalExporter(w)
	if ex == nil {
		return
	}
	q := r.URL.Query()
	if err := checkKnown(q, "format", "author", "label", "status", "since"); err != nil {
		s.error(w, r, err)
		return
	}
	format, err := interop.ParseFormat(q.Get("format"))
	if err == nil && format == interop.MISP {
		err = errors.New("misp is a feed of files: fetch " + mispFeedPrefix + "manifest.json")
	}
	if err != nil {
		s.error(w, r, fieldErr("format", "%v", err))
		return
	}
	f, err := exportFilter(q, s.backend.Roster())
	if err != nil {
		s.error(w, r, err)
		return
	}
	st, err := s.backend.Status(r.Context())
	if err != nil {
		s.error(w, r, err)
		return
	}
	w.Header().Set("Content-Type", exportContentTypes[format])
	bw := bufio.NewWriterSize(w, 64<<10)
	fw, err := interop.NewWriter(format, bw, interop.Meta{Federation: ex.Federation(), Exporter: st.Name, CreatedMs: time.Now().UnixMilli()})
	if err != nil {
		s.error(w, r, err)
		return
	}
	skipped := 0
	err = ex.ExportSignals(r.Context(), f, func(rec interop.Record) error {
		if err := fw.Write(rec); errors.Is(err, interop.ErrSkip) {
			skipped++
		} else if err != nil {
			return err
		}
		return nil
	})
	if err == nil {
		err = fw.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		s.log.Error("api: signal export failed", "format", format, "err", err)
		panic(http.ErrAbortHandler)
	}
	if skipped > 0 {
		s.log.Info("api: signal export: records the format cannot carry were left out", "format", format, "skipped", skipped)
	}
}

// mispManifest answers the feed's manifest.json.
func (s *server) mispManifest(w http.ResponseWriter, r *http.Request) {
	ex := s.signalExporter(w)
	if ex == nil {
		return
	}
	if err := checkKnown(r.URL.Query()); err != nil {
		s.error(w, r, err)
		return
	}
	events, err := ex.MISPFeed(r.Context())
	if err != nil {
		s.error(w, r, err)
		return
	}
	m := make(map[string]interop.MISPManifestEntry, len(events))
	for _, e := range events {
		m[e.Meta.UUID] = e.Meta.Manifest()
	}
	s.reply(w, http.StatusOK, m)
}

// mispFeedFilter is the feed's filter: a MISP instance takes the feed's
// defaults (active attestations of everyone); `staydown export` may
// narrow it with the same parameters as /v1/signals/export.
func (s *server) mispFeedFilter(w http.ResponseWriter, r *http.Request) (interop.Filter, bool) {
	q := r.URL.Query()
	err := checkKnown(q, "author", "label", "status", "since")
	var f interop.Filter
	if err == nil {
		f, err = exportFilter(q, s.backend.Roster())
	}
	if err != nil {
		s.error(w, r, err)
		return f, false
	}
	return f, true
}

// mispEvent answers one event file of the feed.
func (s *server) mispEvent(w http.ResponseWriter, r *http.Request) {
	ex := s.signalExporter(w)
	if ex == nil {
		return
	}
	f, ok := s.mispFeedFilter(w, r)
	if !ok {
		return
	}
	uuid, _ := mispEventPath(r.URL.Path)
	events, err := ex.MISPFeed(r.Context())
	if err != nil {
		s.error(w, r, err)
		return
	}
	i := slices.IndexFunc(events, func(e interop.MISPFeedEvent) bool { return e.Meta.UUID == uuid })
	if i < 0 {
		s.fail(w, http.StatusNotFound, fmt.Sprintf("the feed has no event %q; see %smanifest.json", uuid, mispFeedPrefix))
		return
	}
	e := events[i]
	w.Header().Set("Content-Type", "application/json")
	bw := bufio.NewWriterSize(w, 64<<10)
	err = writeMISPEvent(r.Context(), ex, e, f, bw, nil)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		s.log.Error("api: MISP feed event failed", "event", uuid, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// writeMISPEvent writes event e of the feed to w, and its lines of
// hashes.csv to hashes if not nil, with the records f keeps (those the
// MISP format cannot carry are left out).
func writeMISPEvent(ctx context.Context, ex SignalExporter, e interop.MISPFeedEvent, f interop.Filter, w, hashes io.Writer) error {
	ew, err := interop.NewMISPEvent(w, hashes, ex.Federation(), e.Meta)
	if err != nil {
		return err
	}
	err = ex.ExportSignalsRange(ctx, e.Author, e.From, e.To, f, func(rec interop.Record) error {
		if err := ew.Write(rec); !errors.Is(err, interop.ErrSkip) {
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return ew.Close()
}

// mispHashes answers the feed's hashes.csv: MD5 of each attribute's value,
// its event's uuid.
func (s *server) mispHashes(w http.ResponseWriter, r *http.Request) {
	ex := s.signalExporter(w)
	if ex == nil {
		return
	}
	f, ok := s.mispFeedFilter(w, r)
	if !ok {
		return
	}
	events, err := ex.MISPFeed(r.Context())
	if err != nil {
		s.error(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	bw := bufio.NewWriterSize(w, 64<<10)
	for _, e := range events {
		// The event written to nowhere: the same attributes as the
		// event file, only their hash lines kept.
		if err := writeMISPEvent(r.Context(), ex, e, f, io.Discard, bw); err != nil {
			s.log.Error("api: MISP feed hashes failed", "err", err)
			panic(http.ErrAbortHandler)
		}
	}
	if err := bw.Flush(); err != nil {
		panic(http.ErrAbortHandler)
	}
}
