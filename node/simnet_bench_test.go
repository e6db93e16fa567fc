package node

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/store"
)

// simBench runs f in a synctest bubble from a benchmark. synctest.Test
// wants a *testing.T, which a benchmark does not have (and Go 1.26 has no
// synctest.Run): testing.RunTests makes one. It runs f -test.count times.
func simBench(b *testing.B, f func(t *testing.T)) {
	b.Helper()
	ok := testing.RunTests(func(string, string) (bool, error) { return true, nil },
		[]testing.InternalTest{{Name: b.Name(), F: func(t *testing.T) { inSim(t, f) }}})
	if !ok {
		b.Fatal("the simulated federation failed (see above)")
	}
}

// wallClock reads the real clock from inside a bubble, where time.Now is
// virtual: a goroutine outside the bubble answers on channels made
// outside it (blocking on them is not durable, so virtual time stands
// still while the answer comes).
type wallClock struct {
	ask    chan struct{}
	answer chan time.Time
}

// newWallClock starts the answering goroutine; call it outside the
// bubble, and stop when done.
func newWallClock() *wallClock {
	c := &wallClock{ask: make(chan struct{}), answer: make(chan time.Time)}
	go func() {
		for range c.ask {
			c.answer <- time.Now()
		}
	}()
	return c
}

func (c *wallClock) now() time.Time { c.ask <- struct{}{}; return <-c.answer }
func (c *wallClock) stop()          { close(c.ask) }

func envCount(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// BenchmarkSimFederation runs 100 nodes (5 referral units, 95 platforms)
// on the simulated network, links of 20-80 ms, every node dialling every
// other as the dialer does and gossipsub configured as the node
// configures it. The referral units publish in turn, one entry every
// 100 ms of virtual time (STAYDOWN_BENCH_SIM_ENTRIES per unit, default
// 20). Reported, in virtual time: how long an entry took to be stored on
// all 100 nodes (p50, p99, max); the bytes each node wrote to its gossip
// and sync streams per entry, less what an idle federation writes in the
// same time (heartbeats, checkpoints, periodic syncs); and the entries
// missing from any node once sync has had two minutes (must be 0).
func BenchmarkSimFederation(b *testing.B) {
	perUnit := envCount(b, "STAYDOWN_BENCH_SIM_ENTRIES", 20)
	const units, platforms = 5, 95
	var members []string
	for i := range units {
		members = append(members, fmt.Sprintf("nru%d=referral", i))
	}
	for i := range platforms {
		members = append(members, fmt.Sprintf("p%02d=platform", i))
	}
	for range b.N {
		var lat []time.Duration
		var perNodeEntry, idleRate float64
		var lost uint64
		simBench(b, func(t *testing.T) {
			opts := simDefaults(1)
			opts.quiet = true
			f := newSimFed(t, opts, members...)
			var mu sync.Mutex // guards published and reached
			published := map[protocol.ID]time.Time{}
			reached := map[protocol.ID]int{}
			last := map[protocol.ID]time.Time{}
			f.stored = func(_ string, e *protocol.Entry) {
				mu.Lock()
				defer mu.Unlock()
				reached[e.ID]++
				last[e.ID] = time.Now()
			}
			for _, name := range f.names {
				f.start(name)
			}
			f.meshed(5 * time.Minute)
			f.settle(10 * time.Second) // the syncs on connection are over

			const idle = 10 * time.Second
			before := f.trace.bytesSent()
			f.settle(idle)
			idleBytes := f.trace.bytesSent() - before

			before = f.trace.bytesSent()
			start := time.Now()
			for i := range units * perUnit {
				unit := fmt.Sprintf("nru%d", i%units)
				at := time.Now()
				e := f.publish(unit, fmt.Sprint("bench ", i), 1)[0]
				mu.Lock()
				published[e.ID] = at
				mu.Unlock()
				time.Sleep(100 * time.Millisecond)
			}
			all := func() bool {
				mu.Lock()
				defer mu.Unlock()
				for id := range published {
					if reached[id] < len(f.names) {
						return false
					}
				}
				return true
			}
			f.waitFor(2*time.Minute, "every entry on every node", all)
			window := time.Since(start)
			sent := float64(f.trace.bytesSent()-before) - float64(idleBytes)*window.Seconds()/idle.Seconds()
			entries := units * perUnit
			perNodeEntry = sent / float64(len(f.names)) / float64(entries)
			idleRate = float64(idleBytes) / float64(len(f.names)) / idle.Seconds()
			for id, at := range published {
				lat = append(lat, last[id].Sub(at))
			}
			for _, n := range f.nodes {
				c, err := n.store.Count()
				if err != nil {
					t.Fatal(err)
				}
				lost += uint64(entries) - c
			}
		})
		slices.Sort(lat)
		q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond) }
		b.ReportMetric(q(0.5), "p50-ms")
		b.ReportMetric(q(0.99), "p99-ms")
		b.ReportMetric(q(1), "max-ms")
		b.ReportMetric(perNodeEntry, "B/node/entry")
		b.ReportMetric(idleRate, "idle-B/node/s")
		b.ReportMetric(float64(lost), "lost")
	}
}

