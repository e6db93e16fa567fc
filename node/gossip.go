package node

import (
	"context"
	"errors"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pubsubpb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/store"
)

// Topic is the gossipsub topic of a federation (SPEC.md, "Gossip").
func Topic(federation string) string { return "/staydown/v1/" + federation + "/entries" }

// messageID is the entry id of the message data. Without a message-id
// function every StrictNoSign message has the same empty id and all but the
// first are dropped as duplicates.
func messageID(m *pubsubpb.Message) string {
	id := protocol.IDOf(m.Data)
	return string(id[:])
}

// scoreParams penalise peers that deliver invalid messages (validator
// Reject); the penalty is quadratic in the count, so one bad message costs
// gossip privileges and a second gets the peer graylisted. Mesh-delivery
// scoring is off: a small federation is quiet most of the time, and
// silence is not misbehaviour.
func scoreParams(topics ...string) (*pubsub.PeerScoreParams, *pubsub.PeerScoreThresholds) {
	params := map[string]*pubsub.TopicScoreParams{}
	for _, topic := range topics {
		params[topic] = &pubsub.TopicScoreParams{
			TopicWeight:                     1,
			TimeInMeshQuantum:               time.Second,
			TimeInMeshCap:                   1,
			FirstMessageDeliveriesDecay:     0.5,
			FirstMessageDeliveriesCap:       1,
			MeshMessageDeliveriesDecay:      0.5,
			MeshMessageDeliveriesCap:        1,
			MeshMessageDeliveriesThreshold:  1,
			MeshMessageDeliveriesActivation: time.Second,
			MeshFailurePenaltyDecay:         0.5,
			InvalidMessageDeliveriesWeight:  -100,
			InvalidMessageDeliveriesDecay:   0.99,
		}
	}
	return &pubsub.PeerScoreParams{
			Topics:           params,
			AppSpecificScore: func(peer.ID) float64 { return 0 },
			DecayInterval:    time.Second,
			DecayToZero:      0.01,
			RetainScore:      10 * time.Minute,
		}, &pubsub.PeerScoreThresholds{
			GossipThreshold:   -100,
			PublishThreshold:  -200,
			GraylistThreshold: -300,
		}
}

// newPubSub configures gossipsub as SPEC.md says: records carry their own
// author signatures, so pubsub signing is off (StrictNoSign, which also
// drops messages that carry pubsub signatures or author fields) and the
// message id is the entry id. Queues are raised from their defaults (32)
// so that a burst of entries is validated, not dropped.
func newPubSub(ctx context.Context, h host.Host, topics ...string) (*pubsub.PubSub, error) {
	sp, st := scoreParams(topics...)
	return pubsub.NewGossipSub(ctx, h,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(messageID),
		pubsub.WithMaxMessageSize(protocol.MaxEntrySize+1024),
		pubsub.WithValidateQueueSize(4096),
		pubsub.WithPeerOutboundQueueSize(4096),
		pubsub.WithPeerScore(sp, st),
		pubsub.WithFloodPublish(true),
	)
}

// validate is the topic validator (SPEC.md, "Gossip validation"). Reject
// penalises the peer that forwarded the message; Ignore drops it without
// penalty. A fully checked entry travels to the apply loop in
// Message.ValidatorData, so it is decoded once.
func (n *Node) validate(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	if from == n.host.ID() {
		// Our own entry, already signed, checked and stored by Publish.
		return pubsub.ValidationAccept
	}
	e, err := n.check(m.Data)
	if err != nil {
		n.metrics.rejected.WithLabelValues(rejectReason(err)).Inc()
		n.log.Warn("rejected entry from peer", "peer", from, "member", n.gater.allowed[from], "err", err)
		return pubsub.ValidationReject
	}
	outcome, err := n.store.Preview(e)
	if err != nil {
		n.log.Error("store lookup during validation", "err", err)
		return pubsub.ValidationIgnore
	}
	switch outcome {
	case store.Duplicate:
		// Already stored, or a conflict already kept as evidence.
		n.metrics.ignored.Inc()
		return pubsub.ValidationIgnore
	case store.Rejected:
		// seq is head+1 but prev is not our head: the author forked
		// earlier. The relay is not at fault (SPEC.md, "Gossip").
		n.metrics.ignored.Inc()
		n.log.Warn("entry does not continue the log we hold: the author forked; syncing with the sender for evidence", "author", n.memberName(e.Author), "seq", e.Seq(), "id", e.ID, "peer", from)
		n.sync.now(from)
		return pubsub.ValidationIgnore
	}
	// Applied, Gap (buffered until its predecessors arrive) and a first
	// Equivocation (kept as evidence and relayed, so every node learns of
	// it) travel on.
	m.ValidatorData = e
	return pubsub.ValidationAccept
}

// check decodes and authenticates an entry received from outside: shape,
// roster, role, signature. It needs no store.
func (n *Node) check(raw []byte) (*protocol.Entry, error) {
	// raw belongs to the pubsub message, which is not reused: Decode may
	// retain it.
	e, err := protocol.Decode(raw)
	if err != nil {
		return nil, err
	}
	if err := n.roster.Check(e); err != nil {
		return nil, err
	}
	if err := e.Verify(); err != nil {
		return nil, err
	}
	return e, nil
}

