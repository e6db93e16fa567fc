package alerts

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/node/notices"
	"github.com/staydown/staydown/protocol"
)

// ScanEvery is how often the clock's alerts are looked for, besides
// after every notice, update or reply stored.
const ScanEvery = 15 * time.Second

// Book is what the alerts read of the node's notices (notices.Notices).
type Book interface {
	Pending(id protocol.ID) (notices.Pending, bool)
	Alertable(nowMs int64) []notices.Pending
}

// Record keeps the clock's alerts raised (store.Store's NoticeAlerts).
type Record interface {
	NoticeAlerts() (map[protocol.ID]uint8, error)
	SetNoticeAlerts(map[protocol.ID]uint8) error
}

// Deps are what Alerts needs of its node.
type Deps struct {
	Hooks   config.Alerts
	Notices Book
	Record  Record
	// Self is this node's member (its name and current key).
	Self  func() protocol.Member
	Names func(protocol.AuthorKey) string
	// Now and After are the node's clock and timers.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
	Log   *slog.Logger
	// Reg takes staydown_notice_alerts_total; nil: none.
	Reg prometheus.Registerer
}

// Alerts raises notice alerts and hands them to the hooks. Stored is the
// writer's; Check and Run may run beside it.
type Alerts struct {
	d     Deps
	hooks []*hook
	kick  chan struct{} // buffered 1: look for the clock's alerts now

	mu   sync.Mutex // guards sent, and serialises Check
	sent map[protocol.ID]uint8
}

// New makes the hooks of d.Hooks and reads the record of alerts raised.
// With no hooks configured it returns nil, and a nil *Alerts does
// nothing.
func New(d Deps) (*Alerts, error) {
	if len(d.Hooks.Webhooks) == 0 && d.Hooks.Email == nil {
		return nil, nil
	}
	sent, err := d.Record.NoticeAlerts()
	if err != nil {
		return nil, fmt.Errorf("notice alerts: %w", err)
	}
	a := &Alerts{d: d, sent: sent, kick: make(chan struct{}, 1)}
	var result func(string, bool)
	if d.Reg != nil {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "staydown_notice_alerts_total",
			Help: "Notice alerts by hook and result: delivered, or failed (given up after retries, or dropped from a full queue)."},
			[]string{"hook", "result"})
		d.Reg.MustRegister(c)
		result = func(hook string, ok bool) {
			c.WithLabelValues(hook, map[bool]string{true: "delivered", false: "failed"}[ok]).Inc()
		}
	}
	var sinks []sink
	for _, w := range d.Hooks.Webhooks {
		sinks = append(sinks, newWebhook(w, d.Now))
	}
	if d.Hooks.Email != nil {
		sinks = append(sinks, newEmail(*d.Hooks.Email, d.Now))
	}
	for _, s := range sinks {
		a.hooks = append(a.hooks, newHook(s, d.Log, d.After, result))
	}
	return a, nil
}

// Run delivers alerts and looks for the clock's alerts every ScanEvery
// and when kicked, until ctx ends.
func (a *Alerts) Run(ctx context.Context) {
	if a == nil {
		return
	}
	var wg sync.WaitGroup
	for _, h := range a.hooks {
		wg.Add(1)
		go func() { defer wg.Done(); h.run(ctx) }()
	}
	defer wg.Wait()
	for {
		a.Check()
		select {
		case <-ctx.Done():
			return
		case <-a.kick:
		case <-a.d.After(ScanEvery):
		}
	}
}

// Stored raises the arrival alerts of an entry now stored: a notice to
// this node, a reply to one of its notices. The notice book has it
// already (notices.Notices.Stored ran first). It never blocks.
func (a *Alerts) Stored(e *protocol.Entry) {
	if a == nil {
		return
	}
	me := a.d.Self().AuthorKey
	switch {
	case e.Body.GetNotice() != nil:
		p, ok := a.d.Notices.Pending(e.ID)
		if !ok || p.To != me || final(p.Status.At(a.d.Now().UnixMilli())) {
			return
		}
		a.raise(a.event(Received, p))
		a.wake()
	case e.Body.GetNoticeReply() != nil:
		r := e.Body.GetNoticeReply()
		id, err := protocol.IDFromBytes(r.Notice)
		if err != nil {
			return
		}
		p, ok := a.d.Notices.Pending(id)
		if !ok || p.From != me || p.To != e.Author {
			return
		}
		ev := a.event(Replied, p)
		ev.Reply, ev.ReplyID = protocol.ReplyStatuses[r.Status], e.ID.String()
		a.raise(ev)
	case e.Body.GetNoticeUpdate() != nil:
		a.wake() // a new deadline may be close
	}
}

func (a *Alerts) wake() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Check raises the clock's alerts due now that were not raised before:
// due-soon and overdue of the notices addressed to this node, overdue of
// those it issued. It records them in the store before it sends them, and
// drops from the record the notices that are no longer open.
func (a *Alerts) Check() {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.d.Now().UnixMilli()
	me := a.d.Self().AuthorKey
	next := map[protocol.ID]uint8{}
	var raise []Event
	for _, p := range a.d.Notices.Alertable(now) {
		sent := a.sent[p.ID]
		k := Kind("")
		switch st := p.Status.At(now); {
		case st == protocol.NoticeOverdue:
			k = Overdue
		case p.To == me && st != protocol.NoticeClarificationRequested && p.Status.DeadlineMs-now <= notices.DueSoon.Milliseconds():
			k = DueSoon
		}
		if k != "" && sent&k.bit() == 0 {
			sent |= k.bit()
			raise = append(raise, a.event(k, p))
		}
		if sent != 0 {
			next[p.ID] = sent
		}
	}
	if !maps.Equal(next, a.sent) {
		// Recorded before it is sent: at most once, across restarts.
		if err := a.d.Record.SetNoticeAlerts(next); err != nil {
			a.d.Log.Error("recording the notice alerts raised; after a restart they may be raised again", "err", err)
		}
		a.sent = next
	}
	for _, e := range raise {
		a.raise(e)
	}
}

// event is an alert of kind k about p, as the notice stands now.
func (a *Alerts) event(k Kind, p notices.Pending) Event {
	now := a.d.Now()
	e := Event{Event: k, Node: a.d.Self().Name, Notice: p.ID.String(), From: a.d.Names(p.From), To: a.d.Names(p.To),
		Status: string(p.Status.At(now.UnixMilli())), Category: p.Category, Order: p.Order, Time: formatTime(now)}
	if p.Status.DeadlineMs != 0 {
		e.Deadline = formatTime(time.UnixMilli(p.Status.DeadlineMs))
	}
	return e
}

// raise hands e to every hook, and logs it.
func (a *Alerts) raise(e Event) {
	a.d.Log.Info("notice alert raised", "event", e.Event, "notice", e.Notice, "from", e.From, "to", e.To, "deadline", e.Deadline, "hooks", len(a.hooks))
	for _, h := range a.hooks {
		h.push(e)
	}
}

func final(s protocol.NoticeState) bool {
	return s == protocol.NoticeActioned || s == protocol.NoticeNotExecuted || s == protocol.NoticeWithdrawn
}
