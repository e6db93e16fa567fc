package p2p

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/staydown/staydown/protocol"
)

// On TCP a dial that the remote's gater refuses succeeds (the dialling
// side finishes its handshake first), and the remote closes the
// connection at once: the dialer must take that for a refusal, not a
// success to redial at once (#13 item 6: 500 reconnections a second).
// Real TCP hosts on loopback; the dialer's clock stands still, so it
// dials once and waits for its backoff, which never passes.
func TestDialerTakesAClosedConnectionForARefusal(t *testing.T) {
	key := func() (crypto.PrivKey, peer.ID) {
		k, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return k, id
	}
	ka, ida := key()
	kb, idb := key()
	quiet := slog.New(slog.DiscardHandler)
	// b's roster does not name a.
	rb, err := protocol.NewRoster("test", []protocol.Member{{Name: "b", Role: protocol.RolePlatform, AuthorKey: protocol.AuthorKey{2}, PeerID: idb.String()}})
	if err != nil {
		t.Fatal(err)
	}
	hb, _, err := NewHost(kb, []string{"/ip4/127.0.0.1/tcp/0"}, rb, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer hb.Close()
	ra, err := protocol.NewRoster("test", []protocol.Member{
		{Name: "a", Role: protocol.RolePlatform, AuthorKey: protocol.AuthorKey{1}, PeerID: ida.String()},
		{Name: "b", Role: protocol.RolePlatform, AuthorKey: protocol.AuthorKey{2}, PeerID: idb.String(), Addrs: []string{hb.Addrs()[0].String()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ha, ga, err := NewHost(ka, []string{"/ip4/127.0.0.1/tcp/0"}, ra, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer ha.Close()

	// The premise: the refused dial succeeds, and b closes it.
	gone := make(chan struct{})
	premise := &network.NotifyBundle{DisconnectedF: func(network.Network, network.Conn) { close(gone) }}
	ha.Network().Notify(premise)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ha.Connect(ctx, peer.AddrInfo{ID: idb, Addrs: hb.Addrs()}); err != nil {
		t.Fatalf("a dial that b's gater refuses failed on a's side (%v): the dialer's refusal detection is moot", err)
	}
	<-gone
	ha.Network().StopNotify(premise)

	var mu sync.Mutex
	conns, closed := 0, 0
	ha.Network().Notify(&network.NotifyBundle{
		ConnectedF:    func(network.Network, network.Conn) { mu.Lock(); conns++; mu.Unlock() },
		DisconnectedF: func(network.Network, network.Conn) { mu.Lock(); closed++; mu.Unlock() },
	})
	log := &records{}
	now := time.Unix(1_700_000_000, 0)
	d := NewDialer(ha, ga, ra, nil, slog.New(log), func() time.Time { return now }, func(time.Duration) <-chan time.Time { return nil })
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	waitFor(t, "the dialer to record b's refusal", func() bool { return d.Peer(idb).Refusing == ReasonClosed })
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if conns != 1 {
		t.Errorf("the dialer connected %d times (%d closed) while its clock stood still, want once", conns, closed)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	var refusals []string
	for _, r := range log.got {
		if r.Level == slog.LevelWarn && strings.Contains(r.Message, "refuses this node") {
			refusals = append(refusals, r.Message)
		}
	}
	if len(refusals) != 1 {
		t.Errorf("%d refusal lines, want 1: %q", len(refusals), refusals)
	}
}

// waitFor polls cond (real time: real sockets) for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
