package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/staydown/staydown/node/notices"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/report"
)

// Notices is what the API needs of a node for takedown notices, the
// transparency report and the live feed. Errors wrap ErrInvalid,
// ErrForbidden or ErrNotFound as for Backend.Publish, or are internal.
type Notices interface {
	// IssueNotice seals the request's URLs and text to the addressee,
	// the issuer and the roster's auditors, then signs and publishes the
	// notice.
	IssueNotice(ctx context.Context, req notices.IssueRequest) (*protocol.Entry, error)
	// UpdateNotice clarifies or withdraws one of this node's notices.
	UpdateNotice(ctx context.Context, req NoticeUpdateRequest) (*protocol.Entry, error)
	// ReplyNotice answers a notice addressed to this node.
	ReplyNotice(ctx context.Context, req ReplyRequest) (*protocol.Entry, error)
	// ListNotices lists notices with their state at q.AtMs (0: now),
	// sorted by deadline (stopped clocks last), then by id.
	ListNotices(ctx context.Context, q NoticeQuery) ([]NoticeView, error)
	// GetNotice is one notice, by id, at atMs (0: now).
	GetNotice(ctx context.Context, id protocol.ID, atMs int64) (NoticeView, error)
	// Report is the transparency report of everything stored, at atMs
	// (0: now), for the period from sinceMs (0: everything).
	Report(ctx context.Context, sinceMs, atMs int64) (report.Report, error)
	// Events calls send with every event for this node after position
	// after (0: from the beginning; notices.Live: from now), then with
	// each new one as it is stored, until ctx ends or send fails. An Event with an empty Type
	// is a keep-alive.
	Events(ctx context.Context, after uint64, send func(Event) error) error
}

// NoticeRequest is the body of POST /v1/notices; the server parses its
// signals into a notices.IssueRequest (Issue).
type NoticeRequest struct {
	To       string   `json:"to"`                // member name of a platform
	URLs     []string `json:"urls,omitempty"`    // sealed: only the addressee, the issuer and auditors read them
	Signals  []Signal `json:"signals,omitempty"` // public targets; an actioned notice makes them stay down
	Text     string   `json:"text,omitempty"`    // sealed free text
	Category string   `json:"category"`          // a content label
	Basis    string   `json:"basis"`             // legal basis, public
	Order    bool     `json:"order"`             // a binding removal order (else a voluntary referral)
	// Deadline: a duration from now ("1h", "90m") or an RFC 3339 time;
	// default 1h.
	Deadline string `json:"deadline,omitempty"`
}

// Issue is the request with its signals parsed. Errors name the field.
func (r NoticeRequest) Issue() (notices.IssueRequest, error) {
	sigs, err := ParseSignalList("signals", r.Signals)
	if err != nil {
		return notices.IssueRequest{}, err
	}
	return notices.IssueRequest{To: r.To, URLs: r.URLs, Signals: sigs, Text: r.Text, Category: r.Category,
		Basis: r.Basis, Order: r.Order, Deadline: r.Deadline}, nil
}

// The notice types of the domain (package notices), under the names the
// API has always used for them. Their JSON is the API's (openapi.yaml).
type (
	NoticeUpdateRequest = notices.UpdateRequest
	ReplyRequest        = notices.ReplyRequest
	NoticeQuery         = notices.Query
	NoticeView          = notices.View
	NoticeDetails       = notices.Details
	NoticeUpdate        = notices.UpdateView
	NoticeReply         = notices.ReplyView
	Event               = notices.Event
)

// Event types.
const (
	EventNotice       = notices.EventNotice
	EventNoticeUpdate = notices.EventNoticeUpdate
	EventReply        = notices.EventReply
	EventAttestation  = notices.EventAttestation
	EventAmendment    = notices.EventAmendment
	EventApproval     = notices.EventApproval
	EventMemberKey    = notices.EventMemberKey
	EventMemberPeer   = notices.EventMemberPeer
)

// NoticeAction is, in a notice attestation, the action that made it one.
type NoticeAction struct {
	Addressee  string `json:"addressee"` // member name
	Order      bool   `json:"order"`
	Reply      string `json:"reply"`       // id of the first action
	ActionTime string `json:"action_time"` // the addressee's claim
}

