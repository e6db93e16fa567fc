package notices

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/staydown/staydown/protocol"
)

// DueSoon is how long before its deadline a notice counts as due soon
// (staydown_notices_due_soon).
const DueSoon = 15 * time.Minute

// collector reports the notice book's notices by state at each scrape, on
// the node's clock: those addressed to this node (box "received": what it
// must act on) and those it issued (box "sent").
type collector struct {
	n                  *Notices
	open, due, overdue *prometheus.Desc
}

func newCollector(n *Notices) *collector {
	box := []string{"box"}
	return &collector{n: n,
		open: prometheus.NewDesc("staydown_notices_open", "Notices not final and not overdue (open, acknowledged, clarification requested).", box, nil),
		due: prometheus.NewDesc("staydown_notices_due_soon",
			"Open or acknowledged notices whose deadline is at most 15 minutes away.", box, nil),
		overdue: prometheus.NewDesc("staydown_notices_overdue", "Notices past their deadline with no action.", box, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.open
	ch <- c.due
	ch <- c.overdue
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counts := c.n.counts(c.n.d.Now())
	for i, box := range []string{"received", "sent"} {
		ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(counts[i].open), box)
		ch <- prometheus.MustNewConstMetric(c.due, prometheus.GaugeValue, float64(counts[i].due), box)
		ch <- prometheus.MustNewConstMetric(c.overdue, prometheus.GaugeValue, float64(counts[i].overdue), box)
	}
}

// boxCounts are one box's notices by state.
type boxCounts struct{ open, due, overdue int }

// counts are the received [0] and sent [1] notices by state at now.
func (n *Notices) counts(now time.Time) [2]boxCounts {
	var out [2]boxCounts
	me := n.d.Self().AuthorKey
	nowMs := now.UnixMilli()
	n.book.mu.RLock()
	defer n.book.mu.RUnlock()
	for _, e := range n.book.m {
		for i, mine := range []bool{e.to == me, e.from == me} {
			if !mine {
				continue
			}
			switch st := e.st.At(nowMs); st {
			case protocol.NoticeOverdue:
				out[i].overdue++
			case protocol.NoticeOpen, protocol.NoticeAcknowledged, protocol.NoticeClarificationRequested:
				out[i].open++
				if st != protocol.NoticeClarificationRequested && e.st.DeadlineMs-nowMs <= DueSoon.Milliseconds() {
					out[i].due++
				}
			}
		}
	}
	return out
}
