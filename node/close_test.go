package node

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// Close is a contract (its doc comment gives the order): with a client
// reading /v1/events and a sync session waiting on a peer that never
// answers, it returns at once and without error. Regression: Close shut the
// API down first and waited for its streams, which end with the run
// context that it cancelled only afterwards: 5 s, then "context deadline
// exceeded".
func TestCloseWithStreamsOpen(t *testing.T) {
	f := newFederation(t, "nru=referral", "slow=platform")
	n := f.start("nru")

	// An events stream, open and read from.
	token, err := f.cfgs["nru"].Token()
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodGet, "http://"+n.APIAddr().String()+"/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("events: %s", resp.Status)
	}

	// A peer that announces a log and never serves the range asked for.
	key := f.key("slow")
	h := memberHost(t, f, "slow", n.Roster())
	asked := make(chan struct{}, 1)
	hold := make(chan struct{})
	defer close(hold)
	scriptSync(h, protocol.AuthorKeyOf(key), protocol.Head{Seq: 3, ID: protocol.IDOf([]byte("x"))}, func(network.Stream, *pb.SyncRequest) bool {
		select {
		case asked <- struct{}{}:
		default:
		}
		<-hold
		return false
	})
	if err := n.Connect(context.Background(), peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-asked:
	case <-time.After(20 * time.Second):
		t.Fatal("the node never asked the peer for a range")
	}

	start := time.Now()
	if err := n.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	// Not a speed figure: the old order waited out a 5 s timeout here.
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Close took %v with streams open", took)
	}
	// The events stream has ended.
	ended := make(chan struct{})
	go func() { io.Copy(io.Discard, resp.Body); close(ended) }()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Error("the events stream is still open after Close")
	}
}