// parseTimeParam reads an RFC 3339 query parameter into Unix ms (0 when
// absent).
func parseTimeParam(q url.Values, name string) (int64, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return 0, fieldErr(name, "%q is not an RFC 3339 time", v)
	}
	return t.UnixMilli(), nil
}

// noticeBackend is the backend's Notices, or nil after answering 501.
func (s *server) noticeBackend(w http.ResponseWriter) Notices {
	n, ok := s.backend.(Notices)
	if !ok {
		s.fail(w, http.StatusNotImplemented, "this backend has no notices")
	}
	return n
}

func publishNotice[Req any](s *server, do func(Notices, context.Context, Req) (*protocol.Entry, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n := s.noticeBackend(w)
		if n == nil {
			return
		}
		var req Req
		if err := decodeBody(r.Body, &req); err != nil {
			s.error(w, r, err)
			return
		}
		e, err := do(n, r.Context(), req)
		if err != nil {
			s.error(w, r, err)
			return
		}
		s.reply(w, http.StatusCreated, Published{ID: e.ID.String(), Seq: e.Seq(), Author: memberName(s.backend.Roster(), e.Author)})
	}
}

func checkParams(q url.Values, known ...string) error {
	for k, v := range q {
		if !slices.Contains(known, k) {
			return fieldErr(queryField(k), "unknown query parameter; use %s", strings.Join(known, ", "))
		}
		if len(v) > 1 {
			return fieldErr(k, "given %d times", len(v))
		}
	}
	return nil
}

func parseBool(q url.Values, name string) (bool, error) {
	v := q.Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fieldErr(name, "%q is not true or false", v)
	}
	return b, nil
}

func (s *server) listNotices(w http.ResponseWriter, r *http.Request) {
	n := s.noticeBackend(w)
	if n == nil {
		return
	}
	q := r.URL.Query()
	if err := checkParams(q, "box", "open", "overdue", "at", "id"); err != nil {
		s.error(w, r, err)
		return
	}
	at, err := parseTimeParam(q, "at")
	if err != nil {
		s.error(w, r, err)
		return
	}
	if idHex := q.Get("id"); idHex != "" {
		id, err := parseID("id", idHex)
		if err != nil {
			s.error(w, r, err)
			return
		}
		v, err := n.GetNotice(r.Context(), id, at)
		if err != nil {
			s.error(w, r, err)
			return
		}
		s.reply(w, http.StatusOK, v)
		return
	}
	query := NoticeQuery{Box: q.Get("box"), AtMs: at}
	switch query.Box {
	case "", "in", "out", "all":
	default:
		s.error(w, r, fieldErr("box", "%q; use in, out or all", query.Box))
		return
	}
	if query.Open, err = parseBool(q, "open"); err != nil {
		s.error(w, r, err)
		return
	}
	if query.Overdue, err = parseBool(q, "overdue"); err != nil {
		s.error(w, r, err)
		return
	}
	views, err := n.ListNotices(r.Context(), query)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if views == nil {
		views = []NoticeView{}
	}
	s.reply(w, http.StatusOK, NoticeList{Notices: views})
}

// NoticeList is the body of GET /v1/notices.
type NoticeList struct {
	Notices []NoticeView `json:"notices"`
}

func (s *server) report(w http.ResponseWriter, r *http.Request) {
	n := s.noticeBackend(w)
	if n == nil {
		return
	}
	q := r.URL.Query()
	if err := checkParams(q, "since", "at"); err != nil {
		s.error(w, r, err)
		return
	}
	since, err := parseTimeParam(q, "since")
	if err != nil {
		s.error(w, r, err)
		return
	}
	at, err := parseTimeParam(q, "at")
	if err != nil {
		s.error(w, r, err)
		return
	}
	rep, err := n.Report(r.Context(), since, at)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.reply(w, http.StatusOK, rep)
}

