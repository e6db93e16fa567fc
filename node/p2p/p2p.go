// Package p2p is a node's libp2p host: a roster gater that admits only
// the roster's peers and cuts off those that misbehave, the TCP host, and
// a dialer that keeps the node connected to every member it can reach.
package p2p

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/staydown/staydown/protocol"
)

// Gater admits connections only from and to the roster's node peer IDs. A peer outside the roster cannot even complete a handshake, so it
// can neither gossip nor take a mesh slot.
type Gater struct {
	self    peer.ID
	allowed map[peer.ID]string // peer ID -> member name; read-only after construction
	log     *slog.Logger
	now     func() time.Time      // the node's clock, for bans
	mu      sync.Mutex            // guards banned and refusals
	banned  map[peer.ID]time.Time // members cut off until then (forged sync data)
	// refusals are, per outsider, when its refusal was last logged and
	// how many since went unlogged (refusedLogEvery).
	refusals map[peer.ID]*refusal
}

// refusedLogEvery is how often a refusal of one outsider is logged; the
// ones between are counted and the count logged with the next.
const refusedLogEvery = time.Minute

// maxRefusals bounds the outsiders whose refusals are counted; past it,
// the oldest are forgotten.
const maxRefusals = 1024

type refusal struct {
	logged     time.Time
	suppressed int
}

// refused reports whether to log a refusal of outsider p now, and how
// many refusals of it went unlogged since the last line.
func (g *Gater) refused(p peer.ID) (log bool, suppressed int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	r := g.refusals[p]
	if r == nil {
		if len(g.refusals) >= maxRefusals {
			for q, old := range g.refusals {
				if now.Sub(old.logged) >= refusedLogEvery {
					delete(g.refusals, q)
				}
			}
			if len(g.refusals) >= maxRefusals {
				return false, 0 // a flood of outsiders: counted by nobody, logged by nobody
			}
		}
		g.refusals[p] = &refusal{logged: now}
		return true, 0
	}
	if now.Sub(r.logged) < refusedLogEvery {
		r.suppressed++
		return false, 0
	}
	suppressed = r.suppressed
	r.logged, r.suppressed = now, 0
	return true, suppressed
}

// Ban refuses p's connections until the given time.
func (g *Gater) Ban(p peer.ID, until time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.banned[p] = until
}

// Banned reports whether p is cut off now.
func (g *Gater) Banned(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	until, ok := g.banned[p]
	if ok && g.now().After(until) {
		delete(g.banned, p)
		return false
	}
	return ok
}

// NewGater makes the gater of the node with peer ID self: it admits the
// peers of r; now is the node's clock, which bans are measured on.
func NewGater(self peer.ID, r *protocol.Roster, log *slog.Logger, now func() time.Time) (*Gater, error) {
	g := &Gater{self: self, allowed: map[peer.ID]string{}, log: log, now: now, banned: map[peer.ID]time.Time{}, refusals: map[peer.ID]*refusal{}}
	for _, m := range r.Members {
		id, err := peer.Decode(m.PeerID)
		if err != nil {
			return nil, fmt.Errorf("roster: member %q: peer_id: %w", m.Name, err)
		}
		g.allowed[id] = m.Name
	}
	return g, nil
}

// Member reports whether p is another member's node.
func (g *Gater) Member(p peer.ID) bool { _, ok := g.allowed[p]; return ok && p != g.self }

// Name is the member name of peer p ("" when p is not in the roster).
func (g *Gater) Name(p peer.ID) string { return g.allowed[p] }

func (g *Gater) InterceptPeerDial(p peer.ID) bool { return g.Member(p) && !g.Banned(p) }
func (g *Gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool {
	return g.Member(p) && !g.Banned(p)
}
func (g *Gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }
func (g *Gater) InterceptSecured(d network.Direction, p peer.ID, a network.ConnMultiaddrs) bool {
	if !g.Member(p) {
		if log, suppressed := g.refused(p); log {
			g.log.Warn("refused connection from a peer not in the roster", "peer", p, "remote", a.RemoteMultiaddr(),
				"refused_since_last_line", suppressed)
		}
		return false
	}
	if g.Banned(p) {
		g.log.Debug("refused connection from a banned member", "member", g.allowed[p])
		return false
	}
	return true
}
func (g *Gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return true, 0
}

// NewHost builds a node's TCP host on listen, behind the roster gater,
// on the runtime's clock.
func NewHost(key crypto.PrivKey, listen []string, r *protocol.Roster, log *slog.Logger) (host.Host, *Gater, error) {
	return Gated(key, r, log, time.Now, TCP(listen))
}

// Gated builds a host with build, behind a roster gater that reads
// the clock now.
func Gated(key crypto.PrivKey, r *protocol.Roster, log *slog.Logger, now func() time.Time,
	build func(crypto.PrivKey, connmgr.ConnectionGater) (host.Host, error)) (host.Host, *Gater, error) {
	self, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("node key: %w", err)
	}
	g, err := NewGater(self, r, log, now)
	if err != nil {
		return nil, nil, err
	}
	h, err := build(key, g)
	if err != nil {
		return nil, nil, err
	}
	return h, g, nil
}