func rejectReason(err error) string {
	for _, s := range []struct {
		err  error
		name string
	}{
		{protocol.ErrTooLarge, "too_large"},
		{protocol.ErrMalformed, "malformed"},
		{protocol.ErrBadSignature, "bad_signature"},
		{protocol.ErrUnknownAuthor, "unknown_author"},
		{protocol.ErrFederation, "wrong_federation"},
		{protocol.ErrRole, "role"},
	} {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	return "other"
}

// readLoop hands accepted messages to the apply loop until ctx is done.
func (n *Node) readLoop(ctx context.Context, sub *pubsub.Subscription, out chan<- *protocol.Entry) {
	defer close(out)
	for {
		m, err := sub.Next(ctx)
		if err != nil {
			return // ctx done or subscription cancelled
		}
		if m.ReceivedFrom == n.host.ID() {
			continue
		}
		e, ok := m.ValidatorData.(*protocol.Entry)
		if !ok {
			continue
		}
		select {
		case out <- e:
		case <-ctx.Done():
			return
		}
	}
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

// syncWork is a batch fetched by sync, handed to the apply loop.
type syncWork struct {
	entries []*protocol.Entry
	done    chan syncDone
}

type syncDone struct {
	results []store.Result
	err     error
}

// applyLoop owns writes of received entries, from gossip and from sync:
// it drains what gossip has delivered into one batch and applies it in one
// transaction, applies each sync batch as it comes, and after each retries
// entries that were waiting for a predecessor. It ends when in is closed.
func (n *Node) applyLoop(in <-chan *protocol.Entry) {
	batch := make([]*protocol.Entry, 0, maxBatch)
	for {
		select {
		case e, ok := <-in:
			if !ok {
				return
			}
			batch = append(batch[:0], e)
			size := len(e.Raw)
		drain:
			for len(batch) < maxBatch && size < maxBatchBytes {
				select {
				case e, ok := <-in:
					if !ok {
						break drain
					}
					batch = append(batch, e)
					size += len(e.Raw)
				default:
					break drain
				}
			}
			n.applyBatch(batch, true)
		case w := <-n.syncIn:
			results, err := n.applyBatch(w.entries, false)
			w.done <- syncDone{results, err}
		}
	}
}

// applySynced hands a batch fetched by sync to the apply loop and waits
// for its results (one per entry given).
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

// applyBatch applies entries and, after every success, any buffered
// successors that now continue their log. It returns the results of the
// first round, the entries given. Gossiped entries that arrive before
// their predecessor are buffered (buffer); a sync batch's are not: they
// come after a fork in the range, and their predecessors never will.
func (n *Node) applyBatch(batch []*protocol.Entry, buffer bool) ([]store.Result, error) {
	var first []store.Result
	for len(batch) > 0 {
		start := time.Now()
		results, err := n.store.Apply(batch, n.matching.watchHook(batch))
		n.metrics.applySeconds.Observe(time.Since(start).Seconds())
		if err != nil {
			n.log.Error("store apply failed; entries dropped until sync", "entries", len(batch), "err", err)
			return first, err
		}
		if first == nil {
			first = results
		}
		var next []*protocol.Entry
		gap := false
		for i, r := range results {
			e := batch[i]
			switch r.Outcome {
			case store.Applied:
				next = n.stored(e, next)
			case store.Duplicate:
				n.metrics.ignored.Inc()
			case store.Gap:
				if !buffer {
					continue
				}
				if !n.pending.put(e) {
					n.log.Warn("out-of-order buffer full; entry dropped until sync", "author", n.memberName(e.Author), "seq", e.Seq())
				}
				gap = true
			case store.Equivocation:
				n.metrics.equivocations.Inc()
				// The author is flagged now: every result that holds one
				// of its attestations changes.
				n.matching.cache.invalidateAll()
				n.log.Error("equivocation: author signed two entries with the same seq; kept as evidence", "author", n.memberName(e.Author), "seq", e.Seq(), "id", e.ID)
			case store.Void:
				// Stored, no effect: the author broke a stateful rule.
				n.metrics.void.Inc()
				n.log.Warn("entry breaks a rule of its log: stored without effect", "author", n.memberName(e.Author), "seq", e.Seq(), "err", r.Err)
				next = n.stored(e, next)
			case store.Rejected:
				n.metrics.rejected.WithLabelValues("chain").Inc()
				n.log.Warn("entry does not continue its log", "author", n.memberName(e.Author), "seq", e.Seq(), "err", r.Err)
			}
		}
		n.metrics.pending.Set(float64(n.pending.len()))
		if gap {
			n.sync.any() // the missing entries are somewhere: fetch them
		}
		batch = next
	}
	return first, nil
}

// stored accounts for an entry now in its log and queues its buffered
// successor, if any, for the next round.
func (n *Node) stored(e *protocol.Entry, next []*protocol.Entry) []*protocol.Entry {
	n.metrics.applied.Inc()
	n.matching.stored(e)
	n.noticeStored(e)
	n.feed.publish(e)
	if s := n.pending.take(e.Author, e.Seq()+1); s != nil {
		next = append(next, s)
	}
	return next
}

func (n *Node) memberName(k protocol.AuthorKey) string {
	if m, ok := n.roster.ByKey(k); ok {
		return m.Name
	}
	return k.String()
}

// pendingEntries buffers entries that arrived before their predecessor,
// bounded in count. Only the apply loop touches it, except len.
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