// events streams Server-Sent Events: each "id: N", "event: TYPE" and
// "data: JSON" (an Event). A client that reconnects with Last-Event-ID
// (or ?after=N) gets every event after N, then the live ones.
func (s *server) events(w http.ResponseWriter, r *http.Request) {
	n := s.noticeBackend(w)
	if n == nil {
		return
	}
	q := r.URL.Query()
	if err := checkParams(q, "after"); err != nil {
		s.error(w, r, err)
		return
	}
	pos := q.Get("after")
	if pos == "" {
		pos = r.Header.Get("Last-Event-ID")
	}
	// No position: the events to come, not the whole history (#13 item
	// 9: a new client was sent every event since the store began).
	after := uint64(notices.Live)
	if pos != "" {
		var err error
		if after, err = strconv.ParseUint(pos, 10, 64); err != nil || after > math.MaxInt64 {
			s.error(w, r, fieldErr("after", "%q is not a position (an integer from 0 to 2^63-1)", pos))
			return
		}
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		s.fail(w, http.StatusInternalServerError, "streaming unsupported by this server")
		return
	}
	// The status and headers go with the first thing Events sends (a
	// keep-alive once its position is fixed), so that a client that sees
	// the stream open misses nothing published after.
	started := false
	err := n.Events(r.Context(), after, func(ev Event) error {
		if !started {
			started = true
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
		}
		if ev.Type == "" {
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return err
			}
			flusher.Flush()
			return nil
		}
		data, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.N, ev.Type, data); err != nil {
			return err
		}
		flusher.Flush()
		return nil
	})
	switch {
	case err != nil && !started && r.Context().Err() == nil:
		s.error(w, r, err)
	case err != nil && r.Context().Err() == nil:
		s.log.Debug("api: event stream ended", "err", err)
	}
}

// parseID reads an entry id; field names it in errors.
func parseID(field, s string) (protocol.ID, error) {
	if s == "" {
		return protocol.ID{}, fieldErr(field, "required: the id of an entry, %d hex characters", 2*protocol.IDSize)
	}
	id, err := protocol.ParseID(s)
	if err != nil {
		return protocol.ID{}, &FieldError{Field: field, Err: err}
	}
	return id, nil
}

// ParseSignalList parses request signals that may be absent (0 to
// protocol.MaxSignals); field names the array in errors.
func ParseSignalList(field string, in []Signal) ([]*pb.Signal, error) {
	if len(in) == 0 {
		return nil, nil
	}
	return parseSignals(field, in)
}

// Exporter is what GET /v1/export needs of a node.
type Exporter interface {
	// Export writes an export file (SPEC.md section 19) of every log the
	// node holds, or only those of authors.
	Export(ctx context.Context, w io.Writer, authors []protocol.AuthorKey) error
}

// export streams the node's logs as an export file. ?author=NAME (one or
// more) limits it to those members' logs.
func (s *server) export(w http.ResponseWriter, r *http.Request) {
	ex, ok := s.backend.(Exporter)
	if !ok {
		s.fail(w, http.StatusNotImplemented, "this backend does not export")
		return
	}
	q := r.URL.Query()
	for k := range q {
		if k != "author" {
			s.error(w, r, fieldErr(queryField(k), "unknown query parameter; use author"))
			return
		}
	}
	var authors []protocol.AuthorKey
	roster := s.backend.Roster()
	for _, name := range q["author"] {
		m, ok := roster.ByName(name)
		if !ok {
			s.error(w, r, fieldErr("author", "%q is not in the roster (%s)", name, roster.Names()))
			return
		}
		authors = append(authors, m.AuthorKey)
	}
	w.Header().Set("Content-Type", "application/vnd.staydown.export")
	w.WriteHeader(http.StatusOK)
	if err := ex.Export(r.Context(), w, authors); err != nil {
		// The status is sent; a cut-short file has no valid trailer, which
		// the reader reports.
		s.log.Error("api: export failed", "err", err)
	}
}

// Prover is what GET /v1/proof needs of a node.
type Prover interface {
	// Proof is the entry with this id and its inclusion proof against
	// the latest checkpoint of its author's log (SPEC.md section 20).
	Proof(ctx context.Context, id protocol.ID) (protocol.EntryProof, error)
}

func (s *server) proof(w http.ResponseWriter, r *http.Request) {
	p, ok := s.backend.(Prover)
	if !ok {
		s.fail(w, http.StatusNotImplemented, "this backend gives no proofs")
		return
	}
	q := r.URL.Query()
	if err := checkParams(q, "id"); err != nil {
		s.error(w, r, err)
		return
	}
	id, err := parseID("id", q.Get("id"))
	if err != nil {
		s.error(w, r, err)
		return
	}
	out, err := p.Proof(r.Context(), id)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.reply(w, http.StatusOK, out)
}
