package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/node/alerts"
	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/apitls"
	"github.com/staydown/staydown/node/checkpoints"
	"github.com/staydown/staydown/node/gossip"
	"github.com/staydown/staydown/node/kind"
	"github.com/staydown/staydown/node/liblog"
	"github.com/staydown/staydown/node/matching"
	"github.com/staydown/staydown/node/members"
	"github.com/staydown/staydown/node/notices"
	"github.com/staydown/staydown/node/p2p"
	"github.com/staydown/staydown/node/status"
	"github.com/staydown/staydown/node/storewatch"
	"github.com/staydown/staydown/node/syncer"
	"github.com/staydown/staydown/node/tokens"
	"github.com/staydown/staydown/node/writer"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/replica"
	"github.com/staydown/staydown/protocol/report"
	"github.com/staydown/staydown/store"
)

// Node is a running Staydown node: a libp2p host in the federation's
// gossip topic, a replica of every log in a bbolt store, and the local HTTP
// API. Start makes one; Close stops it.
//
// Node is the wiring: StartWith makes each part (the writer, gossip, sync,
// checkpoints, notices, matching, the host) from what that part needs,
// and starts their loops; no part holds the Node. What follows a commit,
// in commit order, is Node.stored.
type Node struct {
	cfg *config.Node
	log *slog.Logger
	// taxii keeps the TAXII objects of the arrival made last (taxii.go).
	taxii taxiiCache
	// members is the membership in force (SPEC 12); me is this node's
	// identity as its config and keys say (its member, when admitted,
	// is Self()).
	members *members.Live
	me      protocol.Member
	author  ed25519.PrivateKey
	store   *store.Store
	// matcher answers match queries (package matching); made in Start once
	// the store is open, before anything is applied.
	matcher *matching.Matching
	// notices issues and follows takedown notices (package notices).
	notices *notices.Notices
	// alerts tells people of notices through config.toml's hooks
	// (package alerts); nil when none is configured.
	alerts *alerts.Alerts
	// ckpt publishes and witnesses checkpoints (package checkpoints).
	ckpt *checkpoints.Checkpoints

	host    host.Host
	gater   *p2p.Gater
	ps      *pubsub.PubSub
	topic   *pubsub.Topic
	metrics *metrics
	feed    feed
	scores  peerScores // the gossipsub score of each peer, as last inspected
	sync    *syncer.Syncer
	runCtx  context.Context // ends when Close begins
	http    *http.Server
	apiAddr net.Addr
	opts    Options // what it was started on (options.go)

	blocklistSerial blocklistSerial // the RPZ's serial (blocking.go)

	// keys are the API's tokens, certs its TLS certificate (nil: plain
	// HTTP); Reload reads both again.
	keys  *tokens.Keeper
	certs *apitls.Certs

	// writer is the one loop that writes the store (package writer).
	writer *writer.Writer

	dialer *p2p.Dialer
	// live is the liveness protocol's side (SPEC 13.1); clash what it,
	// or an own entry from the network, found (identity.go).
	live      *p2p.Live
	clash     clashes
	startedMs int64 // when this process started, the node's clock

	// votes serialises this node's membership votes (members_api.go):
	// two at one roster version are evidence against it.
	votes sync.Mutex

	// ownUnconfirmed is set while the store, rebuilt from the peers,
	// has not had this node's own head confirmed (ownhead.go): Publish
	// refuses until it is.
	ownUnconfirmed atomic.Bool

	cancel    context.CancelFunc
	wg        sync.WaitGroup // the background loops
	closeOnce sync.Once
	closeErr  error
}

// Start opens the store, joins the federation and serves the API. The
// node runs until Close.
func Start(ctx context.Context, cfg *config.Node, log *slog.Logger) (*Node, error) {
	return StartWith(ctx, cfg, log, Options{})
}

