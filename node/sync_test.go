package node

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store/storetest"
)

func digest(t *testing.T, n *Node) string {
	t.Helper()
	st, err := n.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.HeadsDigest
}

// Entries published while two nodes were apart never reach the other by
// gossip; sync on connect brings them.
func TestSyncCatchesUpOnConnect(t *testing.T) {
	inSim(t, func(t *testing.T) {
		f := newSimFed(t, simDefaults(21), "nru=referral", "pa=platform")
		f.start("nru")
		f.publish("nru", "apart", 500)
		// Restart nru: gossipsub's history (IHAVE/IWANT, about 3 s) would
		// still hand a newly connected peer what was published just
		// before; after a restart only sync can.
		a := f.restart("nru")
		b := f.start("pa")
		f.converge(time.Minute)
		if c, _ := b.store.Count(); c != 500 {
			t.Fatalf("pa holds %d entries, want 500", c)
		}
		if got := testutil.ToFloat64(b.metrics.synced); got != 500 {
			t.Errorf("synced counter %v, want 500 (the entries came by sync, not gossip)", got)
		}
		if st, _ := b.Status(context.Background()); st.Behind != 0 {
			t.Errorf("behind = %d after catching up", st.Behind)
		}
		if digest(t, a) != digest(t, b) {
			t.Error("the nodes' statuses show different heads")
		}
	})
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

	h := memberHost(t, f, "rogue", n.Roster())
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
	if !n.gater.Banned(h.ID()) {
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
	inSim(t, func(t *testing.T) {
		f := newSimFed(t, simDefaults(22), "nru=referral", "pa=platform", "pb=platform")
		key := f.key("nru")
		x := addition(t, key, "test", 1, protocol.ID{}, "shown to a")
		y := addition(t, key, "test", 1, protocol.ID{}, "shown to b")
		storetest.Seed(t, f.cfgs["pa"].StorePath, []*protocol.Entry{x})
		storetest.Seed(t, f.cfgs["pb"].StorePath, []*protocol.Entry{y})
		a, b := f.start("pa"), f.start("pb")
		author := protocol.AuthorKeyOf(key)
		f.waitFor(30*time.Second, "evidence on both nodes", func() bool {
			for _, n := range []*Node{a, b} {
				if fl, _ := n.store.Flagged(); len(fl) != 1 || fl[0] != author {
					return false
				}
			}
			return true
		})
		if h, _ := a.store.Head(author); h.ID != x.ID {
			t.Error("a lost its entry")
		}
		if h, _ := b.store.Head(author); h.ID != y.ID {
			t.Error("b lost its entry")
		}
	})
}
