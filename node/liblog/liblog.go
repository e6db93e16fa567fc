// Package liblog routes the logs of the libraries the node uses through
// the node's own slog handler, so that an operator has one log, in one
// format, at one place: go-libp2p logs through its gologshim package
// (slog loggers per subsystem, which by default write to stderr directly
// at GOLOG_LOG_LEVEL), and go-libp2p-pubsub through the logger it is given
// (Pubsub). Only records at MinLevel and above pass: the libraries'
// INFO and DEBUG lines are about their internals. Each record carries its
// subsystem as "logger" (gologshim's key: "swarm2", "pubsub", ...).
//
// gologshim's handler is the process's, and each of its loggers fixes
// its handler at its first line, so the routing is installed once, when
// this package is initialised (before anything logs), and Route chooses
// where it goes: in a process that runs several nodes (tests), the node
// started last.
package liblog

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/gologshim"
)

// MinLevel is the lowest level of a library's record that reaches the
// node's log.
const MinLevel = slog.LevelWarn

func init() {
	gologshim.SetDefaultHandler(bridge{})
}

var target atomic.Pointer[slog.Handler]

// Route sends the libraries' records to h from now on. Until the first
// Route they are dropped.
func Route(h slog.Handler) { target.Store(&h) }

// Pubsub is the logger to give go-libp2p-pubsub (pubsub.WithLogger): log's
// handler, at MinLevel and above, with logger=pubsub.
func Pubsub(log *slog.Logger) *slog.Logger {
	return slog.New(minLevel{log.Handler().WithAttrs([]slog.Attr{slog.String("logger", "pubsub")})})
}

// minLevel passes the records at MinLevel and above to its handler.
type minLevel struct{ slog.Handler }

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= MinLevel && m.Handler.Enabled(ctx, l)
}
func (m minLevel) WithAttrs(as []slog.Attr) slog.Handler { return minLevel{m.Handler.WithAttrs(as)} }
func (m minLevel) WithGroup(g string) slog.Handler       { return minLevel{m.Handler.WithGroup(g)} }

// bridge is gologshim's handler: it hands each record to the handler
// Route chose, with the attributes and groups gologshim's loggers added
// (replayed in order on the target when the record is handled, since the
// target may change after a logger was made).
type bridge struct {
	with []func(slog.Handler) slog.Handler
}

func (b bridge) handler() slog.Handler {
	p := target.Load()
	if p == nil {
		return nil
	}
	h := *p
	for _, w := range b.with {
		h = w(h)
	}
	return h
}

func (b bridge) Enabled(ctx context.Context, l slog.Level) bool {
	p := target.Load()
	return l >= MinLevel && p != nil && (*p).Enabled(ctx, l)
}

func (b bridge) Handle(ctx context.Context, r slog.Record) error {
	if h := b.handler(); h != nil {
		return h.Handle(ctx, r)
	}
	return nil
}

func (b bridge) WithAttrs(as []slog.Attr) slog.Handler {
	return bridge{with: append(b.with[:len(b.with):len(b.with)], func(h slog.Handler) slog.Handler { return h.WithAttrs(as) })}
}

func (b bridge) WithGroup(g string) slog.Handler {
	return bridge{with: append(b.with[:len(b.with):len(b.with)], func(h slog.Handler) slog.Handler { return h.WithGroup(g) })}
}
