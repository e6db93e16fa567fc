package node

// A federation of real nodes on libp2p's mocknet, in a testing/synctest
// bubble. Each link has a latency drawn from a seed; a partition unlinks
// peers and cuts their connections; a restart closes a node and starts it
// again on the same directory and keys. Time is the bubble's: a test waits
// for convergence by letting virtual time pass (time.Sleep in the bubble)
// and synctest.Wait, which returns once every goroutine of every node is
// blocked on something only the bubble can end. Nothing polls the wall
// clock, and a minute of virtual time costs what the nodes compute in it.
//
// What the bubble needs from the nodes and from libp2p:
//
//   - No real sockets. A goroutine blocked in accept or read on a socket
//     waits on the network, outside the bubble: it is never durably
//     blocked, so the bubble would never idle and its clock never move.
//     The nodes run without their HTTP API (Options.NoAPI) and on mocknet,
//     whose streams are io.Pipes and channels made inside the bubble; their
//     latency is a time.Timer of the bubble.
//   - mocknet (go-libp2p v0.51.0) cannot be given a connection gater: its
//     PeerOptions.gater field is unexported. simHost consults the node's
//     roster gater itself: before a dial, and on every new connection
//     (which it closes if the gater refuses it).
//   - mocknet opens a stream on a connection that is being closed, after
//     the close has reset the connection's streams, and nothing ever ends
//     that stream: its goroutines outlive the test and synctest.Test
//     panics ("blocked goroutines remain"). simHost resets such a stream
//     and fails the open. For the same reason a node is unlinked before
//     it is closed (stop), so that no peer dials it while it closes.
//   - A goroutine in a system call is not durably blocked either: every
//     fsync holds the clock. The nodes' directories are on /dev/shm where
//     there is one (simTempDir).
//   - Stream deadlines are no-ops on mocknet, so the sync protocol's idle
//     timeout (syncer's idle timeout) is not exercised here.
//   - GOMAXPROCS is 1 while a federation runs: under -race, bubble timers
//     firing on several threads at once corrupt the race detector's state
//     (golang/go#78156; go-libp2p-pubsub's tests do the same).
//   - Nothing here fixes the goroutine schedule: gossipsub's mesh and the
//     nodes' sync peers are still picked at random. A test asserts what
//     must hold under every schedule (convergence, flags, counts), never
//     the order in which it came about.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	pubsubpb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pprotocol "github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/node/p2p"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store/storetest"
)

// simOptions shape a simulated federation.
type simOptions struct {
	seed uint64 // draws the link latencies
	// Each link's one-way latency is drawn from [minLatency, maxLatency).
	minLatency, maxLatency time.Duration
	// quiet records no trace, only the bytes each node sends (for the
	// benchmark's hundred nodes).
	quiet bool
	// late are members not in the genesis: their directories are made,
	// and they are admitted by amendments (SPEC 12). Each bootstraps
	// from the first member of the genesis.
	late []string
}

func simDefaults(seed uint64) simOptions {
	return simOptions{seed: seed, minLatency: 20 * time.Millisecond, maxLatency: 80 * time.Millisecond}
}

// simFed is a federation on a mocknet. Only the test's goroutine calls
// its methods.
type simFed struct {
	t     *testing.T
	opts  simOptions
	mn    mocknet.Mocknet
	names []string // members in roster order
	cfgs  map[string]*config.Node
	addrs map[string]ma.Multiaddr // each member's address in the roster
	ids   map[string]peer.ID
	// members are each member's block as init made it (for admissions).
	members map[string]protocol.Member
	nodes   map[string]*Node // the running ones
	// gaters are the running nodes' roster gaters by peer ID, for the
	// hosts' dialers, which run on the nodes' goroutines (refuses).
	gaters sync.Map
	// bare are members whose node a test scripts by hand: a bare libp2p
	// host with the member's transport key (bareHost).
	bare map[string]host.Host
	// stopFeed ends the goroutine that records what a running node stores.
	stopFeed map[string]func()
	latency  map[[2]string]time.Duration // by pair (simPair)
	cut      map[[2]string]bool          // pairs a partition keeps apart
	trace    *simTrace
	// stored, when set, is told of every entry a node stores, from the
	// node's feed (a goroutine per node), at the virtual time it is
	// stored. Set it before starting nodes.
	stored func(name string, e *protocol.Entry)
	// dials counts the dials each node made to each other (from, to).
	dialsMu sync.Mutex
	dials   map[[2]string]int
}

