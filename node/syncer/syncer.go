// Package syncer is a node's side of the sync protocol (SPEC.md, "Sync"):
// it serves its replica's ranges to peers, and fetches from them what it
// lacks, checking every entry and handing it to the node's writer. Gossip
// makes entries travel fast; sync makes them arrive.
package syncer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/node/p2p"
	"github.com/staydown/staydown/node/ratelog"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// Sync timing. Gossip makes entries travel fast; sync makes them arrive:
// on every new connection, when gossip shows a gap, and every
// Period (plus jitter) with a random connected peer.
const (
	Period          = 10 * time.Second
	syncJitter      = 5 * time.Second
	syncIdleTimeout = 30 * time.Second // a silent peer is dropped after this
	maxSyncServing  = 4                // streams this node serves at once
	banDuration     = 10 * time.Minute // how long a peer that forged data is cut off
	// maxSyncClients is how many peers this node fetches from at once,
	// each on its own session: a peer that stalls one holds only that
	// one, and others go on.
	maxSyncClients = 3
	// maxSession bounds a client session however well it goes (the
	// pacer cuts it much sooner when it stops going well); the next
	// sync goes on from where it ended.
	maxSession = 10 * time.Minute
	// coFetchAfter is how long a log another session is fetching is
	// left to it: after that this session fetches it too, so that a
	// slow peer does not hold a log (entries that come twice are
	// duplicates, which the writer ignores).
	coFetchAfter = 20 * time.Second
)

// Deps are what a Syncer needs of its node.
type Deps struct {
	Store *store.Store // read only: entries are written by Apply
	// Members is the membership in force (SPEC 12): which logs to fetch,
	// and how far.
	Members    func() *membership.History
	Federation string
	// Genesis is the hash of the federation's genesis (SPEC 12.1): a
	// peer whose hello names another is of another federation.
	Genesis []byte
	Host    host.Host
	Gater   *p2p.Gater // who a peer is; cuts off forgers
	// Apply hands entries fetched to the node's writer and waits for
	// their results (one per entry).
	Apply func([]*protocol.Entry) ([]store.Result, error)
	// Gossip publishes an entry on the federation's topic: the evidence
	// of an equivocation that sync found.
	Gossip func(raw []byte) error
	// Now and After are the node's clock and timers.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
	// Synced counts entries stored by sync; Forged a session in which a
	// peer served forged or malformed data (the node's metrics).
	Synced func(n uint64)
	Forged func()
	// Greeted is told of each peer whose sync hello is of this
	// federation, Refused of each whose hello names another federation
	// or genesis, and why (the dialer's: p2p.Dialer). Either may be nil.
	Greeted func(p peer.ID)
	Refused func(p peer.ID, reason string)
	Log     *slog.Logger
	// TxEntries and TxBytes bound one transaction of fetched entries.
	TxEntries, TxBytes int
}

// Syncer runs this node's side of the sync protocol. The sync loop (Run)
// is the only client: it runs up to maxSyncClients sessions at once, one
// per peer; the node's writer stays the only writer (sync hands it
// batches through Apply, and an entry two sessions fetched is a
// duplicate the second time).
type Syncer struct {
	d      Deps
	queue  chan peer.ID
	mu     sync.Mutex // guards queued, claims, unfetched, servingPeers and catch-up progress
	queued map[peer.ID]bool
	// claims are the heads each peer announced (its last hello), and
	// when: what this node may be missing. A claim is a claim: it counts
	// until the next sync with that peer settles it (With drops the
	// peer's claims when it ends: what the peer could serve is stored by
	// then) or until it is claimTTL old, so a lying peer cannot keep
	// "behind" up.
	claims map[peer.ID]claim
	// unfetched is, per peer and author, the last head the peer
	// announced and could not serve (unfetchable).
	unfetched    map[peerLog]unfetched
	catchupStart time.Time // when this node last went from caught up to behind
	catchupDone  uint64    // entries applied by sync since then
	lastReport   time.Time
	serving      chan struct{}    // semaphore for served streams
	servingPeers map[peer.ID]bool // peers with a stream served now (one each); guarded by mu
	// violations rate-limits the lines of a peer's violations (punish):
	// once a minute per peer and side, with the count of those between.
	violations *ratelog.Limiter[peerSide]
	// active are the peers a client session runs with now, again those
	// asked for while it ran (a peer gets one session at a time, which
	// runs again when it ends), paused those cut off for stalling and
	// until when (stallPause). Guarded by mu.
	active, again map[peer.ID]bool
	paused        map[peer.ID]time.Time
	// fetching are the logs a client session fetches now, so that
	// concurrent sessions fetch each from one peer (coFetchAfter).
	// Guarded by mu.
	fetching map[protocol.AuthorKey]*logFetch
}