// BenchmarkSimCatchUp: a late joiner catches up on a referral unit's log
// of STAYDOWN_BENCH_SIM_CATCHUP entries (default 10,000), held by the
// unit and three platforms, over links of 20-80 ms. Reported: the
// catch-up's virtual time (link latency only: computing takes no virtual
// time) and its wall-clock time and rate (computing only: the latency
// takes none).
func BenchmarkSimCatchUp(b *testing.B) {
	count := envCount(b, "STAYDOWN_BENCH_SIM_CATCHUP", 10_000)
	wall := newWallClock()
	defer wall.stop()
	for range b.N {
		var virtual, real time.Duration
		simBench(b, func(t *testing.T) {
			f := newSimFed(t, simOptions{seed: 5, minLatency: 20 * time.Millisecond, maxLatency: 80 * time.Millisecond, quiet: true},
				"nru=referral", "pa=platform", "pb=platform", "pc=platform", "late=platform")
			key, err := f.cfgs["nru"].AuthorKey()
			if err != nil {
				t.Fatal(err)
			}
			author := protocol.AuthorKeyOf(key)
			holders := []string{"nru", "pa", "pb", "pc"}
			stores := make([]*store.Store, len(holders))
			for i, name := range holders {
				if stores[i], err = store.Open(f.cfgs[name].StorePath); err != nil {
					t.Fatal(err)
				}
			}
			var prev protocol.ID
			for lo := 1; lo <= count; lo += 4096 {
				var batch []*protocol.Entry
				for seq := lo; seq < lo+4096 && seq <= count; seq++ {
					e := addition(t, key, "test", uint64(seq), prev, fmt.Sprintf("catch-up %d", seq))
					batch, prev = append(batch, e), e.ID
				}
				for _, st := range stores {
					res, err := st.Apply(batch)
					if err != nil {
						t.Fatal(err)
					}
					if res[len(res)-1].Outcome != store.Applied {
						t.Fatalf("seeding: %s %v", res[len(res)-1].Outcome, res[len(res)-1].Err)
					}
				}
			}
			for _, st := range stores {
				if err := st.Close(); err != nil {
					t.Fatal(err)
				}
			}
			for _, name := range holders {
				f.start(name)
			}
			f.meshed(time.Minute)
			wallStart := wall.now()
			n := f.start("late")
			virtual = f.waitFor(time.Hour, "the late joiner to catch up", func() bool {
				h, err := n.store.Head(author)
				return err == nil && h.Seq == uint64(count)
			})
			real = wall.now().Sub(wallStart)
		})
		b.ReportMetric(virtual.Seconds(), "virtual-s")
		b.ReportMetric(real.Seconds(), "wall-s")
		b.ReportMetric(float64(count)/real.Seconds(), "wall-entries/s")
	}
}
