package node

import (
	"sync"

	"github.com/staydown/staydown/protocol"
)

// feed fans out every entry the node stores (its own and received ones) to
// subscribers. A subscriber that does not keep up misses entries rather
// than slowing the apply loop: the store remains the source of truth.
type feed struct {
	mu   sync.Mutex // guards subs
	subs map[chan *protocol.Entry]struct{}
}

// Subscribe returns a channel of entries stored from now on (buffered,
// lossy when full) and a function that ends the subscription.
func (n *Node) Subscribe(buffer int) (<-chan *protocol.Entry, func()) {
	ch := make(chan *protocol.Entry, buffer)
	n.feed.mu.Lock()
	if n.feed.subs == nil {
		n.feed.subs = map[chan *protocol.Entry]struct{}{}
	}
	n.feed.subs[ch] = struct{}{}
	n.feed.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			n.feed.mu.Lock()
			delete(n.feed.subs, ch)
			n.feed.mu.Unlock()
		})
	}
}

func (f *feed) publish(e *protocol.Entry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		select {
		case ch <- e:
		default:
		}
	}
}