type peerSide struct {
	peer peer.ID
	side string
}

// logFetch is a log one client session fetches now.
type logFetch struct {
	since time.Time     // when it started (the node's clock)
	done  chan struct{} // closed when it ends
}

// New makes the syncer; Run starts its loop, and the host hands it the
// sync streams peers open (Serve).
func New(d Deps) *Syncer {
	return &Syncer{d: d, queue: make(chan peer.ID, 64), queued: map[peer.ID]bool{},
		claims: map[peer.ID]claim{}, unfetched: map[peerLog]unfetched{}, serving: make(chan struct{}, maxSyncServing), servingPeers: map[peer.ID]bool{},
		violations: ratelog.New[peerSide](time.Minute, d.Now),
		active:     map[peer.ID]bool{}, again: map[peer.ID]bool{}, paused: map[peer.ID]time.Time{}, fetching: map[protocol.AuthorKey]*logFetch{}}
}

// LimitTransactions lowers the bounds of a transaction of fetched entries
// (tests of batch boundaries). Call it before the first sync.
func (s *Syncer) LimitTransactions(entries, bytes int) { s.d.TxEntries, s.d.TxBytes = entries, bytes }

// Soon asks for a sync with p soon. It never blocks; a peer already queued
// is not queued twice. A peer paused for stalling (stallPause) is not
// asked: another connected member is, instead.
func (s *Syncer) Soon(p peer.ID) {
	if s.isPaused(p) {
		s.Any()
		return
	}
	s.enqueue(p)
}

func (s *Syncer) enqueue(p peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queued[p] {
		return
	}
	select {
	case s.queue <- p:
		s.queued[p] = true
	default: // the queue is full; the periodic sync will come round
	}
}

// Any asks for a sync with a random connected roster peer: one that no
// session runs with now and that is not paused for stalling, if there is
// one; a paused one if it is all there is (a slow peer beats none).
func (s *Syncer) Any() {
	if p, ok := s.randomPeer(); ok {
		s.enqueue(p)
	}
}

func (s *Syncer) randomPeer() (peer.ID, bool) {
	var idle, busy, paused []peer.ID
	now := s.d.Now()
	s.mu.Lock()
	for _, p := range s.d.Host.Network().Peers() {
		switch {
		case !s.d.Gater.Member(p):
		case now.Before(s.paused[p]):
			paused = append(paused, p)
		case s.active[p]:
			busy = append(busy, p)
		default:
			idle = append(idle, p)
		}
	}
	s.mu.Unlock()
	for _, ps := range [][]peer.ID{idle, busy, paused} {
		if len(ps) > 0 {
			return ps[rand.IntN(len(ps))], true
		}
	}
	return "", false
}

// isPaused reports whether p was cut off for stalling less than
// stallPause ago.
func (s *Syncer) isPaused(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	until, ok := s.paused[p]
	if ok && !s.d.Now().Before(until) {
		delete(s.paused, p)
		return false
	}
	return ok
}

// Run is the sync loop: it runs up to maxSyncClients sessions at once,
// each with a different peer, until ctx ends, and returns when they have.
func (s *Syncer) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, maxSyncClients)
	timer := s.d.After(Period)
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer:
			s.Any()
			timer = s.d.After(Period + time.Duration(rand.Int64N(int64(syncJitter))))
		case p := <-s.queue:
			s.mu.Lock()
			delete(s.queued, p)
			s.mu.Unlock()
			if s.isPaused(p) {
				// Paused since it was queued: another peer instead, p
				// itself only if it is all there is.
				q, ok := s.randomPeer()
				if !ok {
					continue
				}
				p = q
			}
			s.mu.Lock()
			running := s.active[p]
			if running {
				s.again[p] = true // after the session under way
			}
			s.mu.Unlock()
			if running {
				continue
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			s.mu.Lock()
			s.active[p] = true
			s.mu.Unlock()
			wg.Go(func() {
				defer func() { <-slots }()
				if err := s.With(ctx, p); err != nil && ctx.Err() == nil {
					s.d.Log.Debug("sync", "member", s.d.Gater.Name(p), "err", err)
				}
				s.mu.Lock()
				delete(s.active, p)
				again := s.again[p]
				delete(s.again, p)
				s.mu.Unlock()
				if again && ctx.Err() == nil {
					s.Soon(p)
				}
			})
		}
	}
}

