package node

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"slices"

	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/node/syncer"
	"github.com/staydown/staydown/node/writer"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store/storetest"
)

// fakeMember is a roster member whose node is a bare libp2p host with the
// node's gossipsub configuration and an honest sync server for whatever
// logs the test gives it. A test controls exactly what it gossips and what
// its sync hellos announce, which a real node would not let it do.
type fakeMember struct {
	t     *testing.T
	host  host.Host
	topic *pubsub.Topic
	fed   string

	mu   sync.Mutex // guards logs
	logs map[protocol.AuthorKey][]*protocol.Entry

	// opened gets the time each sync stream to this member opened;
	// closed, the time each ended.
	opened, closed chan time.Time
}

// newFakeMember starts the fake node of member name on the simulated
// network, serving log (which may be empty), and connects target to it
// (which triggers target's sync on connect).
func newFakeMember(t *testing.T, f *simFed, name string, target *Node, log ...*protocol.Entry) *fakeMember {
	t.Helper()
	h := f.bareHost(name)
	m := &fakeMember{t: t, host: h, fed: "test", logs: map[protocol.AuthorKey][]*protocol.Entry{},
		opened: make(chan time.Time, 64), closed: make(chan time.Time, 64)}
	if len(log) > 0 {
		m.serveLog(log...)
	}
	h.SetStreamHandler(protocol.SyncProtocol, m.serve)
	m.topic = simJoinTopic(t, f, h, target)
	return m
}

// simJoinTopic puts h, a member's bare host on the simulated network, in
// the federation's gossip topic with the node's own gossipsub
// configuration, connects target to it and waits until each sees the
// other in the topic. Stream handlers that target's sync-on-connect
// should find must be set before.
func simJoinTopic(t *testing.T, f *simFed, h host.Host, target *Node) *pubsub.Topic {
	t.Helper()
	ctx, topic := subscribedTopic(t, h)
	if err := target.Connect(ctx, peer.AddrInfo{ID: h.ID()}); err != nil {
		t.Fatalf("connect: %v", err)
	}
	f.waitFor(time.Minute, "the member and the node to see each other in the topic", func() bool {
		return len(topic.ListPeers()) > 0 && len(target.topic.ListPeers()) > 0
	})
	return topic
}

// serveLog makes entries (one author's log from seq 1, in order) the log
// this member announces and serves.
func (m *fakeMember) serveLog(entries ...*protocol.Entry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.logs[entries[0].Author] = entries
}

func (m *fakeMember) gossip(e *protocol.Entry) {
	m.t.Helper()
	if err := m.topic.Publish(context.Background(), e.Raw); err != nil {
		m.t.Fatalf("gossip: %v", err)
	}
}

// serve is an honest sync server over m.logs.
func (m *fakeMember) serve(s network.Stream) {
	m.opened <- time.Now()
	defer func() { m.closed <- time.Now() }()
	defer s.Close()
	r := bufio.NewReader(s)
	var hello pb.SyncHello
	if protodelim.UnmarshalFrom(r, &hello) != nil {
		return
	}
	mine := &pb.SyncHello{Federation: m.fed, Genesis: hello.Genesis}
	m.mu.Lock()
	for a, log := range m.logs {
		last := log[len(log)-1]
		mine.Heads = append(mine.Heads, &pb.SyncHead{Author: a[:], Seq: last.Seq(), Id: last.ID[:]})
	}
	m.mu.Unlock()
	if _, err := protodelim.MarshalTo(s, mine); err != nil {
		return
	}
	for {
		var req pb.SyncRequest
		if protodelim.UnmarshalFrom(r, &req) != nil {
			return
		}
		var a protocol.AuthorKey
		copy(a[:], req.Author)
		b := &pb.SyncBatch{Last: true}
		m.mu.Lock()
		for _, e := range m.logs[a] {
			if e.Seq() >= req.FromSeq && e.Seq() <= req.ToSeq {
				b.Entries = append(b.Entries, e.Raw)
			}
		}
		m.mu.Unlock()
		if _, err := protodelim.MarshalTo(s, b); err != nil {
			return
		}
	}
}

// waitSession waits for the next sync session with m to open and close.
func (m *fakeMember) waitSession(t *testing.T) {
	t.Helper()
	for _, ch := range []chan time.Time{m.opened, m.closed} {
		select {
		case <-ch:
		case <-time.After(20 * time.Second):
			t.Fatal("no sync session with the fake member")
		}
	}
}

// openedSince returns the first sync session opened at or after t0, if
// one has.
func (m *fakeMember) openedSince(t0 time.Time) (time.Time, bool) {
	for {
		select {
		case at := <-m.opened:
			if !at.Before(t0) {
				return at, true
			}
		default:
			return time.Time{}, false
		}
	}
}

// chain signs n additions of key's log, seq 1..n, content prefixed by tag.
func chain(t *testing.T, key ed25519.PrivateKey, n int, tag string) []*protocol.Entry {
	t.Helper()
	var out []*protocol.Entry
	var prev protocol.ID
	for seq := 1; seq <= n; seq++ {
		e := addition(t, key, "test", uint64(seq), prev, fmt.Sprintf("%s %d", tag, seq))
		out = append(out, e)
		prev = e.ID
	}
	return out
}

