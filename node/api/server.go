package api

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/staydown/staydown/node/tokens"
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
	keys    *tokens.Keeper // the tokens it accepts, with their scopes
	log     *slog.Logger
	routes  map[string]map[string]endpoint // path -> method -> endpoint
	// timeouts are the deadlines of a request's body and each write of
	// its response (deadlines.go).
	timeouts timeouts
}

// endpoint is one method of one route: the scope a token needs for it and
// its handler. The scope is in the same table as the handler so that no
// route can be added without one (TestEveryRouteHasAScope).
type endpoint struct {
	scope tokens.Scope
	h     http.HandlerFunc
}

// The scopes, short, for the route table.
const (
	match   = tokens.Match
	read    = tokens.Read
	publish = tokens.Publish
	admin   = tokens.Admin
)

// NewServer returns the handler of the API under /v1/. Every request must
// carry "Authorization: Bearer TOKEN" with a token keys knows whose scope
// allows the route (401 when the token is missing or unknown, 403 when its
// scope does not allow the route). The caller mounts it (and applies
// server timeouts); paths outside /v1/ answer 404.
func NewServer(b Backend, keys *tokens.Keeper, log *slog.Logger) http.Handler {
	s := &server{backend: b, keys: keys, log: log, timeouts: defaultTimeouts}
	// The API's one route table: path, method, the scope a token needs,
	// the handler. README ("API tokens") and openapi.yaml (x-scope) say
	// the same; TestOpenAPIPathsMatchRoutes holds them to it.
	s.routes = map[string]map[string]endpoint{
		"/v1/additions":        {http.MethodPost: {publish, publishEntry(s, func(r *AdditionRequest) (*pb.Entry, error) { return r.Entry() })}},
		"/v1/retractions":      {http.MethodPost: {publish, publishEntry(s, func(r *RetractionRequest) (*pb.Entry, error) { return r.Entry() })}},
		"/v1/disputes":         {http.MethodPost: {publish, publishEntry(s, func(r *DisputeRequest) (*pb.Entry, error) { return r.Entry() })}},
		"/v1/allows":           {http.MethodPost: {publish, publishEntry(s, func(r *AllowRequest) (*pb.Entry, error) { return r.Entry() })}},
		"/v1/match":            {http.MethodPost: {match, s.matchMany}, http.MethodGet: {match, s.matchOne}},
		"/v1/match/file":       {http.MethodPost: {match, s.matchFile}},
		"/v1/import":           {http.MethodPost: {publish, s.importBatch}},
		"/v1/watchlist":        {http.MethodPost: {publish, s.watch}, http.MethodGet: {read, s.watchlist}},
		"/v1/watchlist/remove": {http.MethodPost: {publish, s.unwatch}},
		"/v1/alerts":           {http.MethodGet: {read, s.alerts}},
		"/v1/status":           {http.MethodGet: {read, s.status}},
		"/v1/notices": {
			http.MethodPost: {publish, publishNotice(s, func(n Notices, ctx context.Context, req NoticeRequest) (*protocol.Entry, error) {
				issue, err := req.Issue()
				if err != nil {
					return nil, err
				}
				return n.IssueNotice(ctx, issue)
			})},
			http.MethodGet: {read, s.listNotices},
		},
		"/v1/notice-updates":             {http.MethodPost: {publish, publishNotice(s, Notices.UpdateNotice)}},
		"/v1/replies":                    {http.MethodPost: {publish, publishNotice(s, Notices.ReplyNotice)}},
		"/v1/report":                     {http.MethodGet: {read, s.report}},
		"/v1/events":                     {http.MethodGet: {read, s.events}},
		"/v1/changes":                    {http.MethodGet: {read, s.changes}},
		"/v1/export":                     {http.MethodGet: {read, s.export}},
		"/v1/signals/export":             {http.MethodGet: {read, s.exportSignals}},
		mispFeedPrefix + "manifest.json": {http.MethodGet: {read, s.mispManifest}},
		mispFeedPrefix + "hashes.csv":    {http.MethodGet: {read, s.mispHashes}},
		mispEventRoute:                   {http.MethodGet: {read, s.mispEvent}},
		"/v1/proof":                      {http.MethodGet: {read, s.proof}},
		"/v1/members":                    {http.MethodGet: {read, s.members}},
		"/v1/members/peer":               {http.MethodPost: {admin, s.announcePeer}},
		"/v1/proposals":                  {http.MethodGet: {read, s.listProposals}, http.MethodPost: {admin, s.propose}},
		approvalsRoute:                   {http.MethodPost: {admin, s.approve}},
		"/v1/openapi.yaml":               {http.MethodGet: {read, s.openAPI}},
		TAXIIPrefix:                      {http.MethodGet: {read, s.taxiiDiscovery}},
		taxiiRootPath:                    {http.MethodGet: {read, s.taxiiAPIRoot}},
		taxiiCollsPath:                   {http.MethodGet: {read, s.taxiiListCollections}},
		taxiiCollRoute:                   {http.MethodGet: {read, s.taxiiGetCollection}},
		taxiiObjectsRoute:                {http.MethodGet: {read, s.taxiiObjects}},
		taxiiObjectRoute:                 {http.MethodGet: {read, s.taxiiObjects}},
		taxiiManifestRoute:               {http.MethodGet: {read, s.taxiiManifest}},
	}
	maps.Copy(s.routes, orderRoutes(s)) // orders.go
	return s
}