// claimLog makes this session the one that fetches author's log, if no
// other session does; release ends the claim.
func (s *Syncer) claimLog(author protocol.AuthorKey) (release func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fetching[author] != nil {
		return nil, false
	}
	f := &logFetch{since: s.d.Now(), done: make(chan struct{})}
	s.fetching[author] = f
	return func() {
		s.mu.Lock()
		delete(s.fetching, author)
		s.mu.Unlock()
		close(f.done)
	}, true
}

// awaitLog waits while another session fetches author's log, until it
// ends or has run coFetchAfter.
func (s *Syncer) awaitLog(ctx context.Context, author protocol.AuthorKey) error {
	s.mu.Lock()
	f := s.fetching[author]
	s.mu.Unlock()
	if f == nil {
		return nil
	}
	wait := coFetchAfter - s.d.Now().Sub(f.since)
	if wait <= 0 {
		return nil
	}
	select {
	case <-f.done:
	case <-s.d.After(wait):
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// stalled deals with a peer the pacer cut off: logged, and not synced
// with for stallPause; another peer is asked for what it did not
// deliver. It is not banned (a slow link is not forgery).
func (s *Syncer) stalled(p peer.ID, want string, got int64) {
	s.mu.Lock()
	s.paused[p] = s.d.Now().Add(stallPause)
	s.mu.Unlock()
	s.d.Log.Warn("peer stalled a sync: session cut; not syncing with it for a while (it is not banned: it may only be slow)",
		"member", s.d.Gater.Name(p), "peer", p, "waiting_for", want, "delivered_bytes", got,
		"min_rate_bytes_per_s", minSyncRate, "for", stallPause)
	s.Any()
}

// syncStream reads and writes length-delimited protobuf messages on a
// stream, each with an idle deadline, and at most MaxSyncMessage bytes.
// The deadlines are the transport's, which keeps them on the runtime's
// clock: they are set from time.Now, not the node's clock.
//
// A client's stream (newClientStream) is paced instead: its peer is held
// to a minimum throughput over the time this node waits on it (pacer).
type syncStream struct {
	s    network.Stream
	r    *bufio.Reader
	pace *pacer // nil on the serving side
}

func newSyncStream(s network.Stream) syncStream { return syncStream{s: s, r: bufio.NewReader(s)} }

func newClientStream(s network.Stream) syncStream {
	p := newPacer(s)
	return syncStream{s: s, r: bufio.NewReader(pacedReader{s, p}), pace: p}
}

// read reads one message. A message that does not decode or is over the
// size limit is a violation (SPEC 16.4): its error wraps
// protocol.ErrForged. The stream ending, or failing, is not.
func (ss syncStream) read(m proto.Message) error {
	if ss.pace != nil {
		ss.pace.begin()
		defer ss.pace.end()
	} else {
		ss.s.SetReadDeadline(time.Now().Add(syncIdleTimeout))
	}
	err := protodelim.UnmarshalOptions{MaxSize: protocol.MaxSyncMessage}.UnmarshalFrom(ss.r, m)
	if errors.Is(err, proto.Error) {
		return fmt.Errorf("%w: malformed %s: %v", protocol.ErrForged, m.ProtoReflect().Descriptor().Name(), err)
	}
	return err
}

func (ss syncStream) write(m proto.Message) error {
	if ss.pace != nil {
		ss.pace.begin()
		defer ss.pace.end()
	} else {
		ss.s.SetWriteDeadline(time.Now().Add(syncIdleTimeout))
	}
	_, err := protodelim.MarshalTo(ss.s, m)
	return err
}

// expect says what the client waits for next (for the log line of a
// stall); nothing on the serving side.
func (ss syncStream) expect(format string, args ...any) {
	if ss.pace != nil {
		ss.pace.expect(fmt.Sprintf(format, args...))
	}
}

// Hello is this node's SyncHello: its federation and every head it holds.
func (s *Syncer) Hello() (*pb.SyncHello, error) {
	heads, err := s.d.Store.Heads()
	if err != nil {
		return nil, err
	}
	h := &pb.SyncHello{Federation: s.d.Federation, Heads: make([]*pb.SyncHead, len(heads)), Genesis: s.d.Genesis}
	for i, hd := range heads {
		h.Heads[i] = &pb.SyncHead{Author: hd.Author[:], Seq: hd.Seq, Id: hd.ID[:]}
	}
	return h, nil
}

// PeerHeads checks a peer's SyncHello and returns its heads for the keys
// of members (heads of other keys are ignored: an admission may not have
// reached one side yet), a head past the end of its key's log (SPEC 12.5)
// cut to the last seq a log keeps.
func (s *Syncer) PeerHeads(p peer.ID, h *pb.SyncHello) ([]protocol.Head, error) {
	if h.Federation != s.d.Federation {
		s.refused(p, fmt.Sprintf("its sync hello names another federation, %.40q", h.Federation))
		return nil, fmt.Errorf("%w: hello for federation %q, this is %q", protocol.ErrForged, h.Federation, s.d.Federation)
	}
	if !bytes.Equal(h.Genesis, s.d.Genesis) {
		s.refused(p, fmt.Sprintf("its sync hello names another genesis, %.8x (this node's is %.8x): the same federation name, other founders", h.Genesis, s.d.Genesis))
		return nil, fmt.Errorf("%w: hello for the federation of genesis %x, this is %x: same name, other founders", protocol.ErrForged, h.Genesis, s.d.Genesis)
	}
	members := s.d.Members()
	if len(h.Heads) > protocol.MaxSyncHeads {
		return nil, fmt.Errorf("%w: hello with %d heads, limit %d", protocol.ErrForged, len(h.Heads), protocol.MaxSyncHeads)
	}
	var out []protocol.Head
	for _, sh := range h.Heads {
		if len(sh.Author) != len(protocol.AuthorKey{}) || len(sh.Id) != protocol.IDSize || sh.Seq == 0 {
			return nil, fmt.Errorf("%w: hello with a malformed head", protocol.ErrForged)
		}
		var hd protocol.Head
		copy(hd.Author[:], sh.Author)
		copy(hd.ID[:], sh.Id)
		hd.Seq = sh.Seq
		ks, ok := members.Key(hd.Author)
		if !ok {
			continue
		}
		if keep := ks.End + membership.OutsideSlack; ks.End != membership.Open && hd.Seq > keep {
			if local, err := s.d.Store.Head(hd.Author); err != nil || local.Seq >= keep {
				continue
			}
			hd.Seq, hd.ID = keep, protocol.ID{}
		}
		out = append(out, hd)
	}
	s.learn(p, out)
	if s.d.Greeted != nil {
		s.d.Greeted(p)
	}
	return out, nil
}

// refused tells Deps.Refused that p refuses this node, and why.
func (s *Syncer) refused(p peer.ID, reason string) {
	if s.d.Refused != nil {
		s.d.Refused(p, reason)
	}
}

// name is the member name of key k, for log lines.
func (s *Syncer) name(k protocol.AuthorKey) string { return s.d.Members().NameOf(k) }

// unfetchableFor is how long a range a peer claimed and could not serve
// is not asked of it again while neither head moves.
const unfetchableFor = 10 * time.Minute

// unfetched is a head a peer announced and could not serve, against the
// head held then.
type unfetched struct {
	held, them protocol.ID
	at         time.Time
}

// peerLog is one author's log as one peer holds it.
type peerLog struct {
	peer   peer.ID
	author protocol.AuthorKey
}

// fetched records, after a fetch from p, whether p served up to its head
// h; if not, the next syncs skip it (unfetchable).
func (s *Syncer) fetched(p peer.ID, h protocol.Head) {
	local, err := s.d.Store.Head(h.Author)
	if err != nil || local.Seq >= h.Seq {
		s.mu.Lock()
		delete(s.unfetched, peerLog{p, h.Author})
		s.mu.Unlock()
		return
	}
	s.mu.Lock()
	s.unfetched[peerLog{p, h.Author}] = unfetched{held: local.ID, them: h.ID, at: s.d.Now()}
	s.mu.Unlock()
	s.d.Log.Info("peer could not serve the head it announced: not asking it again for a while", "member", s.d.Gater.Name(p),
		"author", s.name(h.Author), "announced", h.Seq, "held", local.Seq, "for", unfetchableFor)
}

// unfetchable reports whether p failed to serve this very head h lately,
// while this node held local.
func (s *Syncer) unfetchable(p peer.ID, local, h protocol.Head) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.unfetched[peerLog{p, h.Author}]
	return ok && u.held == local.ID && u.them == h.ID && s.d.Now().Sub(u.at) < unfetchableFor
}

// claimTTL is how long a peer's announced heads count towards Behind
// without a sync with that peer settling them.
const claimTTL = 3 * Period

// claim is what one peer announced.
type claim struct {
	heads []protocol.Head
	at    time.Time
}

// learn records what a peer says it holds, for the catch-up progress.
func (s *Syncer) learn(p peer.ID, heads []protocol.Head) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.claims[p] = claim{heads: heads, at: s.d.Now()}
}

