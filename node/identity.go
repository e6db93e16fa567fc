package node

import (
	"context"
	"fmt"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pprotocol "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/staydown/staydown/node/p2p"
	"github.com/staydown/staydown/node/status"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/replica"
)

// A second process with this node's identity (a restored backup started
// beside the node, a cloned machine) is refused at its start by the
// liveness check (p2p.Live, SPEC 13.1). What gets past it (both started
// at once, or the other one reached no member's node then, or runs a
// release without the check) is found while the node runs: a member's
// node asks this one to attest that it is live for another process of
// its identity, or an entry signed with this node's author key that it
// did not write arrives. Either is logged at ERROR and shown by status
// (clashShownFor after the last evidence). The other process's gossip
// streams replace this one's at the peers it reaches, and a peer's
// gossipsub gives up on a peer whose stream keeps dying while it is
// still connected: keepMesh reconnects such peers.

// clashShownFor is how long status shows a clash after its last
// evidence: with no new evidence for that long, the other process is
// taken to be gone.
const clashShownFor = 10 * time.Minute

// Mesh keeping.
const (
	// meshGrace: a member's node that speaks gossipsub, connected this
	// long off the entries topic, has lost its gossip stream; it is
	// reconnected.
	meshGrace = 10 * time.Second
	// meshLook is how often keepMesh looks.
	meshLook = time.Second
	// maxMeshBackoff bounds the wait between two reconnections of one
	// peer, which doubles from meshGrace while the peer stays off.
	maxMeshBackoff = 5 * time.Minute
)

// clashes is the clash of identity status shows. Safe for concurrent
// use.
type clashes struct {
	mu    sync.Mutex // guards what follows
	last  *p2p.Clash // the latest evidence; nil: none
	first time.Time  // when the first evidence of this clash came
	count int        // pieces of evidence since first
}

// clashed records and logs a clash of identity (p2p.LiveDeps.Clash, and
// the own-entry checks below).
func (n *Node) clashed(c p2p.Clash) {
	n.log.Error("another process runs this node's identity (a restored backup started beside it, or a cloned machine): stop that process, or give it an identity of its own with staydown init", c.Attrs()...)
	n.clash.mu.Lock()
	defer n.clash.mu.Unlock()
	if n.clash.last == nil || c.At.Sub(n.clash.last.At) > clashShownFor {
		n.clash.first, n.clash.count = c.At, 0
	}
	n.clash.last = &c
	n.clash.count++
}

// clashStatus is Status.Clash: the clash, while its last evidence is
// younger than clashShownFor.
func (n *Node) clashStatus() *status.Clash {
	n.clash.mu.Lock()
	defer n.clash.mu.Unlock()
	c := n.clash.last
	if c == nil || n.now().Sub(c.At) > clashShownFor {
		return nil
	}
	s := &status.Clash{How: c.How, Member: c.Member, Peer: c.Peer.String(), Remote: c.Remote, Detail: c.Detail,
		FirstAt: n.clash.first.UTC().Format(time.RFC3339), LastAt: c.At.UTC().Format(time.RFC3339), Count: n.clash.count, OtherAddrs: c.Other.Addrs}
	if s.OtherAddrs == nil {
		s.OtherAddrs = []string{}
	}
	if !c.Since.IsZero() {
		s.Since = c.Since.UTC().Format(time.RFC3339)
	}
	if len(c.Other.Nonce) > 0 {
		s.OtherInstance = fmt.Sprintf("%x", c.Other.Nonce)
		s.OtherStarted = time.UnixMilli(c.Other.StartedMs).UTC().Format(time.RFC3339)
	}
	return s
}