// Route is one method of one route of the API and the scope a token needs
// for it.
type Route struct {
	Method, Path string
	Scope        tokens.Scope
}

// Routes lists the API's routes, by path and method, with the scope each
// needs: the route table of NewServer.
func Routes() []Route {
	s := NewServer(nil, tokens.Static(""), slog.New(slog.DiscardHandler)).(*server)
	var out []Route
	for path, methods := range s.routes {
		for m, e := range methods {
			out = append(out, Route{m, path, e.scope})
		}
	}
	slices.SortFunc(out, func(a, b Route) int { return strings.Compare(a.Path+" "+a.Method, b.Path+" "+b.Method) })
	return out
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	// TAXII's paths answer errors as TAXII error messages, and take the
	// token as HTTP Basic's password too (TAXII clients' usual way).
	taxii := strings.HasPrefix(r.URL.Path, TAXIIPrefix)
	fail, auth := s.fail, r.Header.Get("Authorization")
	if taxii {
		fail, auth = s.taxiiFail, basicAsBearer(auth)
	}
	if !strings.HasPrefix(r.URL.Path, Prefix) && !taxii {
		s.fail(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s; the API is under %s (and TAXII 2.1 under %s)", r.URL.Path, Prefix, TAXIIPrefix))
		return
	}
	tok, err := s.keys.Check(auth)
	if err != nil {
		if taxii {
			w.Header().Add("WWW-Authenticate", `Basic realm="staydown"`)
		}
		w.Header().Add("WWW-Authenticate", `Bearer realm="staydown"`)
		fail(w, http.StatusUnauthorized, "authorization: "+err.Error())
		return
	}
	methods, ok := s.routes[route(r.URL.Path)]
	if !ok {
		fail(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s; see %sopenapi.yaml", r.URL.Path, Prefix))
		return
	}
	e, ok := methods[r.Method]
	if !ok {
		allowed := make([]string, 0, len(methods))
		for m := range methods {
			allowed = append(allowed, m)
		}
		slices.Sort(allowed)
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		fail(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s; use %s", r.Method, r.URL.Path, strings.Join(allowed, " or ")))
		return
	}
	if !tok.Scope.Allows(e.scope) {
		fail(w, http.StatusForbidden, "authorization: "+tokens.Forbidden(r.Method+" "+route(r.URL.Path), e.scope, tok.Scope))
		return
	}
	if taxii && !taxiiAccepts(r.Header.Get("Accept")) {
		fail(w, http.StatusNotAcceptable, fmt.Sprintf("accept: %q does not admit %s, the one media type served here", r.Header.Get("Accept"), TAXIIMediaType))
		return
	}
	limit := int64(MaxBodySize)
	switch r.URL.Path {
	case "/v1/match/file":
		// filehash.Receive and matchVideo say themselves when a file is
		// too large (an image beyond MaxFileSize, a video beyond the
		// node's max_video_upload).
		limit = max(MaxFileSize, s.videoConfig().MaxBytes) + 1
	case "/v1/watchlist", "/v1/watchlist/remove":
		limit = maxWatchBody
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	e.h(s.timeouts.withDeadlines(w, r), r)
}

// publishEntry makes the handler of one write endpoint: decode a Req, build the
// entry body from it, publish it, answer 201 with the new entry.
func publishEntry[Req any](s *server, build func(*Req) (*pb.Entry, error)) http.HandlerFunc {
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
			s.error(w, r, fieldErr(queryField(k), "unknown query parameter; use type and value"))
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
	if st.Members == nil {
		st.Members = []Peer{}
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
	code, msg := s.statusOf(r, err)
	s.fail(w, code, msg)
}

// statusOf is the status and message that answer err.
func (s *server) statusOf(r *http.Request, err error) (int, string) {
	switch {
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden, err.Error()
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound, err.Error()
	case errors.Is(err, ErrConflict):
		return http.StatusConflict, err.Error()
	case errors.Is(err, ErrNoSpace):
		// Not err's text: it names the store's path.
		s.log.Debug("api: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		return http.StatusInsufficientStorage, "insufficient storage: the node's store cannot write (disk full, quota or file-size limit); nothing was stored, try again once the operator has freed space"
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable, err.Error()
	default:
		s.log.Error("api: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		return http.StatusInternalServerError, "internal error; the node's log has the details"
	}
}