// settle drops p's claims: a sync with p has ended, and stored what p
// could serve.
func (s *Syncer) settle(p peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.claims, p)
}

// Serve answers a peer's sync stream: hellos, then ranges until the peer
// closes. A malformed request cuts the peer off. It serves maxSyncServing
// streams at once, one per peer (a node runs one session per peer), so
// that no member can take every slot; a stream beyond that is reset.
func (s *Syncer) Serve(st network.Stream) {
	defer st.Close()
	p := st.Conn().RemotePeer()
	s.mu.Lock()
	busy := s.servingPeers[p]
	if !busy {
		s.servingPeers[p] = true
	}
	s.mu.Unlock()
	if busy {
		st.Reset() // this peer has a session already
		return
	}
	defer func() {
		s.mu.Lock()
		delete(s.servingPeers, p)
		s.mu.Unlock()
	}()
	select {
	case s.serving <- struct{}{}:
		defer func() { <-s.serving }()
	default:
		st.Reset() // busy: the peer will retry with another node or later
		return
	}
	ss := newSyncStream(st)
	var theirs pb.SyncHello
	if err := ss.read(&theirs); err != nil {
		if errors.Is(err, protocol.ErrForged) {
			s.punish(p, asked, err)
			return
		}
		s.d.Log.Debug("sync serve: hello", "member", s.d.Gater.Name(p), "err", err)
		return
	}
	heads, err := s.PeerHeads(p, &theirs)
	if err != nil {
		s.punish(p, asked, err)
		return
	}
	mine, err := s.Hello()
	if err != nil || ss.write(mine) != nil {
		return
	}
	// The asker holds something this node lacks: ask back.
	if s.behindOf(heads) {
		s.Soon(p)
	}
	for {
		var req pb.SyncRequest
		if err := ss.read(&req); err != nil {
			if errors.Is(err, protocol.ErrForged) {
				s.punish(p, asked, err)
			}
			return // io.EOF: the peer is done
		}
		var author protocol.AuthorKey
		if len(req.Author) != len(author) || req.FromSeq == 0 || req.ToSeq < req.FromSeq || req.ToSeq-req.FromSeq >= protocol.MaxSyncRange {
			s.punish(p, asked, fmt.Errorf("%w: request for seq %d to %d (limit %d entries)", protocol.ErrForged, req.FromSeq, req.ToSeq, protocol.MaxSyncRange))
			return
		}
		copy(author[:], req.Author)
		if err := s.serveRange(ss, author, req.FromSeq, req.ToSeq); err != nil {
			s.d.Log.Debug("sync serve: range", "member", s.d.Gater.Name(p), "err", err)
			return
		}
	}
}

