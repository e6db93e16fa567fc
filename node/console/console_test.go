package console_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/api/apitest"
	"github.com/staydown/staydown/node/console"
	"github.com/staydown/staydown/node/tokens"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/report"
)

const adminToken = "admin-token-of-the-test-node"

// clock is a clock a test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type harness struct {
	t       *testing.T
	srv     *httptest.Server
	backend *apitest.Backend
	clock   *clock
	dir     string
}

// newHarness serves the console of a fake platform node (apitest: it
// records every call, so a test can prove a refused write never reached
// the node) on a real HTTP server, with the node's tokens in a real
// directory.
func newHarness(t *testing.T, role protocol.Role) *harness {
	t.Helper()
	dir := t.TempDir()
	clk := &clock{t: time.Now()}
	keys, err := tokens.Open(dir, adminToken, clk.now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	b := apitest.New("pfa", role, apitest.Member("nru", protocol.RoleReferral))
	c := console.New(b, keys, slog.New(slog.DiscardHandler), console.Options{Now: clk.now})
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return &harness{t: t, srv: srv, backend: b, clock: clk, dir: dir}
}

// browser is a client that keeps cookies and does not follow redirects.
func (h *harness) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// ticket asks for a sign-in path with token.
func (h *harness) ticket(token string) string {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/console/tickets", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		h.t.Fatalf("POST /console/tickets: %s %s", res.Status, body)
	}
	m := regexp.MustCompile(`"path":"([^"]+)"`).FindSubmatch(body)
	if m == nil {
		h.t.Fatalf("no path in %s", body)
	}
	return string(m[1])
}

// signIn opens a session with token in a new browser.
func (h *harness) signIn(token string) *http.Client {
	h.t.Helper()
	b := h.browser()
	res := h.get(b, h.ticket(token))
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
		h.t.Fatalf("sign-in: %s to %q, want 303 to /", res.Status, res.Header.Get("Location"))
	}
	return b
}

type response struct {
	*http.Response
	body string
}

func (h *harness) get(b *http.Client, path string) response {
	h.t.Helper()
	res, err := b.Get(h.srv.URL + path)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return response{res, string(body)}
}

func (h *harness) post(b *http.Client, path string, form url.Values) response {
	h.t.Helper()
	res, err := b.PostForm(h.srv.URL+path, form)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return response{res, string(body)}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no CSRF token in the page")
	}
	return m[1]
}

func TestSignInWithOneTimeTicket(t *testing.T) {
	h := newHarness(t, protocol.RolePlatform)

	// No token, a wrong one: no ticket.
	for _, auth := range []string{"", "Bearer wrong"} {
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/console/tickets", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("ticket with Authorization %q: %s, want 401", auth, res.Status)
		}
	}

	path := h.ticket(adminToken)
	b := h.browser()
	res := h.get(b, path)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
		t.Fatalf("sign-in: %s to %q", res.Status, res.Header.Get("Location"))
	}
	var ck *http.Cookie
	for _, c := range res.Cookies() {
		if strings.HasPrefix(c.Name, console.CookieName+"_") {
			ck = c
		}
	}
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.MaxAge <= 0 {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/, an expiry", ck)
	}
	if got := res.Header.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("Referrer-Policy %q: the ticket in the address could leak", got)
	}

	page := h.get(b, "/")
	if page.StatusCode != http.StatusOK || !strings.Contains(page.body, "<h1>Overview</h1>") {
		t.Fatalf("overview: %s\n%s", page.Status, page.body)
	}
	csp := page.Header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "style-src 'self'", "default-src 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(page.body, "<script>") || strings.Contains(page.body, "style=") {
		t.Errorf("inline script or style in the page or allowed by the CSP")
	}
	ticket := strings.TrimPrefix(path, "/signin?ticket=")
	if strings.Contains(page.body, adminToken) || strings.Contains(page.body, ticket) || strings.Contains(page.body, ck.Value) {
		t.Error("the page shows the API token, the ticket or the session id")
	}

	// The ticket works once.
	again := h.get(h.browser(), path)
	if again.StatusCode != http.StatusForbidden || !strings.Contains(again.body, "used already") {
		t.Errorf("second use of the ticket: %s\n%s", again.Status, again.body)
	}
}