// noPeriodicSyncYet fails the test unless a sync session opened at
// synced, after a change made at changed, opened before the first
// periodic sync of a node started at started was due: then only the
// change can have opened it. Virtual time makes the comparison exact.
func noPeriodicSyncYet(t *testing.T, what string, started, changed, synced time.Time) {
	t.Helper()
	periodic := started.Add(syncer.Period)
	if !changed.Before(periodic) {
		t.Fatalf("%s: the set-up took %v of virtual time, past the first periodic sync", what, changed.Sub(started))
	}
	if !synced.Before(periodic) {
		t.Fatalf("%s: the node synced %v after the change, only when the periodic sync was due: nothing triggered a sync", what, synced.Sub(changed))
	}
	t.Logf("%s: sync opened %v after the change (the periodic sync was due %v later)", what, synced.Sub(changed), periodic.Sub(synced))
}

// A node that receives, by gossip, seq 3 of a log whose seq 1 and 2 were
// never gossiped fills the gap by sync at once: the gap itself triggers the
// sync (the periodic sync is not yet due). The entry that came both ways
// is stored once.
func TestSyncGapTriggersFetch(t *testing.T) {
	inSim(t, func(t *testing.T) {
		f := newSimFed(t, simDefaults(11), "nru=referral", "src=platform")
		started := time.Now()
		n := f.start("nru")
		src := newFakeMember(t, f, "src", n)
		src.waitSession(t) // the sync on connect: src had nothing yet
		f.settle(time.Second)
		key := f.key("src")
		author := protocol.AuthorKeyOf(key)
		log := chain(t, key, 3, "gap")

		src.serveLog(log...)
		changed := time.Now()
		src.gossip(log[2])
		f.waitFor(20*time.Second, "the gap to be filled", func() bool {
			h, _ := n.store.Head(author)
			return h.Seq == 3
		})
		synced, ok := src.openedSince(changed)
		if !ok {
			t.Fatal("the gap was filled without a sync session with the only node that had the entries")
		}
		noPeriodicSyncYet(t, "gap", started, changed, synced)
		if h, _ := n.store.Head(author); h.ID != log[2].ID {
			t.Errorf("head %s, want %s", h.ID, log[2].ID)
		}
		if c, _ := n.store.Count(); c != 3 {
			t.Errorf("store holds %d entries, want 3", c)
		}
		// Seq 3 came by gossip and by sync: applied once, the other copy
		// ignored; nothing is left waiting.
		f.settle(time.Second)
		if got := testutil.ToFloat64(n.metrics.ignored); got != 1 {
			t.Errorf("ignored counter %v, want 1 (the second copy of seq 3)", got)
		}
		if got := testutil.ToFloat64(n.metrics.applied); got != 3 {
			t.Errorf("applied counter %v, want 3", got)
		}
		if got := n.writer.PendingLen(); got != 0 {
			t.Errorf("%d entries still wait for a predecessor", got)
		}
	})
}

// SPEC.md section 13: an entry at head+1 whose prev is not the head
// (broken chain) is ignored, and the receiver fetches the author's log
// from the sender, which shows the fork: the node keeps the conflicting
// entry as evidence and flags the author, without waiting for the
// periodic sync.
func TestSyncBrokenChainFetchesFromSender(t *testing.T) {
	inSim(t, func(t *testing.T) {
		f := newSimFed(t, simDefaults(12), "nru=referral", "src=platform")
		started := time.Now()
		n := f.start("nru")
		key := f.key("src")
		author := protocol.AuthorKeyOf(key)
		honest := chain(t, key, 2, "honest")
		// The author forks at seq 2 and goes on on the fork.
		fork2 := addition(t, key, "test", 2, honest[0].ID, "fork 2")
		fork := []*protocol.Entry{honest[0], fork2, addition(t, key, "test", 3, fork2.ID, "fork 3")}

		// src serves its log before the node connects, so the sync on
		// connect brings seq 1 and 2.
		src := newFakeMember(t, f, "src", n, honest...)
		src.waitSession(t)
		f.settle(time.Second)
		if h, _ := n.store.Head(author); h.Seq != 2 || h.ID != honest[1].ID {
			t.Fatalf("after the sync on connect the node's head for src is %d %s, want 2 %s", h.Seq, h.ID, honest[1].ID)
		}

		src.serveLog(fork...)
		changed := time.Now()
		src.gossip(fork[2])
		f.waitFor(20*time.Second, "src to be flagged", func() bool {
			fl, _ := n.store.Flagged()
			return len(fl) == 1 && fl[0] == author
		})
		synced, ok := src.openedSince(changed)
		if !ok {
			t.Fatal("src was flagged without a sync session with it")
		}
		noPeriodicSyncYet(t, "broken chain", started, changed, synced)
		if h, _ := n.store.Head(author); h.ID != honest[1].ID {
			t.Errorf("the node's head for src moved to %s; the entry it held (%s) must stay", h.ID, honest[1].ID)
		}
		ev, err := n.store.Evidence()
		if err != nil || len(ev) != 1 || ev[0].Seq != 2 {
			t.Fatalf("evidence %+v, %v; want src's other seq 2", ev, err)
		}
	})
}

