package api_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/api/apitest"
	"github.com/staydown/staydown/node/tokens"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/store"
)

// TestWatchlistPaging: GET /v1/watchlist pages in key order; next is the
// cursor of the page after, absent on the last; the pages hold every
// signal once, with its refs.
func TestWatchlistPaging(t *testing.T) {
	h := newHarness(t)
	var sigs []string
	for i := range 7 {
		sigs = append(sigs, fmt.Sprintf(`{"type":"sha256","value":"%064x","ref":"upload-%d"}`, 6-i, i))
	}
	sigs = append(sigs, `{"type":"url","value":"https://example.com/a"}`, fmt.Sprintf(`{"type":"sha256","value":"%064x","ref":"upload-x"}`, 6))
	if r := h.do(t, "POST", "/v1/watchlist", `{"signals":[`+strings.Join(sigs, ",")+`]}`); r.code != 200 ||
		!strings.Contains(string(r.body), `"added":8,"known":1,"refs_added":8`) {
		t.Fatalf("POST: %d %s", r.code, r.body)
	}
	for _, limit := range []int{1, 3, 8, 9} {
		var got []string
		after := ""
		for pages := 1; ; pages++ {
			r := h.do(t, "GET", fmt.Sprintf("/v1/watchlist?limit=%d%s", limit, after), "")
			var page api.Watchlist
			if err := json.Unmarshal(r.body, &page); r.code != 200 || err != nil || page.Total != 8 || len(page.Signals) > limit {
				t.Fatalf("limit %d page %d: %d %s", limit, pages, r.code, r.body)
			}
			for _, s := range page.Signals {
				got = append(got, fmt.Sprintf("%s:%s%q", s.Type, s.Value[len(s.Value)-2:], s.Refs))
			}
			if page.Next == "" {
				break
			}
			after = "&after=" + page.Next
		}
		want := `sha256:00["upload-6"] sha256:01["upload-5"] sha256:02["upload-4"] sha256:03["upload-3"] ` +
			`sha256:04["upload-2"] sha256:05["upload-1"] sha256:06["upload-0" "upload-x"] url:/a[]`
		if strings.Join(got, " ") != want {
			t.Errorf("limit %d: %s, want %s", limit, strings.Join(got, " "), want)
		}
	}
	// The default page holds them all.
	if r := h.do(t, "GET", "/v1/watchlist", ""); r.code != 200 || strings.Contains(string(r.body), `"next"`) {
		t.Errorf("default page: %d %s", r.code, r.body)
	}
}

// TestWatchlistRefusals: a bad query or ref is answered 400, naming the
// field and quoting the value, and reaches no backend.
func TestWatchlistRefusals(t *testing.T) {
	h := newHarness(t)
	for _, tt := range []struct {
		method, path, body, want string
	}{
		{"GET", "/v1/watchlist?limit=0", "", `limit: "0": want a number from 1 to 10000`},
		{"GET", "/v1/watchlist?limit=10001", "", `limit: "10001": want a number from 1 to 10000`},
		{"GET", "/v1/watchlist?limit=x", "", `limit: "x": want a number`},
		{"GET", "/v1/watchlist?after=zz", "", `after: "zz": want the next cursor of a page before (hex)`},
		{"GET", "/v1/watchlist?after=", "", `after: "": want the next cursor`},
		{"GET", "/v1/watchlist?after=" + strings.Repeat("ab", 8193), "", `after: "abab`},
		{"GET", "/v1/watchlist?limit=1&limit=2", "", "limit: given 2 times"},
		{"GET", "/v1/watchlist?since=1", "", "since: unknown query parameter; use limit=N and after=CURSOR"},
		{"GET", "/v1/watchlist?%0a=1", "", `"\n": unknown query parameter`},
		{"GET", "/v1/alerts?%0a=1", "", `"\n": unknown query parameter`},
		{"POST", "/v1/watchlist", `{"signals":[{"type":"sha256","value":"` + sha + `","ref":"a\u0007b"}]}`, `signals[0].ref: bad watch ref: "a\ab" holds the unprintable character U+0007`},
		{"POST", "/v1/watchlist", `{"signals":[{"type":"sha256","value":"` + sha + `","ref":" a"}]}`, `signals[0].ref: bad watch ref: " a" begins or ends with white space`},
		{"POST", "/v1/watchlist", `{"signals":[{"type":"sha256","value":"` + sha + `","ref":"` + strings.Repeat("ü", 257) + `"}]}`, "signals[0].ref: bad watch ref: 514 bytes, limit 512"},
		{"POST", "/v1/watchlist/remove", `{"signals":[{"type":"sha256","value":"` + sha + `","ref":"a\u200bb"}]}`, `signals[0].ref: bad watch ref: "a\u200bb" holds the unprintable character U+200B`},
		{"POST", "/v1/watchlist", `{"signals":[{"type":"sha256","value":"` + sha + `","refs":["a"]}]}`, `signals[0].refs: unknown field`},
	} {
		t.Run(tt.method+" "+tt.path+" "+tt.body, func(t *testing.T) {
			wantError(t, h.do(t, tt.method, tt.path, tt.body), 400, tt.want)
			if c := h.fake.Calls(); c != 0 {
				t.Errorf("%d calls reached the backend", c)
			}
		})
	}
}

