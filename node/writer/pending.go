package writer

import "github.com/staydown/staydown/protocol"

// pendingEntries buffers entries that arrived before their predecessor,
// bounded in count. Only the writer touches it, except len.
type pendingEntries struct {
	max int
	m   map[protocol.AuthorKey]map[uint64]*protocol.Entry
	n   int
}

func newPending(max int) *pendingEntries {
	return &pendingEntries{max: max, m: map[protocol.AuthorKey]map[uint64]*protocol.Entry{}}
}

func (p *pendingEntries) put(e *protocol.Entry) bool {
	byseq := p.m[e.Author]
	if byseq == nil {
		byseq = map[uint64]*protocol.Entry{}
		p.m[e.Author] = byseq
	}
	if _, dup := byseq[e.Seq()]; dup {
		return true
	}
	if p.n >= p.max {
		return false
	}
	byseq[e.Seq()] = e
	p.n++
	return true
}

func (p *pendingEntries) take(a protocol.AuthorKey, seq uint64) *protocol.Entry {
	e := p.m[a][seq]
	if e != nil {
		delete(p.m[a], seq)
		p.n--
	}
	return e
}

func (p *pendingEntries) len() int { return p.n }