// Gossip and sync deliver the same entries at the same time. A node
// holds entries its peer can get only by sync (published while they were
// apart, before a restart that cleared gossip's short history); as soon as
// they connect it publishes more, one every 5 ms, which gossip delivers
// while the sync is under way, and the connection is cut and remade every
// 150 ms (each connection syncs both ways, each gap triggers a sync).
// Every entry is applied exactly once and the store stays consistent.
func TestSyncAndGossipOverlap(t *testing.T) {
	inSim(t, func(t *testing.T) {
		f := newSimFed(t, simDefaults(13), "nru=referral", "pa=platform")
		f.start("nru")
		const before, during = 200, 200
		f.publish("nru", "before", before)
		a := f.restart("nru")
		b := f.start("pa")
		done := make(chan error, 1)
		go func() {
			for i := range during {
				sig, err := protocol.ParseSignal("sha256", fmt.Sprintf("%064x", before+i+1))
				if err == nil {
					_, err = a.Publish(context.Background(), &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{
						Signals: []*pb.Signal{sig}, Labels: []*pb.Label{{Slug: "graphic-violence"}}}}})
				}
				if err != nil {
					done <- err
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			done <- nil
		}()
		cuts := 0
		for publishing := true; publishing; {
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				publishing = false
			case <-time.After(150 * time.Millisecond): // the pace of the cuts
				b.host.Network().ClosePeer(a.host.ID())
				if err := b.Connect(context.Background(), peer.AddrInfo{ID: a.host.ID()}); err != nil {
					t.Fatal(err)
				}
				cuts++
			}
		}
		f.converge(time.Minute)
		if c, _ := b.store.Count(); c != before+during {
			t.Fatalf("pa holds %d entries, want %d", c, before+during)
		}
		if got := testutil.ToFloat64(b.metrics.applied); got != before+during {
			t.Errorf("applied counter %v, want %d: an entry was applied twice or not at all", got, before+during)
		}
		t.Logf("%d connection cuts; the sync counter says %v, %v copies were ignored as already stored",
			cuts, testutil.ToFloat64(b.metrics.synced), testutil.ToFloat64(b.metrics.ignored))
	})
}

// Catch-ups whose length falls on each side of the batch and request
// limits: the last entry of a full batch, the first of the next, a full
// request and one more.
func TestSyncRangeBoundaries(t *testing.T) {
	sizes := []int{protocol.MaxSyncBatch, protocol.MaxSyncBatch + 1, protocol.MaxSyncRange, protocol.MaxSyncRange + 1}
	var log []*protocol.Entry
	var signer ed25519.PrivateKey
	for _, size := range sizes {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			inSim(t, func(t *testing.T) {
				f := newSimFed(t, simDefaults(uint64(size)), "nru=referral", "pa=platform")
				if log == nil {
					// Every federation has new keys: sign with this one's
					// referral key, once, and reuse the key for the others.
					signer = f.key("nru")
					log = chain(t, signer, sizes[len(sizes)-1], "boundary")
				}
				f.useAuthorKey("nru", signer)
				storetest.Seed(t, f.cfgs["nru"].StorePath, log[:size])
				f.start("nru")
				b := f.start("pa")
				author := protocol.AuthorKeyOf(signer)
				f.waitFor(time.Minute, "pa to catch up by sync", func() bool {
					h, _ := b.store.Head(author)
					return h.Seq == uint64(size)
				})
				if got := testutil.ToFloat64(b.metrics.synced); got != float64(size) {
					t.Errorf("synced counter %v, want %d", got, size)
				}
				if h, _ := b.store.Head(author); h.ID != log[size-1].ID {
					t.Errorf("head %s, want %s", h.ID, log[size-1].ID)
				}
			})
		})
	}
}

// Entries of about 40 KB: a request is answered in several batches, each
// under MaxSyncBatchBytes.
func TestSyncLargeEntriesSpanBatches(t *testing.T) {
	inSim(t, func(t *testing.T) {
		f := newSimFed(t, simDefaults(14), "nru=referral", "pa=platform")
		key := f.key("nru")
		var log []*protocol.Entry
		var prev protocol.ID
		for seq := uint64(1); seq <= 60; seq++ {
			add := &pb.Addition{Labels: []*pb.Label{{Slug: "graphic-violence"}}, CaseRef: strings.Repeat("c", protocol.MaxCaseRefLen)}
			for i := range protocol.MaxSignals {
				sig, err := protocol.ParseSignal("sha256", fmt.Sprintf("%032x%032x", seq, i))
				if err != nil {
					t.Fatal(err)
				}
				add.Signals = append(add.Signals, sig)
			}
			body := &pb.Entry{Version: 1, Federation: "test", Seq: seq, TimestampMs: 1, Payload: &pb.Entry_Addition{Addition: add}}
			if seq > 1 {
				body.Prev = prev[:]
			}
			e, err := protocol.Sign(key, body)
			if err != nil {
				t.Fatal(err)
			}
			log, prev = append(log, e), e.ID
		}
		total := 0
		for _, e := range log {
			total += len(e.Raw)
		}
		if total < 2*protocol.MaxSyncBatchBytes {
			t.Fatalf("the log is only %d bytes; the test wants more than two batches' worth", total)
		}
		storetest.Seed(t, f.cfgs["nru"].StorePath, log)
		f.start("nru")
		b := f.start("pa")
		f.converge(time.Minute)
		if c, _ := b.store.Count(); c != uint64(len(log)) {
			t.Errorf("pa holds %d entries, want %d", c, len(log))
		}
		t.Logf("%d entries, %d bytes: at least %d batches", len(log), total, total/protocol.MaxSyncBatchBytes+1)
	})
}

