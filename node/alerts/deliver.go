package alerts

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Delivery bounds.
const (
	// QueueSize is how many alerts a hook's queue holds; when full, the
	// oldest is dropped.
	QueueSize = 256
	// MaxTries is how often an alert is tried before it is given up.
	MaxTries = 5
	// FirstBackoff is the wait after the first failure; each next wait
	// doubles (10 s, 20 s, 40 s, 80 s).
	FirstBackoff = 10 * time.Second
	// sendTimeout bounds one try.
	sendTimeout = 30 * time.Second
)

// sink is one hook.
type sink interface {
	name() string
	send(ctx context.Context, e Event) error
}

// permanentError is a failure that trying again will not mend.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return permanentError{err} }

// hook is a sink with its queue; run delivers what the queue holds, in
// order, one alert at a time.
type hook struct {
	sink  sink
	log   *slog.Logger
	after func(time.Duration) <-chan time.Time
	// result, when set, is told of each alert's outcome (metrics).
	result func(sink string, delivered bool)

	mu    sync.Mutex // guards items
	items []Event
	ring  chan struct{} // buffered 1: items were added
}

func newHook(s sink, log *slog.Logger, after func(time.Duration) <-chan time.Time, result func(string, bool)) *hook {
	return &hook{sink: s, log: log, after: after, result: result, ring: make(chan struct{}, 1)}
}

// push queues e without blocking, dropping the oldest alert when the
// queue is full.
func (h *hook) push(e Event) {
	h.mu.Lock()
	if len(h.items) >= QueueSize {
		old := h.items[0]
		h.items = h.items[1:]
		h.log.Warn("alert queue full: dropped the oldest alert", "hook", h.sink.name(), "event", old.Event, "notice", old.Notice, "queue", QueueSize)
		if h.result != nil {
			h.result(h.sink.name(), false)
		}
	}
	h.items = append(h.items, e)
	h.mu.Unlock()
	select {
	case h.ring <- struct{}{}:
	default:
	}
}

func (h *hook) pop() (Event, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.items) == 0 {
		return Event{}, false
	}
	e := h.items[0]
	h.items = h.items[1:]
	return e, true
}

// run delivers queued alerts until ctx ends.
func (h *hook) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.ring:
		}
		for e, ok := h.pop(); ok && ctx.Err() == nil; e, ok = h.pop() {
			h.deliver(ctx, e)
		}
	}
}

// deliver tries e up to MaxTries times, waiting FirstBackoff, then twice
// as long, between tries.
func (h *hook) deliver(ctx context.Context, e Event) {
	wait := FirstBackoff
	for try := 1; ; try++ {
		tctx, cancel := context.WithTimeout(ctx, sendTimeout)
		err := h.sink.send(tctx, e)
		cancel()
		args := []any{"hook", h.sink.name(), "event", e.Event, "notice", e.Notice, "try", try}
		var perm permanentError
		switch {
		case err == nil:
			h.log.Info("alert delivered", args...)
			if h.result != nil {
				h.result(h.sink.name(), true)
			}
			return
		case ctx.Err() != nil:
			return
		case errors.As(err, &perm), try == MaxTries:
			h.log.Error("alert not delivered: given up", append(args, "err", err)...)
			if h.result != nil {
				h.result(h.sink.name(), false)
			}
			return
		}
		h.log.Warn("alert delivery failed: trying again", append(args, "err", err, "in", wait)...)
		select {
		case <-ctx.Done():
			return
		case <-h.after(wait):
		}
		wait *= 2
	}
}