// StartWith is Start on the host, timers and API that opts give.
func StartWith(ctx context.Context, cfg *config.Node, log *slog.Logger, opts Options) (_ *Node, err error) {
	id, err := loadIdentity(cfg)
	if err != nil {
		return nil, err
	}
	genesis, author, nodeKey, boot := id.genesis, id.author, id.nodeKey, id.boot
	peerID, err := peer.IDFromPrivateKey(nodeKey)
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	token, err := cfg.Token()
	if err != nil {
		return nil, err
	}
	// go-libp2p's logs go to this node's log (the last node started, in
	// a process that runs several).
	liblog.Route(log.Handler())
	if err := cfg.CheckAPITransport(); err != nil {
		return nil, err
	}
	keys, err := tokens.Open(cfg.Dir, token, cfg.Now, log)
	if err != nil {
		return nil, err
	}
	var certs *apitls.Certs
	if cfg.APITLSCert != "" && !opts.NoAPI {
		if certs, err = apitls.Load(cfg.APITLSCert, cfg.APITLSKey, log); err != nil {
			return nil, err
		}
	}
	runCtx, cancel := context.WithCancel(context.Background())
	me := protocol.Member{Name: cfg.Name, Role: cfg.Role, AuthorKey: protocol.AuthorKeyOf(author), PeerID: peerID.String()}
	n := &Node{cfg: cfg, log: log, me: me, author: author,
		metrics: newMetrics(), cancel: cancel, runCtx: runCtx, opts: opts, startedMs: cfg.Now().UnixMilli()}
	n.keys, n.certs = keys, certs
	// A failed start releases what it took. n is not a named result: the
	// loops started below capture it, and a failed start's `return nil,
	// err` would set a named result to nil while they may still read it
	// (a data race, then a nil dereference, seen when the API's port was
	// taken).
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if n.store, err = store.Open(cfg.StorePath); err != nil {
		if errors.Is(err, store.ErrCorrupt) {
			return nil, fmt.Errorf("store %s: %w; rebuild it from the federation's peers: staydown store restore --dir %s", cfg.StorePath, err, cfg.Dir)
		}
		return nil, fmt.Errorf("store %s: %w", cfg.StorePath, err)
	}
	storeWatch := storewatch.New(n.store, n.metrics.reg, log, n.now, n.after)
	if err = importSideFiles(n.store, cfg.Dir, log); err != nil {
		return nil, err
	}
	store.Prefetch(cfg.StorePath, log)
	if n.members, err = members.Open(genesis, n.store, log); err != nil {
		return nil, err
	}
	if err = n.adoptNextKey(); err != nil {
		return nil, err
	}
	if err = n.checkSelf(); err != nil {
		return nil, err
	}
	if err = n.ownHeadAtStart(); err != nil {
		return nil, err
	}
	roster := n.members.Roster()
	n.notices, err = notices.New(notices.Deps{Store: n.store, Roster: n.members.Roster, Self: n.Self, History: n.members.History, Author: n.author,
		Publish: n.Publish, Subscribe: n.Subscribe, Done: runCtx.Done(), Now: n.now, Random: n.random, Log: log, Reg: n.metrics.reg})
	if err != nil {
		return nil, err
	}
	if n.alerts, err = alerts.New(alerts.Deps{Hooks: cfg.Alerts, Notices: n.notices, Record: n.store, Self: n.Self, Names: n.nameOf,
		Now: n.now, After: n.after, Log: log, Reg: n.metrics.reg}); err != nil {
		return nil, err
	}
	if n.matcher, err = matching.New(n.store, n.members.Roster, cfg.Policy, cfg.Dir, n.metrics.reg, log, n.now); err != nil {
		return nil, err
	}
	n.writer = writer.New(writer.Deps{Store: n.store, Names: n.nameOf, Federation: cfg.Federation, Refresh: n.members.Refresh,
		Author: n.author, Now: n.now, Done: runCtx.Done(), Log: log,
		Hooks: func(batch []*protocol.Entry) []func(*store.Writes, []store.Result) error {
			return []func(*store.Writes, []store.Result) error{n.matcher.WatchHook(batch)}
		},
		Stored: n.stored, Equivocation: n.equivocation, Missing: func() { n.sync.Any() },
		Counted: n.metrics.count, Committed: func(d time.Duration) { n.metrics.applySeconds.Observe(d.Seconds()) },
		Pending: func(k int) { n.metrics.pending.Set(float64(k)) }})
	// The start-up scans touched much of the store file: hand those
	// mapped pages back (they are a copy of the file), so that the node's
	// resident memory is its own.
	if err := n.store.ReleaseMapped(); err != nil {
		log.Warn("releasing the store's mapped pages", "err", err)
	}
	bootIDs := make([]peer.ID, len(boot))
	for i, b := range boot {
		bootIDs[i] = b.ID
	}
	if n.host, n.gater, err = opts.newHost(nodeKey, cfg.Listen, roster, bootIDs, log, n.now); err != nil {
		return nil, err
	}
	n.dialer = p2p.NewDialer(n.host, n.gater, roster, boot, log, n.now, n.after)
	// Before it syncs, gossips or writes anything, the node asks the
	// members' nodes whether another process runs its identity (SPEC
	// 13.1), and refuses to start if one does.
	if n.live, err = p2p.NewLive(p2p.LiveDeps{Host: n.host, Key: nodeKey, Gater: n.gater, Federation: cfg.Federation, Random: rand.Reader,
		Now: n.now, Log: log, Greeted: n.dialer.Greeted, Clash: n.clashed}); err != nil {
		return nil, err
	}
	if err = n.live.Check(ctx, n.dialer.Targets()); err != nil {
		if ce, ok := errors.AsType[*p2p.ClashError](err); ok {
			log.Error("another process runs this node's identity: refusing to start", ce.Clash.Attrs()...)
		}
		return nil, err
	}
	gh := genesis.Hash()
	n.sync = syncer.New(syncer.Deps{Store: n.store, Members: n.members.History, Genesis: gh[:], Federation: cfg.Federation, Host: n.host, Gater: n.gater,
		Apply: n.writer.Apply, Gossip: func(raw []byte) error { return n.topic.Publish(context.Background(), raw) },
		Now: n.now, After: n.after, Log: log, TxEntries: writer.MaxBatch, TxBytes: writer.MaxBatchBytes,
		Synced: func(k uint64) { n.metrics.synced.Add(float64(k)) }, Forged: n.metrics.syncForged.Inc,
		Greeted: n.dialer.Greeted, Refused: n.dialer.Refused})
	topicName := gossip.Topic(cfg.Federation)
	ckptTopic := checkpoints.Topic(cfg.Federation)
	if n.ps, err = gossip.NewPubSub(runCtx, n.host, liblog.Pubsub(log), n.scores.set, topicName, ckptTopic); err != nil {
		return nil, fmt.Errorf("gossipsub: %w", err)
	}
	if err = n.ps.RegisterTopicValidator(topicName, (&gossip.Validator{Store: n.store, Federation: cfg.Federation, Names: n.nameOf, Self: n.host.ID(), Gater: n.gater, Log: log,
		Rejected: func(reason string) { n.metrics.rejected.WithLabelValues(reason).Inc() }, Ignored: n.metrics.ignored.Inc, SyncWith: n.sync.Soon,
		Hold: n.writer.Hold, Now: n.now}).Validate); err != nil {
		return nil, fmt.Errorf("gossipsub validator: %w", err)
	}
	if n.topic, err = n.ps.Join(topicName); err != nil {
		return nil, fmt.Errorf("gossipsub join %s: %w", topicName, err)
	}
	sub, err := n.topic.Subscribe()
	if err != nil {
		return nil, fmt.Errorf("gossipsub subscribe: %w", err)
	}
	n.ckpt, err = checkpoints.New(checkpoints.Deps{Store: n.store, Roster: n.members.Roster, Self: n.me, Author: n.author,
		Federation: cfg.Federation, Host: n.host.ID(), After: n.after, Now: n.now, Log: log, Reg: n.metrics.reg,
		Rejected: func() { n.metrics.rejected.WithLabelValues("checkpoint").Inc() }, Hold: n.ownUnconfirmed.Load})
	if err != nil {
		return nil, err
	}
	ckptSub, err := n.ckpt.Join(runCtx, n.ps)
	if err != nil {
		return nil, err
	}
	n.host.SetStreamHandler(protocol.SyncProtocol, n.sync.Serve)
	n.host.Network().Notify(&network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		n.sync.Soon(c.RemotePeer()) // whatever happened while apart, catch up
	}})
	n.members.Watch(n.membershipChanged)
	received := make(chan *protocol.Entry, writer.MaxBatch)
	interval := cfg.CheckpointInterval
	if interval <= 0 {
		interval = checkpoints.DefaultInterval
	}
	if n.ownUnconfirmed.Load() {
		n.wg.Add(1)
		go func() { defer n.wg.Done(); n.confirmOwnHead(runCtx) }()
	}
	n.wg.Add(9)
	go func() { defer n.wg.Done(); n.keepMesh(runCtx) }()
	go func() { defer n.wg.Done(); storeWatch.Run(runCtx) }()
	go func() { defer n.wg.Done(); n.alerts.Run(runCtx) }()
	go func() { defer n.wg.Done(); checkpoints.Drain(runCtx, ckptSub) }()
	go func() { defer n.wg.Done(); n.ckpt.Run(runCtx, interval) }()
	go func() { defer n.wg.Done(); n.sync.Run(runCtx) }()
	go func() { defer n.wg.Done(); gossip.Read(runCtx, sub, n.host.ID(), received) }()
	go func() { defer n.wg.Done(); n.writer.Run(received) }()
	go func() { defer n.wg.Done(); n.dialer.Run(runCtx) }()

	if !opts.NoAPI {
		if err = n.serveHTTP(); err != nil {
			return nil, err
		}
	}
	self, member := n.member()
	log.Info("node started", "name", self.Name, "role", self.Role, "federation", cfg.Federation, "genesis", hex.EncodeToString(gh[:8]),
		"roster_version", n.members.History().Version(), "member", member,
		"peer", n.host.ID(), "listen", n.host.Addrs(), "api", fmt.Sprint(n.apiAddr))
	return n, nil
}