func TestTicketAndSessionExpire(t *testing.T) {
	h := newHarness(t, protocol.RolePlatform)
	path := h.ticket(adminToken)
	h.clock.add(console.TicketTTL)
	if res := h.get(h.browser(), path); res.StatusCode != http.StatusForbidden {
		t.Errorf("expired ticket: %s, want 403", res.Status)
	}

	b := h.signIn(adminToken)
	if res := h.get(b, "/inbox"); res.StatusCode != http.StatusOK {
		t.Fatalf("inbox: %s", res.Status)
	}
	h.clock.add(console.SessionTTL)
	if res := h.get(b, "/inbox"); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/signin" {
		t.Errorf("inbox after the session's end: %s to %q, want 303 to /signin", res.Status, res.Header.Get("Location"))
	}
}

func TestNoSessionRedirectsToSignIn(t *testing.T) {
	h := newHarness(t, protocol.RolePlatform)
	b := h.browser()
	for _, path := range []string{"/", "/inbox", "/notices", "/match", "/transparency", "/feed", "/events", "/inbox/notice?id=00"} {
		res := h.get(b, path)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/signin" {
			t.Errorf("GET %s without a session: %s to %q, want 303 to /signin", path, res.Status, res.Header.Get("Location"))
		}
	}
	// A made-up cookie is no session.
	u, _ := url.Parse(h.srv.URL)
	b.Jar.SetCookies(u, []*http.Cookie{{Name: console.CookieName + "_" + u.Port(), Value: "forged"}})
	if res := h.get(b, "/"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("forged cookie: %s, want 303", res.Status)
	}
	if res := h.get(b, "/signin"); res.StatusCode != http.StatusOK || !strings.Contains(res.body, "staydown console --dir") {
		t.Errorf("sign-in page: %s\n%s", res.Status, res.body)
	}
}

func TestWritesNeedCSRFToken(t *testing.T) {
	h := newHarness(t, protocol.RolePlatform)
	id := protocol.IDOf([]byte("ab")).String()
	h.backend.SetNotices(api.NoticeView{ID: id, From: "nru", To: "pfa", State: "open", Category: "graphic-violence", Issued: "2026-01-01T00:00:00Z"})
	b := h.signIn(adminToken)
	page := h.get(b, "/inbox/notice?id="+id)
	token := csrfOf(t, page.body)

	form := url.Values{"id": {id}, "status": {"removed"}}
	for name, csrf := range map[string]string{"none": "", "wrong": "x" + token[1:]} {
		f := url.Values{"id": {id}, "status": {"removed"}}
		if csrf != "" {
			f.Set("csrf", csrf)
		}
		if res := h.post(b, "/inbox/reply", f); res.StatusCode != http.StatusForbidden || !strings.Contains(res.body, "CSRF") {
			t.Errorf("reply with %s CSRF token: %s", name, res.Status)
		}
	}
	// Without a session, the right token is no help either.
	form.Set("csrf", token)
	if res := h.post(h.browser(), "/inbox/reply", form); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("reply without a session: %s, want 401", res.Status)
	}
	if n := len(h.backend.NoticeRequests()); n != 0 {
		t.Fatalf("refused writes reached the node: %d requests", n)
	}

	res := h.post(b, "/inbox/reply", form)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("reply with the CSRF token: %s\n%s", res.Status, res.body)
	}
	reqs := h.backend.NoticeRequests()
	if len(reqs) != 1 {
		t.Fatalf("node got %d requests, want 1", len(reqs))
	}
	if got, ok := reqs[0].(api.ReplyRequest); !ok || got.Notice != id || got.Status != "removed" {
		t.Errorf("node got %#v", reqs[0])
	}
	// The next page says what happened, once.
	if page := h.get(b, res.Header.Get("Location")); !strings.Contains(page.body, "Replied removed.") {
		t.Error("no confirmation after the reply")
	}

	// Signing out ends the session.
	if res := h.post(b, "/signout", url.Values{"csrf": {token}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %s", res.Status)
	}
	if res := h.get(b, "/"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("after sign-out: %s, want 303 to sign in", res.Status)
	}
}