// serveRange sends from..to of author's log in batches bounded in entries
// and bytes; each batch is read in its own short read transaction.
func (s *Syncer) serveRange(ss syncStream, author protocol.AuthorKey, from, to uint64) error {
	for {
		// Raw bytes: the asker checks every entry itself.
		raws, more, err := s.d.Store.RangeBatch(author, from, to, protocol.MaxSyncBatch, protocol.MaxSyncBatchBytes)
		if err != nil {
			return err
		}
		if err := ss.write(&pb.SyncBatch{Entries: raws, Last: !more}); err != nil {
			return err
		}
		if !more {
			return nil
		}
		from += uint64(len(raws))
	}
}

// behindOf reports whether any of heads is ahead of this node.
func (s *Syncer) behindOf(heads []protocol.Head) bool {
	for _, h := range heads {
		if mine, err := s.d.Store.Head(h.Author); err == nil && h.Seq > mine.Seq {
			return true
		}
	}
	return false
}

// With syncs from peer p: hellos, then for every author p is ahead on,
// the missing ranges; for every author p is behind or level on, a check
// that p's head is the entry this node holds at that seq (if not, the
// author equivocated: fetch p's entry as evidence). A log another
// session fetches now is left to it, for coFetchAfter, and done last.
// Throughout, p is held to minSyncRate (pacer): a peer that stalls is cut
// off, logged and paused.
func (s *Syncer) With(ctx context.Context, p peer.ID) error {
	ctx, cancel := context.WithTimeout(ctx, maxSession)
	defer cancel()
	st, err := s.d.Host.NewStream(ctx, p, protocol.SyncProtocol)
	if err != nil {
		return err
	}
	defer st.Close()
	defer s.settle(p) // what p claims is stored by now, or p cannot serve it
	go func() { <-ctx.Done(); st.Reset() }()
	ss := newClientStream(st)
	defer ss.pace.stop()
	err = s.session(ctx, ss, p)
	if stalled, want, got := ss.pace.stall(); stalled && err != nil {
		s.stalled(p, want, got)
		return fmt.Errorf("peer stalled, waiting for %s: %w", want, err)
	}
	if errors.Is(err, protocol.ErrForged) {
		s.punish(p, served, err)
	}
	return err
}

