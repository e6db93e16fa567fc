package node

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/staydown/staydown/node/p2p"
	"github.com/staydown/staydown/node/tokens"
	"github.com/staydown/staydown/protocol"
)

// Options say what StartWith runs a node on where that is not what its
// config says: tests run federations on a simulated network in virtual
// time (simnet_test.go). The zero Options is what Start uses: a TCP host
// on cfg.Listen, the runtime's timers, and on cfg.API /metrics only.
//
// A node reads the time from cfg.Clock (time.Now when nil) and waits on
// After's timers: the two together are its sense of time, and a test that
// sets one sets both. Stream deadlines are the exception: the transport
// compares them with the runtime's clock, so they are always set from
// time.Now.
type Options struct {
	// Host, when set, makes the node's libp2p host from its transport
	// key instead of a TCP host on cfg.Listen. gater admits the roster's
	// peers and refuses banned ones; the host must consult it on every
	// dial and every accepted connection.
	Host func(key crypto.PrivKey, gater connmgr.ConnectionGater) (host.Host, error)
	// After, when set, makes the timers the node's loops wait on (the
	// periodic sync, the dial backoff, the checkpoint interval); nil is
	// time.After.
	After func(d time.Duration) <-chan time.Time
	// API, when set, is the node's HTTP API (package api: api.NewServer),
	// served under /v1/ on cfg.API beside /metrics; keys are the tokens
	// it accepts (api.token's and api.tokens', read again as they change).
	// The node does not know the API: the composition root (cmd/staydown,
	// localfed) hands it in.
	API func(n *Node, keys *tokens.Keeper) http.Handler
	// Console, when set, is the web console (package console), served at
	// / on cfg.API (the paths /v1/ and /metrics excepted), with the same
	// tokens as the API; handed in as API is.
	Console func(n *Node, keys *tokens.Keeper) http.Handler
	// NoAPI starts the node without its HTTP listener (APIAddr is then
	// nil).
	// A test in a testing/synctest bubble needs it: a listening socket's
	// accept loop waits on the network, outside the bubble, so it is
	// never durably blocked and the bubble's clock would never move.
	NoAPI bool
}

// newHost makes the node's host as o says, behind a roster gater that
// reads the node's clock.
func (o Options) newHost(key crypto.PrivKey, listen []string, r *protocol.Roster, boot []peer.ID, log *slog.Logger, now func() time.Time) (host.Host, *p2p.Gater, error) {
	build := o.Host
	if build == nil {
		build = p2p.TCP(listen)
	}
	return p2p.Gated(key, r, boot, log, now, build)
}

// after is a timer of the node's clock (Options.After).
func (n *Node) after(d time.Duration) <-chan time.Time {
	if n.opts.After != nil {
		return n.opts.After(d)
	}
	return time.After(d)
}
