package p2p

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pprotocol "github.com/libp2p/go-libp2p/core/protocol"
)

// LiveProtocol is the liveness protocol's stream (SPEC 13.1): a node
// tells each member's node it connects to which process it is, and learns
// whether another process with its identity is live already.
const LiveProtocol libp2pprotocol.ID = "/staydown/live/1.0.0"

// Liveness timing.
const (
	// CheckWithin bounds the start check: the dials and the answers of
	// every member that can be reached. A member that does not answer in
	// time is not asked.
	CheckWithin = 5 * time.Second
	// answerWithin bounds the wait for one answer on a liveness stream.
	answerWithin = 5 * time.Second
)

// ErrIdentityInUse is the error of a node whose identity (node key and
// author key) another process runs: a member's node sees the other one
// connected and live. ClashError carries the evidence.
var ErrIdentityInUse = errors.New("another process runs this node's identity")

// Clash is the evidence that another process runs this node's identity.
type Clash struct {
	// How it was found: "liveness" (a member's node told of, or asked
	// about, the other process) or "own entry" (an entry signed by this
	// node's author key that it did not write came from the network).
	How string
	// Member is the member whose node saw the other process (its peer
	// Peer); Remote the address it sees that process connected from,
	// Since since when ("" and zero when it did not say).
	Member string
	Peer   peer.ID
	Remote string
	Since  time.Time
	// Other is the other process as it signed itself (liveness), and
	// Detail what else there is to say (the entry, for "own entry").
	Other  Instance
	Detail string
	// At is when this node learnt of it.
	At time.Time
}

// Attrs are the clash's evidence as log attributes.
func (c Clash) Attrs() []any {
	a := []any{"how", c.How, "member", c.Member, "peer", c.Peer}
	if c.Remote != "" {
		a = append(a, "remote", c.Remote)
	}
	if !c.Since.IsZero() {
		a = append(a, "since", c.Since.UTC().Format(time.RFC3339))
	}
	if len(c.Other.Nonce) > 0 {
		a = append(a, "other_instance", fmt.Sprintf("%x", c.Other.Nonce), "other_started", time.UnixMilli(c.Other.StartedMs).UTC().Format(time.RFC3339),
			"other_addrs", c.Other.Addrs)
	}
	if c.Detail != "" {
		a = append(a, "detail", c.Detail)
	}
	return a
}

// ClashError is ErrIdentityInUse with its evidence.
type ClashError struct{ Clash Clash }

func (e *ClashError) Error() string {
	c := e.Clash
	since := ""
	if !c.Since.IsZero() {
		since = " since " + c.Since.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("%v: member %s's node sees it connected from %s%s (process started %s, listening on %v); stop the other process first (a restored backup), or give this copy an identity of its own with staydown init (a cloned machine)",
		ErrIdentityInUse, c.Member, c.Remote, since, time.UnixMilli(c.Other.StartedMs).UTC().Format(time.RFC3339), c.Other.Addrs)
}

func (e *ClashError) Unwrap() error { return ErrIdentityInUse }

// LiveDeps is what a Live needs.
type LiveDeps struct {
	Host       host.Host
	Key        crypto.PrivKey // the node's transport key: Host's identity
	Gater      *Gater
	Federation string
	Random     io.Reader // the instance nonce
	Now        func() time.Time
	Log        *slog.Logger
	// Greeted is told of a member whose valid hello or answer came (the
	// dialer's: a connection closed after it is no refusal).
	Greeted func(peer.ID)
	// Clash is told of each clash found after the start check.
	Clash func(Clash)
}

// Live is a node's side of the liveness protocol (SPEC 13.1). As a
// client it says hello on every connection to a member, once its start
// check has ended, and attests that it is live when a peer asks; as a
// server it keeps the instance each peer said hello as, per connection,
// and answers a second instance of a peer "taken", with an attestation of
// the first that the first makes for that second's nonce.
type Live struct {
	d     LiveDeps
	self  peer.ID
	hello Signed
	ready chan struct{} // closed when the start check has ended

	mu      sync.Mutex          // guards what follows
	known   map[string]*knownAt // by connection id: the instance a peer said hello as on it
	greeted map[string]bool     // connections this node said hello on
}

// knownAt is a peer's instance, as its hello on one connection said.
type knownAt struct {
	conn  network.Conn
	hello Signed
	since time.Time
	mu    sync.Mutex // one challenge at a time on s
	s     *bufStream // the peer's liveness stream, held open for challenges
}

// NewLive makes the node's liveness side: a fresh instance nonce, its
// signed hello, and the stream handler. Check must run next.
func NewLive(d LiveDeps) (*Live, error) {
	nonce := make([]byte, NonceSize)
	if _, err := io.ReadFull(d.Random, nonce); err != nil {
		return nil, fmt.Errorf("instance nonce: %w", err)
	}
	l := &Live{d: d, self: d.Host.ID(), ready: make(chan struct{}), known: map[string]*knownAt{}, greeted: map[string]bool{}}
	var addrs []string
	for _, a := range d.Host.Addrs() {
		addrs = append(addrs, a.String())
	}
	if len(addrs) > maxLiveAddrs {
		addrs = addrs[:maxLiveAddrs]
	}
	var err error
	if l.hello, err = (Instance{Federation: d.Federation, Nonce: nonce, StartedMs: d.Now().UnixMilli(), Addrs: addrs}).Sign(d.Key); err != nil {
		return nil, fmt.Errorf("signing the liveness hello: %w", err)
	}
	d.Host.SetStreamHandler(LiveProtocol, l.serve)
	d.Host.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) { go l.greetConn(c) },
		DisconnectedF: func(_ network.Network, c network.Conn) {
			l.mu.Lock()
			defer l.mu.Unlock()
			delete(l.known, c.ID())
			delete(l.greeted, c.ID())
		},
	})
	return l, nil
}

