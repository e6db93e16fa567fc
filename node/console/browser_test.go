package console_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/staydown/staydown/internal/browsertest"
	"github.com/staydown/staydown/node/localfed"
)

// TestBrowser drives the consoles of a real local federation (a referral
// unit and two platforms: real nodes, libp2p, bbolt, the HTTP server) in
// headless Chromium. One browser and one federation serve every subtest:
// each costs seconds to start. The subtests run in order and build on
// each other (the notice issued in one is answered in the next).
//
// Screenshots of every page, at 1280 and 390 px wide, are saved as test
// artifacts (go test -artifacts; -outputdir says where): every page at
// 1280 px wide, some at 390 px too.
func TestBrowser(t *testing.T) {
	chromium := browsertest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	fed, err := localfed.Create(t.TempDir(), "console-test", localfed.Default, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fed.Close() })
	if err := fed.Start(ctx, slog.LevelWarn); err != nil {
		t.Fatal(err)
	}
	if err := fed.WaitMesh(ctx); err != nil {
		t.Fatal(err)
	}
	nru, pfa, pfb := newConsoleNode(t, fed, 0), newConsoleNode(t, fed, 1), newConsoleNode(t, fed, 2)

	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1280, 900))...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	// One tab per node, each in its own browser context (its own
	// cookies), as two people at two desks.
	platform := newTab(t, browser)
	referral := newTab(t, browser)
	anon := newTab(t, browser) // never signed in

	t.Run("sign in through the one-time link", func(t *testing.T) {
		for _, s := range []struct {
			tab  *tab
			node *consoleNode
		}{{platform, pfa}, {referral, nru}} {
			link := s.node.ticket(t)
			s.tab.do(t, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("h1")))
			loc := run(t, s.tab, chromedp.Location())
			h1 := s.tab.text(t, "h1")
			if loc != s.node.base+"/" || h1 != "Overview" {
				t.Errorf("after the sign-in link: at %s, h1 %q; want %s/ and Overview", loc, h1, s.node.base)
			}
			if cookies := run(t, s.tab, chromedp.Evaluate[string](`document.cookie`)); strings.Contains(cookies, "staydown_session") {
				t.Errorf("the session cookie is readable by scripts: %q", cookies)
			}
			// The link was good once.
			anon.do(t, chromedp.Navigate(link))
			if msg := anon.text(t, ".error"); !strings.Contains(msg, "used already") {
				t.Errorf("second use of the link: %q", msg)
			}
		}
	})

	t.Run("every page renders without console errors", func(t *testing.T) {
		pages := []struct {
			tab  *tab
			node *consoleNode
			path string
			h1   string
		}{
			{platform, pfa, "/", "Overview"},
			{platform, pfa, "/feed", "Live feed"},
			{platform, pfa, "/inbox", "Inbox"},
			{platform, pfa, "/match", "Match tester"},
			{platform, pfa, "/transparency", "Transparency"},
			{referral, nru, "/", "Overview"},
			{referral, nru, "/notices", "Notices"},
		}
		for _, p := range pages {
			p.tab.errors() // forget what came before
			p.tab.do(t, chromedp.Navigate(p.node.base+p.path), chromedp.WaitVisible(chromedp.CSS("h1")))
			if h1 := p.tab.text(t, "h1"); h1 != p.h1 {
				t.Errorf("%s%s: h1 %q, want %q", p.node.name, p.path, h1, p.h1)
			}
			name := p.node.name + strings.ReplaceAll(strings.TrimSuffix(p.path, "/"), "/", "-")
			p.tab.screenshots(t, name)
			// At a phone's 390 px nothing sticks out sideways: wide tables
			// scroll in their own box.
			p.tab.do(t, chromedp.EmulateViewport(390, 900))
			if w := p.tab.eval(t, `String(document.documentElement.scrollWidth)`); w != "390" {
				t.Errorf("%s%s at 390 px: the page is %s px wide", p.node.name, p.path, w)
			}
			if p.path == "/inbox" || p.path == "/" {
				p.tab.screenshots(t, name, 390)
			}
			p.tab.do(t, chromedp.EmulateViewport(1280, 900))
			if errs := p.tab.errors(); len(errs) > 0 {
				t.Errorf("%s%s: console errors:\n%s", p.node.name, p.path, strings.Join(errs, "\n"))
			}
		}
	})

	evil := `<script>alert("x")</script><img src=x onerror=alert(1)>`
	var noticeID string
	t.Run("a notice appears live in the inbox and counts down", func(t *testing.T) {
		// The platform's inbox is open, its live stream connected.
		platform.do(t, chromedp.Navigate(pfa.base+"/inbox"))
		platform.waitText(t, "[data-live-status]", "Live:")

		// The referral unit composes a notice in its console.
		referral.do(t, chromedp.Navigate(nru.base+"/notices"), chromedp.WaitVisible(chromedp.ID("to")),
			chromedp.SetValue(chromedp.ID("to"), "platform-a"),
			chromedp.SetValue(chromedp.ID("urls"), "https://video.example/watch?v=1&x="+evil),
			chromedp.SetValue(chromedp.ID("text"), "sealed text "+evil),
			chromedp.SetValue(chromedp.ID("basis"), "art. 3 TCO "+evil),
			chromedp.SetValue(chromedp.ID("deadline"), "1h"),
			chromedp.Click(chromedp.CSS(`form.compose button[type=submit]`)))
		flash := referral.waitText(t, ".flash", "Issued notice")
		noticeID = regexp.MustCompile(`[0-9a-f]{68}`).FindString(flash)
		if noticeID == "" {
			t.Fatalf("no notice id in %q", flash)
		}

		row := fmt.Sprintf(`tr[data-notice="%s"] .countdown`, noticeID)
		first := platform.waitText(t, row, "left")
		s1 := countdownSeconds(t, first)
		if s1 > 3600 || s1 < 3500 {
			t.Errorf("countdown %q: want about an hour", first)
		}
		// The countdown runs: it shows less within a few seconds.
		platform.waitJS(t, fmt.Sprintf(`(() => { const m = document.querySelector(%q).textContent.match(/(\d+)m (\d+)s left/); return m !== null && 60*Number(m[1]) + Number(m[2]) < %d; })()`, row, s1))
		platform.screenshots(t, "platform-a-inbox-live")
	})

	t.Run("countdowns turn amber, then red and overdue", func(t *testing.T) {
		soon := nru.issue(t, "platform-a", "10m")
		late := nru.issue(t, "platform-a", "2s")
		sel := func(id string) string { return fmt.Sprintf(`tr[data-notice="%s"] .countdown`, id) }
		platform.waitText(t, sel(soon), "left")
		if class := platform.eval(t, fmt.Sprintf(`document.querySelector(%q).className`, sel(soon))); !strings.Contains(class, "due-soon") {
			t.Errorf("10 minutes left: class %q, want due-soon", class)
		}
		platform.waitText(t, sel(late), "overdue by")
		// Passing the deadline refreshes the list: its state says so too.
		platform.waitText(t, fmt.Sprintf(`tr[data-notice="%s"] .state`, late), "overdue")
		if class := platform.eval(t, fmt.Sprintf(`document.querySelector(%q).className`, sel(late))); !strings.Contains(class, "overdue") {
			t.Errorf("past the deadline: class %q, want overdue", class)
		}
		platform.screenshots(t, "platform-a-inbox-deadlines")
	})

	t.Run("replying from the inbox changes the state on the referral console", func(t *testing.T) {
		if noticeID == "" {
			t.Fatal("no notice: the subtest that issues it failed")
		}
		referral.do(t, chromedp.Navigate(nru.base+"/notices?show=all"))
		referral.waitText(t, "[data-live-status]", "Live:")

		platform.do(t, chromedp.Click(chromedp.CSS(fmt.Sprintf(`tr[data-notice="%s"] a`, noticeID))), chromedp.WaitVisible(chromedp.ID("reply-h")))
		// The sealed details, opened, with their markup as text.
		urls := platform.text(t, "ul.urls")
		basis := platform.eval(t, `[...document.querySelectorAll("dt")].find(d => d.textContent === "Legal basis").nextElementSibling.textContent`)
		made := platform.eval(t, `String(document.querySelectorAll("main script, main img").length)`)
		if !strings.Contains(urls, evil) || !strings.Contains(basis, evil) || made != "0" {
			t.Errorf("markup in a notice: URLs %q, basis %q, %s script or img elements made of it", urls, basis, made)
		}
		platform.screenshots(t, "platform-a-notice", 1280, 390)
		platform.do(t, chromedp.Click(chromedp.CSS(`button[value="removed"]`)))
		platform.waitText(t, ".flash", "Replied removed.")

		// The referral unit's outbox shows it, without a reload.
		referral.waitText(t, fmt.Sprintf(`tr[data-notice="%s"]`, noticeID), "actioned")
		referral.screenshots(t, "nru-demo-notices-replied")
	})

	t.Run("a write without the CSRF token is refused", func(t *testing.T) {
		id := nru.issue(t, "platform-a", "1h")
		platform.do(t, chromedp.Navigate(pfa.base+"/inbox"))
		platform.waitText(t, fmt.Sprintf(`tr[data-notice="%s"]`, id), "open") // gossip brought it
		platform.do(t, chromedp.Navigate(pfa.base+"/inbox/notice?id="+id), chromedp.WaitVisible(chromedp.ID("reply-h")))
		platform.eval(t, `document.querySelector('form.reply input[name=csrf]').remove(), ""`)
		platform.do(t, chromedp.Click(chromedp.CSS(`button[value="received"]`)))
		platform.waitText(t, ".error", "CSRF token is missing")
		platform.errors() // the 403 is logged as a failed load: expected here
		if st := nru.noticeState(t, id); st != "open" {
			t.Errorf("the refused reply changed the notice: %s", st)
		}
	})

	t.Run("match tester: block for a published image, none for another", func(t *testing.T) {
		img := pngOf(t, 1)
		file := filepath.Join(t.TempDir(), "upload.png")
		if err := os.WriteFile(file, img, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(img)
		hash := hex.EncodeToString(sum[:])
		// Two members attest it: the default policy blocks at two.
		nru.add(t, hash, "graphic-violence", "other:"+evil)
		pfb.add(t, hash, "graphic-violence")
		other := sha256.Sum256(pngOf(t, 2))
		cases := []struct {
			what, want string
			steps      []chromedp.Action[chromedp.Void]
		}{
			{"the published image, dropped as a file", "block", []chromedp.Action[chromedp.Void]{chromedp.WaitVisible(chromedp.ID("file")),
				chromedp.SetUploadFiles(chromedp.ID("file"), []string{file}), chromedp.Click(chromedp.CSS(`form.match-file button`))}},
			{"another image's hash, pasted", "none", []chromedp.Action[chromedp.Void]{chromedp.WaitVisible(chromedp.ID("value")),
				chromedp.SetValue(chromedp.ID("type"), "sha256"), chromedp.SetValue(chromedp.ID("value"), hex.EncodeToString(other[:])),
				chromedp.Click(chromedp.CSS(`form.match button`))}},
		}
		for _, c := range cases {
			var verdict string
			for deadline := time.Now().Add(10 * time.Second); ; {
				platform.do(t, chromedp.Navigate(pfa.base+"/match"))
				platform.do(t, c.steps...)
				verdict = platform.waitJS(t, `(() => { const e = document.querySelector("#verdict"); return e !== null && e.textContent; })()`)
				// Gossip brings the attestations: until both are here the verdict is weaker.
				if verdict == c.want || time.Now().After(deadline) {
					break
				}
				time.Sleep(200 * time.Millisecond) // between page loads; bounded by deadline
			}
			if verdict != c.want {
				t.Errorf("verdict for %s: %q, want %q", c.what, verdict, c.want)
			}
			if c.want == "block" {
				labels := platform.text(t, "main table")
				made := platform.eval(t, `String(document.querySelectorAll("main img, main script").length)`)
				if !strings.Contains(labels, "<img src=x onerror=alert(1)>") || made != "0" {
					t.Errorf("a label's markup: table text %q, %s elements made of it", labels, made)
				}
				platform.screenshots(t, "platform-a-match-block")
			}
		}
	})

	t.Run("transparency chart renders", func(t *testing.T) {
		platform.errors()
		// The page shows the last figures computed while newer ones are
		// (report.go): reload until they count the reply.
		var bars, caption string
		for deadline := time.Now().Add(10 * time.Second); ; {
			platform.do(t, chromedp.Navigate(pfa.base+"/transparency"), chromedp.WaitVisible(chromedp.ID("tta-chart")))
			bars = platform.eval(t, `String(document.querySelectorAll("#tta-chart rect.bar").length)`)
			caption = platform.text(t, "#chart-cap")
			if strings.Contains(caption, "1 notice(s) acted on") || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond) // between page loads; bounded by deadline
		}
		if bars != "6" || !strings.Contains(caption, "1 notice(s) acted on: ≤ 15 min 1") {
			t.Errorf("chart: %s bars, caption %q", bars, caption)
		}
		platform.screenshots(t, "platform-a-transparency")
		if errs := platform.errors(); len(errs) > 0 {
			t.Errorf("console errors: %s", strings.Join(errs, "\n"))
		}
	})

	t.Run("a page without a session sends to sign-in", func(t *testing.T) {
		anon.do(t, chromedp.Navigate(pfa.base+"/inbox"), chromedp.WaitVisible(chromedp.CSS("h1")))
		if loc := run(t, anon, chromedp.Location()); loc != pfa.base+"/signin" {
			t.Errorf("without a session: at %s, want %s/signin", loc, pfa.base)
		}
	})
}

