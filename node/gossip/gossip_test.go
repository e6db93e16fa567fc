package gossip

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pubsubpb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/staydown/staydown/node/p2p"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

func testPeer(t *testing.T, seed byte) peer.ID {
	t.Helper()
	pk, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// validator is a Validator on a real store, whose log is buf and whose
// clock is *now.
func validator(t *testing.T, buf *bytes.Buffer, now *time.Time) *Validator {
	t.Helper()
	s, err := store.Open(filepath.Join(t.TempDir(), "staydown.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	self := testPeer(t, 1)
	roster, err := protocol.NewRoster("test", []protocol.Member{
		{Name: "nru", Role: protocol.RoleReferral, AuthorKey: protocol.AuthorKey{1}, PeerID: self.String()},
	})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	clock := func() time.Time { return *now }
	return &Validator{Store: s, Federation: "test", Names: func(k protocol.AuthorKey) string { return k.String()[:8] },
		Self: self, Gater: p2p.NewGater(self, roster, nil, log, clock), Log: log, Now: clock,
		Rejected: func(string) {}, Ignored: func() {}, SyncWith: func(peer.ID) {}, Hold: func(*protocol.Entry) {}}
}

func message(data []byte) *pubsub.Message {
	return &pubsub.Message{Message: &pubsubpb.Message{Data: data}}
}

// TestRejectionFloodIsBounded: a peer that sends a thousand bad messages
// in a minute makes one line, and the next a minute later counts the
// others; another peer's bad message still gets its line (#12 item 12:
// one line per message).
func TestRejectionFloodIsBounded(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1_700_000_000, 0)
	v := validator(t, &buf, &now)
	bad, other := testPeer(t, 7), testPeer(t, 8)
	for range 1000 {
		if r := v.Validate(context.Background(), bad, message([]byte("not an entry"))); r != pubsub.ValidationReject {
			t.Fatalf("garbage: %v, want reject", r)
		}
		now = now.Add(10 * time.Millisecond)
	}
	v.Validate(context.Background(), other, message([]byte("not an entry either")))
	if got := strings.Count(buf.String(), "rejected entry from peer"); got != 2 {
		t.Fatalf("%d lines for 1000 bad messages of one peer and one of another, want 2:\n%s", got, buf.String())
	}
	now = now.Add(LogEvery)
	buf.Reset()
	v.Validate(context.Background(), bad, message([]byte("still not an entry")))
	if !strings.Contains(buf.String(), "dropped=999") {
		t.Fatalf("the line a minute later does not count the 999 dropped: %s", buf.String())
	}
}

// TestFarFutureEntryLogged: an entry more than replica.MaxGap ahead of
// its author's head is dropped with a WARN line (it was silent), at most
// one a minute per peer for a flood of them.
func TestFarFutureEntryLogged(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1_700_000_000, 0)
	v := validator(t, &buf, &now)
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, ed25519.SeedSize))
	from := testPeer(t, 7)
	for seq := uint64(1000); seq < 1100; seq++ {
		sig, err := protocol.ParseSignal("sha256", fmt.Sprintf("%x", sha256.Sum256([]byte{byte(seq), byte(seq >> 8)})))
		if err != nil {
			t.Fatal(err)
		}
		e, err := protocol.Sign(key, &pb.Entry{Version: protocol.Version, Federation: "test", Seq: seq, Prev: append([]byte{0x12, 0x20}, make([]byte, 32)...), TimestampMs: 1_700_000_000_000,
			Payload: &pb.Entry_Addition{Addition: &pb.Addition{Signals: []*pb.Signal{sig},
				Labels: []*pb.Label{{Slug: "graphic-violence"}}}}})
		if err != nil {
			t.Fatal(err)
		}
		if r := v.Validate(context.Background(), from, message(e.Raw)); r != pubsub.ValidationIgnore {
			t.Fatalf("entry at seq %d of an empty log: %v, want ignore", seq, r)
		}
	}
	if got := strings.Count(buf.String(), "entry far ahead of the log we hold"); got != 1 || !strings.Contains(buf.String(), "level=WARN") {
		t.Fatalf("%d lines for 100 far-future entries, want 1 WARN:\n%s", got, buf.String())
	}
}
