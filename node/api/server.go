package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// OpenAPI is the OpenAPI 3 description of this API, served at
// GET /v1/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte

// Prefix is the path every endpoint of this API lives under.
const Prefix = "/v1/"

type server struct {
	backend Backend
	token   [sha256.Size]byte // sha256 of the bearer token; zero: refuse everyone
	log     *slog.Logger
	routes  map[string]map[string]http.HandlerFunc // path -> method -> handler
}

// NewServer returns the handler of the API under /v1/. Every request must
// carry "Authorization: Bearer TOKEN"; an empty token refuses every
// request. The caller mounts it (and applies server timeouts); paths
// outside /v1/ answer 404.
func NewServer(b Backend, token string, log *slog.Logger) http.Handler {
	s := &server{backend: b, log: log}
	if token != "" {
		s.token = sha256.Sum256([]byte(token))
	}
	s.routes = map[string]map[string]http.HandlerFunc{
		"/v1/additions":        {http.MethodPost: publish(s, func(r *AdditionRequest) (*pb.Entry, error) { return r.Entry() })},
		"/v1/retractions":      {http.MethodPost: publish(s, func(r *RetractionRequest) (*pb.Entry, error) { return r.Entry() })},
		"/v1/disputes":         {http.MethodPost: publish(s, func(r *DisputeRequest) (*pb.Entry, error) { return r.Entry() })},
		"/v1/allows":           {http.MethodPost: publish(s, func(r *AllowRequest) (*pb.Entry, error) { return r.Entry() })},
		"/v1/match":            {http.MethodPost: s.matchMany, http.MethodGet: s.matchOne},
		"/v1/match/file":       {http.MethodPost: s.matchFile},
		"/v1/watchlist":        {http.MethodPost: s.watch},
		"/v1/watchlist/remove": {http.MethodPost: s.unwatch},
		"/v1/alerts":           {http.MethodGet: s.alerts},
		"/v1/status":           {http.MethodGet: s.status},
		"/v1/notices": {
			http.MethodPost: publishNotice(s, func(n Notices, ctx context.Context, req NoticeRequest) (*protocol.Entry, error) {
				issue, err := req.Issue()
				if err != nil {
					return nil, err
				}
				return n.IssueNotice(ctx, issue)
			}),
			http.MethodGet: s.listNotices,
		},
		"/v1/notice-updates": {http.MethodPost: publishNotice(s, Notices.UpdateNotice)},
		"/v1/replies":        {http.MethodPost: publishNotice(s, Notices.ReplyNotice)},
		"/v1/report":         {http.MethodGet: s.report},
		"/v1/events":         {http.MethodGet: s.events},
		"/v1/export":         {http.MethodGet: s.export},
		"/v1/proof":          {http.MethodGet: s.proof},
		"/v1/members":        {http.MethodGet: s.members},
		"/v1/members/peer":   {http.MethodPost: s.announcePeer},
		"/v1/proposals":      {http.MethodGet: s.listProposals, http.MethodPost: s.propose},
		approvalsRoute:       {http.MethodPost: s.approve},
		"/v1/openapi.yaml":   {http.MethodGet: s.openAPI},
	}
	return s
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if !strings.HasPrefix(r.URL.Path, Prefix) {
		s.fail(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s; the API is under %s", r.URL.Path, Prefix))
		return
	}
	if problem := s.authorize(r); problem != "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="staydown"`)
		s.fail(w, http.StatusUnauthorized, "authorization: "+problem)
		return
	}
	methods, ok := s.routes[route(r.URL.Path)]
	if !ok {
		s.fail(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s; see %sopenapi.yaml", r.URL.Path, Prefix))
		return
	}
	h, ok := methods[r.Method]
	if !ok {
		allowed := make([]string, 0, len(methods))
		for m := range methods {
			allowed = append(allowed, m)
		}
		slices.Sort(allowed)
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		s.fail(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s; use %s", r.Method, r.URL.Path, strings.Join(allowed, " or ")))
		return
	}
	limit := int64(MaxBodySize)
	switch r.URL.Path {
	case "/v1/match/file":
		limit = MaxFileSize + 1 // filehash.Read itself says when a file is too large
	case "/v1/watchlist", "/v1/watchlist/remove":
		limit = maxWatchBody
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	h(w, r)
}

// authorize returns what is wrong with the request's credentials, "" if
// nothing. It compares hashes, so the comparison takes the same time
// whatever the length or content of the presented token.
func (s *server) authorize(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if h == "" {
		return `missing; send "Authorization: Bearer TOKEN" with the token from the node's directory`
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return `want "Bearer TOKEN"`
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	if s.token == ([sha256.Size]byte{}) || subtle.ConstantTimeCompare(got[:], s.token[:]) != 1 {
		return "wrong token"
	}
	return ""
}

// publish makes the handler of one write endpoint: decode a Req, build the
// entry body from it, publish it, answer 201 with the new entry.
func publish[Req any](s *server, build func(*Req) (*pb.Entry, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req := new(Req)
		if err := decodeBody(r.Body, req); err != nil {
			s.error(w, r, err)
			return
		}
		body, err := build(req)
		if err != nil {
			s.error(w, r, err)
			return
		}
		e, err := s.backend.Publish(r.Context(), body)
		if err != nil {
			s.error(w, r, err)
			return
		}
		s.reply(w, http.StatusCreated, Published{
			ID:     e.ID.String(),
			Seq:    e.Seq(),
			Author: memberName(s.backend.Roster(), e.Author),
		})
	}
}

// decodeSignals reads a request body of signals (Req) and parses them; it
// answers the error itself and reports false when there is one.
func decodeSignals[Req any, P interface {
	*Req
	Parse() ([]*pb.Signal, error)
}](s *server, w http.ResponseWriter, r *http.Request) ([]*pb.Signal, bool) {
	req := P(new(Req))
	if err := decodeBody(r.Body, req); err != nil {
		s.error(w, r, err)
		return nil, false
	}
	sigs, err := req.Parse()
	if err != nil {
		s.error(w, r, err)
		return nil, false
	}
	return sigs, true
}

func (s *server) matchMany(w http.ResponseWriter, r *http.Request) {
	sigs, ok := decodeSignals[MatchRequest](s, w, r)
	if !ok {
		return
	}
	results, err := s.match(r.Context(), sigs)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.reply(w, http.StatusOK, MatchResults{Results: results})
}

func (s *server) matchOne(w http.ResponseWriter, r *http.Request) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		s.error(w, r, fieldErr("query", "%v", err))
		return
	}
	var sig Signal
	for k, v := range q {
		switch {
		case k != "type" && k != "value":
			s.error(w, r, fieldErr(k, "unknown query parameter; use type and value"))
			return
		case len(v) > 1:
			s.error(w, r, fieldErr(k, "given %d times", len(v)))
			return
		}
	}
	sig.Type, sig.Value = q.Get("type"), q.Get("value")
	parsed, err := parseSignal("", sig)
	if err != nil {
		s.error(w, r, err)
		return
	}
	results, err := s.match(r.Context(), []*pb.Signal{parsed})
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.reply(w, http.StatusOK, results[0])
}

func (s *server) match(ctx context.Context, sigs []*pb.Signal) ([]MatchResult, error) {
	queries := make([]Query, len(sigs))
	for i, sig := range sigs {
		queries[i] = Query{Signal: sig, Quality: NoQuality}
	}
	return s.matchQueries(ctx, queries)
}

func (s *server) matchQueries(ctx context.Context, queries []Query) ([]MatchResult, error) {
	found, err := s.backend.Match(ctx, queries)
	if err != nil {
		return nil, err
	}
	if len(found) != len(queries) {
		return nil, fmt.Errorf("backend answered %d results for %d signals", len(found), len(queries))
	}
	roster := s.backend.Roster()
	results := make([]MatchResult, len(queries))
	for i, q := range queries {
		results[i] = newMatchResult(q.Signal, found[i], roster)
	}
	return results, nil
}

func (s *server) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.backend.Status(r.Context())
	if err != nil {
		s.error(w, r, err)
		return
	}
	// Empty collections are [] and {} in JSON, never null.
	if st.Heads == nil {
		st.Heads = map[string]uint64{}
	}
	if st.Flagged == nil {
		st.Flagged = []string{}
	}
	if st.Listen == nil {
		st.Listen = []string{}
	}
	s.reply(w, http.StatusOK, st)
}

func (s *server) openAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.WriteHeader(http.StatusOK)
	w.Write(OpenAPI)
}

// reply writes v as compact JSON (clients indent it as they like: the CLI
// does with --json), which halves the bytes of a large inbox.
func (s *server) reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		s.log.Debug("api: writing response", "err", err)
	}
}

func (s *server) fail(w http.ResponseWriter, code int, msg string) {
	s.reply(w, code, ErrorBody{Error: msg})
}

// error answers err with the status its sentinel calls for. Internal
// errors are logged and answered with a generic message: they may name
// files or peers the client has no business seeing.
func (s *server) error(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrInvalid):
		s.fail(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrForbidden):
		s.fail(w, http.StatusForbidden, err.Error())
	case errors.Is(err, ErrNotFound):
		s.fail(w, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrConflict):
		s.fail(w, http.StatusConflict, err.Error())
	case errors.Is(err, ErrUnavailable):
		s.fail(w, http.StatusServiceUnavailable, err.Error())
	default:
		s.log.Error("api: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		s.fail(w, http.StatusInternalServerError, "internal error; the node's log has the details")
	}
}