// consoleNode is one node of the federation, reached as a user would:
// its console in the browser, its API with its token for what the test
// sets up.
type consoleNode struct {
	name, base, token string
}

func newConsoleNode(t *testing.T, fed *localfed.Federation, i int) *consoleNode {
	t.Helper()
	cfg := fed.Configs[i]
	tok, err := cfg.Token()
	if err != nil {
		t.Fatal(err)
	}
	return &consoleNode{name: cfg.Name, base: "http://" + fed.Nodes[i].APIAddr().String(), token: tok}
}

func (n *consoleNode) call(t *testing.T, method, path string, in, out any) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, n.base+path, body)
	req.Header.Set("Authorization", "Bearer "+n.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		t.Fatalf("%s %s on %s: %s %s", method, path, n.name, res.Status, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatal(err)
		}
	}
}

// ticket is a one-time sign-in link, as `staydown console` prints it.
func (n *consoleNode) ticket(t *testing.T) string {
	var tk struct{ Path string }
	n.call(t, http.MethodPost, "/console/tickets", nil, &tk)
	return n.base + tk.Path
}

func (n *consoleNode) issue(t *testing.T, to, deadline string) string {
	var out struct{ ID string }
	n.call(t, http.MethodPost, "/v1/notices", map[string]any{"to": to, "category": "graphic-violence", "basis": "art. 3",
		"urls": []string{"https://video.example/1"}, "deadline": deadline}, &out)
	return out.ID
}