// apiIdleTimeout closes a keep-alive connection on which no request
// came for this long. A variable: a test shortens it.
var apiIdleTimeout = 2 * time.Minute

func (n *Node) serveHTTP() error {
	ln, err := net.Listen("tcp", n.cfg.API)
	if err != nil {
		return fmt.Errorf("api: listen on %s: %w", n.cfg.API, err)
	}
	n.apiAddr = ln.Addr()
	ln = limitConns(ln, apiConnsPerClient, apiConns, n.log)
	if n.certs != nil {
		ln = tls.NewListener(ln, n.certs.Config())
	}
	mux := http.NewServeMux()
	if n.opts.API != nil {
		h := n.opts.API(n, n.keys)
		mux.Handle("/v1/", h)
		mux.Handle(api.TAXIIPrefix, h) // TAXII 2.1, read-only (SPEC 23)
	}
	mux.Handle("GET /metrics", n.metricsHandler())
	mux.HandleFunc("GET /blocklist/{format}", n.serveBlocklist) // blocking.go
	if n.opts.Console != nil {
		mux.Handle("/", n.opts.Console(n, n.keys))
	} else {
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
			self := n.Self()
			fmt.Fprintf(w, "staydown node %s (%s) of federation %s\nAPI: /v1/ (bearer token), /v1/openapi.yaml\nTAXII 2.1: /taxii2/ (a read token)\nMetrics: /metrics\nBlocklist: /blocklist/rpz, /blocklist/hosts, /blocklist/domains\n",
				self.Name, self.Role, n.cfg.Federation)
		})
	}
	// A client that sends no request, or no more, is dropped: the header
	// timeout and the idle one; the API's handlers bound each body and
	// each write (node/api's BodyTimeout, WriteStall).
	n.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: apiIdleTimeout}
	n.http.ErrorLog = slog.NewLogLogger(n.log.With("logger", "http").Handler(), slog.LevelWarn) // its errors (TLS handshakes, panics) in the node's log
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("api server", "err", err)
		}
	}()
	return nil
}

