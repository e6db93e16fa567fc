package node

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/node/gossip"
	"github.com/staydown/staydown/node/liblog"
	"github.com/staydown/staydown/node/p2p"
	"github.com/staydown/staydown/protocol/prototest"
	"github.com/staydown/staydown/store"
)

// cloneAddr is where a copy of a member's node listens in the
// simulation: another machine.
var cloneAddr = ma.StringCast("/ip4/10.99.0.1/tcp/4001")

// copyNode copies member name's directory (keys, config, store) beside
// it, as a backup restored on another machine, and loads its config,
// listening on cloneAddr.
func (f *simFed) copyNode(name string) *config.Node {
	f.t.Helper()
	src := f.cfgs[name].Dir
	dst := filepath.Join(filepath.Dir(src), name+"-copy")
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), info.Mode().Perm())
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, info.Mode().Perm()) // keys stay 0600
	})
	if err != nil {
		f.t.Fatal(err)
	}
	cfg, err := config.Load(dst)
	if err != nil {
		f.t.Fatal(err)
	}
	cfg.Listen = []string{cloneAddr.String()}
	return cfg
}

// cloneHost puts a second host with member name's transport key on the
// mocknet, at cloneAddr, linked to every running node, and returns it
// with a function that takes its links away again. While it runs, the
// original's links are put aside (its connections stay open), so that
// the clone's dials go over its own links: mocknet keys links by peer
// ID, and would let the clone dial through the original's.
func (f *simFed) cloneHost(name string, key crypto.PrivKey, g connmgr.ConnectionGater) (host.Host, func(), error) {
	id := f.ids[name]
	orig := f.nodes[name].host.Network()
	for _, other := range f.names {
		if other != name {
			for _, l := range f.mn.LinksBetweenPeers(id, f.ids[other]) {
				f.mn.Unlink(l)
			}
		}
	}
	h, err := f.mn.AddPeer(key, cloneAddr)
	if err != nil {
		return nil, nil, err
	}
	for _, other := range f.names {
		if n := f.nodes[other]; n != nil && other != name {
			l, err := f.mn.LinkNets(h.Network(), n.host.Network())
			if err != nil {
				return nil, nil, err
			}
			l.SetOptions(mocknet.LinkOptions{Latency: f.latency[simPair(name, other)]})
		}
	}
	if g != nil {
		h.Network().Notify(&network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
			if !g.InterceptSecured(c.Stat().Direction, c.RemotePeer(), c) {
				go c.Close()
			}
		}})
	}
	restore := func() {
		for _, other := range f.names {
			if other == name {
				continue
			}
			for _, l := range f.mn.LinksBetweenPeers(id, f.ids[other]) {
				if slices.Contains(l.Networks(), h.Network()) {
					f.mn.Unlink(l)
				}
			}
			if n := f.nodes[other]; n != nil {
				l, err := f.mn.LinkNets(orig, n.host.Network())
				if err != nil {
					f.t.Fatal(err)
				}
				l.SetOptions(mocknet.LinkOptions{Latency: f.latency[simPair(name, other)]})
			}
		}
	}
	return &simHost{Host: h, f: f, name: name + "-copy", gater: g}, restore, nil
}

// gossipedTo has member name's node publish an entry and waits (bound:
// virtual time) until every running node stores it; it fails the test
// if any got it by sync rather than gossip.
func (f *simFed) gossipedTo(name string, bound time.Duration) {
	f.t.Helper()
	synced := map[string]float64{}
	before := map[string]uint64{}
	for other, n := range f.nodes {
		synced[other] = testutil.ToFloat64(n.metrics.synced)
		before[other], _ = n.store.Count()
	}
	f.publish(name, "after the clash", 1)
	f.waitFor(bound, "the entry published after the clash to reach every node", func() bool {
		for other, n := range f.nodes {
			if c, _ := n.store.Count(); c != before[other]+1 {
				return false
			}
		}
		return true
	})
	for other, n := range f.nodes {
		if got := testutil.ToFloat64(n.metrics.synced); got != synced[other] {
			f.t.Errorf("%s got the entry by sync, not gossip (%v entries synced since)", other, got-synced[other])
		}
	}
}

