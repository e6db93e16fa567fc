package notices

import (
	"errors"
	"math"
	"sync"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/store"
)

// noticeBook keeps, in memory, each stored notice's parties and its
// lifecycle without the clock (protocol.NoticeLifecycle at the start of
// time), so that an inbox of thousands of notices is filtered without
// reading the store: NoticeStatus.At gives the state at any time. It is built from the store at start-up
// and told of every notice, update and reply stored since; each recomputes
// its thread from the store, so the book always equals the logs.
//
// Opened sealed details are cached too, on first use: the node's own
// recipients' plaintext, held in the memory of the node that can decrypt
// it anyway.
type noticeBook struct {
	mu sync.RWMutex
	m  map[protocol.ID]*bookEntry
}

type bookEntry struct {
	from, to protocol.AuthorKey
	st       protocol.NoticeStatus // without the clock: never overdue
	category string                // the notice's label, formatted
	order    bool                  // a binding removal order
	details  *Details              // opened, once asked for
	opened   bool
}

// timeless is the time the book computes lifecycles at: before every
// deadline, so nothing is overdue.
const timeless = math.MinInt64

func newNoticeBook(st *store.Store) (*noticeBook, error) {
	b := &noticeBook{m: map[protocol.ID]*bookEntry{}}
	err := st.Notices(func(t store.NoticeThread) error {
		b.put(t)
		return nil
	})
	return b, err
}

func (b *noticeBook) put(t store.NoticeThread) {
	n := t.Notice.Body.GetNotice()
	e := &bookEntry{from: t.Notice.Author, to: protocol.AuthorKey(n.Addressee),
		st:       protocol.NoticeLifecycle(t.Notice, t.Updates, t.Replies, timeless),
		category: protocol.FormatLabel(n.Category), order: n.Binding}
	b.mu.Lock()
	if old, ok := b.m[t.Notice.ID]; ok {
		e.details, e.opened = old.details, old.opened
	}
	b.m[t.Notice.ID] = e
	b.mu.Unlock()
}

// stored updates the book for an entry now in its log, whose effect
// (replica.Effect.Thread) names the thread it changed, if any. Only the
// writer calls it, after the commit, in commit order: the thread it reads
// is the newest.
func (b *noticeBook) stored(st *store.Store, thread *protocol.ID) error {
	if thread == nil {
		return nil
	}
	t, err := st.Notice(*thread)
	if errors.Is(err, store.ErrNotFound) {
		// A reply or update before its notice: the notice's own arrival
		// computes the thread.
		return nil
	}
	if err != nil {
		return err
	}
	b.put(t)
	return nil
}

// selectIDs returns the ids of the notices that keep says to keep.
func (b *noticeBook) selectIDs(keep func(id protocol.ID, from, to protocol.AuthorKey, st protocol.NoticeStatus) bool) []protocol.ID {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var out []protocol.ID
	for id, e := range b.m {
		if keep(id, e.from, e.to, e.st) {
			out = append(out, id)
		}
	}
	return out
}

// details returns the notice's opened details, opening them with open on
// first use.
func (b *noticeBook) details(id protocol.ID, open func() *Details) *Details {
	b.mu.RLock()
	e, ok := b.m[id]
	if ok && e.opened {
		d := e.details
		b.mu.RUnlock()
		return d
	}
	b.mu.RUnlock()
	d := open()
	if ok {
		b.mu.Lock()
		e.details, e.opened = d, true
		b.mu.Unlock()
	}
	return d
}

// Booked is what the notice book holds for notice id: its lifecycle
// without the clock (protocol.NoticeLifecycle at math.MinInt64), which
// must equal the store's thread once the writer has reported every
// entry of it.
func (n *Notices) Booked(id protocol.ID) (protocol.NoticeStatus, bool) {
	n.book.mu.RLock()
	defer n.book.mu.RUnlock()
	e, ok := n.book.m[id]
	if !ok {
		return protocol.NoticeStatus{}, false
	}
	return e.st, true
}

// Pending is a notice as the alert hooks see it (node/alerts): its
// parties, what it is, and its lifecycle without the clock (Status.At
// gives its state at any time).
type Pending struct {
	ID       protocol.ID
	From, To protocol.AuthorKey
	Category string
	Order    bool
	Status   protocol.NoticeStatus
}

// Pending returns the booked notice id.
func (n *Notices) Pending(id protocol.ID) (Pending, bool) {
	n.book.mu.RLock()
	defer n.book.mu.RUnlock()
	e, ok := n.book.m[id]
	if !ok {
		return Pending{}, false
	}
	return e.pending(id), true
}

// Alertable returns the notices addressed to or issued by this node that
// are not final at nowMs (open, acknowledged, clarification requested
// or overdue), in no order.
func (n *Notices) Alertable(nowMs int64) []Pending {
	me := n.d.Self().AuthorKey
	n.book.mu.RLock()
	defer n.book.mu.RUnlock()
	var out []Pending
	for id, e := range n.book.m {
		if e.to != me && e.from != me {
			continue
		}
		switch e.st.At(nowMs) {
		case protocol.NoticeActioned, protocol.NoticeNotExecuted, protocol.NoticeWithdrawn:
			continue
		}
		out = append(out, e.pending(id))
	}
	return out
}

func (e *bookEntry) pending(id protocol.ID) Pending {
	return Pending{ID: id, From: e.from, To: e.to, Category: e.category, Order: e.order, Status: e.st}
}
