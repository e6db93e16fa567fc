package node

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
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

// A client that names no position gets the events to come, not the whole
// history (#13 item 9: every event since the store began was replayed to
// each new client); position 0 asks for the history.
func TestEventsStartLive(t *testing.T) {
	f := newFederation(t, "nru=referral")
	n := f.start("nru")
	token, err := f.cfgs["nru"].Token()
	if err != nil {
		t.Fatal(err)
	}
	old := publishAddition(t, n, []string{"graphic-violence"}, sha256Signal(1))
	firstEvent := func(header string) string {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+n.APIAddr().String()+"/v1/events", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		if header != "" {
			req.Header.Set("Last-Event-ID", header)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		resp, err := http.DefaultClient.Do(req.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		published := false
		for {
			// The stream is open (headers came): publish after it, once.
			if !published {
				published = true
				if header == "" {
					publishAddition(t, n, []string{"graphic-violence"}, sha256Signal(2))
				}
			}
			if !sc.Scan() {
				t.Fatalf("stream ended before an event: %v", sc.Err())
			}
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				return data
			}
		}
	}
	if got := firstEvent("0"); !strings.Contains(got, old.ID.String()) {
		t.Errorf("from position 0, the first event is %s, want the first entry's", got)
	}
	if got := firstEvent(""); strings.Contains(got, old.ID.String()) || !strings.Contains(got, `"n":2,`) {
		t.Errorf("with no position, the first event is %s, want the addition published after the stream opened", got)
	}
}