// session is With's exchange on its stream.
func (s *Syncer) session(ctx context.Context, ss syncStream, p peer.ID) error {
	mine, err := s.Hello()
	if err != nil {
		return err
	}
	ss.expect("its hello")
	if err := ss.write(mine); err != nil {
		return err
	}
	var theirs pb.SyncHello
	if err := ss.read(&theirs); err != nil {
		return err
	}
	heads, err := s.PeerHeads(p, &theirs)
	if err != nil {
		return err
	}
	if s.behindOf(heads) {
		s.startCatchup()
	}
	var later []protocol.Head // logs another session was fetching
	for _, h := range heads {
		local, err := s.d.Store.Head(h.Author)
		if err != nil {
			return err
		}
		switch {
		case h.Seq > local.Seq && s.unfetchable(p, local, h):
			// Asked for lately, and p could not give it: p holds
			// another branch of a forked log (the evidence is kept), or
			// claims what it does not have. Not again until either head
			// moves or unfetchableFor has passed.
		case h.Seq > local.Seq:
			release, ok := s.claimLog(h.Author)
			if !ok {
				later = append(later, h)
				continue
			}
			err = s.fetchHead(ss, p, h, local)
			release()
		default:
			err = s.compare(ss, p, h)
		}
		if err != nil {
			return err
		}
	}
	for _, h := range later {
		if err := s.awaitLog(ctx, h.Author); err != nil {
			return err
		}
		local, err := s.d.Store.Head(h.Author)
		if err != nil {
			return err
		}
		if h.Seq > local.Seq && s.unfetchable(p, local, h) {
			continue
		}
		// The other session ended (claim the log), or has run
		// coFetchAfter (fetch it too: what comes twice is a duplicate).
		release, ok := s.claimLog(h.Author)
		err = s.fetchHead(ss, p, h, local)
		if ok {
			release()
		}
		if err != nil {
			return err
		}
	}
	return ss.s.CloseWrite()
}

// fetchHead fetches author h.Author's log from p up to h, from the head
// this node held when it looked (local), and records whether p served it
// all (fetched).
func (s *Syncer) fetchHead(ss syncStream, p peer.ID, h, local protocol.Head) error {
	if h.Seq <= local.Seq {
		return s.compare(ss, p, h) // another session brought it meanwhile
	}
	if err := s.fetch(ss, p, h, local.Seq+1); err != nil {
		return err
	}
	s.fetched(p, h)
	return nil
}

