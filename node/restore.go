package node

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/node/kind"
	"github.com/staydown/staydown/node/members"
	"github.com/staydown/staydown/node/ownhead"
	"github.com/staydown/staydown/node/p2p"
	"github.com/staydown/staydown/node/syncer"
	"github.com/staydown/staydown/node/writer"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/replica"
	"github.com/staydown/staydown/store"
)

// DefaultRestoreTimeout is how long a restore waits for every member's
// node to answer before it judges with those that did.
const DefaultRestoreTimeout = time.Minute

// RestoreOptions say how Restore gathers the federation's replica.
type RestoreOptions struct {
	// MinPeers is how many other members' nodes must serve their whole
	// replica; below 0, a majority of the other members (ownhead.Needed).
	MinPeers int
	// Timeout bounds the wait for every member (DefaultRestoreTimeout
	// when 0).
	Timeout time.Duration
	// Unconfirmed installs what was gathered even when fewer than
	// MinPeers answered: the node starts with its own head unconfirmed,
	// serves matches, and refuses to publish until enough peers have
	// synced with it.
	Unconfirmed bool
	// Force rebuilds a store that opens and checks clean.
	Force bool
}

// RestoreReport is what a restore did.
type RestoreReport struct {
	store.Restored
	Entries uint64
	// Unreachable are the other members of the roster in force whose
	// nodes did not serve their replica in time.
	Unreachable []string
}

// restoringSuffix names the fresh store a restore fills before it
// replaces the damaged one.
const restoringSuffix = ".restoring"

// DamagedName is the name a damaged store file at path is moved aside to
// by a restore at t: never deleted.
func DamagedName(path string, t time.Time) string {
	return path + ".damaged-" + t.UTC().Format("20060102T150405Z")
}

// Restore rebuilds the store of the stopped node of cfg from its peers
// (SPEC 16.7): a fresh store, filled by sync sessions (node/syncer's
// client, every entry checked as any sync checks it) with every other
// member's node it can reach within the timeout, using the node's own
// keys (the peers admit only roster members). The genesis comes from the
// node's config, the rest of the membership from the membership entries
// synced. When enough peers served their replica (RestoreOptions), the
// damaged file is moved aside (DamagedName) and the new one takes its
// place, its meta/restored saying when and from whom; otherwise nothing
// is changed and the error says how many answered and how many are
// needed. The node's own log comes back like every other: the node
// continues it from the newest head any peer held.
func Restore(ctx context.Context, cfg *config.Node, log *slog.Logger, opts Options, ro RestoreOptions) (rep RestoreReport, err error) {
	id, err := loadIdentity(cfg)
	if err != nil {
		return rep, err
	}
	existed, err := damagedStore(cfg, ro.Force)
	if err != nil {
		return rep, err
	}
	if ro.Timeout <= 0 {
		ro.Timeout = DefaultRestoreTimeout
	}
	tmp := cfg.StorePath + restoringSuffix
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return rep, fmt.Errorf("removing what an earlier restore left: %w", err)
	}
	g := &gatherer{cfg: cfg, log: log, opts: opts, own: protocol.AuthorKeyOf(id.author), author: id.author}
	answered, err := g.gather(ctx, tmp, id.genesis, id.nodeKey, id.boot, ro.Timeout)
	installed := false
	defer func() {
		if !installed {
			os.Remove(tmp) // what was gathered, never the damaged store
		}
	}()
	if err != nil {
		return rep, err
	}
	needed, err := ownhead.Needed(g.roster, cfg.Name, ro.MinPeers)
	if err != nil {
		return rep, err
	}
	for _, o := range ownhead.Others(g.roster, cfg.Name) {
		if !answered[o.Name] {
			rep.Unreachable = append(rep.Unreachable, o.Name)
		}
	}
	if len(answered) < needed && !ro.Unconfirmed {
		return rep, fmt.Errorf("%w: %d of the %d members' nodes needed served their replica within %v (answered: %s; not: %s): the store is unchanged (retry when more are up, or lower --min-peers, or --unconfirmed to start without publishing until they are)",
			kind.ErrUnavailable, len(answered), needed, ro.Timeout, list(ownhead.Names(answered)), list(rep.Unreachable))
	}
	now := cfg.Now().UTC()
	rep.Restored = store.Restored{At: now, From: ownhead.Names(answered), Needed: needed, Confirmed: len(answered) >= needed}
	if rep.Confirmed {
		rep.ConfirmedAt = now
	}
	damaged := ""
	if existed {
		damaged = DamagedName(cfg.StorePath, now)
		rep.Damaged = filepath.Base(damaged)
	}
	if rep.Entries, rep.OwnSeq, err = finish(tmp, rep.Restored, g.own); err != nil {
		return rep, err
	}
	if existed {
		if err := os.Rename(cfg.StorePath, damaged); err != nil {
			return rep, fmt.Errorf("moving the damaged store aside: %w (the restored one is %s)", err, tmp)
		}
	}
	if err := os.Rename(tmp, cfg.StorePath); err != nil {
		return rep, fmt.Errorf("installing the restored store: %w (it is %s; the damaged one %s)", err, tmp, damaged)
	}
	installed = true
	if d, err := os.Open(filepath.Dir(cfg.StorePath)); err == nil {
		d.Sync() // the renames
		d.Close()
	}
	rep.Restored.OwnSeq = rep.OwnSeq
	return rep, nil
}

