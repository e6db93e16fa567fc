package p2p

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/staydown/staydown/protocol"
)

// records keeps the log records written to it.
type records struct {
	mu  sync.Mutex
	got []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, rec)
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

type addrs struct{ remote ma.Multiaddr }

func (a addrs) LocalMultiaddr() ma.Multiaddr  { return a.remote }
func (a addrs) RemoteMultiaddr() ma.Multiaddr { return a.remote }

func testPeer(t *testing.T, seed byte) peer.ID {
	t.Helper()
	key := ed25519.NewKeyFromSeed(append(make([]byte, ed25519.SeedSize-1), seed))
	pk, err := crypto.UnmarshalEd25519PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestOutsiderRefusalsLoggedOncePerMinute: an outsider that keeps
// dialling gets one log line a minute, with the count of the refusals in
// between, not one a handshake (#12 item 12: 300 WARN lines a second).
func TestOutsiderRefusalsLoggedOncePerMinute(t *testing.T) {
	self, outsider := testPeer(t, 1), testPeer(t, 9)
	roster, err := protocol.NewRoster("test", []protocol.Member{
		{Name: "nru", Role: protocol.RoleReferral, AuthorKey: protocol.AuthorKey{1}, PeerID: self.String()},
	})
	if err != nil {
		t.Fatal(err)
	}
	log := &records{}
	now := time.Unix(1_700_000_000, 0)
	g := NewGater(self, roster, nil, slog.New(log), func() time.Time { return now })
	remote := ma.StringCast("/ip4/192.0.2.7/tcp/4001")
	refuse := func(n int) {
		for range n {
			if g.InterceptSecured(network.DirInbound, outsider, addrs{remote}) {
				t.Fatal("an outsider was admitted")
			}
		}
	}
	refuse(1000)
	if len(log.got) != 1 {
		t.Fatalf("%d lines for 1,000 refusals within a minute, want 1", len(log.got))
	}
	now = now.Add(refusedLogEvery)
	refuse(1)
	if len(log.got) != 2 {
		t.Fatalf("%d lines after a minute, want 2", len(log.got))
	}
	var suppressed int64 = -1
	log.got[1].Attrs(func(a slog.Attr) bool {
		if a.Key == "dropped" {
			suppressed = a.Value.Int64()
		}
		return true
	})
	if suppressed != 999 {
		t.Errorf("the second line counts %d refusals since the first, want 999", suppressed)
	}
}
