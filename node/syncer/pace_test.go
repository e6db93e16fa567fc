package syncer

import (
	"errors"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// pipePeer is a stream whose peer writes into a pipe; Reset breaks it
// as the transport would.
type pipePeer struct {
	network.Stream
	r *io.PipeReader
}

func (s pipePeer) Read(b []byte) (int, error) { return s.r.Read(b) }
func (s pipePeer) Reset() error               { return s.r.CloseWithError(network.ErrReset) }

// readPaced reads what a peer sends, as a client session does (waits
// between begin and end), for at most d; it returns how long it read
// until the pacer cut the peer off, and whether it did.
func readPaced(p *pacer, r io.Reader, d time.Duration) (time.Duration, bool) {
	start := time.Now()
	buf := make([]byte, 4096)
	for time.Since(start) < d {
		p.begin()
		_, err := r.Read(buf)
		p.end()
		if err != nil {
			stalled, _, _ := p.stall()
			return time.Since(start), stalled
		}
	}
	return time.Since(start), false
}

// The pacer's rule (SPEC 16.6), on virtual time: a peer that keeps above
// minSyncRate is never cut, however long the answer; one below it is, as
// is one that delivered fast and then stopped (30 s after it stopped,
// whatever it banked), and one that sends nothing at all.
func TestPacerHoldsPeerToMinimumRate(t *testing.T) {
	for _, tc := range []struct {
		name string
		// send writes the peer's side until it fails or over is closed.
		send    func(w io.Writer, over <-chan struct{}) error
		cut     bool
		within  time.Duration // when cut: at most this long after the start
		atLeast time.Duration // when cut: at least this long after the start
	}{
		{"twice the floor, for 10 minutes", steady(2*minSyncRate, 0), false, 0, 0},
		{"just above the floor", steady(minSyncRate+minSyncRate/8, 0), false, 0, 0},
		{"half the floor", steady(minSyncRate/2, 0), true, 61 * time.Second, 59 * time.Second},
		{"an entry of 300 bytes every 25 s", func(w io.Writer, over <-chan struct{}) error {
			for {
				select {
				case <-time.After(25 * time.Second):
				case <-over:
					return nil
				}
				if _, err := w.Write(make([]byte, 300)); err != nil {
					return err
				}
			}
		}, true, 31 * time.Second, 30 * time.Second},
		{"fast for a minute, then silent", steady(100*minSyncRate, time.Minute), true, 91 * time.Second, 89 * time.Second},
		{"silent", func(_ io.Writer, over <-chan struct{}) error { <-over; return nil }, true, 30 * time.Second, 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r, w := io.Pipe()
				p := newPacer(pipePeer{r: r})
				defer p.stop()
				over := make(chan struct{})
				go tc.send(w, over)
				took, cut := readPaced(p, pacedReader{r, p}, 10*time.Minute)
				close(over)
				w.CloseWithError(errors.New("test over"))
				r.Close()
				switch {
				case cut != tc.cut:
					t.Fatalf("cut off %v after %v, want cut %v", cut, took, tc.cut)
				case cut && (took > tc.within || took < tc.atLeast):
					t.Fatalf("cut off after %v, want between %v and %v", took, tc.atLeast, tc.within)
				}
			})
		})
	}
}

// steady sends rate bytes a second in tenths of a second, for d (for
// ever when 0), then nothing.
func steady(rate int, d time.Duration) func(w io.Writer, over <-chan struct{}) error {
	return func(w io.Writer, over <-chan struct{}) error {
		start := time.Now()
		for d == 0 || time.Since(start) < d {
			if _, err := w.Write(make([]byte, rate/10)); err != nil {
				return err
			}
			select {
			case <-time.After(100 * time.Millisecond):
			case <-over:
				return nil
			}
		}
		<-over
		return nil
	}
}
