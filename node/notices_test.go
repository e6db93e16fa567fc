package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/notices"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// testClock is a clock the test moves forward: the runtime's time (in a
// bubble, virtual) plus an offset.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// noticeFed is a referral unit, two platforms and an auditor on the
// simulated network, all on one test clock: every node linked to the
// referral unit, the platforms to each other, the auditor to no platform.
// Call it in a bubble (inSim).
func noticeFed(t *testing.T) (f *simFed, clock *testClock, nru, pfa, pfb, aud *Node) {
	t.Helper()
	f = newSimFed(t, simDefaults(31), "nru=referral", "pfa=platform", "pfb=platform", "aud=auditor")
	clock = &testClock{}
	for _, cfg := range f.cfgs {
		cfg.Clock = clock.now
	}
	f.partition([]string{"aud"}, []string{"pfa", "pfb"})
	nru, pfa, pfb, aud = f.start("nru"), f.start("pfa"), f.start("pfb"), f.start("aud")
	return f, clock, nru, pfa, pfb, aud
}

// waitStored waits (bounded, in virtual time) until every node holds the
// entry: gossip or, failing it, sync.
func (f *simFed) waitStored(id protocol.ID, nodes ...*Node) {
	f.t.Helper()
	for _, n := range nodes {
		f.waitFor(45*time.Second, "entry "+id.String()+" on "+n.me.Name, func() bool {
			_, err := n.store.Get(id)
			return err == nil
		})
	}
}

func viewOf(t *testing.T, n *Node, id protocol.ID) notices.View {
	t.Helper()
	v, err := n.GetNotice(context.Background(), id, 0)
	if err != nil {
		t.Fatalf("%s: %v", n.me.Name, err)
	}
	return v
}

