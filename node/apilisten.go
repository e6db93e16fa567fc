package node

import (
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/staydown/staydown/node/ratelog"
)

// Caps on the API's connections (limitConns). A browser opens six
// connections to a host; an upload pipeline a few dozen.
const (
	apiConnsPerClient = 64
	apiConns          = 512
)

// limitConns caps the connections the API holds open: at most perClient
// from one remote IP address and total in all. A connection over a cap is
// closed as soon as it is accepted, so that one client cannot take every
// file descriptor the node has (libp2p needs them too) and the others
// keep being served. Refusals are logged at most once a minute, with
// the count of those dropped between.
func limitConns(ln net.Listener, perClient, total int, log *slog.Logger) net.Listener {
	return &limitListener{Listener: ln, perClient: perClient, total: total, log: log, open: map[string]int{},
		refusals: ratelog.New[struct{}](time.Minute, time.Now)}
}

type limitListener struct {
	net.Listener
	perClient, total int
	log              *slog.Logger

	// refusals limits the lines of refused connections to one a minute
	// (one key for all: a client opening connections in a loop, from
	// many addresses, must not flood the log).
	refusals *ratelog.Limiter[struct{}]

	mu   sync.Mutex     // guards the fields below
	open map[string]int // connections open, by remote IP
	all  int            // connections open
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host := c.RemoteAddr().String()
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if l.admit(host) {
			return &limitedConn{Conn: c, release: sync.OnceFunc(func() { l.release(host) })}, nil
		}
		c.Close()
	}
}

// admit counts a connection from host in, or refuses it.
func (l *limitListener) admit(host string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[host] < l.perClient && l.all < l.total {
		l.open[host]++
		l.all++
		return true
	}
	l.refusals.Log(l.log, slog.LevelWarn, struct{}{}, "api connection refused: over the cap on connections", "client", host,
		"client_open", l.open[host], "per_client_cap", l.perClient, "open", l.all, "cap", l.total)
	return false
}

func (l *limitListener) release(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[host]--; l.open[host] <= 0 {
		delete(l.open, host)
	}
	l.all--
}

// limitedConn gives its place back when it is closed (once, however
// often Close is called).
type limitedConn struct {
	net.Conn
	release func()
}

func (c *limitedConn) Close() error {
	c.release()
	return c.Conn.Close()
}