// Close stops the node in this order, each step waiting for the one
// before:
//
//  1. The run context is cancelled: every loop (gossip in, the writer,
//     sync, dialing, checkpoints, the alert hooks: a delivery under way
//     is abandoned) and every stream that waits on it (the
//     API's /v1/events, a sync session) begins to end; proposals not yet
//     written fail.
//  2. The API stops taking requests and waits for those under way, which
//     end promptly now.
//  3. The gossip topic and the libp2p host close; the loops are waited
//     for (the writer has applied or refused all it took).
//  4. The PDQ index's background merge is stopped, the checkpoints'
//     publications waited for, and the store closed last, so that nothing
//     writes to a closed store.
//
// Safe to call more than once; every call returns the first call's result.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		var errs []error
		n.cancel()
		if n.http != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			errs = append(errs, n.http.Shutdown(ctx))
			cancel()
		}
		if n.topic != nil {
			n.topic.Close() // fails while subscribed; the host's close ends it anyway
		}
		if n.host != nil {
			errs = append(errs, n.host.Close())
		}
		// The loops that write checkpoints and alerts to the store (the
		// apply loop, the checkpoint publisher; the API went first) end
		// here, before it closes. A checkpoint validator still running
		// on a pubsub goroutine fails to keep its checkpoint, and logs
		// so: bbolt's Close waits for a transaction under way.
		n.wg.Wait()
		if n.matcher != nil {
			n.matcher.Close()
		}
		if n.ckpt != nil {
			n.ckpt.Close()
		}
		if n.members != nil {
			n.members.Close()
		}
		if n.store != nil {
			errs = append(errs, n.store.Close())
		}
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

// Publish implements api.Backend.
func (n *Node) Publish(ctx context.Context, body *pb.Entry) (*protocol.Entry, error) {
	if err := n.checkPublish(body); err != nil {
		return nil, err
	}
	if err := n.checkNewSignals([]*pb.Entry{body}); err != nil {
		return nil, err
	}
	// The writer signs it as the next entry of this node's log, stores
	// it, updates what reads the store, and publishes it on gossip.
	e, err := n.writer.Propose(ctx, body)
	if err != nil {
		return nil, proposeError(err)
	}
	return e, nil
}

// PublishAll implements api.BatchPublisher: it checks every body as
// Publish does (a body that fails a check fails them all, before any is
// signed), then has the writer sign and store them together, in order,
// in one write transaction (so an import pays one fsync for a batch of
// entries, not one each). It returns each body's entry, nil for one not
// published, and the first error (naming the body's index).
func (n *Node) PublishAll(ctx context.Context, bodies []*pb.Entry) ([]*protocol.Entry, error) {
	for i, body := range bodies {
		if err := n.checkPublish(body); err != nil {
			return make([]*protocol.Entry, len(bodies)), fmt.Errorf("entry %d of %d: %w", i+1, len(bodies), err)
		}
	}
	if err := n.checkNewSignals(bodies); err != nil {
		return make([]*protocol.Entry, len(bodies)), err
	}
	es, errs := n.writer.ProposeAll(ctx, bodies)
	for i, err := range errs {
		if err != nil {
			return es, fmt.Errorf("entry %d of %d: %w", i+1, len(bodies), proposeError(err))
		}
	}
	return es, nil
}

// checkPublish makes the checks Publish makes of one body before it
// signs, but for its signals' duplicates (checkNewSignals).
func (n *Node) checkPublish(body *pb.Entry) error {
	what := protocol.KindOf(body)
	if what == "" {
		return fmt.Errorf("%w: no payload", kind.ErrInvalid)
	}
	if err := n.ownHeadKnown(); err != nil {
		return err
	}
	self, member := n.member()
	if !member {
		return fmt.Errorf("%w: %s is not a member of the roster in force (version %d) yet: its entries would be held by every node until its admission passes (staydown member proposals)", kind.ErrForbidden, self.Name, n.members.History().Version())
	}
	if !protocol.MayWrite(self.Role, what) {
		return fmt.Errorf("%w: a %s may not write a %s", kind.ErrForbidden, self.Role, what)
	}
	if err := n.checkOwnTarget(body); err != nil {
		return err
	}
	return n.checkDispute(body)
}

// proposeError gives the writer's refusals of a proposal their kind.
func proposeError(err error) error {
	switch {
	case errors.Is(err, replica.ErrMember):
		return fmt.Errorf("%w: %w", kind.ErrForbidden, err)
	case errors.Is(err, protocol.ErrMalformed), errors.Is(err, protocol.ErrTooLarge), errors.Is(err, protocol.ErrSignal), errors.Is(err, protocol.ErrLabel), errors.Is(err, store.ErrRule):
		return fmt.Errorf("%w: %w", kind.ErrInvalid, err)
	}
	return err
}