// Nonce is this process's instance nonce.
func (l *Live) Nonce() []byte { return l.hello.Instance.Nonce }

// Check is the start check: it dials every target (the members with
// addresses, the bootstrap peers) and says hello to each it reaches,
// within CheckWithin, and returns a *ClashError if one answers that
// another process with this node's identity is live. Then it closes the
// connections it made, so that gossip, which starts after it, meets
// each peer on a fresh connection (a peer's gossipsub gives up on a
// connection whose stream it could not open). A node that reaches no
// one starts: nobody can tell it otherwise.
func (l *Live) Check(ctx context.Context, targets []peer.AddrInfo) error {
	defer close(l.ready)
	ctx, cancel := context.WithTimeout(ctx, CheckWithin)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		clash *Clash
	)
	for _, t := range targets {
		if t.ID == l.self {
			continue
		}
		wg.Go(func() {
			if err := l.d.Host.Connect(ctx, t); err != nil {
				l.d.Log.Debug("liveness check: member not reached", "peer", t.ID, "err", err)
				return
			}
			s, c, err := l.greet(ctx, t.ID)
			switch {
			case err != nil:
				l.d.Log.Debug("liveness check: no answer", "peer", t.ID, "err", err)
			case c != nil:
				mu.Lock()
				if clash == nil {
					clash = c
				}
				mu.Unlock()
			default:
				s.Close()
			}
		})
	}
	wg.Wait()
	if clash != nil {
		return &ClashError{Clash: *clash}
	}
	for _, p := range l.d.Host.Network().Peers() {
		_ = l.d.Host.Network().ClosePeer(p)
	}
	return nil
}

// greetConn says hello on a new connection to a member, once the start
// check has ended (the check's own connections are closed by then), and
// holds the stream open for challenges.
func (l *Live) greetConn(c network.Conn) {
	<-l.ready
	p := c.RemotePeer()
	if !l.d.Gater.Member(p) || c.IsClosed() {
		return
	}
	l.mu.Lock()
	if l.greeted[c.ID()] {
		l.mu.Unlock()
		return
	}
	l.greeted[c.ID()] = true
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), answerWithin)
	s, clash, err := l.greet(ctx, p)
	cancel()
	switch {
	case err != nil:
		l.d.Log.Debug("liveness hello: no answer", "peer", p, "err", err)
	case clash != nil:
		l.d.Clash(*clash)
	default:
		l.attest(s)
	}
}

