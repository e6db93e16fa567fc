package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

func publishN(t *testing.T, n *Node, count int) {
	t.Helper()
	for i := 0; i < count; i++ {
		sig, err := protocol.ParseSignal("sha256", fmt.Sprintf("%064x", i+1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.Publish(context.Background(), &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{
			Signals: []*pb.Signal{sig}, Labels: []*pb.Label{{Slug: "graphic-violence"}}}}}); err != nil {
			t.Fatal(err)
		}
	}
}

func digest(t *testing.T, n *Node) string {
	t.Helper()
	st, err := n.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.HeadsDigest
}

// Entries published while two nodes were apart never reach the other by
// gossip; sync on connection brings them.
func TestSyncCatchesUpOnConnect(t *testing.T) {
	f := newFederation(t, "nru=referral", "pa=platform")
	a, b := f.start("nru"), f.start("pa")
	publishN(t, a, 500)
	if c, _ := b.store.Count(); c != 0 {
		t.Fatalf("b holds %d entries before connecting", c)
	}
	// Restart a: gossipsub's history (IHAVE/IWANT, about 3 s) would still
	// hand a newly connected peer what was published just before; after a
	// restart only sync can.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a = f.start("nru")
	connect(t, b, a)
	waitUntil(t, 30*time.Second, "b to catch up", func() bool { return digest(t, b) == digest(t, a) })
	if c, _ := b.store.Count(); c != 500 {
		t.Fatalf("b holds %d entries, want 500", c)
	}
	// The counter moves after the commit that the digest already shows.
	waitUntil(t, 10*time.Second, "synced counter at 500 (the entries came by sync, not gossip)", func() bool {
		return testutil.ToFloat64(b.metrics.synced) == 500
	})
	if st, _ := b.Status(context.Background()); st.Behind != 0 {
		t.Errorf("behind = %d after catching up", st.Behind)
	}
}

// A peer that answers sync with a forged range is cut off and nothing it
// sent is stored.
func TestSyncCutsOffForger(t *testing.T) {
	f := newFederation(t, "nru=referral", "rogue=platform")
	n := f.start("nru")
	key := f.key("rogue")
	author := protocol.AuthorKeyOf(key)
	good := addition(t, key, "test", 1, protocol.ID{}, "one")
	// Not a piece of any log: the whole range is refused. (A well-formed
	// entry whose signature fails at the end of a range is not forgery:
	// the authenticated prefix is kept, the rest fetched again later.)
	forged := []byte("garbage where entry 2 should be")

	h := memberHost(t, f, "rogue", n.roster)
	served := make(chan struct{}, 1)
	// Claims a log of 2 entries, serves a forged second one.
	scriptSync(h, author, protocol.Head{Seq: 2, ID: good.ID}, func(s network.Stream, _ *pb.SyncRequest) bool {
		protodelim.MarshalTo(s, &pb.SyncBatch{Entries: [][]byte{good.Raw, forged}, Last: true})
		served <- struct{}{}
		return false
	})
	if err := n.Connect(context.Background(), peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-served:
	case <-time.After(20 * time.Second):
		t.Fatal("the node never asked the rogue for a range")
	}
	waitUntil(t, 10*time.Second, "the forger to be cut off", func() bool {
		return testutil.ToFloat64(n.metrics.syncForged) == 1 && n.host.Network().Connectedness(h.ID()) != network.Connected
	})
	if c, _ := n.store.Count(); c != 0 {
		t.Errorf("stored %d entries from a forged range", c)
	}
	if !n.gater.isBanned(h.ID()) {
		t.Error("the forger is not banned")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := n.Connect(ctx, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err == nil {
		t.Error("the node dialled a banned peer")
	}
}

// Two nodes hold different entries for one author and seq (the author
// showed each a different history). Sync finds it: both keep the other's
// entry as evidence and flag the author; nothing they held is lost.
func TestSyncFindsEquivocation(t *testing.T) {
	f := newFederation(t, "nru=referral", "pa=platform", "pb=platform")
	a, b := f.start("pa"), f.start("pb")
	key := f.key("nru")
	x := addition(t, key, "test", 1, protocol.ID{}, "shown to a")
	y := addition(t, key, "test", 1, protocol.ID{}, "shown to b")
	if _, err := a.store.Apply([]*protocol.Entry{x}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Apply([]*protocol.Entry{y}); err != nil {
		t.Fatal(err)
	}
	connect(t, a, b)
	author := protocol.AuthorKeyOf(key)
	for _, n := range []*Node{a, b} {
		waitUntil(t, 30*time.Second, "evidence on both nodes", func() bool {
			fl, _ := n.store.Flagged()
			return len(fl) == 1 && fl[0] == author
		})
	}
	if h, _ := a.store.Head(author); h.ID != x.ID {
		t.Error("a lost its entry")
	}
	if h, _ := b.store.Head(author); h.ID != y.ID {
		t.Error("b lost its entry")
	}
}
