package node

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/node/kind"
	"github.com/staydown/staydown/node/roster"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/membership/membershiptest"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/prototest"
)

// TestHeldUntilAdmitted: an entry by a key no member has yet reaches a
// node by gossip before the admission of its author. The node neither
// stores it nor blames the peer that relayed it; it holds it, and stores
// it when the admission passes (SPEC 12.5), without a sync.
func TestHeldUntilAdmitted(t *testing.T) {
	f := newFederation(t, "nru=referral", "rogue=platform")
	n := f.start("nru")
	r := newRogue(t, f, "rogue", n)

	newcomer := membershiptest.Key(77)
	early := addition(t, newcomer, "test", 1, protocol.ID{}, "published before its admission")
	r.send(t, early.Raw)
	waitUntil(t, 10*time.Second, "the newcomer's entry ignored", func() bool { return testutil.ToFloat64(n.metrics.ignored) == 1 })
	if c, _ := n.store.Count(); c != 0 {
		t.Fatalf("store holds %d entries before the admission", c)
	}

	// The rogue (a platform: a voter) proposes the admission; nru's
	// approval passes it (2 of 2).
	pub := protocol.AuthorKeyOf(newcomer)
	block := &pb.MemberBlock{Name: "newcomer", Role: "platform", AuthorKey: pub[:], PeerId: membershiptest.PeerOf("newcomer")}
	rl := prototest.NewLog(f.key("rogue"), "test")
	proposal := rl.Next(t, prototest.Amend(0, block))
	r.send(t, proposal.Raw)
	waitUntil(t, 10*time.Second, "the proposal pending on nru", func() bool { return len(n.members.History().Pending) == 1 })
	if _, err := n.Publish(context.Background(), prototest.Approve(0, proposal.ID)); err != nil {
		t.Fatal(err)
	}
	if v := n.members.History().Version(); v != 1 {
		t.Fatalf("roster version %d after the approval, want 1", v)
	}
	waitUntil(t, 10*time.Second, "the held entry stored", func() bool {
		got, err := n.store.Get(early.ID)
		return err == nil && got.ID == early.ID
	})
	if m, ok := n.Roster().ByName("newcomer"); !ok || m.AuthorKey != pub {
		t.Fatalf("roster in force: %v", n.Roster().Names())
	}
	for _, reason := range []string{"unknown_author", "role"} {
		if got := testutil.ToFloat64(n.metrics.rejected.WithLabelValues(reason)); got != 0 {
			t.Errorf("rejected %v for %s", got, reason)
		}
	}
}

// TestRotateKey: a member rotates its key while its node is stopped; at
// the next start its log goes on under the new key, and a peer takes the
// rotation and the new key's entries.
func TestRotateKey(t *testing.T) {
	f := newFederation(t, "nru=referral", "pa=platform")
	nru, pa := f.start("nru"), f.start("pa")
	connect(t, nru, pa)
	if _, err := nru.Publish(context.Background(), additionBody(t, "before")); err != nil {
		t.Fatal(err)
	}
	old := protocol.AuthorKeyOf(f.key("nru"))
	if err := nru.Close(); err != nil {
		t.Fatal(err)
	}
	rot, err := RotateKey(f.cfgs["nru"], testLogger(t, "rotate"))
	if err != nil {
		t.Fatal(err)
	}
	if rot.Old != old || rot.Entry.Seq() != 2 || protocol.AuthorKeyOf(f.key("nru")) != rot.New {
		t.Fatalf("rotation %+v; author.key is %s now", rot, protocol.AuthorKeyOf(f.key("nru")))
	}
	nru = f.start("nru")
	connect(t, nru, pa)
	e, err := nru.Publish(context.Background(), additionBody(t, "after"))
	if err != nil {
		t.Fatal(err)
	}
	if e.Author != rot.New || e.Seq() != 1 {
		t.Fatalf("published as %s seq %d, want the new key's seq 1", e.Author, e.Seq())
	}
	waitUntil(t, 20*time.Second, "pa to take the rotation and the new key's entry", func() bool {
		got, err := pa.store.Get(e.ID)
		m, _ := pa.Roster().ByName("nru")
		return err == nil && got.ID == e.ID && m.AuthorKey == rot.New
	})
	// A signature of the old key after its rotation is past its end.
	late, err := protocol.Sign(ed25519.PrivateKey(oldKey(t, f)), &pb.Entry{Version: 1, Federation: "test", Seq: 3, Prev: rot.Entry.ID[:], TimestampMs: 9,
		Payload: additionBody(t, "old key after rotation").Payload})
	if err != nil {
		t.Fatal(err)
	}
	res, err := pa.store.Apply([]*protocol.Entry{late})
	if err != nil || res[0].Outcome.String() != "void" {
		t.Fatalf("the old key's entry after its rotation: %v %v", res, err)
	}
}

// connect connects a to b's host.
func connect(t *testing.T, a, b *Node) {
	t.Helper()
	if err := a.Connect(context.Background(), peer.AddrInfo{ID: b.host.ID(), Addrs: b.host.Addrs()}); err != nil {
		t.Fatalf("connect: %v", err)
	}
}

// additionBody is an addition of the sha256 of content.
func additionBody(t *testing.T, content string) *pb.Entry {
	t.Helper()
	sum := sha256.Sum256([]byte(content))
	sig, err := protocol.ParseSignal("sha256", hex.EncodeToString(sum[:]))
	if err != nil {
		t.Fatal(err)
	}
	return &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{Signals: []*pb.Signal{sig}, Labels: []*pb.Label{{Slug: "graphic-violence"}}}}}
}

// oldKey is the author key a node of f kept when it rotated (the one
// author.key.old-* holds).
func oldKey(t *testing.T, f *federation) ed25519.PrivateKey {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(f.cfgs["nru"].Dir, config.AuthorKeyFile+".old-*"))
	if err != nil || len(files) != 1 {
		t.Fatalf("old key files: %v %v", files, err)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	return ed25519.NewKeyFromSeed(seed)
}

// TestAnnouncePeer: a member's peer update (no vote) gives every node the
// member's new addresses.
func TestAnnouncePeer(t *testing.T) {
	f := newFederation(t, "nru=referral", "pa=platform")
	nru, pa := f.start("nru"), f.start("pa")
	connect(t, nru, pa)
	got, err := nru.AnnouncePeer(context.Background(), roster.PeerRequest{Addrs: []string{"/ip4/192.0.2.9/tcp/4009"}})
	if err != nil {
		t.Fatal(err)
	}
	if got.PeerID != nru.host.ID().String() {
		t.Fatalf("announced %s, the node is %s", got.PeerID, nru.host.ID())
	}
	waitUntil(t, 20*time.Second, "pa to hold nru's new address", func() bool {
		m, _ := pa.Roster().ByName("nru")
		return slices.Equal(m.Addrs, []string{"/ip4/192.0.2.9/tcp/4009"})
	})
	if _, err := nru.AnnouncePeer(context.Background(), roster.PeerRequest{Addrs: []string{"nonsense"}}); !errors.Is(err, kind.ErrInvalid) {
		t.Fatalf("a bad address: %v", err)
	}
}