// dialed counts a dial of member from's node to member to's.
func (f *simFed) dialed(from, to string) {
	f.dialsMu.Lock()
	defer f.dialsMu.Unlock()
	f.dials[[2]string{from, to}]++
}

// dialCount is how many dials member from's node made to member to's.
func (f *simFed) dialCount(from, to string) int {
	f.dialsMu.Lock()
	defer f.dialsMu.Unlock()
	return f.dials[[2]string{from, to}]
}

// simPair is the key of an unordered pair of members.
func simPair(a, b string) [2]string {
	if a > b {
		a, b = b, a
	}
	return [2]string{a, b}
}

// inSim runs f in a synctest bubble with GOMAXPROCS 1 (see the top of
// this file).
func inSim(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	synctest.Test(t, f)
}

// newSimFed makes a federation of members ("name=role"), none running
// yet. It must be called in a bubble (inSim). When the test ends, every
// running node's store passes Check and the nodes are closed; if the test
// failed, the trace is printed (or always, with STAYDOWN_SIM_TRACE=1).
func newSimFed(t *testing.T, opts simOptions, members ...string) *simFed {
	t.Helper()
	dir := simTempDir(t)
	roster := filepath.Join(dir, "roster.toml")
	f := &simFed{t: t, opts: opts, mn: mocknet.New(), cfgs: map[string]*config.Node{},
		addrs: map[string]ma.Multiaddr{}, ids: map[string]peer.ID{}, members: map[string]protocol.Member{}, nodes: map[string]*Node{}, bare: map[string]host.Host{},
		stopFeed: map[string]func(){}, dials: map[[2]string]int{}, latency: map[[2]string]time.Duration{}, cut: map[[2]string]bool{},
		trace: newSimTrace(!opts.quiet)}
	var blocks strings.Builder
	for i, m := range members {
		name, role, _ := strings.Cut(m, "=")
		addr := fmt.Sprintf("/ip4/10.%d.%d.%d/tcp/4001", i>>16&0xff, i>>8&0xff, i&0xff)
		member, block, err := config.Init(config.InitOptions{
			Dir: filepath.Join(dir, name), Name: name, Role: protocol.Role(role), Federation: "test",
			Listen: []string{addr}, API: "127.0.0.1:1", Roster: roster,
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(opts.late, name) {
			blocks.WriteString(block + "\n")
		}
		f.members[name] = member
		f.names = append(f.names, name)
		f.addrs[name] = ma.StringCast(addr)
		if f.ids[name], err = peer.Decode(member.PeerID); err != nil {
			t.Fatal(err)
		}
		f.trace.names[f.ids[name]] = name
		f.trace.authors[member.AuthorKey] = name
	}
	if err := os.WriteFile(roster, []byte(blocks.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range f.names {
		cfg, err := config.Load(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(opts.late, name) {
			first := f.names[0]
			cfg.Bootstrap = []string{f.addrs[first].String() + "/p2p/" + f.ids[first].String()}
		}
		f.cfgs[name] = cfg
	}
	rng := rand.New(rand.NewPCG(opts.seed, 0x5eed))
	for i, a := range f.names {
		for _, b := range f.names[i+1:] {
			lat := opts.minLatency
			if spread := opts.maxLatency - opts.minLatency; spread > 0 {
				lat += time.Duration(rng.Int64N(int64(spread)))
			}
			f.latency[simPair(a, b)] = lat
		}
	}
	t.Cleanup(func() {
		for _, name := range f.names {
			if n := f.nodes[name]; n != nil {
				if err := n.store.Check(); err != nil {
					t.Errorf("store of %s: %v", name, err)
				}
				f.stop(name)
			}
		}
		for _, h := range f.bare {
			h.Close()
		}
		f.mn.Close()
		if t.Failed() || os.Getenv("STAYDOWN_SIM_TRACE") != "" {
			t.Log("trace of the federation (virtual time):\n" + f.trace.String())
		}
	})
	return f
}

// simTempDir is a directory for a federation's nodes, removed when the
// test ends: in memory (/dev/shm) where there is one. A goroutine in a
// system call is not durably blocked, so every fsync of every node's
// stores stops the bubble's clock until it returns, and on a disk a
// hundred nodes spend minutes of real time in them for nothing the
// simulation measures.
func simTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "staydown-sim-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Error(err)
		}
	})
	return dir
}

// start starts member name's node on its directory: on the mocknet,
// without an API, linked to every running node the partition allows. The
// node's dialer connects it (the roster carries the mocknet addresses).
func (f *simFed) start(name string) *Node {
	f.t.Helper()
	if f.nodes[name] != nil {
		f.t.Fatalf("start %s: already running", name)
	}
	opts := Options{NoAPI: true, Host: func(key crypto.PrivKey, g connmgr.ConnectionGater) (host.Host, error) {
		return f.host(name, key, g)
	}}
	n, err := StartWith(context.Background(), f.cfgs[name], f.trace.logger(name), opts)
	if err != nil {
		f.t.Fatalf("start %s: %v", name, err)
	}
	f.nodes[name] = n
	f.gaters.Store(f.ids[name], n.gater)
	stored, cancel := n.Subscribe(1 << 16)
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		for {
			select {
			case e := <-stored:
				if f.trace.record {
					f.trace.node(name, "stored "+f.trace.label(e))
				}
				if f.stored != nil {
					f.stored(name, e)
				}
			case <-done:
				return
			}
		}
	}()
	f.stopFeed[name] = func() { cancel(); close(done); <-ended }
	return n
}