func (n *consoleNode) noticeState(t *testing.T, id string) string {
	var v struct{ State string }
	n.call(t, http.MethodGet, "/v1/notices?id="+id, nil, &v)
	return v.State
}

func (n *consoleNode) add(t *testing.T, sha string, labels ...string) {
	n.call(t, http.MethodPost, "/v1/additions", map[string]any{"signals": []map[string]string{{"type": "sha256", "value": sha}}, "labels": labels}, nil)
}

// pngOf is a small PNG, different for each seed.
func pngOf(t *testing.T, seed byte) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for y := range 64 {
		for x := range 64 {
			img.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 4), seed * 90, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// countdownSeconds reads "59m 58s left" (or "1h 02m left") as seconds.
func countdownSeconds(t *testing.T, s string) int {
	t.Helper()
	m := regexp.MustCompile(`^(?:(\d+)h )?(?:(\d+)m )?(?:(\d+)s )?left$`).FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		t.Fatalf("countdown %q is not a time left", s)
	}
	n := 0
	for i, unit := range []int{3600, 60, 1} {
		if m[i+1] != "" {
			v, _ := strconv.Atoi(m[i+1])
			n += v * unit
		}
	}
	return n
}

// tab is a browser tab in its own browser context (its own cookies),
// collecting the console errors of its pages and accepting their
// confirmation dialogs.
type tab struct {
	ctx context.Context

	mu   sync.Mutex
	errs []string
}