// A copy of a running member's node (a backup restored on another
// machine, a cloned VM) is refused at its start (#13 item 7): the
// members' nodes it reaches ask the running node to attest that it is
// live, for the copy's nonce, and answer the copy "taken" with that
// attestation. The copy says which member saw the other process, where
// and since when, and writes nothing to its store's log; the running
// node logs the clash at ERROR, shows it in its status, and its gossip
// still reaches every node.
func TestSimSecondProcessRefused(t *testing.T) {
	inSim(t, func(t *testing.T) {
		f := newSimFed(t, simDefaults(31), "nru=referral", "pa=platform", "pb=platform")
		for _, name := range f.names {
			f.start(name)
		}
		f.meshed(time.Minute)
		f.publish("pa", "before the copy", 2)
		f.converge(time.Minute)
		cfg := f.copyNode("pa")
		held := simCount(t, cfg)

		var restore func()
		opts := Options{NoAPI: true, Host: func(key crypto.PrivKey, g connmgr.ConnectionGater) (host.Host, error) {
			h, r, err := f.cloneHost("pa", key, g)
			restore = r
			return h, err
		}}
		copyLog := f.trace.logger("pa-copy")
		n, err := StartWith(context.Background(), cfg, copyLog, opts)
		if n != nil {
			n.Close()
		}
		if restore == nil {
			t.Fatalf("the copy of pa failed before it made its host: %v", err)
		}
		restore()
		if !errors.Is(err, p2p.ErrIdentityInUse) {
			t.Fatalf("the copy of pa started: %v", err)
		}
		msg := err.Error()
		if !strings.Contains(msg, "sees it connected from "+f.addrs["pa"].String()) || !strings.Contains(msg, "node sees it") ||
			!strings.Contains(msg, "staydown init") || strings.Contains(msg, "\n") {
			t.Errorf("the copy's error does not give the evidence on one line: %s", msg)
		}
		var ce *p2p.ClashError
		if errors.As(err, &ce); ce == nil || (ce.Clash.Member != "nru" && ce.Clash.Member != "pb") || ce.Clash.Since.IsZero() {
			t.Errorf("the copy's evidence: %+v", ce)
		}
		if lines := f.logLines("pa-copy", "refusing to start"); len(lines) == 0 || !strings.Contains(lines[0], "ERROR") || !strings.Contains(lines[0], "remote="+f.addrs["pa"].String()) {
			t.Errorf("the copy logged no ERROR with the evidence: %q", lines)
		}
		if got := simCount(t, cfg); got != held {
			t.Errorf("the copy's store holds %d entries, %d before it started", got, held)
		}

		f.settle(time.Second)
		lines := f.logLines("pa", "another process runs this node's identity")
		if len(lines) == 0 || !strings.Contains(lines[0], "ERROR") || !strings.Contains(lines[0], "remote="+cloneAddr.String()) {
			t.Errorf("pa logged no ERROR naming the copy's address: %q", lines)
		}
		st, err := f.nodes["pa"].Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.Clash == nil || st.Clash.How != "liveness" || st.Clash.Remote != cloneAddr.String() || !slices.Contains(st.Clash.OtherAddrs, cloneAddr.String()) {
			t.Errorf("pa's status of the clash: %+v", st.Clash)
		}

		f.meshed(time.Minute)
		f.gossipedTo("pa", 2*time.Second)
		f.converge(time.Minute)
		// The start checks' connections, closed by the nodes that made
		// them, are no refusals.
		for _, name := range append(slices.Clone(f.names), "pa-copy") {
			if lines := f.logLines(name, "refuses this node's connections"); len(lines) > 0 {
				t.Errorf("%s took a closed liveness connection for a refusal: %q", name, lines)
			}
		}

		f.settle(clashShownFor + time.Minute)
		if st, err := f.nodes["pa"].Status(context.Background()); err != nil || st.Clash != nil {
			t.Errorf("pa's status shows the clash %v after its last evidence: %+v (%v)", clashShownFor+time.Minute, st.Clash, err)
		}
	})
}