// greet opens a liveness stream to p and says hello. The answer is
// free (the stream is returned, open), or taken (the clash, with the
// other process's attestation of this one's nonce, checked).
func (l *Live) greet(ctx context.Context, p peer.ID) (*bufStream, *Clash, error) {
	s, err := l.d.Host.NewStream(ctx, p, LiveProtocol)
	if err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	r := bufio.NewReader(s)
	if err := writeLive(s, LiveMessage{Hello: &l.hello}); err != nil {
		s.Reset()
		return nil, nil, err
	}
	m, err := readLive(r)
	if err != nil {
		s.Reset()
		return nil, nil, err
	}
	if (m.Free || m.Taken != nil) && l.d.Greeted != nil {
		// p answered: it accepts this node, and a connection this node
		// closes now (the start check's) is no refusal.
		l.d.Greeted(p)
	}
	switch {
	case m.Free:
		if !stop() {
			return nil, nil, ctx.Err()
		}
		return &bufStream{Stream: s, r: r}, nil, nil
	case m.Taken != nil:
		s.Close()
		o := m.Taken.Other
		if err := l.ownOther(o, l.hello.Instance.Nonce); err != nil {
			return nil, nil, fmt.Errorf("a taken answer whose evidence does not hold: %w", err)
		}
		c := &Clash{How: "liveness", Member: l.d.Gater.Name(p), Peer: p, Remote: m.Taken.Remote, Other: o.Instance, At: l.d.Now()}
		if m.Taken.SinceMs > 0 {
			c.Since = time.UnixMilli(m.Taken.SinceMs)
		}
		return nil, c, nil
	default:
		s.Reset()
		return nil, nil, fmt.Errorf("%w: answer to a hello is neither free nor taken", ErrLiveMalformed)
	}
}

// ownOther checks that o is signed by this node's key, in its
// federation, by another process than this one, and answers challenge.
func (l *Live) ownOther(o Signed, challenge []byte) error {
	if err := o.VerifyBy(l.self); err != nil {
		return err
	}
	switch i := o.Instance; {
	case i.Federation != l.d.Federation:
		return fmt.Errorf("%w: federation %q", ErrLiveMalformed, i.Federation)
	case bytes.Equal(i.Nonce, l.hello.Instance.Nonce):
		return fmt.Errorf("%w: this process's own nonce", ErrLiveMalformed)
	case !bytes.Equal(i.Challenge, challenge):
		return fmt.Errorf("%w: answers another challenge (a replay)", ErrLiveMalformed)
	}
	return nil
}

// attest answers the challenges a peer sends on s, this node's liveness
// stream to it, until the stream ends: each names another process with
// this node's identity, which is a clash, and is answered with this
// process's attestation of that process's nonce.
func (l *Live) attest(s *bufStream) {
	p := s.Conn().RemotePeer()
	for {
		m, err := readLive(s.r)
		if err != nil {
			s.Reset()
			return
		}
		if m.Challenge == nil {
			l.d.Log.Warn("liveness stream: unexpected message from a member's node", "member", l.d.Gater.Name(p), "peer", p)
			s.Reset()
			return
		}
		n := m.Challenge.Newcomer
		if err := l.ownOther(n, nil); err != nil {
			l.d.Log.Warn("liveness stream: a challenge whose evidence does not hold", "member", l.d.Gater.Name(p), "peer", p, "err", err)
			s.Reset()
			return
		}
		att, err := (Instance{Federation: l.d.Federation, Nonce: l.hello.Instance.Nonce, StartedMs: l.hello.Instance.StartedMs,
			Challenge: n.Instance.Nonce, Addrs: l.hello.Instance.Addrs}).Sign(l.d.Key)
		if err != nil {
			s.Reset()
			return
		}
		if err := writeLive(s, LiveMessage{Attestation: &att}); err != nil {
			s.Reset()
			return
		}
		l.d.Clash(Clash{How: "liveness", Member: l.d.Gater.Name(p), Peer: p, Remote: m.Challenge.Remote, Other: n.Instance, At: l.d.Now()})
	}
}