// host puts member name on the mocknet with its transport key and links
// it to every other running member the partition allows.
func (f *simFed) host(name string, key crypto.PrivKey, g connmgr.ConnectionGater) (host.Host, error) {
	h, err := f.mn.AddPeer(key, f.addrs[name])
	if err != nil {
		return nil, err
	}
	for _, other := range f.names {
		if other != name && (f.nodes[other] != nil || f.bare[other] != nil) && !f.cut[simPair(name, other)] {
			if err := f.link(name, other); err != nil {
				return nil, err
			}
		}
	}
	h.Network().Notify(&network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		if !g.InterceptSecured(c.Stat().Direction, c.RemotePeer(), c) {
			go c.Close()
		}
	}})
	return &simHost{Host: h, f: f, name: name, gater: g}, nil
}

// key is member name's author key.
func (f *simFed) key(name string) ed25519.PrivateKey {
	f.t.Helper()
	k, err := f.cfgs[name].AuthorKey()
	if err != nil {
		f.t.Fatal(err)
	}
	return k
}

// useAuthorKey makes key member name's author key, in its directory and
// the roster. Call it before anything starts.
func (f *simFed) useAuthorKey(name string, key ed25519.PrivateKey) {
	f.t.Helper()
	useAuthorKey(f.t, f.cfgs[name], key)
	f.trace.authors[protocol.AuthorKeyOf(key)] = name
}

// bareHost puts member name on the mocknet as a bare host with its
// transport key, linked to every running node: a member whose node the
// test scripts by hand. Nodes started later link to it too. The
// federation closes it when the test ends.
func (f *simFed) bareHost(name string) host.Host {
	f.t.Helper()
	cfg := f.cfgs[name]
	key, err := cfg.NodeKey()
	if err != nil {
		f.t.Fatal(err)
	}
	h, err := f.mn.AddPeer(key, f.addrs[name])
	if err != nil {
		f.t.Fatal(err)
	}
	for _, other := range f.names {
		if other != name && (f.nodes[other] != nil || f.bare[other] != nil) && !f.cut[simPair(name, other)] {
			if err := f.link(name, other); err != nil {
				f.t.Fatal(err)
			}
		}
	}
	sh := &simHost{Host: h, f: f, name: name}
	f.bare[name] = sh
	return sh
}

func (f *simFed) link(a, b string) error {
	l, err := f.mn.LinkPeers(f.ids[a], f.ids[b])
	if err != nil {
		return err
	}
	l.SetOptions(mocknet.LinkOptions{Latency: f.latency[simPair(a, b)]})
	return nil
}

// unlink takes every link between a and b away and closes their
// connections.
func (f *simFed) unlink(a, b string) {
	for _, l := range f.mn.LinksBetweenPeers(f.ids[a], f.ids[b]) {
		f.mn.Unlink(l)
	}
	if n := f.nodes[a]; n != nil {
		n.host.Network().ClosePeer(f.ids[b])
	}
	if n := f.nodes[b]; n != nil {
		n.host.Network().ClosePeer(f.ids[a])
	}
}

