package node

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/staydown/staydown/store"
)

// metrics are per node (one registry each), so that several nodes can run
// in one process, as the in-process tests do.
type metrics struct {
	reg           *prometheus.Registry
	applied       prometheus.Counter
	published     prometheus.Counter
	ignored       prometheus.Counter
	rejected      *prometheus.CounterVec
	equivocations prometheus.Counter
	void          prometheus.Counter
	pending       prometheus.Gauge
	synced        prometheus.Counter
	syncForged    prometheus.Counter
	applySeconds  prometheus.Histogram
	meshRepairs   prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		applied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "staydown_entries_applied_total", Help: "Entries received from peers and stored.",
		}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "staydown_entries_published_total", Help: "Entries this node authored, stored and published.",
		}),
		ignored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "staydown_entries_ignored_total", Help: "Entries received that were already stored.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "staydown_entries_rejected_total", Help: "Entries received and refused, by reason.",
		}, []string{"reason"}),
		equivocations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "staydown_equivocations_total", Help: "Conflicting entries (same author and seq) kept as evidence.",
		}),
		void: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "staydown_entries_void_total", Help: "Entries stored without effect because they break a stateful rule of their log.",
		}),
		synced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "staydown_entries_synced_total", Help: "Entries fetched from peers by the sync protocol and stored.",
		}),
		syncForged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "staydown_sync_forged_total", Help: "Sync sessions in which a peer served forged or malformed data (the peer was cut off).",
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "staydown_entries_pending", Help: "Entries received before their predecessor, waiting.",
		}),
		applySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "staydown_apply_batch_seconds", Help: "Time to apply one batch of received entries.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		meshRepairs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "staydown_gossip_reconnects_total", Help: "Members' nodes reconnected because they stayed connected but off the entries topic (their gossip stream died).",
		}),
	}
	m.reg.MustRegister(m.applied, m.published, m.ignored, m.rejected, m.equivocations, m.void, m.pending, m.synced, m.syncForged, m.applySeconds, m.meshRepairs,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// count counts a result of the writer by its outcome (applied and
// published entries are counted by Node.stored).
func (m *metrics) count(o store.Outcome) {
	switch o {
	case store.Duplicate:
		m.ignored.Inc()
	case store.Equivocation:
		m.equivocations.Inc()
	case store.Void:
		m.void.Inc()
	case store.Rejected:
		m.rejected.WithLabelValues("chain").Inc()
	}
}
