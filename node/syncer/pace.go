package syncer

import (
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// Pacing of the peer a sync session fetches from (SPEC 16.6). A peer that
// answers, but slowly (an entry every 25 s, a byte at a time, tiny
// answers), passes any deadline per message; what it cannot fake is
// throughput. So the client holds the peer to a minimum rate over the
// time it waits on it: it starts with stallBudget of waiting, every byte
// the peer delivers buys 1/minSyncRate s more (up to stallBudget), and
// when the budget runs out while this node waits, the session is cut.
const (
	// minSyncRate is the throughput, in bytes per second of waiting, a
	// serving peer must keep up: 16 KiB/s (128 kbit/s). An honest node
	// serves a batch of up to 1 MiB straight from its store, at the
	// speed of its link; this is far below any link a federation
	// member runs on.
	minSyncRate = 16 << 10
	// stallBudget is the waiting a peer is allowed with nothing
	// delivered, and the most its deliveries can bank: a peer that stops
	// is cut off at most this long after it stopped, whatever it sent
	// before. (It was the idle timeout per message.)
	stallBudget = syncIdleTimeout
	// stallPause is how long a peer cut off for stalling is not synced
	// with again, unless it is the only member connected. It is not
	// banned: a slow link is not forgery.
	stallPause = 5 * time.Minute
)

// pacer keeps a client session's peer to minSyncRate. Its clock is the
// runtime's, as the transport's stream deadlines are (the deadlines it
// replaces on the client's side).
type pacer struct {
	st    network.Stream
	timer *time.Timer

	mu      sync.Mutex    // guards what follows
	budget  time.Duration // waiting left before the peer is cut off
	since   time.Time     // when the wait under way started; zero when none is
	stalled bool          // the budget ran out and the stream was reset
	want    string        // what this node waits for, for the log
	got     int64         // bytes the peer delivered in the session
}

func newPacer(st network.Stream) *pacer {
	p := &pacer{st: st, budget: stallBudget}
	p.timer = time.AfterFunc(time.Hour, p.fire)
	p.timer.Stop()
	return p
}

// settle charges the wait under way, up to now, to the budget.
func (p *pacer) settle(now time.Time) {
	if !p.since.IsZero() {
		p.budget -= now.Sub(p.since)
		p.since = now
	}
}

// begin starts a wait on the peer (a read or a write of the stream).
func (p *pacer) begin() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stalled {
		return
	}
	p.since = time.Now()
	p.timer.Reset(p.budget)
}

// end ends the wait under way.
func (p *pacer) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.settle(time.Now())
	p.since = time.Time{}
	p.timer.Stop()
}

// credit counts n bytes the peer delivered.
func (p *pacer) credit(n int) {
	if n <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got += int64(n)
	p.settle(time.Now())
	p.budget = min(stallBudget, p.budget+time.Duration(n)*time.Second/minSyncRate)
	if !p.since.IsZero() && !p.stalled {
		p.timer.Reset(p.budget)
	}
}

// fire is the timer: the budget may have run out.
func (p *pacer) fire() {
	p.mu.Lock()
	if p.since.IsZero() || p.stalled {
		p.mu.Unlock()
		return
	}
	p.settle(time.Now())
	if p.budget > 0 { // bytes came in meanwhile
		p.timer.Reset(p.budget)
		p.mu.Unlock()
		return
	}
	p.stalled = true
	p.mu.Unlock()
	p.st.Reset() // ends the read or write under way
}

// expect says what the session waits for next, for the log line of a
// stall.
func (p *pacer) expect(what string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.want = what
}

// stall reports whether the peer was cut off for stalling, what this
// node was waiting for then and how many bytes the peer had delivered.
func (p *pacer) stall() (stalled bool, want string, got int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stalled, p.want, p.got
}

// stop ends the pacer with its session.
func (p *pacer) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.since = time.Time{}
	p.timer.Stop()
}

// pacedReader credits what it reads from the stream to the pacer, as it
// arrives: a message that trickles in earns its time byte by byte.
type pacedReader struct {
	r io.Reader
	p *pacer
}

func (r pacedReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.p.credit(n)
	return n, err
}