// stop closes member name's node, as a machine switched off: its links
// go first, then the node. (The other way round, a peer's dialer, told of
// the disconnection, could dial the closing node again; mocknet would
// open that connection on the closed host, and its streams would never
// end.)
func (f *simFed) stop(name string) {
	f.t.Helper()
	n := f.nodes[name]
	if n == nil {
		return
	}
	for _, other := range f.names {
		if other != name {
			for _, l := range f.mn.LinksBetweenPeers(f.ids[name], f.ids[other]) {
				f.mn.Unlink(l)
			}
		}
	}
	synctest.Wait() // no dial that found a link is still under way
	f.gaters.Delete(f.ids[name])
	if err := n.Close(); err != nil {
		f.t.Errorf("close %s: %v", name, err)
	}
	f.stopFeed[name]()
	delete(f.nodes, name)
	delete(f.stopFeed, name)
	f.trace.node(name, "stopped")
}

// restart closes member name's node and starts it again on the same
// directory and keys.
func (f *simFed) restart(name string) *Node {
	f.t.Helper()
	f.stop(name)
	return f.start(name)
}

// partition splits the federation into groups: members of different
// groups are unlinked and their connections cut. Members in no group
// keep their links.
func (f *simFed) partition(groups ...[]string) {
	f.t.Helper()
	group := map[string]int{}
	for i, g := range groups {
		for _, name := range g {
			group[name] = i + 1
		}
	}
	for i, a := range f.names {
		for _, b := range f.names[i+1:] {
			if group[a] != 0 && group[b] != 0 && group[a] != group[b] {
				f.cut[simPair(a, b)] = true
				f.unlink(a, b)
			}
		}
	}
	f.trace.event(fmt.Sprintf("partition %v", groups))
}

// heal links again every pair a partition kept apart (where both are
// running). The nodes' dialers reconnect them, after their backoff.
func (f *simFed) heal() {
	f.t.Helper()
	for pair := range f.cut {
		if f.nodes[pair[0]] != nil && f.nodes[pair[1]] != nil {
			if err := f.link(pair[0], pair[1]); err != nil {
				f.t.Fatal(err)
			}
		}
	}
	clear(f.cut)
	f.trace.event("heal")
}

// settle lets d of virtual time pass and waits until every node is idle.
func (f *simFed) settle(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// simStep is how much virtual time passes between two looks at the
// federation while a test waits for it.
const simStep = 50 * time.Millisecond

// waitFor lets virtual time pass, simStep at a time, until cond holds
// with every node idle, and returns how long that took; it fails the test
// if cond does not hold within bound.
func (f *simFed) waitFor(bound time.Duration, what string, cond func() bool) time.Duration {
	f.t.Helper()
	start := time.Now()
	for {
		synctest.Wait()
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) >= bound {
			f.t.Fatalf("%s: not within %v of virtual time\n%s", what, bound, f.heads())
		}
		time.Sleep(simStep)
	}
}

// meshed waits until every running node sees, in the entries topic,
// every other running node a partition does not keep from it: from then
// on gossip can carry what is published.
func (f *simFed) meshed(bound time.Duration) {
	f.t.Helper()
	f.waitFor(bound, "every node to see its peers in the topic", func() bool {
		for name, n := range f.nodes {
			want := 0
			for other := range f.nodes {
				if other != name && !f.cut[simPair(name, other)] {
					want++
				}
			}
			if len(n.topic.ListPeers()) != want {
				return false
			}
		}
		return true
	})
}

// wantEachHolds fails the test unless every node stores want entries.
func (f *simFed) wantEachHolds(want uint64) {
	f.t.Helper()
	for _, name := range f.names {
		if c, _ := f.nodes[name].store.Count(); c != want {
			f.t.Errorf("%s holds %d entries, want %d", name, c, want)
		}
	}
}

// converged reports whether every running node holds the same heads.
func (f *simFed) converged() bool {
	var first string
	for _, name := range f.names {
		if n := f.nodes[name]; n != nil {
			d := simDigest(f.t, n)
			if first == "" {
				first = d
			} else if d != first {
				return false
			}
		}
	}
	return true
}

