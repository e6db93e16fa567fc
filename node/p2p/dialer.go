package p2p

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/staydown/staydown/protocol"
)

// Dial timing.
const (
	// firstBackoff is the wait before the first redial of a member, and
	// the wait again once a connection to it has worked.
	firstBackoff = time.Second
	// maxFailedBackoff bounds the wait after dials that failed (the
	// member is down or unreachable): it should be back soon.
	maxFailedBackoff = 30 * time.Second
	// maxRefusedBackoff bounds the wait after refusals: a member that
	// refuses this node does so until someone changes a roster or a
	// config, which takes minutes at best.
	maxRefusedBackoff = 5 * time.Minute
	// RefusedWithin: a connection the peer closes sooner than this after
	// it opened, before any sync hello came through on it, is a refusal.
	// On TCP the dialling side finishes its handshake first; a peer whose
	// gater refuses this node closes the connection as soon as its own
	// side ends, one round trip later, and the dial has succeeded.
	RefusedWithin = 10 * time.Second
	// noneReachableEvery is how often the node says that no member is
	// connected, while none is.
	noneReachableEvery = time.Minute
	// look is how often the dialer looks for members to dial.
	look = 500 * time.Millisecond
)

// Why a member refuses this node, as far as this node can tell.
const (
	// ReasonClosed: the peer closed the connection right after the
	// handshake. Its gater refused this node: this node's peer ID is not
	// in the roster it holds (another genesis, an admission it has not
	// seen, a node key the roster does not name), or it banned this node.
	ReasonClosed = "closed the connection right after the handshake (this node's peer ID is not in its roster, or it banned this node)"
)

// Dialer keeps a connection open to every other roster member that has
// addresses, and to the bootstrap peers. A dial that fails is tried again
// after a jittered exponential backoff (1 s to 30 s); a member that
// refuses this node (closes the connection right after the handshake, or
// names another federation in its sync hello: Refused) is tried again
// after a backoff that doubles to 5 min, and each refusal is logged at
// WARN once, with the reason and the wait. SetRoster follows the roster
// in force. The Dialer also keeps what Peers reports: which members
// refuse this node and when each was last connected.
type Dialer struct {
	h     host.Host
	gater *Gater // this node's: a connection it closes is no refusal
	log   *slog.Logger
	kick  chan struct{} // a disconnect or a roster change happened: look again now
	// now and after are the node's clock and timers (Options).
	now   func() time.Time
	after func(time.Duration) <-chan time.Time

	mu      sync.Mutex // guards what follows
	targets []peer.AddrInfo
	names   map[peer.ID]string // targets' names
	members map[peer.ID]string // every other member in the roster, with or without addresses
	boot    []peer.AddrInfo
	peers   map[peer.ID]*peerState
}

// peerState is what the dialer knows of one peer. Guarded by Dialer.mu.
type peerState struct {
	next    time.Time     // not dialled before then
	backoff time.Duration // the next wait
	// opened is when the current connection opened (zero: none);
	// greeted whether a sync hello came through on it; refusedNow
	// whether Refused was told of it (its close is no second refusal).
	opened              time.Time
	greeted, refusedNow bool
	// refusing is why the peer refuses this node ("" when it does not,
	// as far as this node knows); lastSeen when a connection to it last
	// worked (zero: never).
	refusing string
	lastSeen time.Time
}

// NewDialer makes the dialer of host h for the members of r and the
// bootstrap peers boot, on the node's clock and timers; g is the node's
// gater.
func NewDialer(h host.Host, g *Gater, r *protocol.Roster, boot []peer.AddrInfo, log *slog.Logger, now func() time.Time, after func(time.Duration) <-chan time.Time) *Dialer {
	d := &Dialer{h: h, gater: g, boot: boot, log: log, kick: make(chan struct{}, 1), now: now, after: after, peers: map[peer.ID]*peerState{}}
	d.SetRoster(r)
	h.Network().Notify(&network.NotifyBundle{
		ConnectedF:    func(_ network.Network, c network.Conn) { d.connected(c.RemotePeer()) },
		DisconnectedF: func(_ network.Network, c network.Conn) { d.disconnected(c.RemotePeer()) },
	})
	return d
}

// state is p's state, made on first use. Call with d.mu held.
func (d *Dialer) state(p peer.ID) *peerState {
	s := d.peers[p]
	if s == nil {
		s = &peerState{backoff: firstBackoff}
		d.peers[p] = s
	}
	return s
}

