package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// The writer is the one loop that writes the replica (writeLoop). Every
// entry that enters the store goes through it: this node's own new
// entries (proposed by Publish), entries received by gossip, and ranges
// fetched by sync. It decides and stores them in batches, one write
// transaction each (group commit: concurrent proposals share one fsync),
// and then, in commit order and in this goroutine only, runs the work that
// follows a commit: the match indexes and cache, the notice book, the
// events feed, the out-of-order buffer, and the gossip publication of the
// node's own entries. Nothing else writes the store's logs, so no reader
// can see a state the book or the indexes have not caught up with for
// long, and no read-then-put outside this loop can lose an update.

// proposal is an entry this node wants to publish: a body without the log
// fields, which the writer fills in (seq, prev, timestamp) and signs.
type proposal struct {
	body *pb.Entry
	done chan proposed // buffered: the writer never waits for the proposer
}

type proposed struct {
	e   *protocol.Entry
	err error
}

// syncWork is a batch fetched by sync, handed to the writer.
type syncWork struct {
	entries []*protocol.Entry
	done    chan syncDone
}

type syncDone struct {
	results []store.Result
	err     error
}

// maxBatch and maxBatchBytes bound one apply transaction. Large batches
// amortise a commit across many entries: the indexes take random keys, so
// a commit rewrites every index page the batch touched, and past a few
// thousand entries a bigger batch touches hardly more pages. The byte
// bound keeps memory bounded whatever the entries' sizes.
const (
	maxBatch      = 8192
	maxBatchBytes = 16 << 20
)

// writeLoop is the writer. It drains what is waiting (gossiped entries and
// proposals) into one batch, applies each sync batch as it comes, and
// after each retries entries that were waiting for a predecessor. It ends
// when received is closed (the gossip reader ends with the run context),
// failing the proposals still waiting.
func (n *Node) writeLoop(received <-chan *protocol.Entry) {
	defer n.failProposals()
	defer close(n.writerDone)
	var (
		gossip []*protocol.Entry
		props  []proposal
	)
	for {
		gossip, props = gossip[:0], props[:0]
		select {
		case e, ok := <-received:
			if !ok {
				return
			}
			gossip = append(gossip, e)
		case p := <-n.proposals:
			props = append(props, p)
		case w := <-n.syncIn:
			results, err := n.commit(nil, w.entries, false)
			w.done <- syncDone{results, err}
			continue
		}
		size := 0
	drain:
		for len(gossip)+len(props) < maxBatch && size < maxBatchBytes {
			select {
			case e, ok := <-received:
				if !ok {
					break drain
				}
				gossip = append(gossip, e)
				size += len(e.Raw)
			case p := <-n.proposals:
				props = append(props, p)
				size += 1024 // a body is signed later; count it as an entry of 1 KiB
			default:
				break drain
			}
		}
		n.commit(props, gossip, true)
	}
}

// failProposals answers the proposals that will not be written.
func (n *Node) failProposals() {
	for {
		select {
		case p := <-n.proposals:
			p.done <- proposed{err: fmt.Errorf("node is shutting down: %w", context.Canceled)}
		default:
			return
		}
	}
}