// checkOwnTarget gives a clear error before signing when a retraction or
// notice update points at an entry this node cannot act on. The store
// enforces the same rules inside the append transaction.
func (n *Node) checkOwnTarget(body *pb.Entry) error {
	target, ruled := replica.OwnTarget(body)
	if !ruled {
		return nil
	}
	var id protocol.ID
	copy(id[:], target)
	t, err := n.store.Get(id)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: entry %s is not in this node's store", kind.ErrNotFound, id)
	}
	if err != nil {
		return err
	}
	if t.Author != n.me.AuthorKey {
		return fmt.Errorf("%w: entry %s was written by %s; a member may only retract or update its own entries", kind.ErrInvalid, id, n.nameOf(t.Author))
	}
	return namedElsewhere(body, t)
}

// namedElsewhere refuses a retraction or a dispute that names a signal
// its target t does not carry: for that signal it would concern nothing
// (SPEC 6.2, 6.3), which can only be a mistake.
func namedElsewhere(body *pb.Entry, t *protocol.Entry) error {
	named, _ := protocol.NamedSignals(body)
	out := protocol.NamedElsewhere(named, t.Body)
	if len(out) == 0 {
		return nil
	}
	list := make([]string, 0, 4)
	for i, s := range out {
		if i == 3 {
			list = append(list, fmt.Sprintf("and %d more", len(out)-3))
			break
		}
		list = append(list, fmt.Sprintf("%q", protocol.FormatSignal(s)))
	}
	return fmt.Errorf("%w: entry %s (a %s) does not carry the signal %s; a %s names signals of its target only", kind.ErrInvalid, t.ID, t.Kind(), strings.Join(list, ", "), protocol.KindOf(body))
}

// checkDispute refuses, before signing, a dispute that can only be a
// mistake, since a dispute once published stays in the log: its target
// must be another member's addition or notice that this node holds (one
// just published elsewhere may not have arrived yet: wait for it), that
// carries every signal the dispute names, and whose signals named this
// member has not disputed already (a dispute naming none names all). The
// protocol lets a member dispute an entry it has not seen (SPEC 6.3);
// this node does not sign one.
func (n *Node) checkDispute(body *pb.Entry) error {
	d := body.GetDispute()
	if d == nil {
		return nil
	}
	id, err := protocol.IDFromBytes(d.Target)
	if err != nil {
		return fmt.Errorf("%w: target: %v", kind.ErrInvalid, err)
	}
	t, err := n.store.Get(id)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: entry %s is not in this node's store (one just published by another member may not have arrived yet: see staydown status)", kind.ErrNotFound, id)
	}
	if err != nil {
		return err
	}
	switch k := t.Kind(); {
	case k != protocol.KindAddition && k != protocol.KindNotice:
		return fmt.Errorf("%w: entry %s is a %s; a dispute names an addition or a notice", kind.ErrInvalid, id, k)
	case t.Author == n.me.AuthorKey:
		return fmt.Errorf("%w: entry %s is this member's own %s: retract it (or withdraw the notice) instead of disputing it", kind.ErrInvalid, id, k)
	}
	if err := namedElsewhere(body, t); err != nil {
		return err
	}
	held, err := n.store.Disputes(id)
	if err != nil {
		return err
	}
	for _, r := range held {
		if r.Author != n.me.AuthorKey {
			continue
		}
		first, err := n.store.Get(r.EntryID)
		if err != nil {
			return err
		}
		if overlap(first.Body.GetDispute().GetSignals(), d.Signals) {
			return fmt.Errorf("%w: this member disputed entry %s already (dispute %s); withdraw that dispute first, or name other signals", kind.ErrConflict, id, r.EntryID)
		}
	}
	return nil
}

// overlap reports whether disputes naming a and b bear on a signal in
// common (naming none is naming all).
func overlap(a, b []*pb.Signal) bool {
	if len(a) == 0 || len(b) == 0 {
		return true
	}
	for _, s := range b {
		if protocol.Names(a, protocol.SignalKey(s)) {
			return true
		}
	}
	return false
}

// checkNewSignals refuses additions that carry a signal this member
// attests already (an active addition of its own, not retracted): a
// second attestation of the same signal by the same member says nothing
// new and would count twice. The error names each such signal and the
// entry that attests it. The signals of all the bodies are looked up in
// one read transaction.
func (n *Node) checkNewSignals(bodies []*pb.Entry) error {
	var sigs []*pb.Signal
	for _, b := range bodies {
		sigs = append(sigs, b.GetAddition().GetSignals()...)
	}
	if len(sigs) == 0 {
		return nil
	}
	var dup []string
	keys := make([][]byte, len(sigs))
	for i, s := range sigs {
		keys[i] = protocol.SignalKey(s)
	}
	all, err := n.store.AdditionsBy(n.me.AuthorKey, keys)
	if err != nil {
		return err
	}
	for i, s := range sigs {
		for _, at := range all[i] {
			if at.Status == store.StatusActive {
				dup = append(dup, fmt.Sprintf("%s (entry %s)", protocol.FormatSignal(s), at.EntryID))
				break
			}
		}
	}
	switch {
	case len(dup) == 0:
		return nil
	case len(dup) > 3:
		dup = append(dup[:3], fmt.Sprintf("and %d more", len(dup)-3))
	}
	return fmt.Errorf("%w: this member attests %s already; publish the other signals alone (or retract the earlier entry first)", kind.ErrConflict, strings.Join(dup, ", "))
}

