// Package console is the node's web console: server-rendered pages
// (html/template) and a small script of our own, embedded in the binary
// and served at / on the API's address beside /v1/ and /metrics.
//
// The console calls the node through the interfaces the HTTP API's
// handlers use (api.Backend, api.Notices), never through HTTP to itself,
// so a page says exactly what the API would. Who may do what is the API's
// rule too: a session does what the token that opened it may
// (session.go); writes need scope publish and carry a CSRF token.
//
// Every page is sent with a Content-Security-Policy that allows no inline
// script or style, only the embedded /assets/; html/template escapes
// every value. Times are sent as <time datetime> in UTC, which the script
// shows in the browser's zone with UTC on hover.
package console

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/kind"
	"github.com/staydown/staydown/node/tokens"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Console is the web console's handler.
type Console struct {
	backend  api.Backend
	notices  api.Notices // nil: a backend without notices
	keys     *tokens.Keeper
	log      *slog.Logger
	now      func() time.Time
	sessions *sessions
	reports  *reports
	pages    map[string]*template.Template
	mux      *http.ServeMux
}

// Options are the console's optional settings.
type Options struct {
	// Now is the clock (default time.Now): sessions and tickets expire by it.
	Now func() time.Time
}

// New returns the console of backend b, accepting the tokens of keys.
func New(b api.Backend, keys *tokens.Keeper, log *slog.Logger, opts Options) *Console {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Console{backend: b, keys: keys, log: log, now: opts.Now, sessions: newSessions(opts.Now), pages: parsePages()}
	c.notices, _ = b.(api.Notices)
	c.reports = &reports{c: c, m: map[string]*figures{}}
	m := http.NewServeMux()
	m.HandleFunc("POST /console/tickets", c.newTicket)
	m.HandleFunc("GET /signin", c.signin)
	m.Handle("GET /assets/", http.StripPrefix("/assets/", assets()))
	m.HandleFunc("POST /signout", c.write(c.signout))
	m.HandleFunc("GET /{$}", c.read(tokens.Read, c.overview))
	m.HandleFunc("GET /inbox", c.read(tokens.Read, c.inbox))
	m.HandleFunc("GET /inbox/notice", c.read(tokens.Read, c.inboxNotice))
	m.HandleFunc("POST /inbox/reply", c.write(c.reply))
	m.HandleFunc("GET /notices", c.read(tokens.Read, c.outbox))
	m.HandleFunc("POST /notices", c.write(c.issue))
	m.HandleFunc("POST /notices/withdraw", c.write(c.withdraw))
	m.HandleFunc("GET /match", c.read(tokens.Match, c.match))
	m.HandleFunc("POST /match/file", c.post(tokens.Match, api.MaxFileSize+1<<20, c.matchFile))
	m.HandleFunc("GET /transparency", c.read(tokens.Read, c.transparency))
	m.HandleFunc("GET /transparency.json", c.read(tokens.Read, c.transparencyJSON))
	m.HandleFunc("GET /transparency.csv", c.read(tokens.Read, c.transparencyCSV))
	m.HandleFunc("GET /feed", c.read(tokens.Read, c.feed))
	m.HandleFunc("GET /events", c.read(tokens.Read, c.events))
	c.mux = m
	return c
}

// csp allows scripts, styles and images from the console's own assets
// only: no inline script or style, no other origin, no framing, no
// <base>; forms post back to the node only.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	// The sign-in ticket is in /signin's address: no page sends it on.
	h.Set("Referrer-Policy", "no-referrer")
	if !strings.HasPrefix(r.URL.Path, "/assets/") {
		h.Set("Cache-Control", "no-store")
	}
	c.mux.ServeHTTP(w, r)
}