func (d *Dialer) connected(p peer.ID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.state(p); s.opened.IsZero() {
		s.opened, s.greeted, s.refusedNow = d.now(), false, false
	}
}

// disconnected follows the close of a connection to p. When it was p's
// last, and p closed it right after it opened with no sync hello on it,
// p refuses this node: the next dial waits for the next backoff step.
// Otherwise the connection worked, and p is dialled again soon.
func (d *Dialer) disconnected(p peer.ID) {
	if d.h.Network().Connectedness(p) == network.Connected {
		return // another connection to p is still open
	}
	ours := d.gater == nil || d.gater.InterceptPeerDial(p) // false: this node refuses p (banned, or not in its roster)
	d.mu.Lock()
	s := d.state(p)
	now := d.now()
	lived := now.Sub(s.opened)
	if s.opened.IsZero() {
		lived = 0 // the close was told before the open
	}
	switch {
	case s.refusedNow || !ours:
		// Refused has counted it, or this node closed it.
	case lived < RefusedWithin && !s.greeted:
		d.refusedLocked(p, s, ReasonClosed)
	default:
		s.backoff, s.refusing, s.lastSeen = firstBackoff, "", now
		s.next = now.Add(firstBackoff)
	}
	s.opened, s.greeted, s.refusedNow = time.Time{}, false, false
	d.mu.Unlock()
	d.poke()
}

// Greeted records that a sync hello of p's came through: p accepts this
// node, whatever it refused before.
func (d *Dialer) Greeted(p peer.ID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.state(p)
	if !s.greeted && !s.opened.IsZero() {
		d.log.Info("connected", "member", d.nameLocked(p), "peer", p)
	}
	s.greeted, s.refusing, s.backoff, s.lastSeen = true, "", firstBackoff, d.now()
}

// Refused records that p refuses this node for reason (its sync hello
// names another federation): it is dialled again after the next backoff
// step.
func (d *Dialer) Refused(p peer.ID, reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.state(p)
	d.refusedLocked(p, s, reason)
	s.refusedNow = !s.opened.IsZero()
}

// refusedLocked counts a refusal by p: the next dial waits the backoff
// (plus up to half of it, so that the nodes a roster change affects do not
// all dial at once), which doubles up to maxRefusedBackoff; the refusal
// is logged once, with the wait.
func (d *Dialer) refusedLocked(p peer.ID, s *peerState, reason string) {
	wait := s.backoff + time.Duration(rand.Int64N(int64(s.backoff/2)+1))
	s.next = d.now().Add(wait)
	s.backoff = min(2*s.backoff, maxRefusedBackoff)
	s.refusing = reason
	d.log.Warn("a member refuses this node's connections", "member", d.nameLocked(p), "peer", p, "reason", reason, "retry_in", wait.Round(time.Second))
}

// nameLocked is p's member name, or its peer ID. Call with d.mu held.
func (d *Dialer) nameLocked(p peer.ID) string {
	if n, ok := d.members[p]; ok {
		return n
	}
	if n, ok := d.names[p]; ok {
		return n
	}
	return p.String()
}

func (d *Dialer) poke() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// PeerState is what the dialer knows of a peer: why it refuses this node
// ("" when it does not, as far as this node knows) and when a connection
// to it last worked (zero: never; now while one does).
type PeerState struct {
	Refusing string
	LastSeen time.Time
}

// Peer is what the dialer knows of p now.
func (d *Dialer) Peer(p peer.ID) PeerState {
	connected := d.h.Network().Connectedness(p) == network.Connected
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.peers[p]
	if s == nil {
		return PeerState{}
	}
	ps := PeerState{Refusing: s.refusing, LastSeen: s.lastSeen}
	if connected && !s.opened.IsZero() && (s.greeted || d.now().Sub(s.opened) >= RefusedWithin) {
		ps.LastSeen = d.now()
	}
	return ps
}