// now is the node's clock (config.Node.Clock).
func (n *Node) now() time.Time { return n.cfg.Now() }

// random is the node's randomness (config.Node.Random): what it seals
// notice details with.
func (n *Node) random() io.Reader {
	if n.cfg.Random != nil {
		return n.cfg.Random
	}
	return rand.Reader
}

// VideoConfig implements api.VideoBackend: the ffmpeg and
// max_video_upload of config.toml; uploads are received in the system's
// temporary directory.
func (n *Node) VideoConfig() api.VideoConfig {
	return api.VideoConfig{FFmpeg: n.cfg.FFmpeg, MaxBytes: n.cfg.MaxVideoUpload}
}

// Match implements api.Backend.
func (n *Node) Match(ctx context.Context, queries []matching.Query) ([]matching.Found, error) {
	return n.matcher.Match(queries)
}

// Watch implements api.Backend.
func (n *Node) Watch(ctx context.Context, items []matching.WatchItem) (matching.WatchOutcome, error) {
	return n.matcher.Watch(items)
}

// Unwatch implements api.Backend.
func (n *Node) Unwatch(ctx context.Context, items []matching.WatchItem) (matching.UnwatchOutcome, error) {
	return n.matcher.Unwatch(items)
}

// Watchlist implements api.Backend.
func (n *Node) Watchlist(ctx context.Context, after []byte, limit int) (matching.WatchPage, error) {
	return n.matcher.Watchlist(after, limit)
}

// Alerts implements api.Backend.
func (n *Node) Alerts(ctx context.Context, since uint64) ([]matching.RaisedAlert, error) {
	return n.matcher.Alerts(since)
}

// IssueNotice implements api.Notices (notices.Notices.IssueNotice).
func (n *Node) IssueNotice(ctx context.Context, req notices.IssueRequest) (*protocol.Entry, error) {
	return n.notices.IssueNotice(ctx, req)
}

// UpdateNotice implements api.Notices.
func (n *Node) UpdateNotice(ctx context.Context, req notices.UpdateRequest) (*protocol.Entry, error) {
	return n.notices.UpdateNotice(ctx, req)
}

// ReplyNotice implements api.Notices.
func (n *Node) ReplyNotice(ctx context.Context, req notices.ReplyRequest) (*protocol.Entry, error) {
	return n.notices.ReplyNotice(ctx, req)
}

// ListNotices implements api.Notices.
func (n *Node) ListNotices(ctx context.Context, q notices.Query) ([]notices.View, error) {
	return n.notices.ListNotices(ctx, q)
}

// GetNotice implements api.Notices.
func (n *Node) GetNotice(ctx context.Context, id protocol.ID, atMs int64) (notices.View, error) {
	return n.notices.GetNotice(ctx, id, atMs)
}

// Report implements api.Notices.
func (n *Node) Report(ctx context.Context, sinceMs, atMs int64) (report.Report, error) {
	return n.notices.Report(ctx, sinceMs, atMs)
}

// Events implements api.Notices.
func (n *Node) Events(ctx context.Context, after uint64, send func(notices.Event) error) error {
	return n.notices.Events(ctx, after, send)
}

// LatestCheckpoint returns the newest checkpoint this node holds of
// author's log, with every cosignature it has seen, or nil.
func (n *Node) LatestCheckpoint(author protocol.AuthorKey) []byte { return n.ckpt.Latest(author) }

// CheckpointConflicts returns the contradicting checkpoints seen.
func (n *Node) CheckpointConflicts() []checkpoints.Conflict { return n.ckpt.Conflicts() }

// Proof implements api.Prover: the entry with this id and its inclusion
// proof against the latest checkpoint this node holds of its author's log.
func (n *Node) Proof(ctx context.Context, id protocol.ID) (protocol.EntryProof, error) {
	return n.ckpt.Proof(ctx, id)
}

// Roster implements api.Backend: the roster in force.
func (n *Node) Roster() *protocol.Roster { return n.members.Roster() }

// Members is the node's membership (SPEC 12).
func (n *Node) Members() *members.Live { return n.members }

// Self is this node's member in the roster in force, or, before its
// admission, its identity as its config and keys say.
func (n *Node) Self() protocol.Member {
	m, _ := n.member()
	return m
}

// member is Self, and whether the roster in force has this node as a
// member with its own key.
func (n *Node) member() (protocol.Member, bool) {
	if m, ok := n.members.Roster().ByName(n.me.Name); ok && m.AuthorKey == n.me.AuthorKey {
		return m, true
	}
	return n.me, false
}

// nameOf is the member name of author key k (current or past), for log
// lines and status.
func (n *Node) nameOf(k protocol.AuthorKey) string { return n.members.History().NameOf(k) }

