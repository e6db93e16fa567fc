// Package gossip is a node's side of the federation's gossip topic
// (SPEC.md, "Gossip"): gossipsub configured as the protocol says, and the
// validator that checks every entry a peer relays before it travels on.
package gossip

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pubsubpb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/staydown/staydown/node/p2p"
	"github.com/staydown/staydown/node/ratelog"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/replica"
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
			// Broken promises (an IHAVE whose IWANT goes unanswered) and
			// GRAFTs during a backoff: six free, then the square of the
			// excess, so that a peer that spams gossip it does not
			// deliver is graylisted after a dozen.
			BehaviourPenaltyWeight:    -10,
			BehaviourPenaltyThreshold: 6,
			BehaviourPenaltyDecay:     0.99,
			DecayInterval:             time.Second,
			DecayToZero:               0.01,
			RetainScore:               10 * time.Minute,
		}, &pubsub.PeerScoreThresholds{
			GossipThreshold:   -100,
			PublishThreshold:  -200,
			GraylistThreshold: -300,
		}
}

// NewPubSub configures gossipsub as SPEC.md says: records carry their own
// author signatures, so pubsub signing is off (StrictNoSign, which also
// drops messages that carry pubsub signatures or author fields) and the
// message id is the entry id. Queues are raised from their defaults (32)
// so that a burst of entries is validated, not dropped.
// inspect, when not nil, is told every ScoreInspectPeriod of the score of
// every peer (SPEC 13, "Peer scoring").
// log is pubsub's own logger (liblog.Pubsub).
func NewPubSub(ctx context.Context, h host.Host, log *slog.Logger, inspect func(map[peer.ID]float64), topics ...string) (*pubsub.PubSub, error) {
	sp, st := scoreParams(topics...)
	opts := []pubsub.Option{
		pubsub.WithLogger(log),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(messageID),
		pubsub.WithMaxMessageSize(protocol.MaxEntrySize + 1024),
		pubsub.WithValidateQueueSize(4096),
		pubsub.WithPeerOutboundQueueSize(4096),
		pubsub.WithPeerScore(sp, st),
		pubsub.WithFloodPublish(true),
	}
	if inspect != nil {
		opts = append(opts, pubsub.WithPeerScoreInspect(pubsub.PeerScoreInspectFn(inspect), ScoreInspectPeriod))
	}
	return pubsub.NewGossipSub(ctx, h, opts...)
}

// ScoreInspectPeriod is how often NewPubSub's inspect is told the scores.
const ScoreInspectPeriod = time.Second

// Validator checks the entries of the topic for a node.
type Validator struct {
	Store      *store.Store // read only: Preview (which judges under the membership in force)
	Federation string
	Names      func(protocol.AuthorKey) string // member names, for log lines
	Self       peer.ID                         // the node's own messages are not checked again
	Gater      *p2p.Gater
	Log        *slog.Logger
	// Rejected counts an entry refused, by reason; Ignored one dropped
	// without penalty (the node's metrics).
	Rejected func(reason string)
	Ignored  func()
	// SyncWith asks for a sync with the peer that relayed an entry that
	// does not continue the log held (it has the evidence), or one too
	// far ahead of it to hold (it has the entries between).
	SyncWith func(from peer.ID)
	// Hold is given an entry whose author is no member's key yet (SPEC
	// 12.5): the writer holds it until the roster changes.
	Hold func(e *protocol.Entry)
	// Now is the node's clock, for the rate of log lines (LogEvery).
	Now func() time.Time

	linesOnce sync.Once
	lines     *ratelog.Limiter[peerLine]
}

// LogEvery is how often a line of one kind about one peer is logged at
// most: a peer can send thousands of bad messages a second, and each would
// be a line. The lines between are counted ("dropped" in the next).
const LogEvery = time.Minute

// peerLine is what a rate-limited line is about: a peer, and which line.
type peerLine struct {
	peer peer.ID
	line string
}

// logPeer logs msg about peer from, at most once per LogEvery for this
// line and peer.
func (n *Validator) logPeer(level slog.Level, from peer.ID, msg string, args ...any) {
	n.linesOnce.Do(func() {
		now := n.Now
		if now == nil {
			now = time.Now
		}
		n.lines = ratelog.New[peerLine](LogEvery, now)
	})
	n.lines.Log(n.Log, level, peerLine{from, msg}, msg, args...)
}

