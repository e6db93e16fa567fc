package console

import (
	"context"
	"sync"
	"time"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/protocol/report"
)

// The transparency report is computed from every signed entry the node
// holds: seconds for 10,000 notices in a store of a million entries
// (BenchmarkConsolePages in node/), too long for a page. The console keeps the last one of each
// period and serves it while a newer one is computed in the background:
// stale once the heads change or reportTTL passes. The page says when
// its figures were computed. Only the first view of a period after the
// node starts waits (sign-in starts computing the default period's).

// reportTTL is how long a report stays fresh when no entry arrives (the
// clock alone makes notices overdue).
const reportTTL = 30 * time.Second

// freshWait is how long a page waits for newer figures before it shows
// the stale ones: a small node's report takes a few milliseconds.
const freshWait = 50 * time.Millisecond

type figures struct {
	report report.Report
	times  []float64 // times to action of the notices issued in the period, in seconds
	digest string    // the heads digest it was computed at
	at     time.Time // when it was computed
	err    error
	done   chan struct{} // closed once computed
	next   *figures      // newer figures being computed; guarded by reports.mu
}

type reports struct {
	c  *Console
	mu sync.Mutex          // guards m and each figures' next
	m  map[string]*figures // by period key
}

// get returns the figures of the period key (since: its start), waiting
// only if there are none yet, or freshWait for newer ones.
func (rs *reports) get(ctx context.Context, key string, since int64) (*figures, error) {
	digest := rs.digest(ctx)
	rs.mu.Lock()
	f, ok := rs.m[key]
	if !ok {
		f = rs.start(key, since, digest)
		rs.m[key] = f
	} else if f.next == nil && isDone(f) && (f.digest != digest || rs.c.now().Sub(f.at) >= reportTTL || f.err != nil) {
		f.next = rs.start(key, since, digest)
	}
	next := f.next
	rs.mu.Unlock()
	if next != nil {
		t := time.NewTimer(freshWait)
		select {
		case <-next.done:
			if next.err == nil {
				f = next
			}
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if f.err != nil {
		return nil, f.err
	}
	return f, nil
}

func isDone(f *figures) bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

func (rs *reports) digest(ctx context.Context) string {
	st, err := rs.c.backend.Status(ctx)
	if err != nil {
		return ""
	}
	return st.HeadsDigest
}

// start computes figures in the background; when done they replace the
// period's (which named them as its next). rs.mu is held.
func (rs *reports) start(key string, since int64, digest string) *figures {
	f := &figures{digest: digest, done: make(chan struct{})}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		f.at = rs.c.now()
		f.report, f.err = rs.c.notices.Report(ctx, since, 0)
		if f.err == nil {
			var views []api.NoticeView
			views, f.err = rs.c.notices.ListNotices(ctx, api.NoticeQuery{Box: "all"})
			for _, v := range views {
				if v.TimeToActionS == nil {
					continue
				}
				if t, err := time.Parse(time.RFC3339Nano, v.Issued); err == nil && t.UnixMilli() >= since {
					f.times = append(f.times, *v.TimeToActionS)
				}
			}
		}
		if f.err != nil {
			rs.c.log.Error("console: computing the transparency report", "err", f.err)
		}
		rs.mu.Lock()
		if old := rs.m[key]; old != f && old.next == f {
			old.next = nil
			if f.err == nil {
				rs.m[key] = f
			}
		}
		close(f.done)
		rs.mu.Unlock()
	}()
	return f
}