// Status implements api.Backend.
func (n *Node) Status(ctx context.Context) (status.Status, error) {
	self, member := n.member()
	h := n.members.History()
	gh := h.Genesis.Hash()
	st := status.Status{
		ID: n.host.ID().String(), Name: self.Name, Role: string(self.Role),
		Author: self.AuthorKey.String(), Federation: n.cfg.Federation,
		Genesis: hex.EncodeToString(gh[:]), RosterVersion: h.Version(), Member: member, Proposals: len(h.Pending),
		TopicPeers: len(n.topic.ListPeers()), Heads: map[string]uint64{}, Flagged: []string{},
		StoreWritable: n.store.Writable(), Clash: n.clashStatus(),
	}
	for _, p := range n.host.Network().Peers() {
		if n.gater.Member(p) && n.host.Network().Connectedness(p) == network.Connected {
			st.Peers++
		}
	}
	st.Members = n.peersStatus()
	for _, a := range n.host.Addrs() {
		st.Listen = append(st.Listen, a.String()+"/p2p/"+n.host.ID().String())
	}
	var err error
	if st.Entries, err = n.store.Count(); err != nil {
		return st, err
	}
	heads, err := n.store.Heads()
	if err != nil {
		return st, err
	}
	inForce := h.Roster()
	for _, hd := range heads {
		name := h.NameOf(hd.Author)
		if m, ok := inForce.ByName(name); ok && m.AuthorKey != hd.Author || !ok && name != hd.Author.String() {
			name += " (key " + hd.Author.String()[:16] + ")" // an earlier key, or a removed member's
		}
		st.Heads[name] = hd.Seq
	}
	d := protocol.HeadsDigest(heads)
	st.HeadsDigest = hex.EncodeToString(d[:])
	if st.OwnHeadConfirmed, st.Restored, err = n.restoredStatus(); err != nil {
		return st, err
	}
	st.Behind = n.sync.Behind()
	if rate := n.sync.CatchupRate(); rate > 0 && st.Behind > 0 {
		st.CatchupRate = rate
		st.CatchupETASeconds = float64(st.Behind) / rate
	}
	flagged, err := n.store.Flagged()
	if err != nil {
		return st, err
	}
	for _, c := range n.ckpt.Conflicts() {
		if !slices.Contains(flagged, c.Author) {
			flagged = append(flagged, c.Author)
		}
	}
	for _, a := range flagged {
		st.Flagged = append(st.Flagged, h.NameOf(a))
	}
	for _, c := range h.Conflicts {
		if !slices.Contains(st.Flagged, c.Member) {
			st.Flagged = append(st.Flagged, c.Member) // approved two amendments of one version
		}
	}
	for p, score := range n.scores.get() {
		if name := n.gater.Name(p); name != "" {
			if st.PeerScores == nil {
				st.PeerScores = map[string]float64{}
			}
			st.PeerScores[name] = score
		}
	}
	return st, nil
}

// peersStatus is Status.Members: every other member of the roster in
// force, in roster order, as this node sees its node now.
func (n *Node) peersStatus() []status.Peer {
	onTopic := map[peer.ID]bool{}
	for _, p := range n.topic.ListPeers() {
		onTopic[p] = true
	}
	out := []status.Peer{}
	for _, m := range n.members.Roster().Members {
		p, err := peer.Decode(m.PeerID)
		if err != nil || p == n.host.ID() {
			continue
		}
		ps := n.dialer.Peer(p)
		sp := status.Peer{Name: m.Name, PeerID: m.PeerID, Connected: n.host.Network().Connectedness(p) == network.Connected,
			OnTopic: onTopic[p], Refusing: ps.Refusing}
		if !ps.LastSeen.IsZero() {
			sp.LastSeen = ps.LastSeen.UTC().Format(time.RFC3339)
		}
		out = append(out, sp)
	}
	return out
}

// APIAddr is where the HTTP API listens.
func (n *Node) APIAddr() net.Addr { return n.apiAddr }

// Connect dials a peer now instead of waiting for the dialer.
func (n *Node) Connect(ctx context.Context, ai peer.AddrInfo) error { return n.host.Connect(ctx, ai) }

// stored does what follows the commit of an entry now in its log, in the
// writer's goroutine, in commit order (writer.Deps.Stored). This node's
// own new entries (own) go out on gossip; if that fails, peers still get
// them by sync.
func (n *Node) stored(e *protocol.Entry, r store.Result, own bool) {
	if own {
		n.metrics.published.Inc()
	} else {
		n.metrics.applied.Inc()
	}
	n.matcher.Stored(e)
	n.notices.Stored(e, r.Effect.Thread)
	n.alerts.Stored(e)
	n.feed.publish(e)
	if !own && e.Author == n.me.AuthorKey {
		n.ownEntryArrived(e)
	}
	if own {
		if err := n.topic.Publish(n.runCtx, e.Raw); err != nil {
			n.log.Warn("gossip publish failed; entry is stored", "id", e.ID, "err", err)
		}
		n.log.Info("published", "kind", e.Kind(), "seq", e.Seq(), "id", e.ID)
	}
}

// equivocation is told of a conflicting entry the writer kept as evidence.
func (n *Node) equivocation(ev *replica.EquivocationError) {
	// The author is flagged now: every result that holds one of its
	// attestations changes.
	n.matcher.InvalidateAll()
	if ev.Author == n.me.AuthorKey {
		n.ownEquivocation(ev)
	}
	n.log.Error("equivocation: author signed two entries with the same seq; kept as evidence", "author", n.nameOf(ev.Author), "seq", ev.Seq,
		"logged", protocol.IDOf(ev.Logged), "id", ev.Other.ID)
}

