package alerts

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/internal/smtpsink"
	"github.com/staydown/staydown/internal/testclock"
	"github.com/staydown/staydown/node/notices"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

const secret = "0123456789abcdef-test-secret"

// logBuffer is a logger whose lines a test reads.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newLog() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, nil)), b
}

// waits records the backoff a hook asked for, and lets it go on at once.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) after(d time.Duration) <-chan time.Time {
	w.mu.Lock()
	w.d = append(w.d, d)
	w.mu.Unlock()
	c := make(chan time.Time, 1)
	c <- time.Time{}
	return c
}

func (w *waits) get() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.d)
}

// receiver is a webhook receiver that verifies every request's
// signature as a real one would, and answers the first `fail` requests
// with 503.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	attempts int
	bad      []error
	bodies   [][]byte
	kinds    []string
	got      chan []byte
}

func newReceiver(t *testing.T, fail int, status int) *receiver {
	r := &receiver{got: make(chan []byte, 100)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.attempts++
		n := r.attempts
		err := Verify([]byte(secret), req.Header.Get(TimestampHeader), req.Header.Get(SignatureHeader), body, time.Now(), 5*time.Minute)
		if err != nil {
			r.bad = append(r.bad, err)
		}
		r.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if n <= fail {
			http.Error(w, "not now", status)
			return
		}
		r.mu.Lock()
		r.bodies = append(r.bodies, body)
		r.kinds = append(r.kinds, req.Header.Get(EventHeader))
		r.mu.Unlock()
		r.got <- body
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) next(t *testing.T) []byte {
	t.Helper()
	select {
	case b := <-r.got:
		return b
	case <-time.After(10 * time.Second):
		t.Fatal("no alert reached the receiver in 10 s")
		return nil
	}
}

var testEvent = Event{Event: DueSoon, Node: "pfa", Notice: strings.Repeat("ab", 34), From: "nru", To: "pfa",
	Deadline: "2026-12-04T15:00:00.000Z", Status: "open", Category: "attacker-manifesto", Order: true, Time: "2026-12-04T14:45:00.000Z"}

// TestWebhookRetriedAndSigned: a receiver that fails the first two
// tries gets the third, signed (verified with Verify), after waits of
// 10 s and 20 s on the hook's timers; the body is the JSON event.
func TestWebhookRetriedAndSigned(t *testing.T) {
	r := newReceiver(t, 2, http.StatusServiceUnavailable)
	log, logs := newLog()
	var w waits
	delivered := make(chan bool, 1)
	h := newHook(newWebhook(config.Webhook{URL: r.URL + "/hook?token=x", Secret: secret, Format: config.WebhookJSON}, time.Now), log, w.after,
		func(_ string, ok bool) { delivered <- ok })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.run(ctx)
	h.push(testEvent)
	var got Event
	if err := json.Unmarshal(r.next(t), &got); err != nil {
		t.Fatal(err)
	}
	if !<-delivered {
		t.Fatal("the hook says it failed")
	}
	if got != testEvent {
		t.Fatalf("received %+v, want %+v", got, testEvent)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.attempts != 3 || len(r.bad) != 0 || r.kinds[0] != string(DueSoon) {
		t.Fatalf("attempts %d, bad signatures %v, kinds %v; want 3, none, due-soon", r.attempts, r.bad, r.kinds)
	}
	if d := w.get(); !slices.Equal(d, []time.Duration{10 * time.Second, 20 * time.Second}) {
		t.Fatalf("backoff %v, want [10s 20s]", d)
	}
	if s := logs.String(); strings.Contains(s, "token=x") || !strings.Contains(s, "alert delivered") {
		t.Fatalf("log shows the URL's token, or no delivery:\n%s", s)
	}
}

// TestWebhookGivesUp: a receiver that always fails gets MaxTries tries
// over 10+20+40+80 s; one that refuses (403) gets one.
func TestWebhookGivesUp(t *testing.T) {
	for _, tc := range []struct {
		status int
		tries  int
		waits  []time.Duration
	}{
		{http.StatusBadGateway, MaxTries, []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second}},
		{http.StatusForbidden, 1, nil},
	} {
		r := newReceiver(t, 100, tc.status)
		log, logs := newLog()
		var w waits
		h := newHook(newWebhook(config.Webhook{URL: r.URL, Secret: secret, Format: config.WebhookJSON}, time.Now), log, w.after, nil)
		h.deliver(context.Background(), testEvent)
		r.mu.Lock()
		tries := r.attempts
		r.mu.Unlock()
		if tries != tc.tries || !slices.Equal(w.get(), tc.waits) {
			t.Errorf("status %d: %d tries, waits %v; want %d, %v", tc.status, tries, w.get(), tc.tries, tc.waits)
		}
		if !strings.Contains(logs.String(), "given up") {
			t.Errorf("status %d: no log line says the alert was given up:\n%s", tc.status, logs)
		}
	}
}

// TestWebhookSlackFormat: format "slack" posts {"text": ...} and nothing
// else, which Slack's and Matrix hookshot's incoming webhooks take.
func TestWebhookSlackFormat(t *testing.T) {
	r := newReceiver(t, 0, 0)
	log, _ := newLog()
	var w waits
	h := newHook(newWebhook(config.Webhook{URL: r.URL, Secret: secret, Format: config.WebhookSlack}, time.Now), log, w.after, nil)
	h.deliver(context.Background(), testEvent)
	var got map[string]string
	if err := json.Unmarshal(r.next(t), &got); err != nil {
		t.Fatal(err)
	}
	want := "[staydown pfa] takedown notice due soon abababababababab from nru to pfa, deadline 2026-12-04T15:00:00.000Z"
	if len(got) != 1 || got["text"] != want {
		t.Fatalf("slack body %v, want text %q", got, want)
	}
}

func TestVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"event":"overdue"}`)
	ts := "1800000000"
	sig := Sign([]byte(secret), ts, body)
	if err := Verify([]byte(secret), ts, sig, body, now, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"other body":   Verify([]byte(secret), ts, sig, []byte(`{"event":"due-soon"}`), now, 5*time.Minute),
		"other secret": Verify([]byte("another secret!!"), ts, sig, body, now, 5*time.Minute),
		"other time":   Verify([]byte(secret), "1800000001", sig, body, now, 5*time.Minute),
		"not a time":   Verify([]byte(secret), "x", sig, body, now, 5*time.Minute),
	} {
		if !errors.Is(err, ErrSignature) {
			t.Errorf("%s: %v, want ErrSignature", name, err)
		}
	}
	if err := Verify([]byte(secret), ts, sig, body, now.Add(6*time.Minute), 5*time.Minute); !errors.Is(err, ErrStale) {
		t.Errorf("replayed 6 minutes later: %v, want ErrStale", err)
	}
}

// TestQueueDropsOldest: a full queue drops its oldest alert, and says so.
func TestQueueDropsOldest(t *testing.T) {
	log, logs := newLog()
	h := newHook(newWebhook(config.Webhook{URL: "http://127.0.0.1:1/", Secret: secret}, time.Now), log, time.After, nil)
	for i := range QueueSize + 1 {
		e := testEvent
		e.Notice = string(rune('a'+i%26)) + strings.Repeat("0", i/26)
		h.push(e)
	}
	first, _ := h.pop()
	if len(h.items) != QueueSize-1 || first.Notice != "b" {
		t.Fatalf("queue kept %d after one pop, first %q; want %d, \"b\"", len(h.items), first.Notice, QueueSize-1)
	}
	if !strings.Contains(logs.String(), "alert queue full: dropped the oldest alert") {
		t.Fatalf("no log line for the drop:\n%s", logs)
	}
}

// selfSigned is a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtpsink"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func startSink(t *testing.T, cert *tls.Certificate) *smtpsink.Sink {
	s, err := smtpsink.Start(cert)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestEmail: the alert reaches an SMTP server as a plain-text mail to
// every recipient; with credentials, only after STARTTLS, and never to a
// server that offers no TLS.
func TestEmail(t *testing.T) {
	cfg := config.Email{From: "staydown@example.org", To: []string{"oncall@example.org", "legal@example.org"}, TLS: config.EmailSTARTTLS}

	// No credentials, no TLS offered: sent in clear.
	plain := startSink(t, nil)
	cfg.SMTP = plain.Addr()
	if err := newEmail(cfg, time.Now).send(context.Background(), testEvent); err != nil {
		t.Fatal(err)
	}
	msgs := plain.Messages()
	if len(msgs) != 1 || msgs[0].From != cfg.From || !slices.Equal(msgs[0].To, cfg.To) || msgs[0].TLS {
		t.Fatalf("messages %+v", msgs)
	}
	for _, want := range []string{"From: staydown@example.org\r\n", "To: oncall@example.org, legal@example.org\r\n",
		"Subject: [staydown pfa] takedown notice due soon abababababababab from nru to pfa, deadline 2026-12-04T15:00:00.000Z\r\n",
		"X-Staydown-Event: due-soon\r\n", "\r\nnotice:   " + testEvent.Notice + "\r\n", "order:    true\r\n"} {
		if !strings.Contains(msgs[0].Data, want) {
			t.Errorf("mail lacks %q:\n%s", want, msgs[0].Data)
		}
	}

	// Credentials, a server without STARTTLS: refused before AUTH, and
	// not tried again.
	cfg.Username, cfg.Password = "staydown", "pw"
	err := newEmail(cfg, time.Now).send(context.Background(), testEvent)
	var perm permanentError
	if !errors.Is(err, ErrCleartext) || !errors.As(err, &perm) {
		t.Fatalf("credentials to a server without TLS: %v, want a permanent ErrCleartext", err)
	}
	if slices.Contains(plain.Commands(), "AUTH") || len(plain.Messages()) != 1 {
		t.Fatalf("the password went out in clear: commands %v", plain.Commands())
	}

	// Credentials, STARTTLS offered: TLS, then AUTH PLAIN, then the mail.
	cert, pool := selfSigned(t)
	secure := startSink(t, &cert)
	cfg.SMTP = secure.Addr()
	m := newEmail(cfg, time.Now)
	m.tls = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	if err := m.send(context.Background(), testEvent); err != nil {
		t.Fatal(err)
	}
	msgs = secure.Messages()
	if len(msgs) != 1 || !msgs[0].TLS || msgs[0].Auth != "staydown" {
		t.Fatalf("messages %+v; want one over TLS, authenticated as staydown", msgs)
	}
	if c := secure.Commands(); !slices.Equal(c[:3], []string{"EHLO", "STARTTLS", "EHLO"}) {
		t.Fatalf("commands %v", c)
	}
}

// book is the notice book as the alerts read it (notices.Notices), for
// tests of the rules; node's tests run them on a real one.
type book struct {
	mu sync.Mutex
	m  map[protocol.ID]notices.Pending
}

func (b *book) Pending(id protocol.ID) (notices.Pending, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.m[id]
	return p, ok
}

func (b *book) Alertable(nowMs int64) []notices.Pending {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []notices.Pending
	for _, p := range b.m {
		if !final(p.Status.At(nowMs)) {
			out = append(out, p)
		}
	}
	return out
}

func (b *book) put(p notices.Pending) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m[p.ID] = p
}

// queued takes what a's first hook holds (its goroutine does not run:
// Run was not called).
func queued(a *Alerts) []string {
	var out []string
	for e, ok := a.hooks[0].pop(); ok; e, ok = a.hooks[0].pop() {
		out = append(out, string(e.Event)+" "+e.Notice[:4]+" "+e.Status)
	}
	return out
}

// TestAlertRules: on a test clock, a notice addressed to the node raises
// notice-received when it arrives, due-soon 15 minutes before its
// deadline and overdue after it, each once; a node started again on the
// same store raises none of them again; a final notice raises nothing;
// a reply to a notice the node issued raises reply-received, and that
// notice's overdue raises overdue but not due-soon.
func TestAlertRules(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	start := time.Date(2026, 12, 4, 14, 0, 0, 0, time.UTC)
	clock := testclock.New(start)
	_, nruKey, _ := ed25519.GenerateKey(rand.Reader)
	_, pfaKey, _ := ed25519.GenerateKey(rand.Reader)
	nru, pfa := protocol.AuthorKeyOf(nruKey), protocol.AuthorKeyOf(pfaKey)
	names := map[protocol.AuthorKey]string{nru: "nru", pfa: "pfa"}
	b := &book{m: map[protocol.ID]notices.Pending{}}
	log, _ := newLog()
	open := func(self protocol.Member) *Alerts {
		a, err := New(Deps{Hooks: config.Alerts{Webhooks: []config.Webhook{{URL: "http://127.0.0.1:1/", Secret: secret}}},
			Notices: b, Record: st, Self: func() protocol.Member { return self }, Names: func(k protocol.AuthorKey) string { return names[k] },
			Now: clock.Now, After: time.After, Log: log})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	sig, err := protocol.ParseSignal("sha256", "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9")
	if err != nil {
		t.Fatal(err)
	}
	cat, err := protocol.ParseLabel("attacker-manifesto")
	if err != nil {
		t.Fatal(err)
	}
	notice := func(id byte, deadline time.Time) (*protocol.Entry, notices.Pending) {
		e, err := protocol.Sign(nruKey, &pb.Entry{Version: 1, Federation: "test", Seq: 1, TimestampMs: clock.Now().UnixMilli() + int64(id), Payload: &pb.Entry_Notice{Notice: &pb.Notice{
			Addressee: pfa[:], DeadlineMs: deadline.UnixMilli(), Signals: []*pb.Signal{sig}, Category: cat, LegalBasis: "TCO art. 3"}}})
		if err != nil {
			t.Fatal(err)
		}
		return e, notices.Pending{ID: e.ID, From: nru, To: pfa, Category: "attacker-manifesto",
			Status: protocol.NoticeStatus{State: protocol.NoticeOpen, DeadlineMs: deadline.UnixMilli()}}
	}
	check := func(a *Alerts, what string, want ...string) {
		t.Helper()
		if got := queued(a); !slices.Equal(got, want) {
			t.Fatalf("%s: raised %q, want %q", what, got, want)
		}
	}
	a := open(protocol.Member{Name: "pfa", AuthorKey: pfa})
	e1, p1 := notice(1, start.Add(time.Hour))
	id1 := e1.ID.String()[:4]
	b.put(p1)
	a.Stored(e1)
	a.Check()
	check(a, "arrival", "notice-received "+id1+" open")
	clock.Add(44 * time.Minute)
	a.Check()
	check(a, "16 minutes before the deadline")
	clock.Add(time.Minute)
	a.Check()
	a.Check()
	check(a, "15 minutes before the deadline", "due-soon "+id1+" open")
	clock.Add(15*time.Minute + time.Millisecond)
	a.Check()
	a.Check()
	check(a, "after the deadline", "overdue "+id1+" overdue")

	// Restarted on the same store: nothing again.
	a = open(protocol.Member{Name: "pfa", AuthorKey: pfa})
	a.Check()
	check(a, "after a restart")

	// A notice answered before its deadline: no due-soon, no overdue.
	e2, p2 := notice(2, clock.Now().Add(10*time.Minute))
	p2.Status = protocol.NoticeStatus{State: protocol.NoticeActioned, DeadlineMs: p2.Status.DeadlineMs}
	b.put(p2)
	a.Stored(e2)
	clock.Add(time.Hour)
	a.Check()
	check(a, "an actioned notice")
	// The actioned notice, and the first once it is actioned, leave the
	// record.
	p1.Status.State = protocol.NoticeActioned
	b.put(p1)
	a.Check()
	if rec, err := st.NoticeAlerts(); err != nil || len(rec) != 0 {
		t.Fatalf("record after every notice is final: %v %v", rec, err)
	}

	// The referral unit: a reply to its notice; its notice overdue.
	r := open(protocol.Member{Name: "nru", AuthorKey: nru})
	e3, p3 := notice(3, clock.Now().Add(10*time.Minute))
	b.put(p3)
	r.Stored(e3)
	reply, err := protocol.Sign(pfaKey, &pb.Entry{Version: 1, Federation: "test", Seq: 1, TimestampMs: clock.Now().UnixMilli(), Payload: &pb.Entry_NoticeReply{NoticeReply: &pb.NoticeReply{
		Notice: e3.ID[:], Status: pb.ReplyStatus_REPLY_STATUS_RECEIVED}}})
	if err != nil {
		t.Fatal(err)
	}
	p3.Status.State = protocol.NoticeAcknowledged
	b.put(p3)
	r.Stored(reply)
	r.Check()
	id3 := e3.ID.String()[:4]
	check(r, "the issuer", "reply-received "+id3+" acknowledged")
	clock.Add(11 * time.Minute)
	r.Check()
	check(r, "the issuer's notice overdue", "overdue "+id3+" overdue")
}

// FuzzVerify: Verify never panics, accepts exactly what Sign signed at a
// time within the skew, and refuses the signature of any other body.
func FuzzVerify(f *testing.F) {
	f.Add([]byte(secret), "1800000000", "sha256=00", []byte(`{"event":"overdue"}`), int64(0))
	f.Add([]byte("k"), "-1", "", []byte{}, int64(-301))
	f.Add([]byte{}, "99999999999999999999", "sha256=", []byte{0xff}, int64(301))
	f.Fuzz(func(t *testing.T, key []byte, ts, sig string, body []byte, offset int64) {
		now := time.Unix(1_800_000_000, 0)
		_ = Verify(key, ts, sig, body, now, 5*time.Minute)
		good := Sign(key, "1800000000", body)
		err := Verify(key, "1800000000", good, body, now.Add(time.Duration(offset)*time.Second), 5*time.Minute)
		if within := offset >= -300 && offset <= 300; within != (err == nil) {
			t.Fatalf("offset %ds: %v", offset, err)
		}
		if Verify(key, "1800000000", good, append(bytes.Clone(body), 0), now, 5*time.Minute) == nil {
			t.Fatal("a signature verified another body")
		}
	})
}

// TestEmailStopsWithNode: a server that never answers holds a delivery
// only until the node closes (its context ends), not for the whole try.
func TestEmailStopsWithNode(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c // and say nothing
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	done := make(chan error, 1)
	go func() {
		done <- newEmail(config.Email{SMTP: ln.Addr().String(), From: "a@example.org", To: []string{"b@example.org"}}, time.Now).send(ctx, testEvent)
	}()
	c := <-accepted
	defer c.Close()
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("sent to a server that said nothing")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the delivery went on 10 s after its context ended")
	}
}
