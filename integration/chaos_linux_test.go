package integration

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/staydown/staydown/node/api"
)

// TestChaos is the chaos run of #12: seven members, two of them hostile
// (hostile_test.go) doing at once what a compromised member can: a flood
// of far-future entries of 58 KB (item 2), a sync server that lies about
// heads and never answers (items 3 and 7), sync streams that hold every
// slot (item 4) and garbage on sync streams (item 10); meanwhile one honest
// node is killed with SIGKILL and restarted, and two referral units keep
// publishing. Every honest node must keep answering matches, and once the
// attacks stop all honest nodes converge on the same heads digest with
// every acknowledged entry. pfa's disk is full for a third of the run (a
// file-size limit: its store cannot grow). Latencies and memory are reported, not
// asserted (shared machines are noisy; the figures go in the issue's
// note): match p50/p99 per node, peak RSS.
//
// CHAOS_SECONDS sets the length of the attack (20 s by default, so that
// CI runs it).
func TestChaos(t *testing.T) {
	attack := 20 * time.Second
	if s := os.Getenv("CHAOS_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 5 {
			t.Fatalf("CHAOS_SECONDS=%q: want a whole number of seconds, at least 5", s)
		}
		attack = time.Duration(n) * time.Second
	}
	c := newCluster(t, "nru=referral", "nrb=referral", "pfa=platform", "pfb=platform", "aud=auditor", "ev1=platform", "ev2=platform")
	honest := []*node{c.nodes["nru"], c.nodes["nrb"], c.nodes["pfa"], c.nodes["pfb"], c.nodes["aud"]}
	for _, n := range honest {
		c.start(n)
	}
	c.waitMesh(honest...)
	ev1, ev2 := newHostile(t, c.nodes["ev1"]), newHostile(t, c.nodes["ev2"])

	// Something to match from the start.
	var (
		ackMu sync.Mutex
		acked []string // sha256 hashes of acknowledged additions
	)
	publish := func(n *node, i int) error {
		h := fmt.Sprintf("%x", sha256.Sum256([]byte(n.name+strconv.Itoa(i))))
		if _, err := apiOf(t, n).add(h); err != nil {
			return err
		}
		ackMu.Lock()
		acked = append(acked, h)
		ackMu.Unlock()
		return nil
	}
	for i := range 20 {
		if err := publish(c.nodes["nru"], i); err != nil {
			t.Fatal(err)
		}
	}
	probe := acked[0]

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	ev1.serveLies(ctx)
	ev1.connect(ctx)
	ev2.connect(ctx)
	wg.Go(func() { ev1.floodFarAhead(ctx, t, 50*time.Millisecond) })
	ev2.hogSlots(ctx, 6)
	wg.Go(func() {
		// Garbage from the second half on: it gets ev2 cut off, which
		// ends its slot hogging too.
		select {
		case <-ctx.Done():
			return
		case <-time.After(attack / 2):
		}
		ev2.sendGarbage(ctx)
	})

	// Two referral units publish throughout.
	var pubErrs []error
	var pubMu sync.Mutex
	for _, n := range []*node{c.nodes["nru"], c.nodes["nrb"]} {
		wg.Go(func() {
			for i := 1000; ctx.Err() == nil; i++ {
				if err := publish(n, i); err != nil {
					pubMu.Lock()
					pubErrs = append(pubErrs, err)
					pubMu.Unlock()
				}
				select {
				case <-ctx.Done():
				case <-time.After(200 * time.Millisecond):
				}
			}
		})
	}

	// Every honest node is asked to match every 100 ms; pfb is killed a
	// third of the way in and restarted.
	type figures struct {
		lat    []time.Duration
		errs   []string
		maxRSS int64 // kB
	}
	var figMu sync.Mutex
	figs := map[string]*figures{}
	var down sync.Map // name -> true while killed
	var pids sync.Map // name -> pid of the running process
	for _, n := range honest {
		pids.Store(n.name, n.cmd.Process.Pid)
	}
	for _, n := range honest {
		figs[n.name] = &figures{}
		cl := apiOf(t, n)
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, isDown := down.Load(n.name); !isDown {
					start := time.Now()
					var res api.MatchResults
					err := cl.call(http.MethodGet, "/v1/match?type=sha256&value="+probe, nil, &res)
					took := time.Since(start)
					_, isDown = down.Load(n.name)
					figMu.Lock()
					switch {
					case err != nil && !isDown:
						figs[n.name].errs = append(figs[n.name].errs, err.Error())
					case err == nil:
						figs[n.name].lat = append(figs[n.name].lat, took)
					}
					figMu.Unlock()
				}
				if pid, ok := pids.Load(n.name); ok {
					rss := rssKB(pid.(int))
					figMu.Lock()
					figs[n.name].maxRSS = max(figs[n.name].maxRSS, rss)
					figMu.Unlock()
				}
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
		})
	}
	// The schedule of the run (sleeps that pace it, not waits for an
	// event): pfb is killed and restarted a third of the way in; pfa's
	// disk is full from half way to five sixths.
	begun := time.Now()
	at := func(part float64) { time.Sleep(time.Until(begun.Add(time.Duration(part * float64(attack))))) }
	at(1.0 / 3)
	pfb := c.nodes["pfb"]
	down.Store("pfb", true)
	pids.Delete("pfb")
	c.kill(pfb)
	c.start(pfb)
	pids.Store("pfb", pfb.cmd.Process.Pid)
	down.Delete("pfb")
	at(1.0 / 2)
	// No room at all: every write of its store fails (its log file's
	// too, for that while).
	pfa := c.nodes["pfa"]
	setFileSizeLimit(t, pfa, 0)
	at(5.0 / 6)
	wasFull := !apiOf(t, pfa).mustStatus(t).StoreWritable
	setFileSizeLimit(t, pfa, -1)
	at(1)

	// The attacks stop; the honest nodes must converge.
	stop()
	wg.Wait()
	ev1.h.Close()
	ev2.h.Close()
	stopped := time.Now()
	var digest string
	waitFor(t, 2*time.Minute, "the honest nodes to converge on one heads digest", func() bool {
		digests := map[string]bool{}
		for _, n := range honest {
			s, err := apiOf(t, n).status()
			if err != nil {
				return false
			}
			digests[s.HeadsDigest] = true
			digest = s.HeadsDigest
		}
		return len(digests) == 1
	})
	converged := time.Since(stopped)
	for _, n := range honest {
		held, err := apiOf(t, n).attested(acked)
		if err != nil {
			t.Fatal(err)
		}
		for i, ids := range held {
			if len(ids) == 0 {
				t.Errorf("%s lost the acknowledged addition of %s", n.name, acked[i])
			}
		}
	}

	t.Logf("chaos run: %v of attacks (ev1 flooded %d far-future entries of 58 KB, stalled %d sync streams; ev2 held %d sync streams, sent garbage on %d); pfb killed and restarted; pfa's store full for a third of the run (it said so in status: %v)",
		attack, ev1.flooded.Load(), ev1.stalled.Load(), ev2.hogged.Load(), ev2.garbage.Load(), wasFull)
	t.Logf("acknowledged %d additions (%d publish errors); converged on digest %.16s %v after the attacks stopped (race detector: %v)",
		len(acked), len(pubErrs), digest, converged.Round(10*time.Millisecond), raceEnabled)
	for _, n := range honest {
		f := figs[n.name]
		slices.Sort(f.lat)
		q := func(p float64) time.Duration {
			if len(f.lat) == 0 {
				return 0
			}
			return f.lat[min(len(f.lat)-1, int(p*float64(len(f.lat))))]
		}
		t.Logf("  %-4s matches %4d  p50 %7v  p99 %7v  max %7v  failed %d  peak RSS %d MiB", n.name, len(f.lat),
			q(0.5).Round(10*time.Microsecond), q(0.99).Round(10*time.Microsecond), q(1).Round(10*time.Microsecond), len(f.errs), f.maxRSS/1024)
		if len(f.errs) > 0 {
			t.Errorf("%s failed %d matches during the attacks, first: %s", n.name, len(f.errs), f.errs[0])
		}
		if len(f.lat) == 0 {
			t.Errorf("%s answered no match during the attacks", n.name)
		}
		if !raceEnabled && f.maxRSS > 500*1024 {
			t.Errorf("%s peaked at %d MiB of resident memory, over 500 MiB", n.name, f.maxRSS/1024)
		}
	}
	if len(pubErrs) > 0 {
		t.Errorf("%d publications failed during the attacks, first: %v", len(pubErrs), pubErrs[0])
	}
}

// rssKB is process pid's resident set size in kB (VmRSS), or 0.
func rssKB(pid int) int64 {
	kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(procStatus(pid, "VmRSS"), "kB")), 10, 64)
	return kb
}