// fetch asks p for author's log from..to, a request of at most
// MaxSyncRange entries at a time, checks every batch as it arrives and
// hands authenticated entries to the apply loop in transactions of up to
// maxBatch entries or maxBatchBytes: memory holds one such transaction,
// whatever the backlog. (Fetching the next transaction while one is
// applied was measured slower on two cores: the writer is the bottleneck
// and the fetcher took CPU from it.)
func (s *Syncer) fetch(ss syncStream, p peer.ID, h protocol.Head, from uint64) error {
	author, to := h.Author, h.Seq
	var held []*protocol.Entry
	heldBytes := 0
	// flush applies what is held; it reports false when the log does not
	// continue here (a fork).
	flush := func() (bool, error) {
		if len(held) == 0 {
			return true, nil
		}
		results, err := s.d.Apply(held)
		held, heldBytes = nil, 0
		if err != nil {
			return false, err
		}
		if results[0].Outcome == store.Rejected {
			return false, nil
		}
		n := 0 // entries this transaction stored
		for _, r := range results {
			if r.Outcome == store.Applied || r.Outcome == store.Void {
				n++
			}
		}
		s.progress(uint64(n))
		return true, nil
	}
	// forked ends the fetch when a transaction did not continue the log:
	// the author forked at or before our head. It reads the rest of the
	// answer in progress (unless that was the last batch: otherwise the
	// answer's next batch would pass for the evidence), then gets p's
	// entry at our head's seq as evidence.
	// left is how many more entries the answer in progress may carry;
	// readBatch reads its next batch and holds it to that and to the
	// shape of a batch, whichever loop reads it, so that no peer can keep
	// a drain going with empty batches.
	var left uint64
	readBatch := func() (*pb.SyncBatch, error) {
		var b pb.SyncBatch
		if err := ss.read(&b); err != nil {
			return nil, err
		}
		if len(b.Entries) > protocol.MaxSyncBatch || uint64(len(b.Entries)) > left {
			return nil, fmt.Errorf("%w: %d entries where at most %d more were asked for", protocol.ErrForged, len(b.Entries), left)
		}
		if len(b.Entries) == 0 && !b.Last {
			// Only the last batch of an answer may be empty: anything
			// else is a stream that never ends.
			return nil, fmt.Errorf("%w: an empty batch that is not the last", protocol.ErrForged)
		}
		left -= uint64(len(b.Entries))
		return &b, nil
	}
	forked := func(last bool) error {
		for !last {
			b, err := readBatch()
			if err != nil {
				return err
			}
			last = b.Last
		}
		local, err := s.d.Store.Head(author)
		if err != nil {
			return err
		}
		return s.fetchEvidence(ss, author, local.Seq)
	}
	// done applies what is held once the answers are all read.
	done := func() error {
		if ok, err := flush(); ok || err != nil {
			return err
		}
		return forked(true)
	}
	for from <= to {
		// Another session, or gossip, may have brought part of the
		// range meanwhile: ask only for what is still missing.
		if local, err := s.d.Store.Head(author); err != nil {
			return err
		} else if local.Seq >= from {
			if ok, err := flush(); err != nil {
				return err
			} else if !ok {
				return forked(true)
			}
			if local, err = s.d.Store.Head(author); err != nil {
				return err
			}
			if local.Seq >= to {
				return s.compare(ss, p, h)
			}
			from = local.Seq + 1
		}
		hi := min(to, from+protocol.MaxSyncRange-1)
		ss.expect("%s's log, seq %d to %d", s.name(author), from, hi)
		if err := ss.write(&pb.SyncRequest{Author: author[:], FromSeq: from, ToSeq: hi}); err != nil {
			return err
		}
		left = hi + 1 - from
		for last := false; !last; {
			b, err := readBatch()
			if err != nil {
				return err
			}
			last = b.Last
			entries, n, err := protocol.CheckRange(s.d.Federation, author, from, b.Entries)
			if err != nil {
				return err
			}
			// CheckRange links entries within a batch; between batches a
			// forked log could hand over the other branch. A batch that
			// does not link to what is held starts a transaction of its
			// own, whose first result then shows the break.
			if len(held) > 0 && n > 0 && entries[0].Prev() != held[len(held)-1].ID {
				if ok, err := flush(); err != nil {
					return err
				} else if !ok {
					return forked(last)
				}
			}
			for _, e := range entries[:n] {
				held = append(held, e)
				heldBytes += len(e.Raw)
			}
			if len(held) >= s.d.TxEntries || heldBytes >= s.d.TxBytes {
				if ok, err := flush(); err != nil {
					return err
				} else if !ok {
					return forked(last)
				}
			}
			if n < len(entries) {
				// Nothing authenticates the rest yet: keep what is, drain
				// the answer and stop on this author.
				for !last {
					if b, err = readBatch(); err != nil {
						return err
					}
					last = b.Last
				}
				return done()
			}
			from += uint64(n)
			if last && from <= hi {
				return done() // p has no more than this
			}
		}
	}
	return done()
}

// compare checks that p's head for an author this node is level with or
// ahead of names the entry this node holds at that seq.
func (s *Syncer) compare(ss syncStream, p peer.ID, h protocol.Head) error {
	var held protocol.ID
	err := s.d.Store.RangeRaw(h.Author, h.Seq, h.Seq, func(_ uint64, raw []byte) error { held = protocol.IDOf(raw); return nil })
	if err != nil || held == h.ID {
		return err
	}
	return s.fetchEvidence(ss, h.Author, h.Seq)
}

