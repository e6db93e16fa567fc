package node

import (
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/staydown/staydown/node/notices"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// The notice book is updated by the writer alone, in commit order, so it
// always equals the store. Regression: Publish wrote the store and then
// updated the book from the HTTP goroutine while the apply loop did the
// same for received entries; each read the thread and then put it, and a
// stale read put last lost the other's update (the book then disagreed
// with the store until the thread's next event). That window is a few
// microseconds wide, so this test rarely caught the old code; it holds
// the writer to the invariant.
func TestNoticeBookFollowsConcurrentWriters(t *testing.T) {
	f := newFederation(t, "nru=referral", "pa=platform")
	nru := f.start("nru")
	pa := f.key("pa")
	ctx := context.Background()
	// A long thread makes reading it slow, which widens the window
	// between the read and the put in which the old code lost updates.
	const rounds, preload, events = 4, 50, 20
	var replySeq uint64
	var replyHead protocol.ID
	for round := range rounds {
		n, err := nru.IssueNotice(ctx, notices.IssueRequest{To: "pa", URLs: []string{"https://pa.example/v/1"},
			Category: "graphic-violence", Basis: "art. 3", Order: true})
		if err != nil {
			t.Fatal(err)
		}
		// The referral unit updates its notice through the API while the
		// platform's replies to it arrive, as from a peer.
		replies := make([]*protocol.Entry, preload+events)
		for i := range replies {
			replySeq++
			body := &pb.Entry{Version: protocol.Version, Federation: "test", Seq: replySeq,
				TimestampMs: nru.now().UnixMilli() + int64(i), Payload: &pb.Entry_NoticeReply{NoticeReply: &pb.NoticeReply{
					Notice: n.ID[:], Status: []pb.ReplyStatus{pb.ReplyStatus_REPLY_STATUS_RECEIVED, pb.ReplyStatus_REPLY_STATUS_CLARIFICATION_REQUESTED}[i%2]}}}
			if replySeq > 1 {
				body.Prev = replyHead[:]
			}
			e, err := protocol.Sign(pa, body)
			if err != nil {
				t.Fatal(err)
			}
			replyHead = e.ID
			replies[i] = e
		}
		if res, err := nru.writer.Apply(replies[:preload]); err != nil || res[preload-1].Outcome.String() != "applied" {
			t.Fatalf("round %d: preloading replies: %v", round, err)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := range events {
				if _, err := nru.UpdateNotice(ctx, notices.UpdateRequest{Notice: n.ID.String(), Deadline: fmt.Sprintf("%dm", 61+i)}); err != nil {
					t.Errorf("round %d update %d: %v", round, i, err)
				}
			}
		})
		wg.Go(func() {
			for _, e := range replies[preload:] {
				if res, err := nru.writer.Apply([]*protocol.Entry{e}); err != nil || res[0].Outcome.String() != "applied" {
					t.Errorf("round %d reply seq %d: %v %v", round, e.Seq(), res, err)
				}
			}
		})
		wg.Wait()
		th, err := nru.store.Notice(n.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := protocol.NoticeLifecycle(th.Notice, th.Updates, th.Replies, math.MinInt64)
		got, _ := nru.notices.Booked(n.ID)
		if got != want {
			t.Errorf("round %d: the book holds %+v, the store's thread gives %+v", round, got, want)
		}
	}
}

// BenchmarkPublishConcurrent publishes additions on one node from 64
// goroutines at once, as 64 API clients would: the writer shares its
// write transactions among them (group commit). Reports entries/s.
func BenchmarkPublishConcurrent(b *testing.B) {
	f := newFederation(b, "nru=referral")
	n := f.start("nru")
	clients := 64
	if s := os.Getenv("STAYDOWN_BENCH_CLIENTS"); s != "" {
		clients, _ = strconv.Atoi(s)
	}
	var next atomic.Uint64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > uint64(b.N) {
					return
				}
				sig, err := protocol.ParseSignal("sha256", fmt.Sprintf("%064x", i))
				if err != nil {
					b.Error(err)
					return
				}
				if _, err := n.Publish(context.Background(), &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{
					Signals: []*pb.Signal{sig}, Labels: []*pb.Label{{Slug: "graphic-violence"}}}}}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "entries/s")
}
