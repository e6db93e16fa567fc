package node

import (
	"context"
	"fmt"
	"testing"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/match"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// TestMatchCacheInvalidation: every kind of entry that changes a result
// shows in the very next match, whether the node published it or applied
// it from a peer (handed to the apply loop as sync does; the call returns
// when the apply is reported), and whether or not the old result was
// cached: each check matches twice, the second time from the cache.
func TestMatchCacheInvalidation(t *testing.T) {
	f := newFederation(t, "nru=referral", "pa=platform")
	nru, pa := f.start("nru"), f.start("pa")
	x := sha256Signal(1)
	p := match.Hash{1, 2, 3}
	near := p
	near[31] ^= 0x0f // 4 bits from p
	applied := func(e *protocol.Entry) {
		t.Helper()
		res, err := pa.writer.Apply([]*protocol.Entry{e})
		if err != nil || res[0].Outcome != store.Applied {
			t.Fatalf("apply %s: %v %v", e.Kind(), res, err)
		}
	}
	publish := func(n *Node, body *pb.Entry) *protocol.Entry {
		t.Helper()
		e, err := n.Publish(context.Background(), body)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	hits := func() float64 { return pa.metric(t, "staydown_match_cache_hits_total") }
	// check matches x and near (whose stored neighbour is p) on pa, twice.
	check := func(step string, verdict api.Verdict, statuses ...store.Status) {
		t.Helper()
		for _, q := range []api.Query{{Signal: x, Quality: api.NoQuality}, {Signal: pdqSignal(near), Quality: api.NoQuality}} {
			before := hits()
			for round := range 2 {
				got := matchOne(t, pa, q)
				var have []store.Status
				for _, a := range got.Attestations {
					have = append(have, a.Status)
				}
				if got.Verdict != verdict || fmt.Sprint(have) != fmt.Sprint(statuses) {
					t.Fatalf("%s, %s, lookup %d: verdict %s, statuses %v; want %s, %v", step, protocol.TypeOf(q.Signal), round+1, got.Verdict, have, verdict, statuses)
				}
			}
			if len(statuses) > 0 && hits() == before {
				t.Fatalf("%s: no lookup was answered from the cache", step)
			}
		}
	}
	active, disputed, allowlisted, retracted := store.StatusActive, store.StatusDisputed, store.StatusAllowlisted, store.StatusRetracted
	// Attestations come in the store's order, by author: list nru's first
	// when its key sorts first.
	order := func(nruStatus, paStatus store.Status) []store.Status {
		if string(nru.me.AuthorKey[:]) < string(pa.me.AuthorKey[:]) {
			return []store.Status{nruStatus, paStatus}
		}
		return []store.Status{paStatus, nruStatus}
	}

	add1 := publish(nru, &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{Signals: []*pb.Signal{x, pdqSignal(p)}, Labels: []*pb.Label{{Slug: "graphic-violence"}}}}})
	check("nothing stored", api.VerdictNone)
	applied(add1)
	check("an addition applied", api.VerdictReview, active)
	add2 := publish(pa, &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{Signals: []*pb.Signal{x, pdqSignal(p)}, Labels: []*pb.Label{{Slug: "graphic-violence"}}}}})
	check("a second member's addition published", api.VerdictBlock, active, active)
	// nru holds pa's addition before it disputes it (Node.checkDispute).
	if res, err := nru.writer.Apply([]*protocol.Entry{add2}); err != nil || res[0].Outcome != store.Applied {
		t.Fatalf("apply pa's addition on nru: %v %v", res, err)
	}
	applied(publish(nru, &pb.Entry{Payload: &pb.Entry_Dispute{Dispute: &pb.Dispute{Target: add2.ID[:], Reason: "a film still"}}}))
	check("a dispute applied", api.VerdictReview, order(active, disputed)...)
	allow := publish(pa, &pb.Entry{Payload: &pb.Entry_Allow{Allow: &pb.Allow{Signals: []*pb.Signal{x, pdqSignal(p)}, Category: "news", Reason: "report"}}})
	// An allow entry turns block into review, never into none (README):
	// the statuses say allowlisted, the verdict still asks for a person.
	check("an allow entry published", api.VerdictReview, allowlisted, allowlisted)
	publish(pa, &pb.Entry{Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{Target: allow.ID[:]}}})
	check("the allow entry retracted", api.VerdictReview, order(active, disputed)...)
	applied(publish(nru, &pb.Entry{Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{Target: add1.ID[:], Reason: "wrong file"}}}))
	check("a retraction applied", api.VerdictReview, order(retracted, disputed)...)

	// Equivocation: a second entry signed by nru for a seq it holds flags
	// nru, which every result holding its attestations shows at once.
	fork, err := signAddition(f.key("nru"), add1.Seq(), protocol.ID{}, []*pb.Signal{sha256Signal(2)})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := pa.writer.Apply([]*protocol.Entry{fork}); err != nil || res[0].Outcome != store.Equivocation {
		t.Fatalf("fork: %v %v", res, err)
	}
	for _, a := range matchOne(t, pa, api.Query{Signal: x, Quality: api.NoQuality}).Attestations {
		if a.Equivocated != (a.Author == nru.me.AuthorKey) {
			t.Errorf("after nru equivocated: %s's attestation has Equivocated %v", pa.Roster().NameOf(a.Author), a.Equivocated)
		}
	}
}