// ownEntryArrived follows the commit of an entry of this node's own log
// that came from the network (not written by this process). Signed after
// this process started, another process wrote it: a clash. Signed
// before, it is this identity's history, which the store lacked (a
// backup restored without staydown store restore): a warning.
func (n *Node) ownEntryArrived(e *protocol.Entry) {
	if n.ownUnconfirmed.Load() {
		return // a restored store fetches its own log on purpose (SPEC 16.7)
	}
	if e.Body.GetTimestampMs() < n.startedMs {
		n.log.Warn("an entry of this node's own log, signed before this process started, came from the network: the store lacked it (a backup restored without staydown store restore?)",
			"seq", e.Seq(), "id", e.ID)
		return
	}
	n.clashed(p2p.Clash{How: "own entry", Member: n.me.Name, Peer: n.host.ID(), At: n.now(),
		Detail: fmt.Sprintf("entry %s at seq %d, signed with this node's author key at %s, came from the network; this process did not write it", e.ID, e.Seq(),
			time.UnixMilli(e.Body.GetTimestampMs()).UTC().Format(time.RFC3339))})
}

// ownEquivocation follows an equivocation of this node's own author key:
// another process signed another entry at a seq this one holds.
func (n *Node) ownEquivocation(ev *replica.EquivocationError) {
	n.clashed(p2p.Clash{How: "own entry", Member: n.me.Name, Peer: n.host.ID(), At: n.now(),
		Detail: fmt.Sprintf("entry %s at seq %d, signed with this node's author key, is not the entry %s this node wrote there", ev.Other.ID, ev.Seq, protocol.IDOf(ev.Logged))})
}

// keepMesh reconnects the members' nodes that speak gossipsub and stay
// connected but off the entries topic for meshGrace: their gossip stream
// died (another process with this node's identity, or theirs, took its
// place at a peer, and gossipsub gave up on it), and only a fresh
// connection makes gossipsub open one again. The wait before the next
// reconnection of the same peer doubles up to maxMeshBackoff.
func (n *Node) keepMesh(ctx context.Context) {
	off := map[peer.ID]time.Time{}      // since when a connected peer is off the topic
	next := map[peer.ID]time.Time{}     // not reconnected before then
	wait := map[peer.ID]time.Duration{} // the next backoff
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.after(meshLook):
		}
		now := n.now()
		onTopic := map[peer.ID]bool{}
		for _, p := range n.topic.ListPeers() {
			onTopic[p] = true
		}
		connected := map[peer.ID]bool{}
		for _, p := range n.host.Network().Peers() {
			connected[p] = true
			if onTopic[p] || !n.gater.Member(p) || !n.speaksGossip(p) {
				delete(off, p)
				if onTopic[p] && now.After(next[p].Add(maxMeshBackoff)) {
					delete(wait, p)
				}
				continue
			}
			if off[p].IsZero() {
				off[p] = now
			}
			if now.Sub(off[p]) < meshGrace || now.Before(next[p]) {
				continue
			}
			w := wait[p]
			if w == 0 {
				w = meshGrace
			}
			n.log.Warn("a member's node is connected but off the entries topic: its gossip stream died (another process with its identity or this node's may have taken its place); reconnecting",
				"member", n.gater.Name(p), "peer", p, "off_for", now.Sub(off[p]).Round(time.Second), "next_in", w)
			n.metrics.meshRepairs.Inc()
			_ = n.host.Network().ClosePeer(p)
			delete(off, p)
			next[p], wait[p] = now.Add(w), min(2*w, maxMeshBackoff)
		}
		for p := range off {
			if !connected[p] {
				delete(off, p)
			}
		}
	}
}

// gossipProtocols are gossipsub's protocol ids.
var gossipProtocols = []libp2pprotocol.ID{pubsub.GossipSubID_v13, pubsub.GossipSubID_v12, pubsub.GossipSubID_v11, pubsub.GossipSubID_v10}

// speaksGossip reports whether p's node said (identify) that it speaks
// gossipsub: one that does not (a tool, a node still starting) is never
// on the topic, and nothing is wrong with that.
func (n *Node) speaksGossip(p peer.ID) bool {
	ok, _ := n.host.Peerstore().SupportsProtocols(p, gossipProtocols...)
	return len(ok) > 0
}