// converge waits (bound: virtual time) until every running node holds
// the same heads, and returns how long that took.
func (f *simFed) converge(bound time.Duration) time.Duration {
	f.t.Helper()
	return f.waitFor(bound, "the federation to converge", f.converged)
}

// heads describes every running node's heads, for failure messages.
func (f *simFed) heads() string {
	var b strings.Builder
	for _, name := range f.names {
		n := f.nodes[name]
		if n == nil {
			continue
		}
		heads, err := n.store.Heads()
		if err != nil {
			f.t.Fatal(err)
		}
		fmt.Fprintf(&b, "  %-8s %s ", name, simDigest(f.t, n)[:12])
		for _, h := range heads {
			fmt.Fprintf(&b, " %s#%d", f.trace.authors[h.Author], h.Seq)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func simDigest(t *testing.T, n *Node) string {
	heads, err := n.store.Heads()
	if err != nil {
		t.Fatal(err)
	}
	d := protocol.HeadsDigest(heads)
	return hex.EncodeToString(d[:])
}

// publish has member name's node publish count additions, the content of
// each named by tag and its number.
func (f *simFed) publish(name, tag string, count int) []*protocol.Entry {
	f.t.Helper()
	var out []*protocol.Entry
	for i := range count {
		sum := sha256.Sum256(fmt.Appendf(nil, "%s %s %d", name, tag, i))
		sig, err := protocol.ParseSignal("sha256", hex.EncodeToString(sum[:]))
		if err != nil {
			f.t.Fatal(err)
		}
		e, err := f.nodes[name].Publish(context.Background(), &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{
			Signals: []*pb.Signal{sig}, Labels: []*pb.Label{{Slug: "graphic-violence"}}}}})
		if err != nil {
			f.t.Fatalf("publish on %s: %v", name, err)
		}
		out = append(out, e)
	}
	return out
}

// simHost is a mocknet host that consults the node's roster gater (which
// mocknet cannot be given) and counts and traces what crosses its links.
type simHost struct {
	host.Host
	f     *simFed
	name  string
	gater connmgr.ConnectionGater // nil for a bare host: it dials anyone
}

// refuses reports whether a new stream to p would fail: this node's
// gater refuses to dial p, or p's node's gater would refuse this peer in
// the handshake. (A stream on a connection that p closes at once is one
// mocknet may never end; Connect, as on TCP, succeeds and p closes the
// connection: see host.)
func (h *simHost) refuses(p peer.ID) bool {
	if h.Network().Connectedness(p) == network.Connected {
		return false
	}
	if h.gater != nil && !h.gater.InterceptPeerDial(p) {
		return true
	}
	if g, ok := h.f.gaters.Load(p); ok {
		if remote := g.(*p2p.Gater); !remote.Member(h.ID()) || remote.Banned(h.ID()) {
			return true
		}
	}
	return false
}

// Connect dials as TCP does: this node's gater may refuse the dial; a
// peer whose gater refuses this node lets the handshake complete on this
// side and closes the connection (the notifee host installs), so the dial
// succeeds. Each dial this node's gater lets through is counted.
func (h *simHost) Connect(ctx context.Context, ai peer.AddrInfo) error {
	if h.Network().Connectedness(ai.ID) != network.Connected {
		if h.gater != nil && !h.gater.InterceptPeerDial(ai.ID) {
			return fmt.Errorf("the roster gater refuses to dial %s", ai.ID)
		}
		h.f.dialed(h.name, h.f.trace.names[ai.ID])
	}
	return h.Host.Connect(ctx, ai)
}

func (h *simHost) NewStream(ctx context.Context, p peer.ID, pids ...libp2pprotocol.ID) (network.Stream, error) {
	if h.refuses(p) {
		return nil, fmt.Errorf("the roster gater refuses to dial %s", p)
	}
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	if s.Conn().IsClosed() {
		// mocknet opens a stream on a connection that is closing, after
		// the close reset its streams: nothing would ever end this one.
		// (Closed after this check, the connection resets it.)
		s.Reset()
		return nil, fmt.Errorf("stream to %s: %w", p, network.ErrReset)
	}
	return h.f.trace.stream(s, h.name, true), nil
}

func (h *simHost) SetStreamHandler(pid libp2pprotocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, func(s network.Stream) { handler(h.f.trace.stream(s, h.name, false)) })
}

