package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/staydown/staydown/node/api"
)

// apiClient calls a real node's HTTP API with its token.
type apiClient struct {
	t     *testing.T
	base  string
	token string
}

func (c apiClient) call(method, path string, body any, out any) int {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	if e, ok := out.(*api.ErrorBody); ok && resp.StatusCode >= 300 {
		if err := json.Unmarshal(data, e); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return resp.StatusCode
}

// TestWatchlistRefsOverHTTP: #13 item 12 on a real node through its HTTP
// API. Signals are watched with the platform's refs; GET /v1/watchlist
// pages them in key order; an alert (its log line, GET /v1/alerts)
// carries the refs the watched signal had, so that it says which upload
// to take down; a ref is removed alone, a signal with its last ref; bad
// refs and a ref too many are refused with nothing changed; all of it
// outlives a restart.
func TestWatchlistRefsOverHTTP(t *testing.T) {
	f := newFederation(t, "pa=platform")
	var logs syncBuffer
	start := func() *Node {
		log := slog.New(slog.NewTextHandler(io.MultiWriter(&logs, testWriter{t}), nil)).With("node", "pa")
		n, err := StartWith(context.Background(), f.cfgs["pa"], log, withAPI(log))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	pa := start()
	t.Cleanup(func() {
		if err := pa.store.Check(); err != nil {
			t.Errorf("store: %v", err)
		}
		pa.Close()
	})
	token, err := f.cfgs["pa"].Token()
	if err != nil {
		t.Fatal(err)
	}
	c := apiClient{t, "http://" + pa.APIAddr().String(), token}
	shaA, shaB := fmt.Sprintf("%064x", 1), fmt.Sprintf("%064x", 2)
	url := "https://video.example/watch?v=hosted"

	var added api.WatchResult
	if code := c.call("POST", "/v1/watchlist", api.WatchRequest{Signals: []api.WatchSignal{
		{Type: "sha256", Value: shaA, Ref: "upload-1"}, {Type: "sha256", Value: shaA, Ref: "https://host.example/v/2 copy"},
		{Type: "sha256", Value: shaB}, {Type: "url", Value: url, Ref: "upload-3"}, {Type: "sha256", Value: shaA, Ref: "upload-1"},
	}}, &added); code != 200 || added.Added != 3 || added.Known != 2 || added.RefsAdded != 3 || added.Total != 3 {
		t.Fatalf("POST /v1/watchlist: %d %+v", code, added)
	}

	// Key order: the sha256 tag before the url tag, values in byte order.
	want := []api.WatchedItem{
		{Type: "sha256", Value: shaA, Refs: []string{"upload-1", "https://host.example/v/2 copy"}},
		{Type: "sha256", Value: shaB, Refs: []string{}},
		{Type: "url", Value: url, Refs: []string{"upload-3"}},
	}
	list := func() []api.WatchedItem {
		t.Helper()
		var all []api.WatchedItem
		after := ""
		for range 10 {
			var page api.Watchlist
			if code := c.call("GET", "/v1/watchlist?limit=2"+after, nil, &page); code != 200 || len(page.Signals) > 2 || page.Total != len(want) {
				t.Fatalf("GET /v1/watchlist: %d %+v", code, page)
			}
			all = append(all, page.Signals...)
			if page.Next == "" {
				return all
			}
			after = "&after=" + page.Next
		}
		t.Fatal("more than 10 pages")
		return nil
	}
	same := func(got, want []api.WatchedItem) bool {
		return slices.EqualFunc(got, want, func(a, b api.WatchedItem) bool {
			return a.Type == b.Type && a.Value == b.Value && slices.Equal(a.Refs, b.Refs)
		})
	}
	if got := list(); !same(got, want) {
		t.Fatalf("watchlist %+v, want %+v", got, want)
	}

	// An attestation of the hosted file: the alert names both uploads.
	publishAddition(t, pa, []string{"graphic-violence"}, mustParse(t, "sha256", shaA))
	var alerts api.AlertList
	if code := c.call("GET", "/v1/alerts", nil, &alerts); code != 200 || len(alerts.Alerts) != 1 ||
		!slices.Equal(alerts.Alerts[0].Refs, []string{"upload-1", "https://host.example/v/2 copy"}) {
		t.Fatalf("GET /v1/alerts: %d %+v", code, alerts)
	}
	if line := grepLine(logs.String(), "watchlist alert"); !strings.Contains(line, `refs="[upload-1 https://host.example/v/2 copy]"`) {
		t.Errorf("the alert's log line does not name the refs: %s", line)
	}

	// Bad refs, and a 33rd ref: 400, nothing changed.
	for _, tt := range []struct {
		sig  api.WatchSignal
		want string
	}{
		{api.WatchSignal{Type: "sha256", Value: shaB, Ref: "a\nb"}, `signals[1].ref: bad watch ref: "a\nb" holds the unprintable character U+000A`},
		{api.WatchSignal{Type: "sha256", Value: shaB, Ref: strings.Repeat("r", 513)}, "signals[1].ref: bad watch ref: 513 bytes, limit 512"},
	} {
		var e api.ErrorBody
		if code := c.call("POST", "/v1/watchlist", api.WatchRequest{Signals: []api.WatchSignal{{Type: "url", Value: url, Ref: "ok"}, tt.sig}}, &e); code != 400 || !strings.Contains(e.Error, tt.want) {
			t.Errorf("POST %+v: %d %+v, want 400 saying %s", tt.sig, code, e, tt.want)
		}
	}
	var many []api.WatchSignal
	for i := range 33 {
		many = append(many, api.WatchSignal{Type: "sha256", Value: shaB, Ref: fmt.Sprintf("copy-%d", i)})
	}
	var e api.ErrorBody
	if code := c.call("POST", "/v1/watchlist", api.WatchRequest{Signals: many}, &e); code != 400 || !strings.Contains(e.Error, `signals[32].ref: bad watch ref: sha256:`+shaB+` has 32 refs already, the most a signal may have: "copy-32" is one too many`) {
		t.Errorf("33 refs: %d %+v", code, e)
	}
	if got := list(); !same(got, want) {
		t.Fatalf("after refused requests: watchlist %+v, want %+v", got, want)
	}

	// One ref off; the url's last ref off takes the url off.
	var removed api.UnwatchResult
	if code := c.call("POST", "/v1/watchlist/remove", api.WatchRequest{Signals: []api.WatchSignal{
		{Type: "sha256", Value: shaA, Ref: "upload-1"}, {Type: "url", Value: url, Ref: "upload-3"}, {Type: "sha256", Value: shaB, Ref: "never"},
	}}, &removed); code != 200 || removed.Removed != 1 || removed.RefsRemoved != 1 || removed.Unknown != 1 || removed.Total != 2 {
		t.Fatalf("POST /v1/watchlist/remove: %d %+v", code, removed)
	}
	want = []api.WatchedItem{{Type: "sha256", Value: shaA, Refs: []string{"https://host.example/v/2 copy"}}, want[1]}

	if err := pa.Close(); err != nil {
		t.Fatal(err)
	}
	pa = start()
	c.base = "http://" + pa.APIAddr().String()
	if got := list(); !same(got, want) {
		t.Fatalf("after a restart: watchlist %+v, want %+v", got, want)
	}
	// The alert keeps the refs it was raised with.
	if code := c.call("GET", "/v1/alerts", nil, &alerts); code != 200 || len(alerts.Alerts) != 1 ||
		!slices.Equal(alerts.Alerts[0].Refs, []string{"upload-1", "https://host.example/v/2 copy"}) {
		t.Fatalf("after a restart: GET /v1/alerts: %d %+v", code, alerts)
	}
}

func grepLine(text, what string) string {
	for l := range strings.SplitSeq(text, "\n") {
		if strings.Contains(l, what) {
			return l
		}
	}
	return ""
}
