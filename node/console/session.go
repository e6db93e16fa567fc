package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/staydown/staydown/node/tokens"
)

// Signing in (README "The web console"): a client holding an API token
// asks for a ticket (POST /console/tickets with the token as a bearer
// token: `staydown console` does). The ticket is good once, for TicketTTL,
// at /signin?ticket=T: that answers with a session cookie (HttpOnly,
// SameSite=Strict) and a redirect to /, so the ticket leaves the address
// bar at once and the API token never reaches the browser. A session
// lasts SessionTTL and does what the token that asked for its ticket may
// do, checked again on every request: revoking the token ends it.

// TicketTTL is how long a sign-in ticket may wait to be used.
const TicketTTL = 5 * time.Minute

// SessionTTL is how long a session lasts after sign-in.
const SessionTTL = 12 * time.Hour

// CookieName is the session cookie's name, followed by "_PORT" when the
// console is reached on an explicit port (cookieName).
const CookieName = "staydown_session"

// cookieName is the session cookie's name for a request. Browsers keep
// cookies by host, not by port: the consoles of several nodes on one
// machine (the demo's three) would overwrite each other's session with
// one name, so the port is part of it.
func cookieName(r *http.Request) string {
	if _, port, err := net.SplitHostPort(r.Host); err == nil && port != "" {
		return CookieName + "_" + port
	}
	return CookieName
}

// Caps on what the console holds in memory: a client with a token that
// asks for tickets in a loop cannot grow the node without bound. The
// oldest goes first.
const (
	maxTickets  = 64
	maxSessions = 256
)

// credential is what a ticket or a session carries: the API token that
// asked for it, held in the node's memory only, and so checked again
// (and its scope read again) at every request.
type credential struct {
	token   string
	expires time.Time
}

type session struct {
	credential
	csrf  string // the form token every write must carry
	flash string // what the last write did, shown once by the next page; guarded by sessions.mu
}

// sessions holds the tickets not yet used and the sessions open.
type sessions struct {
	now func() time.Time

	mu       sync.Mutex // guards the maps
	tickets  map[string]credential
	sessions map[string]*session
}

func newSessions(now func() time.Time) *sessions {
	return &sessions{now: now, tickets: map[string]credential{}, sessions: map[string]*session{}}
}

// secret is 32 random bytes, URL-safe base64.
func secret() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ticket makes a ticket for token.
func (s *sessions) ticket(token string) (string, time.Time) {
	now := s.now()
	t := secret()
	s.mu.Lock()
	defer s.mu.Unlock()
	prune(s.tickets, now, maxTickets, func(c credential) time.Time { return c.expires })
	s.tickets[t] = credential{token: token, expires: now.Add(TicketTTL)}
	return t, now.Add(TicketTTL)
}

var errTicket = errors.New("this sign-in link was used already, has expired or was never issued: run `staydown console --dir D` for a new one")

// redeem uses ticket t up and opens a session: its id and CSRF token.
func (s *sessions) redeem(t string) (string, *session, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.tickets[t]
	delete(s.tickets, t)
	if !ok || !now.Before(c.expires) {
		return "", nil, errTicket
	}
	prune(s.sessions, now, maxSessions, func(c *session) time.Time { return c.expires })
	id := secret()
	se := &session{credential: credential{token: c.token, expires: now.Add(SessionTTL)}, csrf: secret()}
	s.sessions[id] = se
	return id, se, nil
}

// get is the session of id, if it is open.
func (s *sessions) get(id string) (*session, bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	se, ok := s.sessions[id]
	if ok && !now.Before(se.expires) {
		delete(s.sessions, id)
		return nil, false
	}
	return se, ok
}

// setFlash keeps msg for the next page of session id.
func (s *sessions) setFlash(id, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if se, ok := s.sessions[id]; ok {
		se.flash = msg
	}
}

// takeFlash is the message kept for session id, once.
func (s *sessions) takeFlash(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	se, ok := s.sessions[id]
	if !ok {
		return ""
	}
	msg := se.flash
	se.flash = ""
	return msg
}

func (s *sessions) end(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, id)
}

// prune drops the expired entries of m, then the soonest to expire until
// there is room for one more under limit.
func prune[V any](m map[string]V, now time.Time, limit int, expires func(V) time.Time) {
	for k, v := range m {
		if !now.Before(expires(v)) {
			delete(m, k)
		}
	}
	for len(m) >= limit {
		var first string
		var at time.Time
		for k, v := range m {
			if e := expires(v); first == "" || e.Before(at) {
				first, at = k, e
			}
		}
		delete(m, first)
	}
}

// user is who a request comes from: the session and what its token may do.
type user struct {
	id    string
	s     *session
	scope tokens.Scope
}

// can reports whether the user's token allows need.
func (u *user) can(need tokens.Scope) bool { return u.scope.Allows(need) }

// csrfOK reports whether the form token of r is the session's.
func (u *user) csrfOK(r *http.Request) bool {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		// A file: kept in memory up to 1 MiB, the rest in a temporary
		// file (removed when the request ends).
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			return false
		}
	}
	got := r.PostFormValue("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(u.s.csrf)) == 1
}
