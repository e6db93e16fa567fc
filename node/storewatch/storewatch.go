// Package storewatch tells the operator when the node's store cannot
// write for lack of room (store.ErrNoSpace: a full disk, a quota, a
// file-size limit) and when it can again: a WARN line at most once a
// minute while writes fail (with the count of failures not logged), an
// INFO line when a write commits again, the store_writable status field
// and the staydown_store_writable gauge (both read store.Writable). While
// the store cannot write it probes it now and then, so that an idle node
// notices the room freed without waiting for a write.
//
// The writes themselves are the writer's, the API's and the local
// tables'; what fails is not lost here (see node/writer: nothing that
// failed was acknowledged, and sync fetches again what gossip brought).
package storewatch

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/staydown/staydown/node/ratelog"
	"github.com/staydown/staydown/store"
)

// LogEvery is how often a store that cannot write is logged at most;
// ProbeEvery how often it is probed while it cannot write.
const (
	LogEvery   = time.Minute
	ProbeEvery = 15 * time.Second
)

// Watch watches one store.
type Watch struct {
	store *store.Store
	log   *slog.Logger
	now   func() time.Time
	after func(time.Duration) <-chan time.Time
	lines *ratelog.Limiter[string]
	mu    sync.Mutex
	// failed counts the failures since the store last wrote.
	failed int
}

// New watches s (store.WatchWrites: call it before anything writes), on
// the node's clock and timers, and registers the store's gauge and
// failure counter in reg.
func New(s *store.Store, reg prometheus.Registerer, log *slog.Logger, now func() time.Time, after func(time.Duration) <-chan time.Time) *Watch {
	w := &Watch{store: s, log: log, now: now, after: after, lines: ratelog.New[string](LogEvery, now)}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "staydown_store_writable",
			Help: "1 if the store's last write committed, 0 if it failed for lack of room (disk full, quota, file-size limit).",
		}, func() float64 {
			if s.Writable() {
				return 1
			}
			return 0
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "staydown_store_nospace_failures_total",
			Help: "Store writes that failed for lack of room.",
		}, func() float64 { return float64(s.NoSpaceFailures()) }))
	s.WatchWrites(w.wrote)
	return w
}

// wrote is told of each write that failed for lack of room, and of the
// first that committed after (err nil).
func (w *Watch) wrote(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err == nil {
		w.log.Info("store can write again", "failed_writes", w.failed)
		w.failed = 0
		return
	}
	w.failed++
	// "dropped" counts the failures between two lines.
	w.lines.Log(w.log, slog.LevelWarn, "store", "store cannot write: no space (disk full, quota or file-size limit); "+
		"API writes answer 507 and entries from peers wait on them until space is freed", "err", err)
}

// Run probes the store every ProbeEvery while it cannot write, until ctx
// ends. A store that can write is not probed: the next real write finds
// out.
func (w *Watch) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.after(ProbeEvery):
			if !w.store.Writable() {
				_ = w.store.Probe(w.now()) // its failure is logged by wrote, rate-limited
			}
		}
	}
}