// propose hands a body to the writer and waits for the signed, stored
// entry. When ctx ends first, the entry may still be written.
func (n *Node) propose(ctx context.Context, body *pb.Entry) (*protocol.Entry, error) {
	p := proposal{body: body, done: make(chan proposed, 1)}
	select {
	case n.proposals <- p:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-n.runCtx.Done():
		return nil, fmt.Errorf("node is shutting down: %w", n.runCtx.Err())
	}
	select {
	case r := <-p.done:
		return r.e, r.err
	case <-n.writerDone:
		// The writer answers every proposal it took before it ends, and
		// failProposals the ones it did not.
		select {
		case r := <-p.done:
			return r.e, r.err
		default:
			return nil, fmt.Errorf("node is shutting down: %w", context.Canceled)
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// applySynced hands a batch fetched by sync to the writer and waits for
// its results (one per entry given).
func (n *Node) applySynced(entries []*protocol.Entry) ([]store.Result, error) {
	w := syncWork{entries: entries, done: make(chan syncDone, 1)}
	select {
	case n.syncIn <- w:
	case <-n.runCtx.Done():
		return nil, n.runCtx.Err()
	}
	select {
	case d := <-w.done:
		return d.results, d.err
	case <-n.runCtx.Done():
		return nil, n.runCtx.Err()
	}
}

// sign makes the proposals into entries that continue this node's log
// from its head, in order. A proposal that cannot be signed is answered
// now and left out.
func (n *Node) sign(props []proposal) ([]proposal, []*protocol.Entry, error) {
	head, err := n.store.Head(n.self.AuthorKey)
	if err != nil {
		return props, nil, err
	}
	kept := props[:0]
	var own []*protocol.Entry
	for _, p := range props {
		body := p.body
		body.Version = protocol.Version
		body.Federation = n.cfg.Federation
		body.Seq = head.Seq + 1
		body.Prev = nil
		if head.Seq > 0 {
			body.Prev = head.ID[:]
		}
		body.TimestampMs = n.now().UnixMilli()
		e, err := protocol.Sign(n.author, body)
		if err != nil {
			p.done <- proposed{err: fmt.Errorf("build entry %d: %w", body.Seq, err)}
			continue
		}
		kept = append(kept, p)
		own = append(own, e)
		head = protocol.Head{Author: e.Author, Seq: e.Seq(), ID: e.ID}
	}
	return kept, own, nil
}

// commit writes the proposals and the entries received in one
// transaction, then does what follows the commit, and, after every
// success, applies any buffered successors that now continue their log.
// It returns the results of the entries given. Gossiped entries that
// arrive before their predecessor are buffered (buffer); a sync batch's
// are not: they come after a fork in the range, and their predecessors
// never will.
func (n *Node) commit(props []proposal, batch []*protocol.Entry, buffer bool) ([]store.Result, error) {
	var first []store.Result
	for len(props) > 0 || len(batch) > 0 {
		var own []*protocol.Entry
		if len(props) > 0 {
			var err error
			if props, own, err = n.sign(props); err != nil {
				n.answer(props, nil, err)
				props = nil
				n.log.Error("reading this node's head failed; proposals refused", "err", err)
			}
		}
		start := time.Now()
		all := append(own, batch...)
		results, err := n.store.Commit(store.Batch{Entries: all, Own: len(own),
			After: []func(*store.Writes, []store.Result) error{n.matcher.WatchHook(all)}})
		n.metrics.applySeconds.Observe(time.Since(start).Seconds())
		if oe := (*store.OwnError)(nil); errors.As(err, &oe) {
			// One proposal breaks a rule (two retractions of one entry,
			// proposed together, say): refuse it, sign the rest again.
			props[oe.Index].done <- proposed{err: err}
			props = append(props[:oe.Index:oe.Index], props[oe.Index+1:]...)
			continue
		}
		if err != nil {
			n.answer(props, nil, err)
			n.log.Error("store apply failed; entries dropped until sync", "entries", len(batch), "err", err)
			return first, err
		}
		if first == nil && len(batch) > 0 {
			first = results[len(own):]
		}
		var next []*protocol.Entry
		gap := false
		for i, r := range results {
			var entry *protocol.Entry
			if i < len(own) {
				entry = own[i]
			} else {
				entry = batch[i-len(own)]
			}
			switch r.Outcome {
			case store.Applied:
				next = n.stored(entry, r, i < len(own), next)
			case store.Duplicate:
				n.metrics.ignored.Inc()
			case store.Gap:
				if !buffer {
					continue
				}
				if !n.pending.put(entry) {
					n.log.Warn("out-of-order buffer full; entry dropped until sync", "author", n.roster.NameOf(entry.Author), "seq", entry.Seq())
				}
				gap = true
			case store.Equivocation:
				n.metrics.equivocations.Inc()
				// The author is flagged now: every result that holds one
				// of its attestations changes.
				n.matcher.InvalidateAll()
				n.log.Error("equivocation: author signed two entries with the same seq; kept as evidence", "author", n.roster.NameOf(entry.Author), "seq", entry.Seq(), "id", entry.ID)
			case store.Void:
				// Stored, no effect: the author broke a stateful rule.
				n.metrics.void.Inc()
				n.log.Warn("entry breaks a rule of its log: stored without effect", "author", n.roster.NameOf(entry.Author), "seq", entry.Seq(), "err", r.Err)
				next = n.stored(entry, r, false, next)
			case store.Rejected:
				n.metrics.rejected.WithLabelValues("chain").Inc()
				n.log.Warn("entry does not continue its log", "author", n.roster.NameOf(entry.Author), "seq", entry.Seq(), "err", r.Err)
			}
		}
		n.answer(props, own, nil)
		props = nil
		n.metrics.pending.Set(float64(n.pending.len()))
		if gap {
			n.sync.Any() // the missing entries are somewhere: fetch them
		}
		batch = next
	}
	return first, nil
}

// answer tells each proposer its entry (or err).
func (n *Node) answer(props []proposal, own []*protocol.Entry, err error) {
	for i, p := range props {
		if err != nil {
			p.done <- proposed{err: err}
		} else {
			p.done <- proposed{e: own[i]}
		}
	}
}

// stored does what follows the commit of an entry now in its log, and
// queues its buffered successor, if any, for the next round. This node's
// own new entries (own) go out on gossip; if that fails, peers still get
// them by sync.
func (n *Node) stored(e *protocol.Entry, r store.Result, own bool, next []*protocol.Entry) []*protocol.Entry {
	if own {
		n.metrics.published.Inc()
	} else {
		n.metrics.applied.Inc()
	}
	n.matcher.Stored(e)
	n.notices.Stored(e, r.Effect.Thread)
	n.feed.publish(e)
	if own {
		if err := n.topic.Publish(n.runCtx, e.Raw); err != nil {
			n.log.Warn("gossip publish failed; entry is stored", "id", e.ID, "err", err)
		}
		n.log.Info("published", "kind", e.Kind(), "seq", e.Seq(), "id", e.ID)
	}
	if s := n.pending.take(e.Author, e.Seq()+1); s != nil {
		next = append(next, s)
	}
	return next
}