// Validate is the topic validator (SPEC.md, "Gossip validation"). Reject
// penalises the peer that forwarded the message; Ignore drops it without
// penalty. A fully checked entry travels to the writer in
// Message.ValidatorData, so it is decoded once.
func (n *Validator) Validate(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	if from == n.Self {
		// Our own entry, already signed, checked and stored by Publish.
		return pubsub.ValidationAccept
	}
	e, err := Check(n.Federation, m.Data)
	if err != nil {
		n.Rejected(rejectReason(err))
		n.logPeer(slog.LevelWarn, from, "rejected entry from peer", "peer", from, "member", n.Gater.Name(from), "err", err)
		return pubsub.ValidationReject
	}
	outcome, relay, err := n.Store.Preview(e)
	if err != nil {
		n.Log.Error("store lookup during validation", "err", err)
		return pubsub.ValidationIgnore
	}
	if !relay {
		// replica.Relay decided: nothing here travels on, and nothing is
		// the relaying peer's fault (SPEC.md, "Gossip").
		n.Ignored()
		switch outcome {
		case store.Rejected:
			// seq is head+1 but prev is not our head: the author forked
			// earlier.
			n.logPeer(slog.LevelWarn, from, "entry does not continue the log we hold: the author forked; syncing with the sender for evidence", "author", n.Names(e.Author), "seq", e.Seq(), "id", e.ID, "peer", from)
			n.SyncWith(from)
		case store.Gap:
			// Further ahead than gossip reorders (replica.MaxGap): not
			// held; sync fetches the log in order. Honest peers rarely
			// send one (a node that was apart long); a flood of them is
			// worth a WARN, once a minute per peer, with the count.
			n.logPeer(slog.LevelWarn, from, "entry far ahead of the log we hold: not held, syncing with the sender", "author", n.Names(e.Author), "seq", e.Seq(), "peer", from, "max_gap", replica.MaxGap)
			n.SyncWith(from)
		case store.Held:
			// Not a member's key yet: an admission may be on its way.
			// Nobody is blamed; the writer holds it a while.
			n.logPeer(slog.LevelDebug, from, "entry by a key no member has (yet): held", "author", e.Author, "seq", e.Seq(), "peer", from)
			n.Hold(e)
		case store.Refused:
			// Far past its key's end (SPEC 12.5): the sender may not
			// have the revocation yet.
			n.logPeer(slog.LevelDebug, from, "entry far past the end of its key: dropped", "author", n.Names(e.Author), "seq", e.Seq(), "peer", from)
		}
		// Duplicate: already stored, or a conflict already kept as
		// evidence.
		return pubsub.ValidationIgnore
	}
	// Applied, Void, Gap within replica.MaxGap (held until its
	// predecessors arrive) and a first Equivocation (kept as evidence and
	// relayed, so every node learns of it) travel on.
	m.ValidatorData = e
	return pubsub.ValidationAccept
}

// Check decodes and authenticates an entry received from outside: shape,
// federation, signature. It needs no store; whether its author may write
// it is the membership's to say, through the store (SPEC 12.5).
func Check(federation string, raw []byte) (*protocol.Entry, error) {
	// raw belongs to the pubsub message, which is not reused: Decode may
	// retain it.
	e, err := protocol.Decode(raw)
	if err != nil {
		return nil, err
	}
	if err := protocol.CheckFederationOf(federation, e); err != nil {
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
		{protocol.ErrFederation, "wrong_federation"},
	} {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	return "other"
}

// Read hands the entries of accepted messages to out, the writer's, until
// ctx is done, then closes out. Messages from self (the node's own,
// already stored) are skipped.
func Read(ctx context.Context, sub *pubsub.Subscription, self peer.ID, out chan<- *protocol.Entry) {
	defer close(out)
	for {
		m, err := sub.Next(ctx)
		if err != nil {
			return // ctx done or subscription cancelled
		}
		if m.ReceivedFrom == self {
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
