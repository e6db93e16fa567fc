package node

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/gossip"
	"github.com/staydown/staydown/node/kind"
	"github.com/staydown/staydown/node/p2p"
	"github.com/staydown/staydown/node/tokens"
	"github.com/staydown/staydown/protocol/pb"

	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/protocol"
)

// testLogger writes the node's log into the test's log, so a failure shows
// what the node said.
func testLogger(t testing.TB, name string) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", name)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// federation is a set of member directories sharing one roster. Members
// listen on kernel-chosen ports, so the roster carries no addresses and
// tests connect nodes explicitly.
type federation struct {
	t       testing.TB
	cfgs    map[string]*config.Node
	members []string
}

var addrsLine = regexp.MustCompile(`(?m)^addrs = .*$`)

func newFederation(t testing.TB, members ...string) *federation {
	t.Helper()
	dir := t.TempDir()
	roster := filepath.Join(dir, "roster.toml")
	f := &federation{t: t, cfgs: map[string]*config.Node{}}
	var blocks strings.Builder
	for _, m := range members {
		name, role, _ := strings.Cut(m, "=")
		_, block, err := config.Init(config.InitOptions{
			Dir: filepath.Join(dir, name), Name: name, Role: protocol.Role(role), Federation: "test",
			Listen: []string{"/ip4/127.0.0.1/tcp/0"}, API: freeAPIAddr(t), Roster: roster,
		})
		if err != nil {
			t.Fatal(err)
		}
		blocks.WriteString(addrsLine.ReplaceAllString(block, "addrs = []") + "\n")
		f.members = append(f.members, name)
	}
	if err := os.WriteFile(roster, []byte(blocks.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range f.members {
		cfg, err := config.Load(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		f.cfgs[name] = cfg
	}
	return f
}

func (f *federation) start(name string) *Node {
	f.t.Helper()
	n, err := StartWith(context.Background(), f.cfgs[name], testLogger(f.t, name), withAPI(testLogger(f.t, name)))
	if err != nil {
		f.t.Fatalf("start %s: %v", name, err)
	}
	f.t.Cleanup(func() {
		// Every test ends with the store's invariant check (a read
		// transaction: consistent even while the apply loop writes).
		// A node the test closed itself is checked by the node started on
		// the same directory after it.
		if err := n.store.Check(); err != nil && !errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
			f.t.Errorf("store of %s: %v", name, err)
		}
		if err := n.Close(); err != nil {
			f.t.Errorf("close %s: %v", name, err)
		}
	})
	return n
}

func (f *federation) key(name string) ed25519.PrivateKey {
	k, err := f.cfgs[name].AuthorKey()
	if err != nil {
		f.t.Fatal(err)
	}
	return k
}

// waitUntil polls cond every 10 ms until it holds or bound passes.
func waitUntil(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", bound, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// freeAPIAddr asks the kernel for a free loopback port for the HTTP API
// (the configuration wants a port number, not 0).
func freeAPIAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// A node that cannot bind its libp2p port fails to start with an error
// naming the address, and releases what it had taken (the store).
func TestStartFailsCleanlyOnBusyPort(t *testing.T) {
	f := newFederation(t, "a=platform")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := *f.cfgs["a"]
	cfg.Listen = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", ln.Addr().(*net.TCPAddr).Port)}
	_, err = Start(context.Background(), &cfg, testLogger(t, "a"))
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Start on a busy port: %v, want an address-in-use error", err)
	}
	// The store was closed: it opens again at once.
	n, err := StartWith(context.Background(), f.cfgs["a"], testLogger(t, "a"), withAPI(testLogger(t, "a")))
	if err != nil {
		t.Fatalf("second start: %v", err)
	}
	n.Close()
}

// A node that cannot bind its API's port fails to start with an error
// naming the address, after its loops had started: they end, and nothing
// reads the Node after StartWith returned nil (a data race and a nil
// dereference in CI, when another test had taken the port).
func TestStartFailsCleanlyOnBusyAPIPort(t *testing.T) {
	f := newFederation(t, "a=platform")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := *f.cfgs["a"]
	cfg.API = ln.Addr().String()
	n, err := StartWith(context.Background(), &cfg, testLogger(t, "a"), withAPI(testLogger(t, "a")))
	if n != nil || err == nil || !strings.Contains(err.Error(), "api: listen on "+cfg.API) {
		t.Fatalf("StartWith on a busy API port: %v, %v; want an error naming %s", n, err, cfg.API)
	}
	n, err = StartWith(context.Background(), f.cfgs["a"], testLogger(t, "a"), withAPI(testLogger(t, "a")))
	if err != nil {
		t.Fatalf("second start: %v", err)
	}
	n.Close()
}

// memberHost starts a bare libp2p host with member name's transport key,
// admitted by roster: a roster member whose node a test scripts by hand.
// It is closed when the test ends.
func memberHost(t *testing.T, f *federation, name string, roster *protocol.Roster) host.Host {
	t.Helper()
	key, err := f.cfgs[name].NodeKey()
	if err != nil {
		t.Fatal(err)
	}
	h, _, err := p2p.NewHost(key, []string{"/ip4/127.0.0.1/tcp/0"}, roster, testLogger(t, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// joinTopic puts host h, a member's bare host, in the federation's gossip
// topic with the node's own gossipsub configuration, connects target to
// it and waits until each sees the other in the topic. Stream handlers that
// target's sync-on-connect should find must be set before.
func joinTopic(t *testing.T, h host.Host, target *Node) *pubsub.Topic {
	t.Helper()
	ctx, topic := subscribedTopic(t, h)
	if err := target.Connect(ctx, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
		t.Fatalf("connect: %v", err)
	}
	waitUntil(t, 20*time.Second, "the member and the node to see each other in the topic", func() bool {
		return len(topic.ListPeers()) > 0 && len(target.topic.ListPeers()) > 0
	})
	return topic
}

// scriptSync makes h answer sync streams as a scripted peer: it reads the
// asker's hello, announces author's log as ending at head, then hands each
// request to answer until the stream ends or answer returns false.
func scriptSync(h host.Host, author protocol.AuthorKey, head protocol.Head, answer func(s network.Stream, req *pb.SyncRequest) bool) {
	h.SetStreamHandler(protocol.SyncProtocol, func(s network.Stream) {
		defer s.Close()
		r := bufio.NewReader(s)
		var hello pb.SyncHello
		if protodelim.UnmarshalFrom(r, &hello) != nil {
			return
		}
		protodelim.MarshalTo(s, &pb.SyncHello{Federation: "test", Genesis: hello.Genesis, Heads: []*pb.SyncHead{{Author: author[:], Seq: head.Seq, Id: head.ID[:]}}})
		for {
			var req pb.SyncRequest
			if protodelim.UnmarshalFrom(r, &req) != nil || !answer(s, &req) {
				return
			}
		}
	})
}

// subscribedTopic puts h in the federation's gossip topic with the node's
// own gossipsub configuration, subscribed, until the test ends.
func subscribedTopic(t *testing.T, h host.Host) (context.Context, *pubsub.Topic) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ps, err := gossip.NewPubSub(ctx, h, slog.New(slog.DiscardHandler), nil, gossip.Topic("test"))
	if err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join(gossip.Topic("test"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := topic.Subscribe(); err != nil {
		t.Fatal(err)
	}
	return ctx, topic
}

// withAPI is the Options of a node that serves its HTTP API, as
// cmd/staydown's run does.
func withAPI(log *slog.Logger) Options {
	return Options{API: func(n *Node, keys *tokens.Keeper) http.Handler { return api.NewServer(n, keys, log) }}
}

// TestPublishTooLarge: an entry over the size limit is the client's
// mistake (the API answers 400 naming the limit), not an internal error,
// and nothing is stored (#12 item 9).
func TestPublishTooLarge(t *testing.T) {
	f := newFederation(t, "nru=referral")
	n := f.start("nru")
	var sigs []*pb.Signal
	for i := range 40 {
		s, err := protocol.ParseSignal("url", fmt.Sprintf("https://video.example/%d/%s", i, strings.Repeat("x", 2000)))
		if err != nil {
			t.Fatal(err)
		}
		sigs = append(sigs, s)
	}
	_, err := n.Publish(context.Background(), &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{Signals: sigs, Labels: []*pb.Label{{Slug: "graphic-violence"}}}}})
	if !errors.Is(err, kind.ErrInvalid) || !errors.Is(err, protocol.ErrTooLarge) || !strings.Contains(err.Error(), fmt.Sprintf("limit %d", protocol.MaxEntrySize)) {
		t.Fatalf("publish of an entry over the limit: %v", err)
	}
	if c, err := n.store.Count(); err != nil || c != 0 {
		t.Errorf("%d entries stored (%v)", c, err)
	}
}