// peerScores keeps the gossipsub scores of the peers, as the router last
// reported them (gossip.NewPubSub's inspect).
type peerScores struct {
	mu sync.Mutex
	m  map[peer.ID]float64
}

func (s *peerScores) set(m map[peer.ID]float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m = m
}

func (s *peerScores) get() map[peer.ID]float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.m)
}

// adoptNextKey makes author.key.next this node's author key when the
// roster in force names it as this member's key (a revocation gave it,
// or a rotation signed elsewhere): SPEC 12.4.
func (n *Node) adoptNextKey() error {
	next, err := n.cfg.NextKey()
	if err != nil || next == nil {
		return err
	}
	pub := protocol.AuthorKeyOf(next)
	m, ok := n.members.Roster().ByName(n.me.Name)
	if !ok || m.AuthorKey != pub {
		n.log.Info("author.key.next is not this member's key in the roster in force (yet): keeping author.key", "next", pub, "roster_version", n.members.History().Version())
		return nil
	}
	if err := n.cfg.PromoteNextKey(); err != nil {
		return fmt.Errorf("adopting author.key.next, which the roster names as this member's key: %w", err)
	}
	n.log.Warn("the roster names author.key.next as this member's key: it is author.key now (the old one is kept beside it)", "key", pub, "was", n.me.AuthorKey)
	n.author, n.me.AuthorKey = next, pub
	return nil
}

// checkSelf checks this node against the roster in force at start: a
// member of its name must have this node's author key as its current key
// (else the key was rotated or revoked, and entries signed with it would
// be refused). A node not in the roster yet starts, syncs and waits for
// its admission (SPEC 12.1).
func (n *Node) checkSelf() error {
	h := n.members.History()
	m, ok := h.Roster().ByName(n.me.Name)
	switch {
	case !ok:
		if ks, known := h.Key(n.me.AuthorKey); known {
			return fmt.Errorf("member %q was removed from the federation (its key %s %s): this node cannot publish", n.me.Name, n.me.AuthorKey, ks.Why)
		}
		n.log.Warn("this node is not a member of the roster in force yet: it syncs, and publishes once an admission of it passes", "name", n.me.Name,
			"roster_version", h.Version(), "author_key", n.me.AuthorKey, "peer", n.me.PeerID)
	case m.AuthorKey != n.me.AuthorKey:
		if ks, known := h.Key(n.me.AuthorKey); known && ks.Member == m.Name {
			return fmt.Errorf("member %q signs with key %s now; this node's author.key (%s) was %s after seq %d: install the member's current key", m.Name, m.AuthorKey, n.me.AuthorKey, ks.Why, ks.End)
		}
		return fmt.Errorf("member %q of the roster in force has author key %s, but this node's author.key holds %s: make them agree", m.Name, m.AuthorKey, n.me.AuthorKey)
	default:
		if m.PeerID != n.me.PeerID {
			n.log.Warn("the roster in force gives this member another peer ID than this node's node.key: peers will refuse this node until a peer update says so", "roster", m.PeerID, "node", n.me.PeerID)
		}
		if m.Role != n.cfg.Role {
			n.log.Warn("the roster in force gives this member another role than config.toml: the roster's holds", "roster", m.Role, "config", n.cfg.Role)
		}
	}
	return nil
}

// membershipChanged follows a new membership (members.Live.Watch): the
// gater admits the peers of the roster in force and the connections of
// those it no longer names are closed; the dialer dials the new members;
// a sync fetches the logs of members just admitted; match results are
// derived again (verdicts on entries may have changed).
func (n *Node) membershipChanged(old, now *membership.History) {
	r := now.Roster()
	for _, p := range n.gater.SetRoster(r) {
		n.log.Info("closing the connections of a peer no longer in the roster", "peer", p)
		_ = n.host.Network().ClosePeer(p)
	}
	n.dialer.SetRoster(r)
	n.matcher.InvalidateAll()
	if old.Version() != now.Version() {
		v := now.Versions[len(now.Versions)-1]
		n.log.Info("roster changed", "version", now.Version(), "change", v.Change, "proposer", v.Proposer, "votes", len(v.Votes), "of", v.Voters)
	}
	n.sync.Any()
}

// bootstrapPeers parses the bootstrap addresses of the config.
// identity is what a node is, from its directory: the federation's
// genesis, its author and node keys, the peers it bootstraps from. A node
// and a restore (which runs as the node) load it alike.
type identity struct {
	genesis *membership.Genesis
	author  ed25519.PrivateKey
	nodeKey crypto.PrivKey
	boot    []peer.AddrInfo
}

func loadIdentity(cfg *config.Node) (id identity, err error) {
	if id.genesis, err = cfg.Genesis(); err != nil {
		return id, err
	}
	if id.author, err = cfg.AuthorKey(); err != nil {
		return id, err
	}
	if id.nodeKey, err = cfg.NodeKey(); err != nil {
		return id, err
	}
	id.boot, err = bootstrapPeers(cfg.Bootstrap)
	return id, err
}

func bootstrapPeers(addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, a := range addrs {
		ai, err := peer.AddrInfoFromString(a)
		if err != nil {
			return nil, fmt.Errorf("bootstrap address %q: %w", a, err)
		}
		out = append(out, *ai)
	}
	return out, nil
}