func (h *simHost) SetStreamHandlerMatch(pid libp2pprotocol.ID, m func(libp2pprotocol.ID) bool, handler network.StreamHandler) {
	h.Host.SetStreamHandlerMatch(pid, m, func(s network.Stream) { handler(h.f.trace.stream(s, h.name, false)) })
}

// simTrace records, in virtual time, what each node stored and logged
// and which messages crossed which link, and counts the bytes each node
// sent. Printed when a test fails, it shows where a sync went wrong.
type simTrace struct {
	record  bool
	start   time.Time
	names   map[peer.ID]string            // read-only once the federation is made
	authors map[protocol.AuthorKey]string // read-only once the federation is made

	mu    sync.Mutex          // guards what follows
	nodes map[string][]string // per node: what it stored and logged
	links []string            // messages and events, in order
	sent  map[string]int64    // bytes each node wrote to its streams
}

func newSimTrace(record bool) *simTrace {
	return &simTrace{record: record, start: time.Now(), names: map[peer.ID]string{}, authors: map[protocol.AuthorKey]string{},
		nodes: map[string][]string{}, sent: map[string]int64{}}
}

func (tr *simTrace) at() string { return fmt.Sprintf("%9.3fs", time.Since(tr.start).Seconds()) }

func (tr *simTrace) node(name, what string) {
	if !tr.record {
		return
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.nodes[name] = append(tr.nodes[name], tr.at()+"  "+what)
}

// logged says whether node name logged a line containing what.
func (tr *simTrace) logged(name, what string) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.ContainsFunc(tr.nodes[name], func(l string) bool { return strings.Contains(l, "log: ") && strings.Contains(l, what) })
}

func (tr *simTrace) event(what string) {
	if !tr.record {
		return
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.links = append(tr.links, tr.at()+"  ** "+what)
}

func (tr *simTrace) message(from, to, what string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.links = append(tr.links, fmt.Sprintf("%s  %-8s -> %-8s %s", tr.at(), from, to, what))
}

// bytesSent is the total every node wrote to its streams.
func (tr *simTrace) bytesSent() int64 {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var total int64
	for _, n := range tr.sent {
		total += n
	}
	return total
}

// label names an entry by author, seq and the end of its id (two
// entries of one seq differ there).
func (tr *simTrace) label(e *protocol.Entry) string {
	return fmt.Sprintf("%s#%d.%s", tr.authors[e.Author], e.Seq(), hex.EncodeToString(e.ID[len(e.ID)-3:]))
}

func (tr *simTrace) labelRaw(raw []byte) string {
	e, err := protocol.Decode(raw)
	if err != nil {
		return fmt.Sprintf("<%d bytes that do not decode>", len(raw))
	}
	return tr.label(e)
}

// logger is a node's log, kept in the trace.
func (tr *simTrace) logger(name string) *slog.Logger {
	if !tr.record {
		return slog.New(slog.DiscardHandler)
	}
	h := slog.NewTextHandler(simLogWriter{tr, name}, &slog.HandlerOptions{Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}})
	return slog.New(h)
}

type simLogWriter struct {
	tr   *simTrace
	name string
}