// fetchEvidence gets the peer's entry at seq and applies it: it differs
// from the one held here, so the store keeps it as evidence, and the node
// gossips it so that every node learns of the equivocation.
func (s *Syncer) fetchEvidence(ss syncStream, author protocol.AuthorKey, seq uint64) error {
	ss.expect("%s's entry at seq %d (evidence of a fork)", s.name(author), seq)
	if err := ss.write(&pb.SyncRequest{Author: author[:], FromSeq: seq, ToSeq: seq}); err != nil {
		return err
	}
	var b pb.SyncBatch
	if err := ss.read(&b); err != nil {
		return err
	}
	if len(b.Entries) != 1 || !b.Last {
		return fmt.Errorf("%w: asked for one entry, got %d", protocol.ErrForged, len(b.Entries))
	}
	// Evidence must carry its own signature: CheckRange of one entry
	// authenticates it by that signature alone.
	entries, n, err := protocol.CheckRange(s.d.Federation, author, seq, b.Entries)
	if err != nil || n != 1 {
		return err
	}
	results, err := s.d.Apply(entries)
	if err != nil {
		return err
	}
	if results[0].Outcome == store.Equivocation {
		s.d.Log.Error("equivocation found by sync: kept as evidence, gossiping it", "author", s.name(author), "seq", seq, "id", entries[0].ID)
		if err := s.d.Gossip(entries[0].Raw); err != nil {
			s.d.Log.Warn("gossip evidence", "err", err)
		}
	}
	return nil
}

// The sides of a sync session a peer can break the rules on.
const (
	served = "peer served forged or malformed sync data; cutting it off"   // this node asked, the peer answered
	asked  = "peer sent a malformed sync hello or request; cutting it off" // the peer asked, this node serves
)

// punish cuts off a peer that broke the sync protocol's rules (SPEC
// 16.4), as the client (side served) or as the asker (side asked): the
// connection is closed and the gater refuses it for banDuration.
func (s *Syncer) punish(p peer.ID, side string, err error) {
	s.d.Forged()
	s.violations.Log(s.d.Log, slog.LevelWarn, peerSide{p, side}, side, "member", s.d.Gater.Name(p), "peer", p, "for", banDuration, "err", err)
	s.d.Gater.Ban(p, s.d.Now().Add(banDuration))
	s.d.Host.Network().ClosePeer(p)
}

// progress accounts for entries applied by sync and logs the catch-up
// every few seconds.
func (s *Syncer) progress(applied uint64) {
	behind := s.Behind()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.d.Now()
	if s.catchupStart.IsZero() {
		s.catchupStart, s.catchupDone = now, 0
	}
	s.catchupDone += applied
	s.d.Synced(applied)
	if behind == 0 {
		s.d.Log.Info("caught up", "entries", s.catchupDone, "took", now.Sub(s.catchupStart).Round(time.Millisecond))
		s.catchupStart = time.Time{}
		return
	}
	if now.Sub(s.lastReport) >= 2*time.Second {
		s.lastReport = now
		rate := float64(s.catchupDone) / now.Sub(s.catchupStart).Seconds()
		s.d.Log.Info("catching up", "behind", behind, "rate_per_s", int(rate), "eta", time.Duration(float64(behind)/rate*float64(time.Second)).Round(time.Second))
	}
}

// startCatchup starts the catch-up clock, if it is not running, before
// the first range is fetched, so that the rate counts the first
// transaction's time too.
func (s *Syncer) startCatchup() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.catchupStart.IsZero() {
		s.catchupStart, s.catchupDone = s.d.Now(), 0
	}
}

// Behind is how many entries peers have announced that this node lacks:
// for each author, the highest head a peer claims that no sync with that
// peer has settled yet (and that is under claimTTL old), less the head
// held. Announcements are claims: the sum saturates rather than overflow.
func (s *Syncer) Behind() uint64 {
	s.mu.Lock()
	now := s.d.Now()
	remote := map[protocol.AuthorKey]uint64{}
	for p, c := range s.claims {
		if now.Sub(c.at) > claimTTL {
			delete(s.claims, p)
			continue
		}
		for _, h := range c.heads {
			remote[h.Author] = max(remote[h.Author], h.Seq)
		}
	}
	s.mu.Unlock()
	var total uint64
	for a, seq := range remote {
		if h, err := s.d.Store.Head(a); err == nil && seq > h.Seq {
			if d := seq - h.Seq; total+d >= total {
				total += d
			} else {
				total = math.MaxUint64
			}
		}
	}
	return total
}

// CatchupRate is entries/s applied by the current catch-up, 0 when caught
// up.
func (s *Syncer) CatchupRate() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.catchupStart.IsZero() {
		return 0
	}
	return float64(s.catchupDone) / s.d.Now().Sub(s.catchupStart).Seconds()
}
