package node

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/staydown/staydown/node/console"
	"github.com/staydown/staydown/node/notices"
	"github.com/staydown/staydown/node/tokens"
)

// BenchmarkConsolePages: the server time of each page of the web console
// (node/console) of a platform holding 10,000 notices with their ~30,000
// replies and, with STAYDOWN_BENCH_CONSOLE_ENTRIES=N, N more entries
// (additions) in the store: over loopback HTTP, rendering and the
// transfer of the body included. Target: under 100 ms each with
// N = 1,000,000. The transparency page's first view, which waits for
// the report, is logged apart.
//
//	STAYDOWN_BENCH_CONSOLE_ENTRIES=1000000 go test -run '^$' -bench ConsolePages -benchtime 20x ./node/
func BenchmarkConsolePages(b *testing.B) {
	filler := 0
	if v := os.Getenv("STAYDOWN_BENCH_CONSOLE_ENTRIES"); v != "" {
		var err error
		if filler, err = strconv.Atoi(v); err != nil {
			b.Fatalf("STAYDOWN_BENCH_CONSOLE_ENTRIES=%q: %v", v, err)
		}
	}
	n, _ := noticeBench(b, 10_000, filler)
	st, _ := n.Status(b.Context())
	b.Logf("%d entries stored", st.Entries)
	views, err := n.ListNotices(b.Context(), notices.Query{Box: "in"})
	if err != nil || len(views) == 0 {
		b.Fatal(err)
	}
	srv := httptest.NewServer(console.New(n, tokens.Static("bench-token"), slog.New(slog.DiscardHandler), console.Options{}))
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/console/tickets", nil)
	req.Header.Set("Authorization", "Bearer bench-token")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	var t console.Ticket
	json.NewDecoder(res.Body).Decode(&t)
	res.Body.Close()
	if res, err = browser.Get(srv.URL + t.Path); err != nil || res.StatusCode != http.StatusOK {
		b.Fatalf("sign-in: %v %v", res.Status, err)
	}
	res.Body.Close()
	for _, p := range []struct{ name, path string }{
		{"overview", "/"},
		{"inbox-open", "/inbox"},
		{"inbox-all", "/inbox?show=all"},
		{"notice", "/inbox/notice?id=" + views[0].ID},
		{"match", "/match?type=sha256&value=" + "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"transparency", "/transparency"},
		{"feed", "/feed"},
	} {
		if p.name == "transparency" {
			// The first view waits for the report of every entry
			// (console/report.go); later ones get the figures kept.
			start := time.Now()
			res, err := browser.Get(srv.URL + p.path)
			if err != nil {
				b.Fatal(err)
			}
			res.Body.Close()
			b.Logf("first transparency view (the report computed): %v", time.Since(start).Round(time.Millisecond))
		}
		b.Run(p.name, func(b *testing.B) {
			size := 0
			for b.Loop() {
				res, err := browser.Get(srv.URL + p.path)
				if err != nil {
					b.Fatal(err)
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					b.Fatalf("%s: %s\n%s", p.path, res.Status, body)
				}
				size = len(body)
			}
			b.ReportMetric(float64(size), "bytes/page")
		})
	}
}
