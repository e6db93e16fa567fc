package writer

import (
	"bytes"
	"cmp"
	"slices"
	"time"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/replica"
)

// The out-of-order buffer's bounds. Gossip reorders entries published
// close together; what waits longer than maxPendingAge, or beyond the
// bounds, is dropped, and sync fetches it in order. A member that sends
// entries ahead of its log (validly signed, never followed by their
// predecessors) can hold at most replica.MaxGap entries, maxPendingAge
// long, and all members together maxPending entries or
// maxPendingBytes.
const (
	maxPending      = 10000
	maxPendingBytes = 64 << 20
	maxPendingAge   = time.Minute
)

// pendingEntries buffers entries that arrived before their predecessor,
// bounded in count (in all and per author), in bytes and in age. Only the
// writer touches it.
type pendingEntries struct {
	max, maxBytes int
	maxAge        time.Duration
	m             map[protocol.AuthorKey]map[uint64]*protocol.Entry
	n, bytes      int
	// queue holds the entries in the order they were put, with when, for
	// expiry; an entry taken stays in it until it reaches the front.
	queue []pendingAt
}

type pendingAt struct {
	e  *protocol.Entry
	at time.Time
}

func newPending(max, maxBytes int, maxAge time.Duration) *pendingEntries {
	return &pendingEntries{max: max, maxBytes: maxBytes, maxAge: maxAge, m: map[protocol.AuthorKey]map[uint64]*protocol.Entry{}}
}

// put holds e, put at now, unless a bound refuses it; it reports whether
// e is held.
func (p *pendingEntries) put(e *protocol.Entry, now time.Time) bool {
	byseq := p.m[e.Author]
	if _, dup := byseq[e.Seq()]; dup {
		return true
	}
	if p.n >= p.max || p.bytes+len(e.Raw) > p.maxBytes || len(byseq) >= replica.MaxGap {
		return false
	}
	if byseq == nil {
		byseq = map[uint64]*protocol.Entry{}
		p.m[e.Author] = byseq
	}
	byseq[e.Seq()] = e
	p.n++
	p.bytes += len(e.Raw)
	p.queue = append(p.queue, pendingAt{e, now})
	return true
}

func (p *pendingEntries) take(a protocol.AuthorKey, seq uint64) *protocol.Entry {
	e := p.m[a][seq]
	if e != nil {
		p.remove(e)
	}
	return e
}

func (p *pendingEntries) remove(e *protocol.Entry) {
	byseq := p.m[e.Author]
	delete(byseq, e.Seq())
	if len(byseq) == 0 {
		delete(p.m, e.Author)
	}
	p.n--
	p.bytes -= len(e.Raw)
}

// expire drops the entries held longer than maxAge at now, and returns
// how many.
func (p *pendingEntries) expire(now time.Time) int {
	dropped := 0
	for len(p.queue) > 0 {
		q := p.queue[0]
		if held := p.m[q.e.Author][q.e.Seq()]; held != q.e {
			p.queue = p.queue[1:] // taken already
			continue
		}
		if now.Sub(q.at) <= p.maxAge {
			break
		}
		p.remove(q.e)
		p.queue = p.queue[1:]
		dropped++
	}
	if len(p.queue) == 0 {
		p.queue = nil // let the backing array go
	}
	return dropped
}

func (p *pendingEntries) len() int { return p.n }

// all takes every entry held, in log order of each author.
func (p *pendingEntries) all() []*protocol.Entry {
	var out []*protocol.Entry
	for _, byseq := range p.m {
		for _, e := range byseq {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b *protocol.Entry) int {
		return cmp.Or(bytes.Compare(a.Author[:], b.Author[:]), cmp.Compare(a.Seq(), b.Seq()))
	})
	for _, e := range out {
		p.remove(e)
	}
	return out
}