// list is names joined, or "none".
func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// damagedStore reports whether the store file exists, and refuses to go
// on when it is sound (unless force), when the node runs (the file is
// locked), or when it is of another schema (another binary reads it).
func damagedStore(cfg *config.Node, force bool) (bool, error) {
	if _, err := os.Stat(cfg.StorePath); errors.Is(err, fs.ErrNotExist) {
		return false, nil // a lost disk: nothing to move aside
	} else if err != nil {
		return false, err
	}
	st, err := store.Open(cfg.StorePath)
	switch {
	case errors.Is(err, store.ErrCorrupt):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("%w (is the node running? stop it first: a running node holds its store locked)", err)
	}
	err = st.Check()
	st.Close()
	switch {
	case err == nil && !force:
		return false, fmt.Errorf("%w: the store %s opens and checks clean: nothing to restore (--force rebuilds it anyway, moving this one aside)", kind.ErrInvalid, cfg.StorePath)
	case err != nil && !errors.Is(err, store.ErrCorrupt):
		return false, err
	}
	return true, nil
}

// finish records the restore in the new store and closes it, returning
// how many entries it holds and the own head.
func finish(path string, r store.Restored, own protocol.AuthorKey) (entries, ownSeq uint64, err error) {
	st, err := store.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		if cerr := st.Close(); err == nil {
			err = cerr
		}
	}()
	h, err := st.Head(own)
	if err != nil {
		return 0, 0, err
	}
	r.OwnSeq = h.Seq
	if err := st.SetRestored(r); err != nil {
		return 0, 0, err
	}
	n, err := st.Count()
	return n, h.Seq, err
}

// gatherer is a node cut down to what a restore needs: a store, its
// membership, the writer that fills it, a host and its dialer, and the
// syncer's client. It serves nothing and publishes nothing.
type gatherer struct {
	cfg    *config.Node
	log    *slog.Logger
	opts   Options
	own    protocol.AuthorKey
	author ed25519.PrivateKey // signs nothing: the writer wants one
	roster *protocol.Roster   // the roster in force when the gathering ended
}