// FuzzWatchlistRequest: whatever the body of POST /v1/watchlist (and
// /remove) or the query of GET /v1/watchlist, the server answers 200
// after one backend call or 400 with a JSON error and no backend call;
// a ref it passes on passes store.CheckWatchRef.
func FuzzWatchlistRequest(f *testing.F) {
	sig := `{"type":"sha256","value":"` + sha + `"`
	for _, seed := range []string{
		`{"signals":[` + sig + `,"ref":"upload-1"}]}`, `{"signals":[` + sig + `,"ref":"a\tb"}]}`, `{"signals":[` + sig + `,"ref":""}]}`,
		`{"signals":[` + sig + `,"ref":1}]}`, `{"signals":[` + sig + `,"ref":"\u00e4 x"},` + sig + `}]}`, `{"signals":[]}`, `{}`,
		"limit=3&after=" + strings.Repeat("ab", 33), "limit=-1", "after=0", "limit=1&limit=1", "x=1", "after=%zz", "",
	} {
		for which := range uint8(3) {
			f.Add(which, seed)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, input string) {
		fake := apitest.New("bka", protocol.RoleReferral, apitest.Member("pa", protocol.RolePlatform))
		h := api.NewServer(fake, tokens.Static(token), slog.New(slog.DiscardHandler))
		var req *http.Request
		switch which % 3 {
		case 0:
			req = httptest.NewRequest("POST", "/v1/watchlist", strings.NewReader(input))
		case 1:
			req = httptest.NewRequest("POST", "/v1/watchlist/remove", strings.NewReader(input))
		default:
			u := &url.URL{Path: "/v1/watchlist", RawQuery: input}
			req = httptest.NewRequest("GET", "/", nil)
			req.URL, req.RequestURI = u, u.RequestURI()
		}
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			if fake.Calls() != 1 {
				t.Fatalf("answered 200 after %d backend calls", fake.Calls())
			}
			var body struct {
				Signals []api.WatchSignal `json:"signals"`
			}
			if which%3 == 0 && json.Unmarshal([]byte(input), &body) == nil {
				for _, s := range body.Signals {
					if s.Ref != "" {
						if err := store.CheckWatchRef(s.Ref); err != nil {
							t.Fatalf("ref %q taken: %v", s.Ref, err)
						}
					}
				}
			}
		case http.StatusBadRequest:
			var e api.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" || strings.Contains(e.Error, "\n") {
				t.Fatalf("400 without a one-line JSON error: %q", rec.Body)
			}
			if fake.Calls() != 0 {
				t.Fatalf("backend called for a rejected request: %s", e.Error)
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}