func newTab(t *testing.T, browser context.Context) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	tb := &tab{ctx: ctx}
	if err := chromedp.Do(ctx); err != nil { // opens the tab: later runs may then take timeouts
		t.Fatal(err)
	}
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				tb.mu.Lock()
				tb.errs = append(tb.errs, fmt.Sprintf("%s: %s (%s)", m.Type, m.Text, m.URL))
				tb.mu.Unlock()
			}
		}
	}()
	return tb
}

// errors returns the errors recorded since the last call.
func (tb *tab) errors() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	e := tb.errs
	tb.errs = nil
	return e
}

// run runs one action, bounded, and returns its value.
func run[T any](t *testing.T, tb *tab, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (tb *tab) do(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	run(t, tb, chromedp.Steps(steps...))
}

func (tb *tab) text(t *testing.T, css string) string {
	t.Helper()
	return run(t, tb, chromedp.Text(chromedp.CSS(css)))
}

func (tb *tab) eval(t *testing.T, js string) string {
	t.Helper()
	return run(t, tb, chromedp.Evaluate[string](js))
}

// waitJS waits (bounded) until the expression is truthy and returns its
// value as a string. A navigation under way (a form posted) ends a poll:
// it starts again on the new page.
func (tb *tab) waitJS(t *testing.T, js string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	for {
		v, err := chromedp.Run(ctx, chromedp.Poll[any](js, chromedp.WithPollingInterval(100*time.Millisecond)))
		if err == nil {
			return fmt.Sprint(v)
		}
		if ctx.Err() != nil {
			text, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`document.body.innerText`))
			t.Fatalf("waiting for %s: %v; the page says:\n%s", js, err, text)
		}
		time.Sleep(50 * time.Millisecond) // the new page loads; bounded by ctx
	}
}

// waitText waits (bounded) until the text of the element css selects
// contains want, and returns the text. Lists refresh themselves: the
// text is read in the same evaluation as the check.
func (tb *tab) waitText(t *testing.T, css, want string) string {
	t.Helper()
	return tb.waitJS(t, fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e !== null && e.textContent.includes(%q) && e.textContent; })()`, css, want))
}

// screenshots saves the page as PNG artifacts, at each width (px; 1280
// alone if none).
func (tb *tab) screenshots(t *testing.T, name string, widths ...int64) {
	t.Helper()
	dir := t.ArtifactDir()
	if len(widths) == 0 {
		widths = []int64{1280}
	}
	for _, w := range widths {
		tb.do(t, chromedp.EmulateViewport(w, 900))
		shot := run(t, tb, chromedp.FullScreenshot(100))
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d.png", name, w)), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tb.do(t, chromedp.EmulateViewport(1280, 900))
}