// gather fills the store at path from every other member's node it can
// reach until each has served its replica (and a last round over all of
// them brought nothing new) or timeout passes, and returns the names of
// those that served.
func (g *gatherer) gather(ctx context.Context, path string, genesis *membership.Genesis, nodeKey crypto.PrivKey, boot []peer.AddrInfo, timeout time.Duration) (answered map[string]bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := store.Open(path)
	if err != nil {
		return nil, err
	}
	var (
		h    host.Host
		done = make(chan struct{})
		wait []func()
	)
	defer func() {
		cancel()
		if h != nil {
			h.Close()
		}
		for _, w := range wait {
			w()
		}
		close(done)
		if cerr := st.Close(); err == nil {
			err = cerr
		}
	}()
	live, err := members.Open(genesis, st, g.log)
	if err != nil {
		return nil, err
	}
	cfg := g.cfg
	w := writer.New(writer.Deps{Store: st, Names: live.History().NameOf, Federation: cfg.Federation, Refresh: live.Refresh,
		Author: g.author, Now: cfg.Now, Done: ctx.Done(), Log: g.log,
		Hooks:  func([]*protocol.Entry) []func(*store.Writes, []store.Result) error { return nil },
		Stored: func(*protocol.Entry, store.Result, bool) {}, Equivocation: func(*replica.EquivocationError) {}, Missing: func() {},
		Counted: func(store.Outcome) {}, Committed: func(time.Duration) {}, Pending: func(int) {}})
	received := make(chan *protocol.Entry)
	writerDone := make(chan struct{})
	go func() { defer close(writerDone); w.Run(received) }()
	wait = append(wait, func() { close(received); <-writerDone })
	bootIDs := make([]peer.ID, len(boot))
	for i, b := range boot {
		bootIDs[i] = b.ID
	}
	after := time.After
	if g.opts.After != nil {
		after = g.opts.After
	}
	var gater *p2p.Gater
	if h, gater, err = g.opts.newHost(nodeKey, cfg.Listen, live.Roster(), bootIDs, g.log, cfg.Now); err != nil {
		return nil, err
	}
	dialer := p2p.NewDialer(h, gater, live.Roster(), boot, g.log, cfg.Now, after)
	gh := genesis.Hash()
	sy := syncer.New(syncer.Deps{Store: st, Members: live.History, Genesis: gh[:], Federation: cfg.Federation, Host: h, Gater: gater,
		Apply: w.Apply, Gossip: func([]byte) error { return nil }, Now: cfg.Now, After: after, Log: g.log,
		TxEntries: writer.MaxBatch, TxBytes: writer.MaxBatchBytes, Synced: func(uint64) {}, Forged: func() {},
		Greeted: dialer.Greeted, Refused: dialer.Refused})
	live.Watch(func(_, now *membership.History) {
		gater.SetRoster(now.Roster())
		dialer.SetRoster(now.Roster())
	})
	dialerDone := make(chan struct{})
	go func() { defer close(dialerDone); dialer.Run(ctx) }()
	wait = append(wait, func() { <-dialerDone })

	d := ownhead.Deps{Roster: live.Roster, Self: cfg.Name, Own: g.own, Connected: connected(h),
		Announced: func(ctx context.Context, p peer.ID) (uint64, error) { return announcedHead(ctx, h, sy, p, g.own) },
		Sync:      sy.With, Head: st.Head, Heads: st.Heads, Log: g.log}
	answered = map[string]bool{}
	deadline := after(timeout)
	g.log.Info("restore: gathering the federation's replica", "members", len(ownhead.Others(live.Roster(), cfg.Name)), "timeout", timeout)
	for {
		others := ownhead.Others(live.Roster(), cfg.Name)
		all := len(others) > 0
		for _, o := range others {
			all = all && answered[o.Name]
		}
		grew, err := ownhead.Round(ctx, d, answered, all)
		if err != nil {
			return nil, err
		}
		if all && !grew {
			break // every member served, and a last round over all brought nothing new
		}
		if len(others) == 0 {
			break // nobody to ask
		}
		if !grew {
			select {
			case <-deadline:
				g.roster = live.Roster()
				return answered, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-after(restoreRetry):
			}
		}
		select {
		case <-deadline:
			g.roster = live.Roster()
			return answered, nil
		default:
		}
	}
	g.roster = live.Roster()
	return answered, nil
}

// restoreRetry is how long a restore waits between rounds that brought
// nothing while some member has not answered.
const restoreRetry = 500 * time.Millisecond

// announcedHead reads peer p's head of author own from its sync hello
// (syncer.Hello, syncer.PeerHeads): what p says it holds of this node's
// log, before the session that fetches it. It reads the server's side to
// its end, so that the server has let go of this peer's session slot
// (one per peer, SPEC 16.2) when the next session opens.
func announcedHead(ctx context.Context, h host.Host, s *syncer.Syncer, p peer.ID, own protocol.AuthorKey) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, syncer.Period*3)
	defer cancel()
	st, err := h.NewStream(ctx, p, protocol.SyncProtocol)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	mine, err := s.Hello()
	if err != nil {
		return 0, err
	}
	if _, err := protodelim.MarshalTo(st, mine); err != nil {
		return 0, err
	}
	r := bufio.NewReader(st)
	var theirs pb.SyncHello
	if err := (protodelim.UnmarshalOptions{MaxSize: protocol.MaxSyncMessage}).UnmarshalFrom(r, &theirs); err != nil {
		return 0, err
	}
	heads, err := s.PeerHeads(p, &theirs)
	if err != nil {
		return 0, err // the session that follows finds it too, and cuts the peer off
	}
	if err := st.CloseWrite(); err != nil {
		return 0, err
	}
	if _, err := io.Copy(io.Discard, io.LimitReader(r, protocol.MaxSyncMessage)); err != nil {
		return 0, err
	}
	for _, hd := range heads {
		if hd.Author == own {
			return hd.Seq, nil
		}
	}
	return 0, nil
}

// connected reports whether h has a connection to p.
func connected(h host.Host) func(peer.ID) bool {
	return func(p peer.ID) bool { return h.Network().Connectedness(p) == network.Connected }
}