// useAuthorKey makes key the author key of the member whose config is
// cfg: in its directory and in the federation's roster.
func useAuthorKey(t *testing.T, cfg *config.Node, key ed25519.PrivateKey) {
	t.Helper()
	old, err := cfg.AuthorKey()
	if err != nil {
		t.Fatal(err)
	}
	if old.Equal(key) {
		return
	}
	roster, err := os.ReadFile(cfg.RosterPath)
	if err != nil {
		t.Fatal(err)
	}
	oldHex, newHex := protocol.AuthorKeyOf(old).String(), protocol.AuthorKeyOf(key).String()
	if !strings.Contains(string(roster), oldHex) {
		t.Fatalf("roster does not hold %s's author key", cfg.Name)
	}
	if err := os.WriteFile(cfg.RosterPath, []byte(strings.Replace(string(roster), oldHex, newHex, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.Dir, config.AuthorKeyFile), []byte(hex.EncodeToString(key.Seed())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// syncClient opens a sync stream to n from the roster member name's
// transport identity, as a misbehaving member's node would.
func syncClient(t *testing.T, f *federation, name string, n *Node) (host.Host, network.Stream, *bufio.Reader) {
	t.Helper()
	h := memberHost(t, f, name, n.Roster())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Connect(ctx, peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	s, err := h.NewStream(ctx, n.host.ID(), protocol.SyncProtocol)
	if err != nil {
		t.Fatal(err)
	}
	return h, s, bufio.NewReader(s)
}

// The serving side cuts off a peer that breaks the protocol's limits, and
// serves one that keeps to them.
func TestSyncServeCutsOffBadRequests(t *testing.T) {
	cases := []struct {
		name     string
		hello    *pb.SyncHello
		req      func(author []byte) *pb.SyncRequest
		punished bool
	}{
		{"request at the range limit", nil, func(a []byte) *pb.SyncRequest {
			return &pb.SyncRequest{Author: a, FromSeq: 1, ToSeq: protocol.MaxSyncRange}
		}, false},
		{"request over the range limit", nil, func(a []byte) *pb.SyncRequest {
			return &pb.SyncRequest{Author: a, FromSeq: 1, ToSeq: protocol.MaxSyncRange + 1}
		}, true},
		{"request from seq 0", nil, func(a []byte) *pb.SyncRequest { return &pb.SyncRequest{Author: a, FromSeq: 0, ToSeq: 3} }, true},
		{"request backwards", nil, func(a []byte) *pb.SyncRequest { return &pb.SyncRequest{Author: a, FromSeq: 5, ToSeq: 3} }, true},
		{"request with a short author", nil, func(a []byte) *pb.SyncRequest { return &pb.SyncRequest{Author: a[:31], FromSeq: 1, ToSeq: 3} }, true},
		{"request overflowing uint64", nil, func(a []byte) *pb.SyncRequest {
			return &pb.SyncRequest{Author: a, FromSeq: math.MaxUint64 - 1, ToSeq: math.MaxUint64}
		}, false},
		{"hello of another federation", &pb.SyncHello{Federation: "other"}, nil, true},
		{"hello with a malformed head", &pb.SyncHello{Federation: "test", Heads: []*pb.SyncHead{{Author: make([]byte, 32), Seq: 1, Id: []byte{1}}}}, nil, true},
		{"hello of another genesis (same name, other founders)", &pb.SyncHello{Federation: "test", Genesis: make([]byte, 32)}, nil, true},
	}
	refusing := map[string]string{
		"hello of another federation":                          `its sync hello names another federation, "other"`,
		"hello of another genesis (same name, other founders)": "its sync hello names another genesis, 00000000",
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFederation(t, "nru=referral", "rogue=platform")
			key := f.key("nru")
			storetest.Seed(t, f.cfgs["nru"].StorePath, chain(t, key, 3, "served"))
			n := f.start("nru")
			h, s, r := syncClient(t, f, "rogue", n)
			hello := tc.hello
			if hello == nil {
				hello = &pb.SyncHello{Federation: "test"}
			}
			if hello.Genesis == nil {
				gh := n.members.Genesis().Hash()
				hello.Genesis = gh[:]
			}
			if _, err := protodelim.MarshalTo(s, hello); err != nil {
				t.Fatal(err)
			}
			var theirs pb.SyncHello
			err := protodelim.UnmarshalFrom(r, &theirs)
			if tc.req != nil {
				if err != nil {
					t.Fatalf("no hello from the node: %v", err)
				}
				author := protocol.AuthorKeyOf(key)
				if _, err := protodelim.MarshalTo(s, tc.req(author[:])); err != nil {
					t.Fatal(err)
				}
				var b pb.SyncBatch
				err := protodelim.UnmarshalFrom(r, &b)
				if !tc.punished && (err != nil || !b.Last) {
					t.Fatalf("a request within the limits was not answered: %v %v", err, &b)
				}
				if tc.punished && err == nil {
					t.Fatalf("a request outside the limits was answered: %v", &b)
				}
			}
			if tc.punished {
				waitUntil(t, 10*time.Second, "the peer to be cut off", func() bool {
					return testutil.ToFloat64(n.metrics.syncForged) == 1 && n.host.Network().Connectedness(h.ID()) != network.Connected
				})
				if !n.gater.Banned(h.ID()) {
					t.Error("not banned")
				}
				// A peer of another federation refuses this node too:
				// status says so, and why (#13 item 6).
				if want := refusing[tc.name]; want != "" {
					st, err := n.Status(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					if len(st.Members) != 1 || st.Members[0].Name != "rogue" || !strings.Contains(st.Members[0].Refusing, want) {
						t.Errorf("status of the members: %+v, want rogue refusing: %s", st.Members, want)
					}
				}
				return
			}
			s.CloseWrite()
			if got := testutil.ToFloat64(n.metrics.syncForged); got != 0 {
				t.Errorf("an honest request was punished (%v)", got)
			}
			if n.gater.Banned(h.ID()) {
				t.Error("an honest peer was banned")
			}
		})
	}
}

// A server that answers a request with empty batches that are never the
// last is stalling: it would hold up one of the node's sync sessions
// (until the pacer cut it, section 16.6, or before the pacer the only
// one, for the 10-minute session limit). A non-final batch always carries entries (serveRange sends
// Last as soon as the range is exhausted), so an empty one is malformed:
// the peer is cut off like a forger.
func TestSyncCutsOffStaller(t *testing.T) {
	f := newFederation(t, "nru=referral", "rogue=platform")
	n := f.start("nru")
	key := f.key("rogue")
	author := protocol.AuthorKeyOf(key)
	first := addition(t, key, "test", 1, protocol.ID{}, "one")
	h := memberHost(t, f, "rogue", n.Roster())
	stalling := make(chan struct{}, 1)
	scriptSync(h, author, protocol.Head{Seq: 5, ID: first.ID}, func(s network.Stream, _ *pb.SyncRequest) bool {
		select {
		case stalling <- struct{}{}:
		default:
		}
		for i := 0; i < 1_000_000; i++ {
			if _, err := protodelim.MarshalTo(s, &pb.SyncBatch{Last: false}); err != nil {
				return false // cut off
			}
		}
		return false
	})
	if err := n.Connect(context.Background(), peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stalling:
	case <-time.After(20 * time.Second):
		t.Fatal("the node never asked the staller for a range")
	}
	waitUntil(t, 10*time.Second, "the staller to be cut off", func() bool {
		return testutil.ToFloat64(n.metrics.syncForged) == 1 && n.host.Network().Connectedness(h.ID()) != network.Connected
	})
}

// MaxSyncHeads promises that a hello of that many heads is accepted; it
// must then fit in one sync message, or the hello of a federation that
// large could never be read and no node of it could sync.
func TestSyncHelloLimitFitsMessage(t *testing.T) {
	h := &pb.SyncHello{Federation: strings.Repeat("f", protocol.MaxFederationLen)}
	for range protocol.MaxSyncHeads {
		h.Heads = append(h.Heads, &pb.SyncHead{Author: make([]byte, 32), Seq: math.MaxUint64, Id: make([]byte, protocol.IDSize)})
	}
	if size := proto.Size(h); size > protocol.MaxSyncMessage {
		t.Errorf("a hello of MaxSyncHeads (%d) heads is %d bytes, over MaxSyncMessage (%d): it could not be read; at most %d heads fit",
			protocol.MaxSyncHeads, size, protocol.MaxSyncMessage, protocol.MaxSyncMessage/(size/protocol.MaxSyncHeads))
	}
}

// extend returns log continued up to seq upTo by additions of key whose
// content is tag and the seq ("branch b 3"): another branch, when log is
// the trunk of a fork.
func extend(t *testing.T, key ed25519.PrivateKey, log []*protocol.Entry, upTo uint64, tag string) []*protocol.Entry {
	t.Helper()
	out := slices.Clone(log)
	for seq := uint64(len(log)) + 1; seq <= upTo; seq++ {
		out = append(out, addition(t, key, "test", seq, out[seq-2].ID, fmt.Sprintf("%s %d", tag, seq)))
	}
	return out
}

// A member that forked its log serves, in answer to one request, a batch
// from one branch and the next batch from the other. Each batch is a
// chain, and each is signed by the author; only the link between them is
// broken. The node must see the fork in that very session, as it would
// between two requests: keep the first branch, get the other's entry at
// its head as evidence and flag the author. (The member answers only one
// session: a node that noticed nothing would not find out until some
// later sync with someone else.)
func TestSyncForkAcrossBatchesIsEvidence(t *testing.T) {
	inSim(t, func(t *testing.T) {
		f := newSimFed(t, simDefaults(15), "nru=referral", "src=platform")
		n := f.start("nru")
		key := f.key("src")
		author := protocol.AuthorKeyOf(key)
		a := chain(t, key, 3, "branch a")
		b := extend(t, key, a[:2], 6, "branch b")

		h := f.bareHost("src")
		var answered atomic.Bool // one session is answered; later ones are refused
		h.SetStreamHandler(protocol.SyncProtocol, func(s network.Stream) {
			if answered.Swap(true) {
				s.Reset()
				return
			}
			defer s.Close()
			r := bufio.NewReader(s)
			var hello pb.SyncHello
			if protodelim.UnmarshalFrom(r, &hello) != nil {
				return
			}
			protodelim.MarshalTo(s, &pb.SyncHello{Federation: "test", Genesis: hello.Genesis, Heads: []*pb.SyncHead{{Author: author[:], Seq: 6, Id: b[5].ID[:]}}})
			for spliced := false; ; {
				var req pb.SyncRequest
				if protodelim.UnmarshalFrom(r, &req) != nil {
					return
				}
				if req.FromSeq == 1 && !spliced {
					spliced = true
					protodelim.MarshalTo(s, &pb.SyncBatch{Entries: [][]byte{a[0].Raw, a[1].Raw, a[2].Raw}})
					protodelim.MarshalTo(s, &pb.SyncBatch{Entries: [][]byte{b[3].Raw, b[4].Raw, b[5].Raw}, Last: true})
					continue
				}
				batch := &pb.SyncBatch{Last: true}
				for seq := req.FromSeq; seq <= min(req.ToSeq, 6); seq++ {
					batch.Entries = append(batch.Entries, b[seq-1].Raw)
				}
				protodelim.MarshalTo(s, batch)
			}
		})
		if err := n.Connect(context.Background(), peer.AddrInfo{ID: h.ID()}); err != nil {
			t.Fatal(err)
		}
		f.waitFor(20*time.Second, "src to be flagged for its fork", func() bool {
			fl, _ := n.store.Flagged()
			return len(fl) == 1 && fl[0] == author
		})
		if hd, _ := n.store.Head(author); hd.ID != a[2].ID {
			t.Errorf("head %d %s, want branch a's seq 3 %s", hd.Seq, hd.ID, a[2].ID)
		}
		if got := n.writer.PendingLen(); got != 0 {
			t.Errorf("%d entries of the other branch wait in the out-of-order buffer for predecessors that will never come", got)
		}
		if got := testutil.ToFloat64(n.metrics.synced); got != 3 {
			t.Errorf("synced counter %v, want 3 (the entries stored)", got)
		}
	})
}

// A peer holds another branch of a forked log, longer than the branch
// this node holds. Sync keeps this node's branch, keeps the peer's entry
// at this node's head as evidence and flags the author; the peer's later
// entries can never be applied here (their predecessor is on the other
// branch), so nothing of them may be left in the out-of-order buffer,
// where they would take the room of entries that are only early.
func TestSyncForkLeavesNothingPending(t *testing.T) {
	inSim(t, func(t *testing.T) {
		f := newSimFed(t, simDefaults(16), "nru=referral", "src=platform")
		n := f.start("nru")
		key := f.key("src")
		author := protocol.AuthorKeyOf(key)
		mine := chain(t, key, 3, "branch a")
		theirs := extend(t, key, mine[:2], 6, "branch b")
		src := newFakeMember(t, f, "src", n, mine...)
		src.waitSession(t)
		f.settle(time.Second)
		if h, _ := n.store.Head(author); h.ID != mine[2].ID {
			t.Fatalf("after the sync on connect the head is %d %s, want 3 %s", h.Seq, h.ID, mine[2].ID)
		}
		src.serveLog(theirs...)
		n.sync.Soon(src.host.ID())
		f.waitFor(20*time.Second, "src to be flagged", func() bool {
			fl, _ := n.store.Flagged()
			return len(fl) == 1 && fl[0] == author
		})
		if h, _ := n.store.Head(author); h.ID != mine[2].ID {
			t.Errorf("head moved to %s", h.ID)
		}
		if got := n.writer.PendingLen(); got != 0 {
			t.Errorf("%d entries of the other branch wait in the out-of-order buffer for predecessors that will never come", got)
		}
	})
}

// A peer holds another branch of a forked log, thousands of entries
// longer than this node's. With transactions smaller than an answer, the
// fork shows while an answer is still arriving: the node must read that
// answer to its end before it asks for the evidence, or it would take the
// answer's next batch for the evidence and cut off an honest peer.
func TestSyncForkFoundMidAnswerIsEvidence(t *testing.T) {
	inSim(t, func(t *testing.T) {
		f := newSimFed(t, simDefaults(17), "nru=referral", "pa=platform")
		key := f.key("nru")
		author := protocol.AuthorKeyOf(key)
		mine := chain(t, key, 3, "branch a")
		theirs := []*protocol.Entry{mine[0], mine[1]}
		for seq := uint64(3); seq <= 3*protocol.MaxSyncBatch; seq++ {
			theirs = append(theirs, addition(t, key, "test", seq, theirs[seq-2].ID, fmt.Sprintf("branch b %d", seq)))
		}
		storetest.Seed(t, f.cfgs["nru"].StorePath, theirs)
		storetest.Seed(t, f.cfgs["pa"].StorePath, mine)
		// pa starts first, alone: no sync runs before its transactions
		// are cut to 100 entries, so the second is handed over (and the
		// first found not to continue the log) inside the first answer.
		b := f.start("pa")
		b.sync.LimitTransactions(100, writer.MaxBatchBytes)
		f.start("nru")
		f.waitFor(20*time.Second, "the author to be flagged", func() bool {
			fl, _ := b.store.Flagged()
			return len(fl) == 1 && fl[0] == author
		})
		if h, _ := b.store.Head(author); h.ID != mine[2].ID {
			t.Errorf("head moved to %d %s", h.Seq, h.ID)
		}
		if got := testutil.ToFloat64(b.metrics.syncForged); got != 0 {
			t.Errorf("an honest peer was cut off (%v sessions counted as forged)", got)
		}
		ev, _ := b.store.Evidence()
		if len(ev) != 1 || protocol.IDOf(ev[0].Conflicting) != theirs[2].ID {
			t.Errorf("evidence %d pieces, want their seq 3", len(ev))
		}
	})
}

// syncAnswer sends raws, the entries a request asked for, to the asker;
// it waits with pause, which fails once the test is over.
type syncAnswer func(s network.Stream, raws [][]byte, pause func(time.Duration) error) error

// serveSyncLog puts member name on the network as a bare host, a sync
// server that announces log (one author's, from seq 1) and hands the
// entries each request asks for, with answer, to the asker: an honest
// server whose pace and manners the test chooses. It serves every
// session it is asked for; sessions says when each peer opened one.
func (f *simFed) serveSyncLog(name string, log []*protocol.Entry, answer syncAnswer) (sessions func(peer.ID) []time.Time) {
	h := f.bareHost(name)
	var mu sync.Mutex
	opened := map[peer.ID][]time.Time{}
	over := make(chan struct{})
	f.t.Cleanup(func() { close(over) })
	pause := func(d time.Duration) error {
		select {
		case <-time.After(d):
			return nil
		case <-over:
			return errors.New("the test is over")
		}
	}
	last := log[len(log)-1]
	h.SetStreamHandler(protocol.SyncProtocol, func(s network.Stream) {
		defer s.Close()
		mu.Lock()
		opened[s.Conn().RemotePeer()] = append(opened[s.Conn().RemotePeer()], time.Now())
		mu.Unlock()
		r := bufio.NewReader(s)
		var hello pb.SyncHello
		if protodelim.UnmarshalFrom(r, &hello) != nil {
			return
		}
		if _, err := protodelim.MarshalTo(s, &pb.SyncHello{Federation: "test", Genesis: hello.Genesis,
			Heads: []*pb.SyncHead{{Author: last.Author[:], Seq: last.Seq(), Id: last.ID[:]}}}); err != nil {
			return
		}
		for {
			var req pb.SyncRequest
			if protodelim.UnmarshalFrom(r, &req) != nil {
				return
			}
			var raws [][]byte
			for seq := req.FromSeq; seq <= min(req.ToSeq, last.Seq()); seq++ {
				raws = append(raws, log[seq-1].Raw)
			}
			if answer(s, raws, pause) != nil {
				return
			}
		}
	})
	return func(p peer.ID) []time.Time {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(opened[p])
	}
}

// paced answers with batches of per entries, one every pause, the last
// marked last: an honest server on a slow link (or a hostile one that
// drips, when per is 1 and pause long).
func paced(per int, every time.Duration) syncAnswer {
	return func(s network.Stream, raws [][]byte, pause func(time.Duration) error) error {
		for {
			n := min(per, len(raws))
			if _, err := protodelim.MarshalTo(s, &pb.SyncBatch{Entries: raws[:n], Last: n == len(raws)}); err != nil {
				return err
			}
			if raws = raws[n:]; len(raws) == 0 {
				return nil
			}
			if err := pause(every); err != nil {
				return err
			}
		}
	}
}

// logged reports whether member name's node logged a line at level
// holding every one of parts.
func (f *simFed) logged(name, level string, parts ...string) bool {
	f.trace.mu.Lock()
	defer f.trace.mu.Unlock()
	for _, l := range f.trace.nodes[name] {
		if !strings.Contains(l, "level="+level+" ") {
			continue
		}
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			return true
		}
	}
	return false
}

// Members that serve sync but never deliver: "drip" answers with one
// valid entry every 25 s (each within any deadline per message),
// "trickle" sends its answer a byte a second, "mute" answers the hello
// and then nothing. pa connects to the three before nru, which holds
// the log, comes up. pa must catch up from nru within 45 s of virtual
// time (the hostile sessions, which all three start first, take every
// one of pa's sync slots until the pacer cuts the first, 30 s after it
// started; one session at a time would take 90 s), log each staller at
// WARN by name, and ban none of them (a slow peer is not a forger), nor
// sync with them again for a while. Before the pacer and the concurrent
// sessions, one such member held pa's only sync loop for the 10-minute
// session limit. The same catch-up without the hostile members is the
// baseline.
func TestSyncOutlastsStallingServers(t *testing.T) {
	const entries = 500
	var baseline time.Duration
	for _, hostile := range []bool{false, true} {
		t.Run(map[bool]string{false: "alone", true: "hostile"}[hostile], func(t *testing.T) {
			inSim(t, func(t *testing.T) {
				f := newSimFed(t, simDefaults(31), "nru=referral", "pa=platform", "drip=platform", "trickle=platform", "mute=platform")
				key := f.key("nru")
				log := chain(t, key, entries, "catch-up")
				storetest.Seed(t, f.cfgs["nru"].StorePath, log)
				pa := f.start("pa")
				stallers := []string{"drip", "trickle", "mute"}
				sessions := map[string]func(peer.ID) []time.Time{}
				if hostile {
					asked := make(chan string, 64)
					answers := map[string]syncAnswer{
						"drip": paced(1, 25*time.Second),
						"trickle": func(s network.Stream, raws [][]byte, pause func(time.Duration) error) error {
							var frame bytes.Buffer
							if _, err := protodelim.MarshalTo(&frame, &pb.SyncBatch{Entries: raws, Last: true}); err != nil {
								return err
							}
							for _, b := range frame.Bytes() {
								if _, err := s.Write([]byte{b}); err != nil {
									return err
								}
								if err := pause(time.Second); err != nil {
									return err
								}
							}
							return nil
						},
						"mute": func(s network.Stream, _ [][]byte, _ func(time.Duration) error) error {
							_, err := io.Copy(io.Discard, s) // until the asker gives up
							return err
						},
					}
					for _, name := range stallers {
						answer := answers[name]
						sessions[name] = f.serveSyncLog(name, log, func(s network.Stream, raws [][]byte, pause func(time.Duration) error) error {
							asked <- name
							return answer(s, raws, pause)
						})
						if err := pa.Connect(context.Background(), peer.AddrInfo{ID: f.ids[name]}); err != nil {
							t.Fatal(err)
						}
					}
					// pa's sync loop is in a hostile session before nru is up.
					select {
					case <-asked:
					case <-time.After(10 * time.Second):
						t.Fatal("pa asked no hostile member for the log")
					}
				}
				f.start("nru")
				author := protocol.AuthorKeyOf(key)
				took := f.waitFor(45*time.Second, "pa to catch up", func() bool {
					h, _ := pa.store.Head(author)
					return h.Seq == entries
				})
				t.Logf("pa caught up %v (virtual time) after nru started", took)
				if !hostile {
					baseline = took
					return
				}
				t.Logf("baseline without the hostile members: %v", baseline)
				f.waitFor(time.Minute, "pa to log every staller", func() bool {
					for _, name := range stallers {
						if !f.logged("pa", "WARN", "peer stalled a sync", "member="+name) {
							return false
						}
					}
					return true
				})
				// Paused, not banned: still connected, and not synced
				// with for a while (stallPause, 5 minutes).
				logged := time.Now()
				f.settle(2 * time.Minute)
				for _, name := range stallers {
					if pa.gater.Banned(f.ids[name]) {
						t.Errorf("%s is banned: a slow peer is not a forger", name)
					}
					if pa.host.Network().Connectedness(f.ids[name]) != network.Connected {
						t.Errorf("pa is no longer connected to %s", name)
					}
					for _, at := range sessions[name](pa.host.ID()) {
						if !at.Before(logged) {
							t.Errorf("pa synced with %s again %v after it logged the stall", name, at.Sub(logged))
						}
					}
				}
				if got := testutil.ToFloat64(pa.metrics.syncForged); got != 0 {
					t.Errorf("%v sessions counted as forged", got)
				}
				if got := testutil.ToFloat64(pa.metrics.applied); got != entries {
					t.Errorf("applied counter %v, want %d", got, entries)
				}
			})
		})
	}
}

// Two members serve the same log, slowly (100 entries a second, above
// the pacer's floor; one in batches of 100, the other of 70), and pa
// connects to both: two sessions fetch it at once, the second joining
// the first once it has run coFetchAfter, from wherever pa's head is
// then. Their transactions overlap in every way (duplicates only,
// duplicates then new entries); each entry is applied exactly once,
// the others reported as duplicates, and the store passes its
// invariant check.
func TestSyncConcurrentOverlapIsHarmless(t *testing.T) {
	inSim(t, func(t *testing.T) {
		f := newSimFed(t, simDefaults(32), "nru=referral", "pa=platform", "pb=platform", "pc=platform")
		key := f.key("nru")
		const entries = 3000
		log := chain(t, key, entries, "overlap")
		pa := f.start("pa")
		pa.sync.LimitTransactions(100, writer.MaxBatchBytes)
		f.serveSyncLog("pb", log, paced(100, time.Second))
		f.serveSyncLog("pc", log, paced(70, 700*time.Millisecond))
		for _, name := range []string{"pb", "pc"} {
			if err := pa.Connect(context.Background(), peer.AddrInfo{ID: f.ids[name]}); err != nil {
				t.Fatal(err)
			}
		}
		author := protocol.AuthorKeyOf(key)
		took := f.waitFor(2*time.Minute, "pa to hold the log", func() bool {
			h, _ := pa.store.Head(author)
			return h.Seq == entries
		})
		t.Logf("caught up %v (virtual time); %v copies ignored as duplicates", took, testutil.ToFloat64(pa.metrics.ignored))
		if err := pa.store.Check(); err != nil {
			t.Fatalf("store: %v", err)
		}
		if h, _ := pa.store.Head(author); h.ID != log[entries-1].ID {
			t.Errorf("head %s, want %s", h.ID, log[entries-1].ID)
		}
		if c, _ := pa.store.Count(); c != entries {
			t.Errorf("pa holds %d entries, want %d", c, entries)
		}
		if got := testutil.ToFloat64(pa.metrics.applied); got != entries {
			t.Errorf("applied counter %v, want %d: an entry was applied twice or not at all", got, entries)
		}
		if got := testutil.ToFloat64(pa.metrics.synced); got != entries {
			t.Errorf("synced counter %v, want %d (duplicates are not progress)", got, entries)
		}
		if testutil.ToFloat64(pa.metrics.ignored) == 0 {
			t.Error("no duplicates: the two sessions never fetched the same entries, so the test tested nothing")
		}
		if got := testutil.ToFloat64(pa.metrics.syncForged); got != 0 {
			t.Errorf("%v sessions counted as forged", got)
		}
		if pa.sync.Behind() != 0 {
			t.Errorf("behind %d after catching up", pa.sync.Behind())
		}
	})
}