func TestReadOnlySessionHasNoWrites(t *testing.T) {
	h := newHarness(t, protocol.RoleReferral)
	readTok, _, err := tokens.Add(h.dir, tokens.Read, "dashboard", h.clock.now())
	if err != nil {
		t.Fatal(err)
	}
	h.clock.add(2 * tokens.CheckEvery) // the keeper reads api.tokens again
	id := protocol.IDOf([]byte("cd")).String()
	h.backend.SetNotices(api.NoticeView{ID: id, From: "pfa", To: "nru", State: "open", Category: "graphic-violence", Issued: "2026-01-01T00:00:00Z"})
	b := h.signIn(readTok)
	page := h.get(b, "/notices")
	if page.StatusCode != http.StatusOK {
		t.Fatalf("notices: %s", page.Status)
	}
	if strings.Contains(page.body, `action="/notices"`) || strings.Contains(page.body, "Withdraw") {
		t.Error("a read-only session is shown write controls")
	}
	token := csrfOf(t, page.body) // the sign-out form's
	res := h.post(b, "/notices", url.Values{"csrf": {token}, "to": {"pfa"}, "category": {"graphic-violence"}, "basis": {"x"}})
	if res.StatusCode != http.StatusForbidden || !strings.Contains(res.body, "scope publish") {
		t.Errorf("write from a read-only session: %s", res.Status)
	}
	if n := len(h.backend.NoticeRequests()); n != 0 {
		t.Errorf("a read-only session's write reached the node")
	}
	// Read and match are disjoint, as in the API.
	if res := h.get(b, "/match"); res.StatusCode != http.StatusForbidden {
		t.Errorf("match from a read session: %s, want 403", res.Status)
	}
	// Revoking the token ends the session.
	if _, err := tokens.Revoke(h.dir, "dashboard"); err != nil {
		t.Fatal(err)
	}
	h.clock.add(2 * tokens.CheckEvery)
	if res := h.get(b, "/notices"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("after the token's revocation: %s, want 303 to sign in", res.Status)
	}
}

func TestMarkupRendersAsText(t *testing.T) {
	h := newHarness(t, protocol.RolePlatform)
	evil := `<script>alert(1)</script><img src=x onerror=alert(2)>`
	id := protocol.IDOf([]byte("ef")).String()
	h.backend.SetNotices(api.NoticeView{ID: id, From: "nru", To: "pfa", State: "open", Category: evil, LegalBasis: evil,
		Issued: "2026-01-01T00:00:00Z", Sealed: true, Details: &api.NoticeDetails{URLs: []string{"javascript:alert(3)", "https://x.example/" + evil}, Text: evil}})
	b := h.signIn(adminToken)
	for _, path := range []string{"/inbox", "/inbox/notice?id=" + id} {
		page := h.get(b, path)
		if page.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s", path, page.Status)
		}
		if strings.Contains(page.body, "<script>alert") || strings.Contains(page.body, "<img src=x") {
			t.Errorf("%s renders markup from the node's data", path)
		}
		if !strings.Contains(page.body, html.EscapeString("<script>alert(1)</script>")) {
			t.Errorf("%s does not show the category as text", path)
		}
	}
	if page := h.get(b, "/inbox/notice?id="+id); strings.Contains(page.body, `href="javascript:`) {
		t.Error("a sealed URL became a javascript: link")
	}
}

