// Package p2p is a node's libp2p host: a roster gater that admits only
// the roster's peers and cuts off those that misbehave, the TCP host, and
// a dialer that keeps the node connected to every member it can reach.
package p2p

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
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

	"github.com/staydown/staydown/node/ratelog"
	"github.com/staydown/staydown/protocol"
)

// Gater admits connections only from and to the roster's node peer IDs,
// and the bootstrap peers a joining node was given. A peer outside the
// roster cannot even complete a handshake, so it can neither gossip nor
// take a mesh slot. The roster is the one in force: SetRoster follows
// each membership change (SPEC 12.4).
type Gater struct {
	self    peer.ID
	allowed atomic.Pointer[map[peer.ID]string] // peer ID -> member name; replaced whole by SetRoster
	boot    map[peer.ID]bool                   // bootstrap peers, admitted until the roster names them
	log     *slog.Logger
	now     func() time.Time      // the node's clock, for bans
	mu      sync.Mutex            // guards banned
	banned  map[peer.ID]time.Time // members cut off until then (forged sync data)
	// refusals rate-limits the line of an outsider's refused
	// connections: once a minute per outsider (refusedLogEvery), with
	// the count of those between.
	refusals *ratelog.Limiter[peer.ID]
}

// refusedLogEvery is how often a refusal of one outsider is logged; the
// ones between are counted and the count logged with the next.
const refusedLogEvery = time.Minute

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
// peers of r and the bootstrap peers boot; now is the node's clock, which
// bans are measured on.
func NewGater(self peer.ID, r *protocol.Roster, boot []peer.ID, log *slog.Logger, now func() time.Time) *Gater {
	g := &Gater{self: self, boot: map[peer.ID]bool{}, log: log, now: now, banned: map[peer.ID]time.Time{}, refusals: ratelog.New[peer.ID](refusedLogEvery, now)}
	for _, p := range boot {
		g.boot[p] = true
	}
	g.SetRoster(r)
	return g
}

// SetRoster makes r the roster the gater admits, and returns the peers it
// admitted before and not now (removed members, replaced peer IDs): the
// caller closes their connections. A member whose peer ID does not parse
// is never admitted (the protocol checks only its characters).
func (g *Gater) SetRoster(r *protocol.Roster) (gone []peer.ID) {
	allowed := map[peer.ID]string{}
	for _, m := range r.Members {
		if id, err := peer.Decode(m.PeerID); err == nil {
			allowed[id] = m.Name
		}
	}
	if old := g.allowed.Swap(&allowed); old != nil {
		for p := range *old {
			if _, still := allowed[p]; !still {
				gone = append(gone, p)
			}
		}
	}
	return gone
}

// Member reports whether p is another member's node (or a bootstrap
// peer, which a joining node must reach before it knows the roster).
func (g *Gater) Member(p peer.ID) bool {
	_, ok := (*g.allowed.Load())[p]
	return (ok || g.boot[p]) && p != g.self
}

// Name is the member name of peer p ("" when p is not in the roster).
func (g *Gater) Name(p peer.ID) string { return (*g.allowed.Load())[p] }

func (g *Gater) InterceptPeerDial(p peer.ID) bool { return g.Member(p) && !g.Banned(p) }
func (g *Gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool {
	return g.Member(p) && !g.Banned(p)
}
func (g *Gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }
func (g *Gater) InterceptSecured(d network.Direction, p peer.ID, a network.ConnMultiaddrs) bool {
	if !g.Member(p) {
		g.refusals.Log(g.log, slog.LevelWarn, p, "refused connection from a peer not in the roster", "peer", p, "remote", a.RemoteMultiaddr())
		return false
	}
	if g.Banned(p) {
		g.log.Debug("refused connection from a banned member", "member", g.Name(p))
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
	return Gated(key, r, nil, log, time.Now, TCP(listen))
}

// Gated builds a host with build, behind a roster gater (admitting r's
// peers and boot) that reads the clock now.
func Gated(key crypto.PrivKey, r *protocol.Roster, boot []peer.ID, log *slog.Logger, now func() time.Time,
	build func(crypto.PrivKey, connmgr.ConnectionGater) (host.Host, error)) (host.Host, *Gater, error) {
	self, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("node key: %w", err)
	}
	g := NewGater(self, r, boot, log, now)
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