func (w simLogWriter) Write(p []byte) (int, error) {
	w.tr.node(w.name, "log: "+strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (tr *simTrace) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(tr.nodes)) {
		fmt.Fprintf(&b, "--- node %s (sent %d bytes)\n", name, tr.sent[name])
		for _, l := range tr.nodes[name] {
			b.WriteString(l + "\n")
		}
	}
	b.WriteString("--- links\n")
	for _, l := range tr.links {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// stream wraps a stream of node name's to count and trace what it
// writes; outbound says whether name opened it.
func (tr *simTrace) stream(s network.Stream, name string, outbound bool) network.Stream {
	return &simStream{Stream: s, tr: tr, from: name, to: tr.names[s.Conn().RemotePeer()], outbound: outbound}
}

// simStream counts the bytes written to a stream and, when the trace
// records, decodes the frames written (uvarint-length-prefixed protobuf,
// in gossipsub and in sync alike) into trace lines.
type simStream struct {
	network.Stream
	tr       *simTrace
	from, to string
	outbound bool

	mu     sync.Mutex // guards buf and frames
	buf    []byte     // the start of a frame not yet complete
	frames int
}

func (s *simStream) Write(p []byte) (int, error) {
	n, err := s.Stream.Write(p)
	s.tr.mu.Lock()
	s.tr.sent[s.from] += int64(n)
	s.tr.mu.Unlock()
	if s.tr.record && n > 0 {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.buf = append(s.buf, p[:n]...)
		for {
			size, k := binary.Uvarint(s.buf)
			if k <= 0 || uint64(len(s.buf)-k) < size {
				break
			}
			frame := s.buf[k : k+int(size)]
			if what := s.describe(frame); what != "" {
				s.tr.message(s.from, s.to, what)
			}
			s.frames++
			s.buf = s.buf[k+int(size):]
		}
		s.buf = bytes.Clone(s.buf)
	}
	return n, err
}

// describe says what a frame carries, "" for gossipsub's bookkeeping
// (subscriptions, mesh changes, IHAVE), which the trace leaves out.
func (s *simStream) describe(frame []byte) string {
	if s.Protocol() == protocol.SyncProtocol {
		return s.describeSync(frame)
	}
	var rpc pubsubpb.RPC
	if err := proto.Unmarshal(frame, &rpc); err != nil {
		return fmt.Sprintf("%s: %d bytes that do not decode: %v", s.Protocol(), len(frame), err)
	}
	var parts []string
	for _, m := range rpc.Publish {
		if strings.HasSuffix(m.GetTopic(), "/checkpoints") {
			parts = append(parts, "gossip checkpoint signed by "+checkpointSigners(m.Data))
		} else {
			parts = append(parts, "gossip "+s.tr.labelRaw(m.Data))
		}
	}
	for _, w := range rpc.GetControl().GetIwant() {
		parts = append(parts, fmt.Sprintf("iwant %d", len(w.MessageIDs)))
	}
	return strings.Join(parts, ", ")
}

// checkpointSigners lists the names on a checkpoint note's signature
// lines ("— name signature"), in order.
func checkpointSigners(note []byte) string {
	var names []string
	for line := range strings.SplitSeq(string(note), "\n") {
		if rest, ok := strings.CutPrefix(line, "\u2014 "); ok {
			name, _, _ := strings.Cut(rest, " ")
			names = append(names, name)
		}
	}
	return strings.Join(names, ",")
}

// describeSync: each side's first frame is its hello; then the asker
// (who opened the stream) sends requests and the server batches.
func (s *simStream) describeSync(frame []byte) string {
	switch {
	case s.frames == 0:
		var h pb.SyncHello
		if err := proto.Unmarshal(frame, &h); err != nil {
			return "sync: a hello that does not decode"
		}
		var heads []string
		for _, sh := range h.Heads {
			var a protocol.AuthorKey
			copy(a[:], sh.Author)
			heads = append(heads, fmt.Sprintf("%s#%d", s.tr.authors[a], sh.Seq))
		}
		return "sync hello [" + strings.Join(heads, " ") + "]"
	case s.outbound:
		var r pb.SyncRequest
		if err := proto.Unmarshal(frame, &r); err != nil {
			return "sync: a request that does not decode"
		}
		var a protocol.AuthorKey
		copy(a[:], r.Author)
		return fmt.Sprintf("sync request %s %d..%d", s.tr.authors[a], r.FromSeq, r.ToSeq)
	default:
		var bt pb.SyncBatch
		if err := proto.Unmarshal(frame, &bt); err != nil {
			return "sync: a batch that does not decode"
		}
		what := fmt.Sprintf("sync batch of %d", len(bt.Entries))
		if len(bt.Entries) > 0 {
			what += " " + s.tr.labelRaw(bt.Entries[0])
			if len(bt.Entries) > 1 {
				what += ".." + s.tr.labelRaw(bt.Entries[len(bt.Entries)-1])
			}
		}
		if bt.Last {
			what += " (last)"
		}
		return what
	}
}

// Three nodes: what one publishes, all hold. The first entries are
// published before the others start, and long enough before that
// gossip's history of them is gone: they can only arrive by sync. The
// rest are published once every node is in the topic, for gossip to
// carry.
func TestSimPublishReachesAll(t *testing.T) {
	inSim(t, func(t *testing.T) {
		f := newSimFed(t, simDefaults(1), "nru=referral", "pa=platform", "pb=platform")
		f.start("nru")
		f.publish("nru", "alone", 3)
		f.settle(10 * time.Second)
		f.start("pa")
		f.start("pb")
		f.meshed(time.Minute)
		f.publish("nru", "meshed", 5)
		took := f.converge(time.Minute)
		f.wantEachHolds(8)
		t.Logf("converged %v after the last publish", took)
	})
}

// Five nodes in two halves, each publishing while apart. Gossip cannot
// cross the partition, and its history (a few seconds) is long gone when
// it heals: only sync can bring each half what the other wrote.
func TestSimPartitionHeals(t *testing.T) {
	inSim(t, func(t *testing.T) {
		f := newSimFed(t, simDefaults(2), "nru1=referral", "nru2=referral", "pa=platform", "pb=platform", "pc=platform")
		for _, name := range f.names {
			f.start(name)
		}
		f.meshed(time.Minute)
		left, right := []string{"nru1", "pa", "pb"}, []string{"nru2", "pc"}
		f.partition(left, right)
		f.publish("nru1", "left", 10)
		f.publish("nru2", "right", 7)
		f.settle(30 * time.Second)
		for _, name := range f.names {
			c, _ := f.nodes[name].store.Count()
			want := uint64(10)
			if slices.Contains(right, name) {
				want = 7
			}
			if c != want {
				t.Fatalf("%s holds %d entries during the partition, want its own half's %d", name, c, want)
			}
		}
		f.heal()
		took := f.converge(3 * time.Minute)
		f.wantEachHolds(17)
		t.Logf("converged %v after the partition healed", took)
	})
}

// A node that was down while entries were published catches up when it
// starts again on the same directory and keys.
func TestSimRestartCatchesUp(t *testing.T) {
	inSim(t, func(t *testing.T) {
		f := newSimFed(t, simDefaults(3), "nru=referral", "pa=platform", "pb=platform")
		for _, name := range f.names {
			f.start(name)
		}
		f.meshed(time.Minute)
		f.publish("nru", "before", 3)
		f.converge(time.Minute)
		f.stop("pb")
		f.publish("nru", "while down", 20)
		f.settle(30 * time.Second) // gossip's history of them is gone
		f.start("pb")
		took := f.converge(2 * time.Minute)
		if c, _ := f.nodes["pb"].store.Count(); c != 23 {
			t.Errorf("pb holds %d entries, want 23", c)
		}
		t.Logf("pb caught up %v after it started again", took)
	})
}

// A referral unit signs two different entries with seq 1 and shows one
// to pa and the other to pb (the author's node never runs). Both flag the
// author and keep what they held. pc starts half a minute later, when
// the evidence pa and pb gossiped is out of gossip's history: it learns
// of the fork by sync alone, and flags the author too.
func TestSimEquivocationFlaggedEverywhere(t *testing.T) {
	inSim(t, func(t *testing.T) {
		f := newSimFed(t, simDefaults(4), "nru=referral", "pa=platform", "pb=platform", "pc=platform")
		key := f.key("nru")
		author := protocol.AuthorKeyOf(key)
		x := addition(t, key, "test", 1, protocol.ID{}, "shown to pa")
		y := addition(t, key, "test", 1, protocol.ID{}, "shown to pb")
		storetest.Seed(t, f.cfgs["pa"].StorePath, []*protocol.Entry{x})
		storetest.Seed(t, f.cfgs["pb"].StorePath, []*protocol.Entry{y})
		flagged := func() bool {
			for _, n := range f.nodes {
				if fl, _ := n.store.Flagged(); !slices.Equal(fl, []protocol.AuthorKey{author}) {
					return false
				}
			}
			return true
		}
		f.start("pa")
		f.start("pb")
		f.waitFor(time.Minute, "pa and pb to flag nru", flagged)
		f.settle(30 * time.Second)
		f.start("pc")
		f.waitFor(time.Minute, "pc to flag nru too", flagged)
		if h, _ := f.nodes["pa"].store.Head(author); h.ID != x.ID {
			t.Error("pa lost the entry it held")
		}
		if h, _ := f.nodes["pb"].store.Head(author); h.ID != y.ID {
			t.Error("pb lost the entry it held")
		}
		for _, name := range []string{"pa", "pb", "pc"} {
			if ev, _ := f.nodes[name].store.Evidence(); len(ev) != 1 {
				t.Errorf("%s keeps %d pieces of evidence, want 1", name, len(ev))
			}
		}
	})
}
