// Package ratelog bounds log lines that someone else can trigger at will:
// a peer's bad handshakes, gossip messages or sync streams, a full disk
// failing every write. A line for a key (a peer, an author, "store") is
// logged at most once per period; the lines between are counted, and the
// count is logged with the next line that passes, as "dropped". The node's
// parts each keep their own Limiter; nothing here is global.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// MaxKeys bounds the keys a Limiter remembers: past it, keys whose last
// line is a period old are forgotten, and if none is, a new key's lines
// are dropped uncounted (a flood of distinct keys, each logged once, would
// be a flood too).
const MaxKeys = 1024

// Limiter lets one line per key and period pass. Safe for concurrent use.
type Limiter[K comparable] struct {
	every time.Duration
	now   func() time.Time
	mu    sync.Mutex
	keys  map[K]*slot
}

type slot struct {
	logged  time.Time
	dropped int
}

// New makes a Limiter that lets a key's line pass once every period, on
// the clock now (the node's: simulated in tests).
func New[K comparable](every time.Duration, now func() time.Time) *Limiter[K] {
	return &Limiter[K]{every: every, now: now, keys: map[K]*slot{}}
}

// Allow reports whether a line for key may be logged now, and how many
// lines for key were dropped since the last that passed.
func (l *Limiter[K]) Allow(key K) (ok bool, dropped int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	s := l.keys[key]
	if s == nil {
		if len(l.keys) >= MaxKeys {
			for k, old := range l.keys {
				if now.Sub(old.logged) >= l.every {
					delete(l.keys, k)
				}
			}
			if len(l.keys) >= MaxKeys {
				return false, 0
			}
		}
		l.keys[key] = &slot{logged: now}
		return true, 0
	}
	if now.Sub(s.logged) < l.every {
		s.dropped++
		return false, 0
	}
	dropped = s.dropped
	s.logged, s.dropped = now, 0
	return true, dropped
}

// Log logs msg with args at level through log if key's line may pass now,
// adding "dropped" (the lines of key dropped since the last) when some
// were. A level log does not print is not counted as a line.
func (l *Limiter[K]) Log(log *slog.Logger, level slog.Level, key K, msg string, args ...any) {
	if !log.Enabled(context.Background(), level) {
		return
	}
	ok, dropped := l.Allow(key)
	if !ok {
		return
	}
	if dropped > 0 {
		args = append(args, "dropped", dropped)
	}
	log.Log(context.Background(), level, msg, args...)
}