// TestMatchCacheUnderLoad: while other goroutines look the signal up
// without pause (reading the store and inserting results as entries are
// committed), every applied entry shows in the first lookup made after
// its apply is reported: no stale result survives an invalidation.
func TestMatchCacheUnderLoad(t *testing.T) {
	f := newFederation(t, "nru=referral", "pa=platform")
	nru, pa := f.start("nru"), f.start("pa")
	x := sha256Signal(7)
	q := []api.Query{{Signal: x, Quality: api.NoQuality}}
	stop := make(chan struct{})
	done := make(chan error, 2)
	for range 2 {
		go func() {
			for {
				select {
				case <-stop:
					done <- nil
					return
				default:
				}
				if _, err := pa.Match(context.Background(), q); err != nil {
					done <- err
					return
				}
			}
		}()
	}
	defer func() {
		close(stop)
		for range 2 {
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
	}()
	apply := func(body *pb.Entry) *protocol.Entry {
		t.Helper()
		e, err := nru.Publish(context.Background(), body)
		if err != nil {
			t.Fatal(err)
		}
		if res, err := pa.writer.Apply([]*protocol.Entry{e}); err != nil || res[0].Outcome != store.Applied {
			t.Fatalf("apply: %v %v", res, err)
		}
		return e
	}
	// pa's additions, which nru holds too and disputes (a member does not
	// dispute its own).
	add := func(body *pb.Entry) *protocol.Entry {
		t.Helper()
		e, err := pa.Publish(context.Background(), body)
		if err != nil {
			t.Fatal(err)
		}
		if res, err := nru.writer.Apply([]*protocol.Entry{e}); err != nil || res[0].Outcome != store.Applied {
			t.Fatalf("apply on nru: %v %v", res, err)
		}
		return e
	}
	for i := 1; i <= 40; i++ {
		add := add(&pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{Signals: []*pb.Signal{x}, Labels: []*pb.Label{{Slug: "graphic-violence"}}}}})
		if got := len(matchOne(t, pa, q[0]).Attestations); got != i {
			t.Fatalf("addition %d applied: %d attestations", i, got)
		}
		apply(&pb.Entry{Payload: &pb.Entry_Dispute{Dispute: &pb.Dispute{Target: add.ID[:], Reason: "no"}}})
		disputed := 0
		for _, a := range matchOne(t, pa, q[0]).Attestations {
			if a.Status == store.StatusDisputed {
				disputed++
			}
		}
		if disputed != i {
			t.Fatalf("dispute %d applied: %d attestations disputed", i, disputed)
		}
	}
}

// BenchmarkMatchCache measures exact lookups through matching as the API
// makes them, in batches of 1,000 queries, on one goroutine (lookups/s is
// per core) over a node holding 100,000 sha256 signals: hits (10,000
// stored signals, their results cached), misses (signals not stored:
// the fingerprint set answers) and mixed (1 in 100 stored, as uploads
// might be), and hits-uncached (the cache emptied before every batch: the
// store's cost, for the ratio).
func BenchmarkMatchCache(b *testing.B) {
	n, stored := exactBench(b)
	batch := func(every int) []api.Query {
		q := make([]api.Query, protocol.MaxSignals)
		for i := range q {
			s := sha256Signal(1<<40 + uint64(i))
			if every > 0 && i%every == 0 {
				s = stored[(i*37)%len(stored)]
			}
			q[i] = api.Query{Signal: s, Quality: api.NoQuality}
		}
		return q
	}
	hits := make([][]api.Query, 10)
	for j := range hits {
		hits[j] = make([]api.Query, protocol.MaxSignals)
		for i := range hits[j] {
			hits[j][i] = api.Query{Signal: stored[j*protocol.MaxSignals+i], Quality: api.NoQuality}
		}
	}
	for _, tt := range []struct {
		name    string
		batches [][]api.Query
		cold    bool
	}{
		{"hits", hits, false},
		{"misses", [][]api.Query{batch(0)}, false},
		{"mixed-1pc-stored", [][]api.Query{batch(100)}, false},
		{"hits-uncached", hits, true},
	} {
		b.Run(tt.name, func(b *testing.B) {
			for _, q := range tt.batches { // warm the cache
				if _, err := n.matcher.Match(q); err != nil {
					b.Fatal(err)
				}
			}
			i := 0
			for b.Loop() {
				if tt.cold {
					b.StopTimer()
					n.matcher.InvalidateAll()
					b.StartTimer()
				}
				found, err := n.matcher.Match(tt.batches[i%len(tt.batches)])
				if err != nil || len(found) != protocol.MaxSignals {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(b.N*protocol.MaxSignals)/b.Elapsed().Seconds(), "lookups/s")
		})
	}
}