func TestComposeShowsFieldErrors(t *testing.T) {
	h := newHarness(t, protocol.RoleReferral)
	b := h.signIn(adminToken)
	token := csrfOf(t, h.get(b, "/notices").body)
	res := h.post(b, "/notices", url.Values{"csrf": {token}, "to": {"pfa"}, "category": {"graphic-violence"}, "basis": {"art. 3"},
		"signals": {"sha256:nothex"}, "deadline": {"1h"}})
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad signal: %s", res.Status)
	}
	if !regexp.MustCompile(`id="signals-err">signals\[0\]\.value: [^<]*`).MatchString(res.body) {
		t.Errorf("no error beside the signals field:\n%s", res.body)
	}
	if !strings.Contains(res.body, ">sha256:nothex</textarea>") {
		t.Error("the form lost what the user typed")
	}
	if n := len(h.backend.NoticeRequests()); n != 0 {
		t.Errorf("an invalid notice reached the node")
	}
}

func TestMatchTester(t *testing.T) {
	h := newHarness(t, protocol.RolePlatform)
	b := h.signIn(adminToken)
	res := h.get(b, "/match?type=sha256&value=zz")
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(res.body, `id="value-err"`) {
		t.Errorf("bad hash: %s", res.Status)
	}
	res = h.get(b, "/match?type=sha256&value="+strings.Repeat("0", 64))
	if res.StatusCode != http.StatusOK || !strings.Contains(res.body, `id="verdict">none<`) {
		t.Errorf("unknown hash: %s\n%s", res.Status, res.body)
	}
}

// TestFirstLoadIsSmall: a page and everything it loads (stylesheet,
// script, icon) stay far under the 200 KB.
func TestFirstLoadIsSmall(t *testing.T) {
	h := newHarness(t, protocol.RolePlatform)
	b := h.signIn(adminToken)
	page := h.get(b, "/inbox")
	total := len(page.body)
	for _, ref := range regexp.MustCompile(`(?:href|src)="(/assets/[^"]+)"`).FindAllStringSubmatch(page.body, -1) {
		res := h.get(b, ref[1])
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s", ref[1], res.Status)
		}
		total += len(res.body)
	}
	t.Logf("first load of /inbox: %d bytes", total)
	if total > 50<<10 {
		t.Errorf("first load %d bytes, want under 50 KB (the limit is 200 KB)", total)
	}
}

func TestTransparencyPageAndDownloads(t *testing.T) {
	h := newHarness(t, protocol.RolePlatform)
	tta := func(s float64) *float64 { return &s }
	h.backend.SetReport(report.Report{Federation: "staydown", Members: []report.Member{
		{Name: "pfa", Role: protocol.RolePlatform, Figures: report.Figures{NoticesReceived: 4, AnsweredWithinDeadline: 1, AnsweredLate: 2, Overdue: 1}},
		{Name: "=cmd|evil", Role: protocol.RolePlatform, Figures: report.Figures{NoticesReceived: 2, AnsweredWithinDeadline: 2}},
		{Name: "nru", Role: protocol.RoleReferral, Figures: report.Figures{NoticesIssued: 6, Signals: 3}},
	}})
	h.backend.SetNotices(
		api.NoticeView{ID: protocol.IDOf([]byte("1")).String(), State: "actioned", Issued: "2026-01-01T00:00:00Z", TimeToActionS: tta(600)},
		api.NoticeView{ID: protocol.IDOf([]byte("2")).String(), State: "actioned", Issued: "2026-01-01T00:00:00Z", TimeToActionS: tta(5000)},
		api.NoticeView{ID: protocol.IDOf([]byte("3")).String(), State: "open", Issued: "2026-01-01T00:00:00Z"})
	b := h.signIn(adminToken)
	page := h.get(b, "/transparency")
	if page.StatusCode != http.StatusOK {
		t.Fatalf("transparency: %s\n%s", page.Status, page.body)
	}
	// Platforms ranked by share answered in time: the 100% one first.
	ranked := regexp.MustCompile(`<tr><th scope="row">([^<]+)</th><td>\d+</td><td>\d+</td><td>\d+</td><td>\d+</td><td>(\d+%)</td>`).FindAllStringSubmatch(page.body, -1)
	if len(ranked) != 2 || ranked[0][1] != "=cmd|evil" || ranked[0][2] != "100%" || ranked[1][1] != "pfa" || ranked[1][2] != "25%" {
		t.Errorf("compliance table: %q", ranked)
	}
	if !strings.Contains(page.body, "2 notice(s) acted on: ≤ 15 min 1, ≤ 30 min 0, ≤ 1 h 0, ≤ 2 h 1, ≤ 24 h 0, &gt; 24 h 0.") {
		t.Errorf("chart caption wrong:\n%s", page.body)
	}
	if n := strings.Count(page.body, `<rect class="bar"`); n != 6 {
		t.Errorf("%d bars, want 6", n)
	}

	js := h.get(b, "/transparency.json?period=7d")
	var rep report.Report
	if err := json.Unmarshal([]byte(js.body), &rep); err != nil || len(rep.Members) != 3 || rep.SinceMs == 0 {
		t.Errorf("JSON: %v %+v", err, rep)
	}
	csvRes := h.get(b, "/transparency.csv")
	rows, err := csv.NewReader(strings.NewReader(csvRes.body)).ReadAll()
	if err != nil || len(rows) != 4 || rows[0][0] != "member" || rows[2][0] != "'=cmd|evil" {
		t.Errorf("CSV: %v %q", err, rows)
	}
	if bad := h.get(b, "/transparency?period=1y"); bad.StatusCode != http.StatusBadRequest || !strings.Contains(bad.body, `period &#34;1y&#34;`) {
		t.Errorf("unknown period: %s", bad.Status)
	}
}

