package node

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/internal/smtpsink"
	"github.com/staydown/staydown/internal/testclock"
	"github.com/staydown/staydown/node/alerts"
	"github.com/staydown/staydown/node/notices"
	"github.com/staydown/staydown/protocol"
)

const hookSecret = "node-test-secret-0123456789"

// hookReceiver is a webhook receiver that checks every request's
// signature and keeps the events.
type hookReceiver struct {
	*httptest.Server
	got chan alerts.Event
	mu  sync.Mutex
	bad int
}

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{got: make(chan alerts.Event, 100)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if err := alerts.Verify([]byte(hookSecret), req.Header.Get(alerts.TimestampHeader), req.Header.Get(alerts.SignatureHeader), body, time.Now(), time.Hour+5*time.Minute); err != nil {
			r.mu.Lock()
			r.bad++
			r.mu.Unlock()
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var e alerts.Event
		if err := json.Unmarshal(body, &e); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.got <- e
	}))
	t.Cleanup(r.Close)
	return r
}

// next is the next event received, waited for at most 20 s.
func (r *hookReceiver) next(t *testing.T, what string) alerts.Event {
	t.Helper()
	select {
	case e := <-r.got:
		return e
	case <-time.After(20 * time.Second):
		t.Fatalf("no webhook alert for %s in 20 s", what)
		return alerts.Event{}
	}
}

func (r *hookReceiver) expect(t *testing.T, kind alerts.Kind, notice protocol.ID, status string) alerts.Event {
	t.Helper()
	e := r.next(t, string(kind))
	if e.Event != kind || e.Notice != notice.String() || e.Status != status {
		t.Fatalf("webhook got %s %s %s; want %s %s %s", e.Event, e.Notice, e.Status, kind, notice, status)
	}
	return e
}

// TestNoticeAlertHooks (#13 item 9): a platform with a webhook and email
// configured hears of a notice when it arrives, 15 minutes before its
// deadline and when it passes, on the node's clock, over a real HTTP
// receiver (which checks each signature) and an SMTP server; after a
// restart it raises none of them again. The referral unit hears of its
// notice's overdue and of the platform's reply.
func TestNoticeAlertHooks(t *testing.T) {
	f := newFederation(t, "nru=referral", "pfa=platform")
	clock := testclock.New(time.Now())
	pfaHook, nruHook := newHookReceiver(t), newHookReceiver(t)
	sink, err := smtpsink.Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sink.Close)
	for _, cfg := range f.cfgs {
		cfg.Clock = clock.Now
	}
	f.cfgs["pfa"].Alerts = config.Alerts{Webhooks: []config.Webhook{{URL: pfaHook.URL + "/hook", Secret: hookSecret, Format: config.WebhookJSON}},
		Email: &config.Email{SMTP: sink.Addr(), From: "staydown@pfa.example", To: []string{"oncall@pfa.example"}, TLS: config.EmailSTARTTLS}}
	f.cfgs["nru"].Alerts = config.Alerts{Webhooks: []config.Webhook{{URL: nruHook.URL, Secret: hookSecret, Format: config.WebhookJSON}}}
	nru, pfa := f.start("nru"), f.start("pfa")
	connect(t, nru, pfa)
	ctx := context.Background()
	issue := func() protocol.ID {
		t.Helper()
		e, err := nru.IssueNotice(ctx, notices.IssueRequest{To: "pfa", URLs: []string{"https://video.example/watch?v=1"}, Category: "attacker-manifesto",
			Basis: "Regulation (EU) 2021/784, art. 3", Order: true, Deadline: "1h"})
		if err != nil {
			t.Fatal(err)
		}
		return e.ID
	}
	n1 := issue()
	deadline := clock.Now().Add(time.Hour)
	got := pfaHook.expect(t, alerts.Received, n1, "open")
	if got.From != "nru" || got.To != "pfa" || got.Node != "pfa" || !got.Order || got.Category != "attacker-manifesto" {
		t.Fatalf("arrival alert %+v", got)
	}
	if d, err := time.Parse(time.RFC3339, got.Deadline); err != nil || d.UnixMilli() != deadline.UnixMilli() {
		t.Fatalf("deadline %q, want %s", got.Deadline, deadline)
	}
	if msgs := sink.Wait(1, 20*time.Second); len(msgs) != 1 || !strings.Contains(msgs[0].Data, "takedown notice received "+n1.String()[:16]) {
		t.Fatalf("mail: %+v", msgs)
	}

	clock.Add(44 * time.Minute)
	pfa.alerts.Check()
	clock.Add(time.Minute)
	pfa.alerts.Check()
	pfaHook.expect(t, alerts.DueSoon, n1, "open")
	clock.Add(15*time.Minute + time.Second)
	pfa.alerts.Check()
	pfaHook.expect(t, alerts.Overdue, n1, "overdue")
	nru.alerts.Check()
	nruHook.expect(t, alerts.Overdue, n1, "overdue")
	if msgs := sink.Wait(3, 20*time.Second); len(msgs) != 3 {
		t.Fatalf("mails %d, want 3", len(msgs))
	}

	// Restarted: nothing again. A second notice's arrival comes after
	// anything the restart raised (one queue, in order).
	if err := pfa.Close(); err != nil {
		t.Fatal(err)
	}
	pfa = f.start("pfa")
	connect(t, nru, pfa)
	pfa.alerts.Check()
	n2 := issue()
	pfaHook.expect(t, alerts.Received, n2, "open")
	if msgs := sink.Wait(4, 20*time.Second); len(msgs) != 4 || !strings.Contains(msgs[3].Data, n2.String()[:16]) {
		t.Fatalf("mails after the restart: %d, the last %q", len(msgs), msgs[len(msgs)-1].Data)
	}

	// The platform answers: the referral unit hears of it; the notice,
	// final, raises nothing more.
	r, err := pfa.ReplyNotice(ctx, notices.ReplyRequest{Notice: n1.String(), Status: "removed"})
	if err != nil {
		t.Fatal(err)
	}
	got = nruHook.expect(t, alerts.Replied, n1, "actioned")
	if got.Reply != "removed" || got.ReplyID != r.ID.String() {
		t.Fatalf("reply alert %+v", got)
	}
	select {
	case e := <-pfaHook.got:
		t.Fatalf("platform: unexpected alert %+v", e)
	default:
	}
	for _, r := range []*hookReceiver{pfaHook, nruHook} {
		r.mu.Lock()
		bad := r.bad
		r.mu.Unlock()
		if bad != 0 {
			t.Fatalf("%d requests with a bad signature", bad)
		}
	}
	if slices.Contains(sink.Commands(), "AUTH") {
		t.Fatalf("AUTH without credentials: commands %v", sink.Commands())
	}
}