func TestNoticeLifecycleAcrossNodes(t *testing.T) {
	inSim(t, func(t *testing.T) {
		f, clock, nru, pfa, pfb, aud := noticeFed(t)
		ctx := context.Background()
		all := []*Node{nru, pfa, pfb, aud}

		// Only referral units issue notices, and only to platforms.
		if _, err := pfa.IssueNotice(ctx, notices.IssueRequest{To: "pfb", URLs: []string{"https://x.example/1"}, Category: "attacker-manifesto", Basis: "TCO art. 3"}); !errors.Is(err, api.ErrForbidden) {
			t.Fatalf("platform issued a notice: %v", err)
		}
		if _, err := nru.IssueNotice(ctx, notices.IssueRequest{To: "aud", URLs: []string{"https://x.example/1"}, Category: "attacker-manifesto", Basis: "TCO art. 3"}); !errors.Is(err, api.ErrInvalid) {
			t.Fatalf("notice to an auditor: %v", err)
		}

		sig, _ := protocol.ParseSignal("sha256", "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9")
		n1, err := nru.IssueNotice(ctx, notices.IssueRequest{To: "pfa", URLs: []string{"HTTPS://Video.Example/watch?v=1#t=42"},
			Text: "the speech at 0:42", Category: "attacker-manifesto", Basis: "Regulation (EU) 2021/784, art. 3", Order: true})
		if err != nil {
			t.Fatal(err)
		}
		n2, err := nru.IssueNotice(ctx, notices.IssueRequest{To: "pfa", Signals: []*pb.Signal{sig},
			Category: "attacker-manifesto", Basis: "Regulation (EU) 2021/784, art. 3", Deadline: "2h"})
		if err != nil {
			t.Fatal(err)
		}
		f.waitStored(n1.ID, all...)
		f.waitStored(n2.ID, all...)

		// Readable by its addressee, its issuer and the auditor; the other
		// platform sees the envelope only.
		for _, n := range []*Node{nru, pfa, aud} {
			v := viewOf(t, n, n1.ID)
			if v.Details == nil || len(v.Details.URLs) != 1 || v.Details.URLs[0] != "https://video.example/watch?v=1" || v.Details.Text != "the speech at 0:42" {
				t.Errorf("%s cannot read the notice: %+v", n.me.Name, v.Details)
			}
		}
		if v := viewOf(t, pfb, n1.ID); v.Details != nil || !v.Sealed || v.From != "nru" || v.To != "pfa" || v.Category != "attacker-manifesto" || !v.Order {
			t.Errorf("pfb's view: %+v", v)
		}
		if v := viewOf(t, pfb, n2.ID); len(v.Signals) != 1 || v.Sealed {
			t.Errorf("pfb should see n2's public signal: %+v", v)
		}

		// The other platform may not answer.
		if _, err := pfb.ReplyNotice(ctx, notices.ReplyRequest{Notice: n1.ID.String(), Status: "removed"}); !errors.Is(err, api.ErrForbidden) {
			t.Fatalf("pfb replied to pfa's notice: %v", err)
		}
		// Signed anyway (past the API's check), it is stored and changes
		// nothing anywhere.
		forged, err := pfb.Publish(ctx, &pb.Entry{Payload: &pb.Entry_NoticeReply{NoticeReply: &pb.NoticeReply{Notice: n1.ID[:], Status: pb.ReplyStatus_REPLY_STATUS_REMOVED}}})
		if err != nil {
			t.Fatal(err)
		}
		f.waitStored(forged.ID, all...)
		for _, n := range all {
			if v := viewOf(t, n, n1.ID); v.State != "open" || len(v.Replies) != 0 {
				t.Errorf("%s: a stranger's reply changed n1: %s, %d replies", n.me.Name, v.State, len(v.Replies))
			}
		}

		// n2 is acknowledged, then removed: actioned everywhere, and its
		// signal stays down on every node.
		r1, err := pfa.ReplyNotice(ctx, notices.ReplyRequest{Notice: n2.ID.String(), Status: "received"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pfa.ReplyNotice(ctx, notices.ReplyRequest{Notice: n2.ID.String(), Status: "not-executed"}); !errors.Is(err, api.ErrInvalid) {
			t.Fatalf("not-executed without a reason: %v", err)
		}
		clock.advance(10 * time.Minute)
		r2, err := pfa.ReplyNotice(ctx, notices.ReplyRequest{Notice: n2.ID.String(), Status: "removed", Text: "taken down"})
		if err != nil {
			t.Fatal(err)
		}
		f.waitStored(r1.ID, all...)
		f.waitStored(r2.ID, all...)
		for _, n := range all {
			v := viewOf(t, n, n2.ID)
			if v.State != "actioned" || v.TimeToActionS == nil || *v.TimeToActionS < 600 || v.WithinDeadline == nil || !*v.WithinDeadline {
				t.Errorf("%s: n2 %+v", n.me.Name, v)
			}
			f := matchOne(t, n, api.Query{Signal: sig, Quality: api.NoQuality})
			if len(f.Attestations) != 1 || f.Attestations[0].Kind != protocol.KindNotice || f.Attestations[0].Status != store.StatusActive {
				t.Fatalf("%s: stay down: %+v", n.me.Name, f.Attestations)
			}
			// The issuer and the platform that removed it: two members.
			if f.Verdict != api.VerdictBlock {
				t.Errorf("%s: verdict %s, want block", n.me.Name, f.Verdict)
			}
		}

		// n1 is never answered: two hours on, it is overdue on every node.
		clock.advance(2 * time.Hour)
		for _, n := range all {
			if v := viewOf(t, n, n1.ID); v.State != "overdue" || v.TimeRemainingS == nil || *v.TimeRemainingS >= 0 {
				t.Errorf("%s: n1 %s, remaining %v", n.me.Name, v.State, v.TimeRemainingS)
			}
		}
		inbox, err := pfa.ListNotices(ctx, notices.Query{Overdue: true})
		if err != nil || len(inbox) != 1 || inbox[0].ID != n1.ID.String() {
			t.Fatalf("pfa's overdue inbox: %v %+v", err, inbox)
		}
		if open, _ := pfa.ListNotices(ctx, notices.Query{Open: true}); len(open) != 1 {
			t.Errorf("pfa's open inbox: %d notices, want 1 (n1, overdue)", len(open))
		}
		if out, _ := nru.ListNotices(ctx, notices.Query{}); len(out) != 2 || out[0].ID != n2.ID.String() && out[0].DeadlineMs > out[1].DeadlineMs {
			t.Errorf("nru's outbox: %+v", out)
		}
		// Limit keeps the soonest (or with Latest the latest) deadlines,
		// in the list's order.
		out, _ := nru.ListNotices(ctx, notices.Query{})
		for _, q := range []notices.Query{{Limit: 1}, {Limit: 1, Latest: true}, {Limit: 5}} {
			got, err := nru.ListNotices(ctx, q)
			want := out[:min(q.Limit, len(out))]
			if q.Latest {
				want = out[len(out)-q.Limit:]
			}
			if err != nil || len(got) != len(want) || got[0].ID != want[0].ID {
				t.Errorf("nru's outbox with %+v: %v %+v, want %+v", q, err, got, want)
			}
		}
		if in, _ := pfb.ListNotices(ctx, notices.Query{}); len(in) != 0 {
			t.Errorf("pfb's inbox holds %d notices", len(in))
		}

		// The report, the same on every node.
		var first []byte
		at := clock.now().UnixMilli()
		for _, n := range all {
			rep, err := n.Report(ctx, 0, at)
			if err != nil {
				t.Fatal(err)
			}
			js, _ := json.Marshal(rep)
			if first == nil {
				first = js
			} else if !bytes.Equal(js, first) {
				t.Errorf("%s's report differs from nru's:\n%s\n%s", n.me.Name, js, first)
			}
			var pf *struct{ received, within, overdue int }
			for _, m := range rep.Members {
				if m.Name == "pfa" {
					pf = &struct{ received, within, overdue int }{m.NoticesReceived, m.AnsweredWithinDeadline, m.Overdue}
				}
			}
			if pf == nil || pf.received != 2 || pf.within != 1 || pf.overdue != 1 {
				t.Errorf("%s: report for pfa %+v", n.me.Name, pf)
			}
		}

		// The referral unit withdraws n1.
		if _, err := pfa.UpdateNotice(ctx, notices.UpdateRequest{Notice: n1.ID.String(), Withdraw: true}); !errors.Is(err, api.ErrForbidden) {
			t.Fatalf("a platform updated a notice: %v", err)
		}
		w, err := nru.UpdateNotice(ctx, notices.UpdateRequest{Notice: n1.ID.String(), Withdraw: true})
		if err != nil {
			t.Fatal(err)
		}
		f.waitStored(w.ID, pfa)
		if v := viewOf(t, pfa, n1.ID); v.State != "withdrawn" {
			t.Errorf("after withdrawal: %s", v.State)
		}
	})
}

// The event stream replays from a position and then follows live.
func TestNoticeEvents(t *testing.T) {
	inSim(t, func(t *testing.T) {
		f, _, nru, pfa, pfb, _ := noticeFed(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()

		var mu sync.Mutex
		var got []notices.Event
		done := make(chan error, 1)
		go func() {
			done <- pfa.Events(ctx, 0, func(ev notices.Event) error {
				if ev.Type != "" {
					mu.Lock()
					got = append(got, ev)
					mu.Unlock()
				}
				return nil
			})
		}()
		n1, err := nru.IssueNotice(ctx, notices.IssueRequest{To: "pfa", URLs: []string{"https://x.example/a"}, Category: "attacker-manifesto", Basis: "TCO"})
		if err != nil {
			t.Fatal(err)
		}
		other, err := nru.IssueNotice(ctx, notices.IssueRequest{To: "pfb", URLs: []string{"https://x.example/b"}, Category: "attacker-manifesto", Basis: "TCO"})
		if err != nil {
			t.Fatal(err)
		}
		f.waitStored(other.ID, pfa, pfb)
		f.waitFor(45*time.Second, "pfa's notice event", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(got) > 0
		})
		cancel()
		<-done
		mu.Lock()
		for _, ev := range got {
			if ev.Type == notices.EventNotice && ev.ID != n1.ID.String() {
				t.Errorf("pfa got an event for a notice to someone else: %+v", ev)
			}
		}
		first := got[0]
		mu.Unlock()
		if first.Type != notices.EventNotice || first.ID != n1.ID.String() || first.Notice == nil || first.Notice.Details == nil {
			t.Fatalf("first event: %+v", first)
		}

		// Resume after it: the notice is not sent again; a reply by pfa to it
		// reaches nru's stream, resumed from nru's last position.
		var again []notices.Event
		ctx2, cancel2 := context.WithCancel(context.Background())
		pfa.Events(ctx2, first.N, func(ev notices.Event) error {
			if ev.Type != "" {
				again = append(again, ev)
			}
			cancel2() // replay is synchronous: stop at the first live wait
			return nil
		})
		cancel2()
		for _, ev := range again {
			if ev.ID == n1.ID.String() {
				t.Errorf("resumed stream repeated the notice")
			}
		}
		last, _ := nru.store.LastArrival()
		rep, err := pfa.ReplyNotice(context.Background(), notices.ReplyRequest{Notice: n1.ID.String(), Status: "received"})
		if err != nil {
			t.Fatal(err)
		}
		ctx3, cancel3 := context.WithTimeout(context.Background(), 45*time.Second)
		defer cancel3()
		var reply notices.Event
		nru.Events(ctx3, last, func(ev notices.Event) error {
			if ev.Type == notices.EventReply {
				reply = ev
				cancel3()
			}
			return nil
		})
		if reply.ID != rep.ID.String() || reply.Notice == nil || reply.Notice.State != "acknowledged" {
			t.Fatalf("nru's reply event: %+v", reply)
		}
	})
}

// A notice addressed to a node is logged at WARN with its deadline, and
// the notice gauges of both parties follow its deadline on the node's
// clock: open, due soon (15 minutes or less), overdue (#13 item 9: a
// notice arriving logged nothing, and no metric said one was due).
func TestNoticeAlertsInLogAndMetrics(t *testing.T) {
	inSim(t, func(t *testing.T) {
		f, clock, nru, pfa, _, _ := noticeFed(t)
		n, err := nru.IssueNotice(context.Background(), notices.IssueRequest{To: "pfa", URLs: []string{"https://x.example/1"},
			Category: "attacker-manifesto", Basis: "TCO art. 3", Deadline: "1h"})
		if err != nil {
			t.Fatal(err)
		}
		f.waitStored(n.ID, pfa)
		if !f.trace.logged("pfa", "takedown notice received: act before the deadline") {
			t.Errorf("pfa logged no WARN for the notice addressed to it")
		}
		if f.trace.logged("nru", "takedown notice received") {
			t.Errorf("nru, the issuer, logged the notice as received")
		}
		want := func(step string, received, sent [3]float64) {
			t.Helper()
			for _, c := range []struct {
				n    *Node
				box  string
				want [3]float64
			}{{pfa, "received", received}, {nru, "sent", sent}} {
				got := [3]float64{c.n.boxGauge(t, "staydown_notices_open", c.box), c.n.boxGauge(t, "staydown_notices_due_soon", c.box),
					c.n.boxGauge(t, "staydown_notices_overdue", c.box)}
				if got != c.want {
					t.Errorf("%s: %s's %s notices open, due soon, overdue: %v, want %v", step, c.n.me.Name, c.box, got, c.want)
				}
			}
		}
		want("issued", [3]float64{1, 0, 0}, [3]float64{1, 0, 0})
		clock.advance(46 * time.Minute)
		want("14 minutes left", [3]float64{1, 1, 0}, [3]float64{1, 1, 0})
		clock.advance(15 * time.Minute)
		want("past the deadline", [3]float64{0, 0, 1}, [3]float64{0, 0, 1})
	})
}

// boxGauge is the value of the node's gauge name for box.
func (n *Node) boxGauge(t *testing.T, name, box string) float64 {
	t.Helper()
	mfs, err := n.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if l.GetName() == "box" && l.GetValue() == box {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no metric %s{box=%q}", name, box)
	return 0
}