func TestMatchFileUpload(t *testing.T) {
	h := newHarness(t, protocol.RolePlatform)
	b := h.signIn(adminToken)
	token := csrfOf(t, h.get(b, "/match").body)
	upload := func(csrf string, content []byte) response {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		if csrf != "" {
			mw.WriteField("csrf", csrf)
		}
		fw, _ := mw.CreateFormFile("file", "x<b>.png")
		fw.Write(content)
		mw.Close()
		res, err := b.Post(h.srv.URL+"/match/file", mw.FormDataContentType(), &body)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		data, _ := io.ReadAll(res.Body)
		return response{res, string(data)}
	}
	if res := upload("", []byte("bytes")); res.StatusCode != http.StatusForbidden {
		t.Errorf("upload without CSRF token: %s", res.Status)
	}
	if n := len(h.backend.Matched()); n != 0 {
		t.Errorf("a refused upload reached the node")
	}
	res := upload(token, []byte("not an image"))
	sum := sha256.Sum256([]byte("not an image"))
	if res.StatusCode != http.StatusOK || !strings.Contains(res.body, "sha256:"+hex.EncodeToString(sum[:])) ||
		!strings.Contains(res.body, `id="verdict">none<`) || !strings.Contains(res.body, "x&lt;b&gt;.png") {
		t.Errorf("upload: %s\n%s", res.Status, res.body)
	}
	if res := upload(token, nil); res.StatusCode != http.StatusBadRequest || !strings.Contains(res.body, "is empty") {
		t.Errorf("empty file: %s", res.Status)
	}
}

func TestEventsStreamNeedsSession(t *testing.T) {
	h := newHarness(t, protocol.RolePlatform)
	b := h.signIn(adminToken)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.srv.URL+"/events", nil)
	res, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	line, _ := bufio.NewReader(res.Body).ReadString('\n')
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" || line != ": keep-alive\n" {
		t.Errorf("events: %s %q, first line %q", res.Status, res.Header.Get("Content-Type"), line)
	}
	req, _ = http.NewRequest(http.MethodGet, h.srv.URL+"/events", nil)
	req.Header.Set("Last-Event-ID", "x")
	if res, err := b.Do(req); err != nil || res.StatusCode != http.StatusBadRequest {
		t.Errorf("bad Last-Event-ID: %v %v", res.Status, err)
	}
}
