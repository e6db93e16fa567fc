package localfed

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// BenchResult is what one run of Bench measured.
type BenchResult struct {
	Entries   int             // additions published
	Receivers int             // nodes that should receive each
	Latencies []time.Duration // publish -> stored and matchable, one per (entry, receiver) delivered
	// Committed is, per entry, the time Publish took on the publishing
	// node: proposed, signed and committed there.
	Committed []time.Duration
	Lost      int // (entry, receiver) pairs not delivered before the bound
	Elapsed   time.Duration
	// Publishing is the time from the first call to Publish to the
	// return of the last: Entries/Publishing is the publish rate.
	Publishing time.Duration
}

// Quantile returns the q-quantile (0..1) of the latencies, nearest rank.
func (r BenchResult) Quantile(q float64) time.Duration { return quantile(r.Latencies, q) }

// CommittedQuantile returns the q-quantile (0..1) of Committed.
func (r BenchResult) CommittedQuantile(q float64) time.Duration { return quantile(r.Committed, q) }

func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

// Bench publishes n additions from the first node, from clients
// concurrent publishers each pausing interval between its publications
// (as that many API clients would), and measures for every other node the
// time from the call to Publish to the moment the entry is stored there
// (and so matchable). It waits at most bound after the last publication
// for stragglers.
func Bench(ctx context.Context, f *Federation, n, clients int, interval, bound time.Duration) (BenchResult, error) {
	src, receivers := f.Nodes[0], f.Nodes[1:]
	res := BenchResult{Entries: n, Receivers: len(receivers)}
	type seen struct {
		id protocol.ID
		at time.Time
	}
	arrivals := make(chan seen, 4*n*len(receivers)+16)
	for _, r := range receivers {
		ch, cancel := r.Subscribe(2 * n)
		defer cancel()
		go func() {
			for e := range ch {
				arrivals <- seen{e.ID, time.Now()}
			}
		}()
	}
	type sent struct {
		id   protocol.ID
		t0   time.Time
		took time.Duration
		err  error
	}
	out := make(chan sent, n)
	clients = max(1, min(clients, n))
	start := time.Now()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for i := c; i < n; i += clients {
				var b [32]byte
				rand.Read(b[:])
				sum := sha256.Sum256(b[:])
				sig, err := protocol.ParseSignal("sha256", hex.EncodeToString(sum[:]))
				if err != nil {
					out <- sent{err: err}
					return
				}
				t0 := time.Now()
				e, err := src.Publish(ctx, &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{
					Signals: []*pb.Signal{sig}, Labels: []*pb.Label{{Slug: "other", Text: "benchmark"}}}}})
				if err != nil {
					out <- sent{err: fmt.Errorf("publish %d: %w", i, err)}
					return
				}
				out <- sent{id: e.ID, t0: t0, took: time.Since(t0)}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		})
	}
	wg.Wait()
	res.Publishing = time.Since(start)
	close(out)
	published := make(map[protocol.ID]time.Time, n)
	for s := range out {
		if s.err != nil {
			return res, s.err
		}
		published[s.id] = s.t0
		res.Committed = append(res.Committed, s.took)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	want := n * len(receivers)
	timeout := time.After(bound)
	for len(res.Latencies) < want {
		select {
		case s := <-arrivals:
			if t0, ok := published[s.id]; ok {
				res.Latencies = append(res.Latencies, s.at.Sub(t0))
			}
		case <-timeout:
			res.Lost = want - len(res.Latencies)
			res.Elapsed = time.Since(start)
			return res, nil
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	res.Elapsed = time.Since(start)
	return res, nil
}