// TCP builds the node's libp2p host: the node's own transport key,
// the configured listen addresses, the roster gater; TCP only, no relay,
// no NAT traversal (members dial each other's published addresses).
// SO_REUSEPORT is off: with it, two nodes given the same port both bind it
// and silently steal each other's connections; without it the second fails
// to start and says so.
func TCP(listen []string) func(crypto.PrivKey, connmgr.ConnectionGater) (host.Host, error) {
	return func(key crypto.PrivKey, g connmgr.ConnectionGater) (host.Host, error) {
		h, err := libp2p.New(
			libp2p.Identity(key),
			libp2p.ListenAddrStrings(listen...),
			libp2p.ConnectionGater(g),
			libp2p.Transport(tcp.NewTCPTransport, tcp.DisableReuseport()),
			libp2p.DisableRelay(),
			libp2p.Ping(true),
		)
		if err != nil {
			return nil, fmt.Errorf("libp2p host on %v: %w", listen, err)
		}
		return h, nil
	}
}

// Dialer keeps a connection open to every other roster member that has
// addresses, redialling with jittered exponential backoff (1 s to 30 s).
type Dialer struct {
	h       host.Host
	targets []peer.AddrInfo
	names   map[peer.ID]string
	log     *slog.Logger
	kick    chan struct{} // a disconnect happened: look again now
	// now and after are the node's clock and timers (Options).
	now   func() time.Time
	after func(time.Duration) <-chan time.Time
}

// NewDialer makes the dialer of host h for the members of r, on the
// node's clock and timers.
func NewDialer(h host.Host, r *protocol.Roster, log *slog.Logger, now func() time.Time, after func(time.Duration) <-chan time.Time) *Dialer {
	d := &Dialer{h: h, names: map[peer.ID]string{}, log: log, kick: make(chan struct{}, 1), now: now, after: after}
	for _, m := range r.Members {
		id, err := peer.Decode(m.PeerID)
		if err != nil || id == h.ID() {
			continue
		}
		ai := peer.AddrInfo{ID: id}
		for _, a := range m.Addrs {
			if maddr, err := ma.NewMultiaddr(a); err == nil {
				ai.Addrs = append(ai.Addrs, maddr)
			}
		}
		if len(ai.Addrs) > 0 {
			d.targets = append(d.targets, ai)
			d.names[id] = m.Name
		}
	}
	h.Network().Notify(&network.NotifyBundle{
		DisconnectedF: func(_ network.Network, c network.Conn) {
			select {
			case d.kick <- struct{}{}:
			default:
			}
		},
	})
	return d
}

// Run dials until ctx is done.
func (d *Dialer) Run(ctx context.Context) {
	type state struct {
		next    time.Time
		backoff time.Duration
	}
	st := make(map[peer.ID]*state, len(d.targets))
	for _, t := range d.targets {
		st[t.ID] = &state{backoff: time.Second}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	var mu sync.Mutex // guards st's values while dials are in flight
	inflight := map[peer.ID]bool{}
	const look = 500 * time.Millisecond // how often the dialer looks for members to dial
	tick := d.after(look)
	for {
		now := d.now()
		for _, t := range d.targets {
			mu.Lock()
			s, busy := st[t.ID], inflight[t.ID]
			due := !busy && now.After(s.next)
			mu.Unlock()
			if !due || d.h.Network().Connectedness(t.ID) == network.Connected {
				continue
			}
			mu.Lock()
			inflight[t.ID] = true
			mu.Unlock()
			wg.Add(1)
			go func(t peer.AddrInfo) {
				defer wg.Done()
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				err := d.h.Connect(cctx, t)
				cancel()
				mu.Lock()
				defer mu.Unlock()
				delete(inflight, t.ID)
				s := st[t.ID]
				if err != nil {
					jitter := time.Duration(rand.Int64N(int64(s.backoff / 2)))
					s.next = d.now().Add(s.backoff + jitter)
					s.backoff = min(2*s.backoff, 30*time.Second)
					if ctx.Err() == nil {
						d.log.Debug("dial failed", "member", d.names[t.ID], "err", err, "retry_in", s.backoff)
					}
					return
				}
				s.backoff = time.Second
				d.log.Info("connected", "member", d.names[t.ID], "peer", t.ID)
			}(t)
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