// A copy that does not ask (a release without the liveness check, or
// one that reached no member's node at its start) joins the gossip
// topic with the running node's peer ID: at each peer its gossip stream
// replaces the running node's, and when it goes, gossipsub gives up on
// the running node's connections, which stay open: "3 connected, 0 on
// the topic", until a restart (#13 item 7). The running node reconnects
// the members' nodes that stay connected off the topic, and its gossip
// reaches every node again without a restart.
func TestSimMeshRecoversAfterCopy(t *testing.T) {
	inSim(t, func(t *testing.T) {
		f := newSimFed(t, simDefaults(32), "nru=referral", "pa=platform", "pb=platform", "pc=platform")
		for _, name := range f.names {
			f.start(name)
		}
		f.meshed(time.Minute)

		key, err := f.cfgs["pa"].NodeKey()
		if err != nil {
			t.Fatal(err)
		}
		h, restore, err := f.cloneHost("pa", key, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		topic := gossip.Topic("test")
		ps, err := gossip.NewPubSub(ctx, h, liblog.Pubsub(f.trace.logger("pa-copy")), nil, topic)
		if err != nil {
			t.Fatal(err)
		}
		tp, err := ps.Join(topic)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := tp.Subscribe()
		if err != nil {
			t.Fatal(err)
		}
		for _, other := range []string{"nru", "pb", "pc"} {
			if err := h.Connect(ctx, peer.AddrInfo{ID: f.ids[other], Addrs: []ma.Multiaddr{f.addrs[other]}}); err != nil {
				t.Fatal(err)
			}
		}
		f.settle(20 * time.Second)
		sub.Cancel()
		tp.Close()
		cancel()
		h.Close()
		restore()
		f.settle(time.Second)

		f.meshed(time.Minute)
		f.gossipedTo("pa", 2*time.Second)
		f.converge(time.Minute)
	})
}

// simCount is how many entries the store of cfg holds (the node is not
// running).
func simCount(t *testing.T, cfg *config.Node) uint64 {
	t.Helper()
	s, err := store.Open(cfg.StorePath)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := s.Count()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// An entry signed with a running node's author key that the node did
// not write (another process with its identity wrote it, after this one
// started) is evidence of a clash, whether it continues the node's log
// or conflicts with an entry of it: the node logs it at ERROR and its
// status shows it (#13 item 7, "our own entries arriving with seqs we
// did not write").
func TestSimOwnEntryFromElsewhere(t *testing.T) {
	inSim(t, func(t *testing.T) {
		f := newSimFed(t, simDefaults(33), "nru=referral", "pa=platform", "pb=platform")
		for _, name := range f.names {
			f.start(name)
		}
		f.meshed(time.Minute)
		f.publish("pa", "own", 2)
		f.converge(time.Minute)
		pa := f.nodes["pa"]
		head, err := pa.store.Head(pa.me.AuthorKey)
		if err != nil {
			t.Fatal(err)
		}
		elsewhere := &prototest.Log{Key: f.key("pa"), Federation: "test", Head: head, TimeMs: time.Now().UnixMilli()}
		e := elsewhere.Next(t, prototest.Addition(prototest.SHA256(t, 99)))
		if err := f.nodes["nru"].topic.Publish(context.Background(), e.Raw); err != nil {
			t.Fatal(err)
		}
		f.waitFor(time.Minute, "pa to store the entry written elsewhere", func() bool {
			h, err := pa.store.Head(pa.me.AuthorKey)
			return err == nil && h.Seq == 3
		})
		lines := f.logLines("pa", "another process runs this node's identity")
		if len(lines) != 1 || !strings.Contains(lines[0], "ERROR") || !strings.Contains(lines[0], "how=\"own entry\"") || !strings.Contains(lines[0], e.ID.String()) {
			t.Fatalf("pa's log of the clash: %q", lines)
		}
		st, err := pa.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.Clash == nil || st.Clash.How != "own entry" || !strings.Contains(st.Clash.Detail, "seq 3") {
			t.Errorf("pa's status of the clash: %+v", st.Clash)
		}

		// Another entry at seq 1, which pa wrote otherwise.
		conflict := (&prototest.Log{Key: f.key("pa"), Federation: "test", TimeMs: time.Now().UnixMilli()}).Next(t, prototest.Addition(prototest.SHA256(t, 98)))
		if err := f.nodes["nru"].topic.Publish(context.Background(), conflict.Raw); err != nil {
			t.Fatal(err)
		}
		f.waitFor(time.Minute, "pa to log the conflicting entry", func() bool {
			return len(f.logLines("pa", "another process runs this node's identity")) == 2
		})
		if st, err := pa.Status(context.Background()); err != nil || st.Clash == nil || st.Clash.Count != 2 || !strings.Contains(st.Clash.Detail, "seq 1") {
			t.Errorf("pa's status of the second piece of evidence: %+v (%v)", st.Clash, err)
		}
	})
}