// serve is the server side: a member's node says hello on s. When
// another process with its identity is connected and live (it attests
// so, for this one's nonce), the answer is taken; else free, and s is
// held open for challenges.
func (l *Live) serve(s network.Stream) {
	p := s.Conn().RemotePeer()
	if !l.d.Gater.Member(p) {
		s.Reset()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), answerWithin)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	r := bufio.NewReader(s)
	m, err := readLive(r)
	if err == nil && m.Hello == nil {
		err = fmt.Errorf("%w: the first message is no hello", ErrLiveMalformed)
	}
	if err == nil {
		err = m.Hello.VerifyBy(p)
	}
	if err == nil && (m.Hello.Instance.Federation != l.d.Federation || len(m.Hello.Instance.Challenge) != 0) {
		err = fmt.Errorf("%w: a hello of federation %q with a challenge of %d bytes", ErrLiveMalformed, m.Hello.Instance.Federation, len(m.Hello.Instance.Challenge))
	}
	if err != nil {
		l.d.Log.Warn("liveness: a bad hello from a member's node", "member", l.d.Gater.Name(p), "peer", p, "err", err)
		s.Reset()
		return
	}
	hello := *m.Hello
	for _, k := range l.others(p, s.Conn(), hello.Instance.Nonce) {
		att, err := l.challenge(ctx, k, hello, s.Conn().RemoteMultiaddr().String())
		if err != nil {
			l.d.Log.Debug("liveness: an earlier process of a member's node did not attest", "member", l.d.Gater.Name(p), "peer", p, "err", err)
			l.forget(k)
			continue
		}
		l.d.Log.Warn("a second process with a member's node identity connected: told it the identity is taken", "member", l.d.Gater.Name(p), "peer", p,
			"remote", s.Conn().RemoteMultiaddr(), "live_remote", k.conn.RemoteMultiaddr(), "live_since", k.since.UTC().Format(time.RFC3339))
		if !stop() {
			return // the timer reset s
		}
		// Closed, not reset: a reset could overtake the answer.
		if err := writeLive(s, LiveMessage{Taken: &Taken{Other: att, Remote: k.conn.RemoteMultiaddr().String(), SinceMs: k.since.UnixMilli()}}); err != nil {
			s.Reset()
			return
		}
		s.Close()
		return
	}
	if !stop() {
		return
	}
	if err := writeLive(s, LiveMessage{Free: true}); err != nil {
		s.Reset()
		return
	}
	l.mu.Lock()
	l.known[s.Conn().ID()] = &knownAt{conn: s.Conn(), hello: hello, since: l.d.Now(), s: &bufStream{Stream: s, r: r}}
	l.mu.Unlock()
	if l.d.Greeted != nil {
		l.d.Greeted(p)
	}
}

// others are the instances of p known on other open connections than c
// with another nonce than nonce.
func (l *Live) others(p peer.ID, c network.Conn, nonce []byte) []*knownAt {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*knownAt
	for id, k := range l.known {
		if k.conn.RemotePeer() != p || id == c.ID() || bytes.Equal(k.hello.Instance.Nonce, nonce) {
			continue
		}
		if k.conn.IsClosed() {
			delete(l.known, id)
			continue
		}
		out = append(out, k)
	}
	return out
}

func (l *Live) forget(k *knownAt) {
	k.s.Reset()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.known[k.conn.ID()] == k {
		delete(l.known, k.conn.ID())
	}
}

// challenge asks the process k to attest that it is live, for the
// newcomer's nonce, and checks its attestation.
func (l *Live) challenge(ctx context.Context, k *knownAt, newcomer Signed, remote string) (Signed, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { k.s.Reset() })
	defer stop()
	if err := writeLive(k.s, LiveMessage{Challenge: &Challenge{Newcomer: newcomer, Remote: remote}}); err != nil {
		return Signed{}, err
	}
	m, err := readLive(k.s.r)
	if err != nil {
		return Signed{}, err
	}
	a := m.Attestation
	switch {
	case a == nil:
		return Signed{}, fmt.Errorf("%w: the answer to a challenge is no attestation", ErrLiveMalformed)
	case a.VerifyBy(k.conn.RemotePeer()) != nil:
		return Signed{}, a.VerifyBy(k.conn.RemotePeer())
	case !bytes.Equal(a.Instance.Nonce, k.hello.Instance.Nonce) || !bytes.Equal(a.Instance.Challenge, newcomer.Instance.Nonce):
		return Signed{}, fmt.Errorf("%w: the attestation is another process's, or for another challenge", ErrLiveMalformed)
	}
	return *a, nil
}

// bufStream is a stream whose reads went through r (which may hold
// bytes read ahead).
type bufStream struct {
	network.Stream
	r *bufio.Reader
}

func (b *bufStream) Read(p []byte) (int, error) { return b.r.Read(p) }

func writeLive(w io.Writer, m LiveMessage) error {
	b := m.Encode()
	_, err := w.Write(append(binary.AppendUvarint(nil, uint64(len(b))), b...))
	return err
}

func readLive(r *bufio.Reader) (LiveMessage, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return LiveMessage{}, err
	}
	if n > MaxLiveMessage {
		return LiveMessage{}, fmt.Errorf("%w: %d bytes, at most %d", ErrLiveMalformed, n, MaxLiveMessage)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return LiveMessage{}, err
	}
	return DecodeLiveMessage(b)
}