// SetRoster makes the dialer keep connections to r's members (and the
// bootstrap peers r does not name), from its next look on. A member that
// refused this node is dialled again at once: the new roster may be what
// it was waiting for.
func (d *Dialer) SetRoster(r *protocol.Roster) {
	var targets []peer.AddrInfo
	names, members := map[peer.ID]string{}, map[peer.ID]string{}
	for _, m := range r.Members {
		id, err := peer.Decode(m.PeerID)
		if err != nil || id == d.h.ID() {
			continue
		}
		members[id] = m.Name
		ai := peer.AddrInfo{ID: id}
		for _, a := range m.Addrs {
			if maddr, err := ma.NewMultiaddr(a); err == nil {
				ai.Addrs = append(ai.Addrs, maddr)
			}
		}
		if len(ai.Addrs) > 0 {
			targets = append(targets, ai)
			names[id] = m.Name
		}
	}
	for _, b := range d.boot {
		if _, named := names[b.ID]; !named && b.ID != d.h.ID() {
			targets = append(targets, b)
			names[b.ID] = "bootstrap " + b.ID.String()
		}
	}
	d.mu.Lock()
	d.targets, d.names, d.members = targets, names, members
	for p, s := range d.peers {
		_, member := members[p]
		_, target := names[p]
		switch {
		case !member && !target:
			delete(d.peers, p)
		case s.refusing != "":
			s.next, s.backoff = time.Time{}, firstBackoff
		}
	}
	d.mu.Unlock()
	d.poke()
}

// Run dials until ctx is done. While no member is connected it says so
// at WARN once every noneReachableEvery, naming why for each.
func (d *Dialer) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	inflight := map[peer.ID]bool{} // guarded by d.mu
	noneSince, warned := d.now(), time.Time{}
	tick := d.after(look)
	for {
		now := d.now()
		d.mu.Lock()
		targets, names := d.targets, d.names
		d.mu.Unlock()
		for _, t := range targets {
			if d.h.Network().Connectedness(t.ID) == network.Connected {
				continue
			}
			d.mu.Lock()
			s := d.state(t.ID)
			due := !inflight[t.ID] && !now.Before(s.next)
			if due {
				inflight[t.ID] = true
			}
			d.mu.Unlock()
			if !due {
				continue
			}
			wg.Add(1)
			go func(t peer.AddrInfo) {
				defer wg.Done()
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				err := d.h.Connect(cctx, t)
				cancel()
				d.mu.Lock()
				defer d.mu.Unlock()
				delete(inflight, t.ID)
				s := d.state(t.ID)
				if err != nil {
					jitter := time.Duration(rand.Int64N(int64(s.backoff/2) + 1))
					s.next = d.now().Add(s.backoff + jitter)
					s.backoff = min(2*s.backoff, max(s.backoff, maxFailedBackoff))
					if ctx.Err() == nil {
						d.log.Debug("dial failed", "member", names[t.ID], "err", err, "retry_in", s.backoff)
					}
					return
				}
				// Not a success yet: the peer may close it at once
				// (disconnected). A connection that works resets the
				// backoff when it ends.
				if s.next.Before(d.now()) {
					s.next = d.now().Add(s.backoff)
				}
				d.log.Debug("connected", "member", names[t.ID], "peer", t.ID)
			}(t)
		}
		if d.anyMember() {
			noneSince = time.Time{}
		} else if noneSince.IsZero() {
			noneSince = now
		} else if now.Sub(noneSince) >= noneReachableEvery && now.Sub(warned) >= noneReachableEvery {
			if why := d.unreachable(); why != "" {
				warned = now
				d.log.Warn("no member reachable: " + why)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
			tick = d.after(look)
		case <-d.kick:
		}
	}
}

// anyMember reports whether a connection to another member is open.
func (d *Dialer) anyMember() bool {
	d.mu.Lock()
	members := slices.Collect(maps.Keys(d.members))
	d.mu.Unlock()
	for _, p := range members {
		if d.h.Network().Connectedness(p) == network.Connected {
			return true
		}
	}
	return false
}

// unreachable says, member by member, why none is connected ("" when the
// roster names no other member).
func (d *Dialer) unreachable() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var parts []string
	for p, name := range d.members {
		why := "not connected"
		s := d.peers[p]
		switch {
		case s != nil && s.refusing != "":
			why = "refuses this node: " + s.refusing
		case len(d.names[p]) == 0:
			why = "has no address in the roster"
		}
		if s != nil && !s.lastSeen.IsZero() {
			why += fmt.Sprintf(", last seen %s", s.lastSeen.UTC().Format(time.RFC3339))
		}
		parts = append(parts, name+" "+why)
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

// Targets are the peers the dialer keeps connections to: the members
// with addresses and the bootstrap peers.
func (d *Dialer) Targets() []peer.AddrInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.targets)
}