func assets() http.Handler {
	sub, err := fs.Sub(assetFS, "assets")
	if err != nil {
		panic(err)
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

// newTicket answers POST /console/tickets: a sign-in ticket for the
// bearer token the request carries (any valid token: the session will do
// what it may).
func (c *Console) newTicket(w http.ResponseWriter, r *http.Request) {
	tok, err := c.keys.Check(r.Header.Get("Authorization"))
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="staydown"`)
		jsonReply(w, http.StatusUnauthorized, api.ErrorBody{Error: "authorization: " + err.Error()})
		return
	}
	_, raw, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	t, expires := c.sessions.ticket(strings.TrimSpace(raw))
	jsonReply(w, http.StatusCreated, Ticket{Path: "/signin?ticket=" + url.QueryEscape(t), Expires: expires.UTC().Format(time.RFC3339), Scope: tok.Scope.String()})
}

// Ticket is the body of the answer to POST /console/tickets.
type Ticket struct {
	Path    string `json:"path"`    // open it on the node's API address, once
	Expires string `json:"expires"` // RFC 3339, UTC
	Scope   string `json:"scope"`   // what the session will be allowed
}

func jsonReply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// signin redeems a ticket, or explains how to get one.
func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	t := r.URL.Query().Get("ticket")
	if t == "" {
		c.render(w, r, http.StatusOK, "signin", &page{Title: "Sign in"})
		return
	}
	id, _, err := c.sessions.redeem(t)
	if err != nil {
		c.render(w, r, http.StatusForbidden, "signin", &page{Title: "Sign in", Error: err.Error()})
		return
	}
	if c.notices != nil {
		// The transparency page's figures take a while: start now.
		go c.reports.get(context.WithoutCancel(r.Context()), "all", 0)
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName(r), Value: id, Path: "/", MaxAge: int(SessionTTL / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (c *Console) signout(w http.ResponseWriter, r *http.Request, u *user) {
	c.sessions.end(u.id)
	http.SetCookie(w, &http.Cookie{Name: cookieName(r), Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// user is the signed-in user of r, or nil (no cookie, an unknown or
// expired session, or a token revoked since).
func (c *Console) user(r *http.Request) *user {
	ck, err := r.Cookie(cookieName(r))
	if err != nil {
		return nil
	}
	s, ok := c.sessions.get(ck.Value)
	if !ok {
		return nil
	}
	tok, err := c.keys.Check("Bearer " + s.token)
	if err != nil {
		c.sessions.end(ck.Value)
		return nil
	}
	return &user{id: ck.Value, s: s, scope: tok.Scope}
}

// read wraps a page that needs scope need: without a session it sends
// the browser to sign in; without the scope it says so.
func (c *Console) read(need tokens.Scope, h func(http.ResponseWriter, *http.Request, *user)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u := c.user(r)
		if u == nil {
			http.Redirect(w, r, "/signin", http.StatusSeeOther)
			return
		}
		if !u.can(need) {
			c.fail(w, r, u, http.StatusForbidden, tokens.Forbidden(r.Method+" "+r.URL.Path, need, u.scope))
			return
		}
		h(w, r, u)
	}
}

// write wraps a form's POST that publishes (scope publish): see post.
func (c *Console) write(h func(http.ResponseWriter, *http.Request, *user)) http.HandlerFunc {
	return c.post(tokens.Publish, api.MaxBodySize, h)
}

// post wraps a form's POST: it needs a session (401: a form posted
// without one is not a page to redirect), the session's CSRF token, and
// scope need (signing out needs only the session); the body is at most
// limit bytes. Nothing reaches the node otherwise.
func (c *Console) post(need tokens.Scope, limit int64, h func(http.ResponseWriter, *http.Request, *user)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		u := c.user(r)
		if u == nil {
			c.fail(w, r, nil, http.StatusUnauthorized, "not signed in, or the session has ended: sign in again")
			return
		}
		if !u.csrfOK(r) {
			c.fail(w, r, u, http.StatusForbidden, "the form's CSRF token is missing or wrong: reload the page and try again")
			return
		}
		if r.URL.Path != "/signout" && !u.can(need) {
			c.fail(w, r, u, http.StatusForbidden, tokens.Forbidden(r.Method+" "+r.URL.Path, need, u.scope))
			return
		}
		h(w, r, u)
	}
}

// fail renders an error page.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, u *user, code int, msg string) {
	p := &page{Title: http.StatusText(code), Error: msg}
	c.fill(r, u, p)
	c.render(w, r, code, "error", p)
}

// failErr renders err as the API would answer it: its message for the
// user's mistakes, a generic one (and a log line) for internal errors.
func (c *Console) failErr(w http.ResponseWriter, r *http.Request, u *user, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, kind.ErrInvalid):
		code = http.StatusBadRequest
	case errors.Is(err, kind.ErrForbidden):
		code = http.StatusForbidden
	case errors.Is(err, kind.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, kind.ErrConflict):
		code = http.StatusConflict
	case errors.Is(err, kind.ErrUnavailable):
		code = http.StatusServiceUnavailable
	}
	msg := err.Error()
	if code == http.StatusInternalServerError {
		c.log.Error("console: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error; the node's log has the details"
	}
	c.fail(w, r, u, code, msg)
}

// errNoNotices is the message of a backend without notices.
var errNoNotices = fmt.Errorf("this node keeps no notices: %w", kind.ErrNotFound)
