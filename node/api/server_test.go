package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/api/apitest"
	"github.com/staydown/staydown/node/matching"
	"github.com/staydown/staydown/node/status"
	"github.com/staydown/staydown/node/tokens"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

const token = "s3cret-token"

// Fixtures: valid values of each kind.
var (
	sha     = strings.Repeat("ab", 32)
	md5     = strings.Repeat("0f", 16)
	target  = "1220" + strings.Repeat("11", 32)
	target2 = "1220" + strings.Repeat("22", 32)
)

// lockedBuffer is a log sink shared with the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type harness struct {
	fake *apitest.Backend
	srv  *httptest.Server
	log  *lockedBuffer
	// anyStatus: the test makes the fake fail in ways no node does (every
	// error kind from every call), so its answers are not checked against
	// the API document; every other test's are (conforms).
	anyStatus bool
}

// other is a second member of the fake's roster.
var other = protocol.Member{Name: "platform-a", Role: protocol.RolePlatform, AuthorKey: protocol.AuthorKey{7}}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{fake: apitest.New("bka", protocol.RoleReferral, other), log: &lockedBuffer{}}
	h.srv = httptest.NewServer(api.NewServer(h.fake, tokens.Static(token), slog.New(slog.NewTextHandler(h.log, nil))))
	t.Cleanup(h.srv.Close)
	return h
}

type response struct {
	code   int
	header http.Header
	body   []byte
}

// do sends a request with the right token unless auth is given ("-" for
// no Authorization header at all).
func (h *harness) do(t *testing.T, method, path, body string, auth ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case len(auth) == 0:
		req.Header.Set("Authorization", "Bearer "+token)
	case auth[0] != "-":
		req.Header.Set("Authorization", auth[0])
	}
	return h.roundTrip(t, req)
}

// send sends a body of the content type given with the right token.
func (h *harness) send(t *testing.T, method, path, contentType, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", contentType)
	return h.roundTrip(t, req)
}

// roundTrip sends req and reads the whole response, which must be one
// openapi.yaml allows (unless h.anyStatus).
func (h *harness) roundTrip(t *testing.T, req *http.Request) response {
	t.Helper()
	res, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := response{res.StatusCode, res.Header, b}
	if !h.anyStatus {
		conforms(t, req, r)
	}
	return r
}

// wantJSON checks that got is exactly the JSON document want (whitespace
// and key order aside).
func wantJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("response is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want: %v", err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("JSON:\ngot  %s\nwant %s", compact(got), compact([]byte(want)))
	}
}

func compact(b []byte) string {
	var out bytes.Buffer
	if json.Compact(&out, b) != nil {
		return string(b)
	}
	return out.String()
}

// wantError checks an error answer: the status, JSON {"error": msg} and
// nothing else, msg containing want.
func wantError(t *testing.T, r response, code int, want string) {
	t.Helper()
	if r.code != code {
		t.Errorf("status %d, want %d; body %s", r.code, code, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, r.body)
	}
	msg, _ := m["error"].(string)
	if len(m) != 1 || msg == "" {
		t.Fatalf("error body %s, want exactly {\"error\": \"...\"}", r.body)
	}
	if !strings.Contains(msg, want) {
		t.Errorf("error %q, want it to contain %q", msg, want)
	}
}

func mustSignal(t *testing.T, typ, value string) *pb.Signal {
	t.Helper()
	s, err := protocol.ParseSignal(typ, value)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustID(t *testing.T, s string) []byte {
	t.Helper()
	id, err := protocol.ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id[:]
}

func TestAuth(t *testing.T) {
	h := newHarness(t)
	endpoints := []struct{ method, path, body string }{
		{"POST", "/v1/additions", `{"signals":[{"type":"sha256","value":"` + sha + `"}],"labels":["graphic-violence"]}`},
		{"POST", "/v1/retractions", `{"target":"` + target + `"}`},
		{"POST", "/v1/disputes", `{"target":"` + target + `","reason":"r"}`},
		{"POST", "/v1/allows", `{"signals":[{"type":"sha256","value":"` + sha + `"}],"category":"news","reason":"r"}`},
		{"POST", "/v1/match", `{"signals":[{"type":"sha256","value":"` + sha + `"}]}`},
		{"GET", "/v1/match?type=sha256&value=" + sha, ""},
		{"GET", "/v1/status", ""},
		{"GET", "/v1/openapi.yaml", ""},
		{"GET", "/v1/no-such-thing", ""},
	}
	creds := []struct{ name, header, want string }{
		{"missing", "-", "authorization: missing"},
		{"wrong token", "Bearer not-the-token", "authorization: wrong token"},
		{"token prefix", "Bearer " + token[:len(token)-1], "authorization: wrong token"},
		{"empty token", "Bearer ", `authorization: want "Bearer TOKEN"`}, // the trailing space does not survive HTTP
		{"basic scheme", "Basic " + token, `authorization: want "Bearer TOKEN"`},
		{"no scheme", token, `authorization: want "Bearer TOKEN"`},
	}
	for _, e := range endpoints {
		for _, c := range creds {
			t.Run(e.method+" "+e.path+"/"+c.name, func(t *testing.T) {
				r := h.do(t, e.method, e.path, e.body, c.header)
				wantError(t, r, http.StatusUnauthorized, c.want)
				if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="staydown"` {
					t.Errorf("WWW-Authenticate %q", got)
				}
			})
		}
	}
	if n := h.fake.Calls(); n != 0 {
		t.Errorf("backend called %d times without a valid token", n)
	}
	t.Run("scheme is case-insensitive", func(t *testing.T) {
		if r := h.do(t, "GET", "/v1/status", "", "bearer "+token); r.code != http.StatusOK {
			t.Errorf("status %d: %s", r.code, r.body)
		}
	})
}

func TestEmptyTokenRefusesAll(t *testing.T) {
	fake := apitest.New("bka", protocol.RoleReferral)
	srv := httptest.NewServer(api.NewServer(fake, tokens.Static(""), slog.New(slog.DiscardHandler)))
	defer srv.Close()
	h := &harness{fake: fake, srv: srv}
	for _, auth := range []string{"-", "Bearer ", "Bearer x"} {
		wantError(t, h.do(t, "GET", "/v1/status", "", auth), http.StatusUnauthorized, "authorization")
	}
}

func TestPublish(t *testing.T) {
	addition := func(a *pb.Addition) *pb.Entry { return &pb.Entry{Payload: &pb.Entry_Addition{Addition: a}} }
	label := func(slug, text string) *pb.Label { return &pb.Label{Slug: slug, Text: text} }
	tests := []struct {
		name, path, body string
		want             func(t *testing.T) *pb.Entry
	}{
		{"addition", "/v1/additions",
			`{"signals":[{"type":"sha256","value":"` + strings.ToUpper(sha) + `"},{"type":"md5","value":"` + md5 + `"}],
			  "labels":["recruitment-and-instruction","other: free text "],"case_ref":"CASE-1"}`,
			func(t *testing.T) *pb.Entry {
				return addition(&pb.Addition{
					Signals: []*pb.Signal{mustSignal(t, "sha256", sha), mustSignal(t, "md5", md5)},
					Labels:  []*pb.Label{label("recruitment-and-instruction", ""), label("other", "free text")},
					CaseRef: "CASE-1",
				})
			}},
		{"addition of a url and an account", "/v1/additions",
			`{"signals":[{"type":"url","value":"HTTPS://Example.com:443/A?b=1#frag"},{"type":"account","value":"Example.com:SomeUser"}],"labels":["attacker-manifesto"]}`,
			func(t *testing.T) *pb.Entry {
				return addition(&pb.Addition{
					Signals: []*pb.Signal{
						{Value: &pb.Signal_Url{Url: "https://example.com/A?b=1"}},
						{Value: &pb.Signal_Account{Account: &pb.Account{Service: "example.com", Id: "SomeUser"}}},
					},
					Labels: []*pb.Label{label("attacker-manifesto", "")},
				})
			}},
		{"retraction", "/v1/retractions", `{"target":"` + target + `","reason":"mistake"}`,
			func(t *testing.T) *pb.Entry {
				return &pb.Entry{Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{Target: mustID(t, target), Reason: "mistake"}}}
			}},
		{"retraction without a reason", "/v1/retractions", `{"target":"` + target + `"}`,
			func(t *testing.T) *pb.Entry {
				return &pb.Entry{Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{Target: mustID(t, target)}}}
			}},
		{"retraction naming signals", "/v1/retractions", `{"target":"` + target + `","signals":[{"type":"url","value":"https://EXAMPLE.com/a"},{"type":"sha256","value":"` + sha + `"},{"type":"sha256","value":"` + sha + `"}]}`,
			func(t *testing.T) *pb.Entry {
				return &pb.Entry{Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{Target: mustID(t, target),
					Signals: []*pb.Signal{mustSignal(t, "sha256", sha), mustSignal(t, "url", "https://example.com/a")}}}}
			}},
		{"dispute naming a signal", "/v1/disputes", `{"target":"` + target2 + `","reason":"news","signals":[{"type":"pdq","value":"` + sha + `"}]}`,
			func(t *testing.T) *pb.Entry {
				return &pb.Entry{Payload: &pb.Entry_Dispute{Dispute: &pb.Dispute{Target: mustID(t, target2), Reason: "news",
					Signals: []*pb.Signal{mustSignal(t, "pdq", sha)}}}}
			}},
		{"dispute", "/v1/disputes", `{"target":"` + target2 + `","reason":"false positive: a news report"}`,
			func(t *testing.T) *pb.Entry {
				return &pb.Entry{Payload: &pb.Entry_Dispute{Dispute: &pb.Dispute{Target: mustID(t, target2), Reason: "false positive: a news report"}}}
			}},
		{"allow", "/v1/allows", `{"signals":[{"type":"pdq","value":"` + sha + `"}],"category":"counter-speech","reason":"campaign video"}`,
			func(t *testing.T) *pb.Entry {
				return &pb.Entry{Payload: &pb.Entry_Allow{Allow: &pb.Allow{
					Signals: []*pb.Signal{mustSignal(t, "pdq", sha)}, Category: "counter-speech", Reason: "campaign video",
				}}}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			for seq := 1; seq <= 2; seq++ {
				r := h.do(t, "POST", tt.path, tt.body)
				if r.code != http.StatusCreated {
					t.Fatalf("status %d: %s", r.code, r.body)
				}
				var got map[string]any
				if err := json.Unmarshal(r.body, &got); err != nil {
					t.Fatal(err)
				}
				id, _ := got["id"].(string)
				if _, err := protocol.ParseID(id); err != nil {
					t.Errorf("id: %v", err)
				}
				wantJSON(t, r.body, fmt.Sprintf(`{"id":%q,"seq":%d,"author":"bka"}`, id, seq))
			}
			pub := h.fake.Published()
			if len(pub) != 2 {
				t.Fatalf("published %d entries, want 2", len(pub))
			}
			if want := tt.want(t); !proto.Equal(pub[0], want) {
				t.Errorf("published\n %v\nwant\n %v", pub[0], want)
			}
		})
	}
}

func TestBadRequest(t *testing.T) {
	sig := `{"type":"sha256","value":"` + sha + `"}`
	signals := func(n int) string { return `[` + strings.Repeat(sig+`,`, n-1) + sig + `]` }
	add := func(rest string) string { return `{"signals":[` + sig + `],` + rest + `}` }
	tests := []struct {
		name, method, path, body, want string
	}{
		// The body as a whole.
		{"empty body", "POST", "/v1/additions", ``, "body: empty; want a JSON object"},
		{"not JSON", "POST", "/v1/additions", `signals`, "body: not valid JSON at byte 1"},
		{"truncated JSON", "POST", "/v1/additions", `{"signals":[`, "body: not valid JSON: it ends too early"},
		{"array body", "POST", "/v1/additions", `[]`, "body: want an object, got an array"},
		{"two objects", "POST", "/v1/additions", add(`"labels":["graphic-violence"]`) + `{}`, "body: unexpected data after the JSON object"},
		{"body over 1 MiB", "POST", "/v1/additions", `{"case_ref":"` + strings.Repeat("x", api.MaxBodySize) + `"}`, "body: larger than 1048576 bytes"},
		{"unknown field", "POST", "/v1/additions", add(`"labels":["graphic-violence"],"case":"x"`), "case: unknown field"},
		{"unknown nested field", "POST", "/v1/additions", `{"signals":[` + sig + `,{"typ":"sha256"}],"labels":["graphic-violence"]}`, "signals[1].typ: unknown field"},
		{"unknown field with a newline", "POST", "/v1/additions", add(`"labels":["graphic-violence"],"\n":1`), `body["\n"]: unknown field`},
		{"unknown nested field with a dot", "POST", "/v1/additions", `{"signals":[{"type":"sha256","value":"` + sha + `","a.b":1}],"labels":["x"]}`, `signals[0]["a.b"]: unknown field`},
		{"wrong type", "POST", "/v1/additions", add(`"labels":"graphic-violence"`), "labels: want an array, got a string"},
		{"wrong nested type", "POST", "/v1/additions", `{"signals":[{"type":"sha256","value":12}],"labels":["graphic-violence"]}`, "signals[0].value: want a string, got a number"},
		{"signals not objects", "POST", "/v1/match", `{"signals":["sha256:` + sha + `"]}`, "signals[0]: want an object, got a string"},

		// Additions.
		{"no signals", "POST", "/v1/additions", `{"labels":["graphic-violence"]}`, "signals: required: give 1 to 1000 signals"},
		{"empty signals", "POST", "/v1/additions", `{"signals":[],"labels":["graphic-violence"]}`, "signals: required"},
		{"1001 signals", "POST", "/v1/additions", `{"signals":` + signals(1001) + `,"labels":["graphic-violence"]}`, "signals: 1001 signals, limit 1000"},
		{"short hash", "POST", "/v1/additions", `{"signals":[{"type":"sha256","value":"0123456789"}],"labels":["graphic-violence"]}`,
			"signals[0].value: bad signal: sha256: want 64 hex characters, got 10"},
		{"not hex", "POST", "/v1/additions", `{"signals":[` + sig + `,{"type":"md5","value":"` + strings.Repeat("zz", 16) + `"}],"labels":["graphic-violence"]}`,
			"signals[1].value: bad signal: md5: not hex"},
		{"unknown signal type", "POST", "/v1/additions", `{"signals":[{"type":"sha1","value":"` + sha + `"}],"labels":["graphic-violence"]}`,
			`signals[0].type: bad signal: unknown signal type "sha1"`},
		{"missing signal type", "POST", "/v1/additions", `{"signals":[{"value":"` + sha + `"}],"labels":["graphic-violence"]}`,
			"signals[0].type: required; use one of sha256, md5, pdq, url, account, vpdq"},
		{"missing signal value", "POST", "/v1/additions", `{"signals":[{"type":"sha256"}],"labels":["graphic-violence"]}`, "signals[0].value: required"},
		{"bad url", "POST", "/v1/additions", `{"signals":[{"type":"url","value":"ftp://x"}],"labels":["graphic-violence"]}`, "signals[0].value: bad signal: url"},
		{"bad account", "POST", "/v1/additions", `{"signals":[{"type":"account","value":"nobody"}],"labels":["graphic-violence"]}`, "signals[0].value: bad signal: account"},
		{"no labels", "POST", "/v1/additions", `{"signals":[` + sig + `]}`, "labels: required"},
		{"17 labels", "POST", "/v1/additions", add(`"labels":[` + strings.Repeat(`"graphic-violence",`, 16) + `"graphic-violence"]`), "labels: 17 labels, limit 16"},
		{"unknown label", "POST", "/v1/additions", add(`"labels":["graphic-violence","gore"]`), `labels[1]: bad label: "gore" is not in the vocabulary`},
		{"other without text", "POST", "/v1/additions", add(`"labels":["other"]`), `labels[0]: bad label: "other" needs free text`},
		{"text on a slug", "POST", "/v1/additions", add(`"labels":["graphic-violence:very"]`), `labels[0]: bad label: only "other" carries free text`},
		{"long case ref", "POST", "/v1/additions", add(`"labels":["graphic-violence"],"case_ref":"` + strings.Repeat("c", 257) + `"`), "case_ref: 257 bytes, limit 256"},

		// Retractions and disputes.
		{"retraction without target", "POST", "/v1/retractions", `{"reason":"x"}`, "target: required"},
		{"short target", "POST", "/v1/retractions", `{"target":"1220ab"}`, "target: bad key: entry id: want 68 hex characters, got 6"},
		{"target not hex", "POST", "/v1/retractions", `{"target":"` + strings.Repeat("x", 68) + `"}`, "target: bad key: entry id: not hex"},
		{"target not a multihash", "POST", "/v1/disputes", `{"target":"` + strings.Repeat("00", 34) + `","reason":"r"}`, "target: bad key: entry id: not a sha2-256 multihash"},
		{"long retraction reason", "POST", "/v1/retractions", `{"target":"` + target + `","reason":"` + strings.Repeat("r", 1025) + `"}`, "reason: 1025 bytes, limit 1024"},
		{"dispute without reason", "POST", "/v1/disputes", `{"target":"` + target + `"}`, "reason: required"},
		{"dispute with empty reason", "POST", "/v1/disputes", `{"target":"` + target + `","reason":""}`, "reason: required"},
		{"retraction naming a bad signal", "POST", "/v1/retractions", `{"target":"` + target + `","signals":[{"type":"md5","value":"ab"}]}`, "signals[0].value: bad signal: md5: want 32 hex characters, got 2"},
		{"dispute naming 1001 signals", "POST", "/v1/disputes", `{"target":"` + target + `","reason":"r","signals":[` + strings.Repeat(sig+",", 1000) + sig + `]}`, "signals: 1001 signals, limit 1000"},

		// Allows.
		{"allow without category", "POST", "/v1/allows", `{"signals":[` + sig + `],"reason":"r"}`, "category: required; use one of counter-speech, news, research, other"},
		{"allow with unknown category", "POST", "/v1/allows", `{"signals":[` + sig + `],"category":"satire","reason":"r"}`, `category: "satire" is not an allowlist category`},
		{"allow without reason", "POST", "/v1/allows", `{"signals":[` + sig + `],"category":"news"}`, "reason: required"},
		{"allow without signals", "POST", "/v1/allows", `{"category":"news","reason":"r"}`, "signals: required"},
		{"allow with a bad signal", "POST", "/v1/allows", `{"signals":[{"type":"pdq","value":"ab"}],"category":"news","reason":"r"}`, "signals[0].value: bad signal: pdq: want 64 hex characters, got 2"},

		// Match.
		{"match without signals", "POST", "/v1/match", `{}`, "signals: required"},
		{"match 1001 signals", "POST", "/v1/match", `{"signals":` + signals(1001) + `}`, "signals: 1001 signals, limit 1000"},
		{"match a bad signal", "POST", "/v1/match", `{"signals":[` + sig + `,{"type":"sha256","value":"abc"}]}`, "signals[1].value: bad signal: sha256: want 64 hex characters, got 3"},
		{"match unknown field", "POST", "/v1/match", `{"signals":[` + sig + `],"limit":5}`, "limit: unknown field"},
		{"get without type", "GET", "/v1/match?value=" + sha, "", "type: required"},
		{"get without value", "GET", "/v1/match?type=sha256", "", "value: required"},
		{"get with a bad value", "GET", "/v1/match?type=sha256&value=abc", "", "value: bad signal: sha256: want 64 hex characters, got 3"},
		{"get with an unknown type", "GET", "/v1/match?type=tmk&value=abc", "", `type: bad signal: unknown signal type "tmk"`},
		{"get with an unknown parameter", "GET", "/v1/match?type=sha256&value=" + sha + "&limit=3", "", "limit: unknown query parameter"},
		{"get with an unknown parameter with a newline", "GET", "/v1/match?type=sha256&value=" + sha + "&a%0Ab=3", "", `"a\nb": unknown query parameter`},
		{"get with a repeated parameter", "GET", "/v1/match?type=sha256&type=md5&value=" + sha, "", "type: given 2 times"},
		{"get with a broken query", "GET", "/v1/match?type=sha256&value=%zz", "", "query: invalid URL escape"},
	}
	h := newHarness(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, h.do(t, tt.method, tt.path, tt.body), http.StatusBadRequest, tt.want)
			if n := h.fake.Calls(); n != 0 {
				t.Fatalf("backend called %d times for a bad request", n)
			}
		})
	}
}

func TestBackendErrors(t *testing.T) {
	requests := []struct{ method, path, body string }{
		{"POST", "/v1/additions", `{"signals":[{"type":"sha256","value":"` + sha + `"}],"labels":["graphic-violence"]}`},
		{"POST", "/v1/retractions", `{"target":"` + target + `"}`},
		{"POST", "/v1/disputes", `{"target":"` + target + `","reason":"r"}`},
		{"POST", "/v1/allows", `{"signals":[{"type":"sha256","value":"` + sha + `"}],"category":"news","reason":"r"}`},
		{"POST", "/v1/match", `{"signals":[{"type":"sha256","value":"` + sha + `"}]}`},
		{"GET", "/v1/match?type=sha256&value=" + sha, ""},
		{"GET", "/v1/status", ""},
		{"GET", "/v1/members", ""},
		{"GET", "/v1/proposals", ""},
		{"POST", "/v1/proposals", `{"remove":{"member":"platform-a"}}`},
		{"POST", "/v1/proposals/" + target + "/approvals", ""},
	}
	errs := []struct {
		name string
		err  error
		code int
		want string
	}{
		{"invalid", fmt.Errorf("%w: target %s is a retraction, not an addition", api.ErrInvalid, target), 400, "invalid request: target " + target + " is a retraction"},
		{"forbidden", fmt.Errorf("%w: auditors write nothing", api.ErrForbidden), 403, "forbidden: auditors write nothing"},
		{"not found", fmt.Errorf("%w: entry %s", api.ErrNotFound, target), 404, "not found: entry " + target},
		{"conflict", fmt.Errorf("%w: voted already", api.ErrConflict), 409, "conflict: voted already"},
		{"unavailable", fmt.Errorf("%w: own log not confirmed yet", api.ErrUnavailable), 503, "unavailable: own log not confirmed yet"},
		{"internal", errors.New("bolt: /secret/path/store.db: disk full"), 500, "internal error; the node's log has the details"},
		// #12 item 11: a full disk was a 500.
		{"no space", fmt.Errorf("store: apply: %w: write /secret/path/store.db: no space left on device", store.ErrNoSpace), 507,
			"insufficient storage: the node's store cannot write (disk full, quota or file-size limit); nothing was stored, try again once the operator has freed space"},
	}
	for _, e := range errs {
		for _, rq := range requests {
			t.Run(e.name+"/"+rq.method+" "+rq.path, func(t *testing.T) {
				h := newHarness(t)
				h.anyStatus = true
				h.fake.Fail(e.err)
				r := h.do(t, rq.method, rq.path, rq.body)
				wantError(t, r, e.code, e.want)
				if e.code >= 500 {
					if strings.Contains(string(r.body), "secret") {
						t.Errorf("internal error leaked to the client: %s", r.body)
					}
				}
				if e.code == 500 {
					if !strings.Contains(h.log.String(), "disk full") {
						t.Errorf("internal error not logged; log:\n%s", h.log)
					}
				}
				if n := h.fake.Calls(); n != 1 {
					t.Errorf("backend called %d times, want 1", n)
				}
			})
		}
	}
}

func TestMatch(t *testing.T) {
	h := newHarness(t)
	unknown := protocol.AuthorKey{9, 9}
	id := func(b byte) protocol.ID { return protocol.ID{0x12, 0x20, b} }
	h.fake.Attest(mustSignal(t, "sha256", sha),
		store.Attestation{
			Author: h.fake.Author(), EntryID: id(1), Seq: 3, Labels: []string{"recruitment-and-instruction", "other:free text"},
			CaseRef: "C-1", TimeMs: 1_700_000_000_123, Status: store.StatusActive,
		},
		store.Attestation{
			Author: other.AuthorKey, EntryID: id(2), Seq: 1, Labels: []string{"graphic-violence"},
			TimeMs: 1_700_000_001_000, Status: store.StatusDisputed, Equivocated: true,
			Reasons: []store.Reason{{Kind: protocol.KindDispute, Author: h.fake.Author(), EntryID: id(3), Reason: "news report"}},
		},
	)
	h.fake.Attest(mustSignal(t, "url", "https://example.com/a"),
		store.Attestation{
			Author: unknown, EntryID: id(4), Seq: 9, TimeMs: 1_700_000_002_000, Status: store.StatusAllowlisted,
			Reasons: []store.Reason{{Kind: protocol.KindAllow, Author: other.AuthorKey, EntryID: id(5), Category: "news", Reason: "reporting"}},
		},
	)
	hexID := func(b byte) string { i := id(b); return i.String() }
	shaResult := `{"signal":{"type":"sha256","value":"` + sha + `"},"matched":true,"attestations":[
		{"kind":"addition","author":"bka","author_key":"` + h.fake.Author().String() + `","id":"` + hexID(1) + `","seq":3,
		 "labels":["recruitment-and-instruction","other:free text"],"case_ref":"C-1","time":"2023-11-14T22:13:20.123Z",
		 "status":"active","reasons":[],"equivocated":false},
		{"kind":"addition","author":"platform-a","author_key":"` + other.AuthorKey.String() + `","id":"` + hexID(2) + `","seq":1,
		 "labels":["graphic-violence"],"case_ref":"","time":"2023-11-14T22:13:21.000Z",
		 "status":"disputed","reasons":[{"kind":"dispute","author":"bka","id":"` + hexID(3) + `","category":"","reason":"news report"}],
		 "equivocated":true}],"verdict":"review"}`
	urlResult := `{"signal":{"type":"url","value":"https://example.com/a"},"matched":false,"attestations":[
		{"kind":"addition","author":"` + unknown.String() + `","author_key":"` + unknown.String() + `","id":"` + hexID(4) + `","seq":9,
		 "labels":[],"case_ref":"","time":"2023-11-14T22:13:22.000Z","status":"allowlisted",
		 "reasons":[{"kind":"allow","author":"platform-a","id":"` + hexID(5) + `","category":"news","reason":"reporting"}],
		 "equivocated":false}],"verdict":"none"}`
	noResult := `{"signal":{"type":"md5","value":"` + md5 + `"},"matched":false,"attestations":[],"verdict":"none"}`
	pdqHex := strings.Repeat("a5", 32)
	h.fake.Attest(mustSignal(t, "pdq", pdqHex), store.Attestation{
		Author: other.AuthorKey, EntryID: id(6), Seq: 2, Labels: []string{"graphic-violence"}, TimeMs: 1_700_000_003_000, Status: store.StatusActive,
	})
	h.fake.SetVerdict(mustSignal(t, "pdq", pdqHex), api.VerdictBlock)
	pdqResult := `{"signal":{"type":"pdq","value":"` + pdqHex + `"},"matched":true,"attestations":[
		{"kind":"addition","author":"platform-a","author_key":"` + other.AuthorKey.String() + `","id":"` + hexID(6) + `","seq":2,
		 "labels":["graphic-violence"],"case_ref":"","time":"2023-11-14T22:13:23.000Z","status":"active",
		 "reasons":[],"equivocated":false,"hash":"` + pdqHex + `","distance":0}],"verdict":"block"}`

	tests := []struct {
		name, method, path, body, want string
		signals                        []*pb.Signal
	}{
		{"many", "POST", "/v1/match",
			`{"signals":[{"type":"sha256","value":"` + strings.ToUpper(sha) + `"},{"type":"url","value":"HTTPS://EXAMPLE.COM/a#x"},{"type":"md5","value":"` + md5 + `"}]}`,
			`{"results":[` + shaResult + `,` + urlResult + `,` + noResult + `]}`,
			[]*pb.Signal{mustSignal(t, "sha256", sha), mustSignal(t, "url", "https://example.com/a"), mustSignal(t, "md5", md5)}},
		{"one active", "GET", "/v1/match?type=sha256&value=" + sha, "", shaResult, []*pb.Signal{mustSignal(t, "sha256", sha)}},
		{"one allowlisted", "GET", "/v1/match?type=url&value=" + "https%3A%2F%2Fexample.com%2Fa", "", urlResult, []*pb.Signal{mustSignal(t, "url", "https://example.com/a")}},
		{"none", "GET", "/v1/match?value=" + md5 + "&type=md5", "", noResult, []*pb.Signal{mustSignal(t, "md5", md5)}},
		{"pdq: hash, distance, verdict", "GET", "/v1/match?type=pdq&value=" + strings.ToUpper(pdqHex), "", pdqResult, []*pb.Signal{mustSignal(t, "pdq", pdqHex)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(h.fake.Matched())
			r := h.do(t, tt.method, tt.path, tt.body)
			if r.code != http.StatusOK {
				t.Fatalf("status %d: %s", r.code, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			wantJSON(t, r.body, tt.want)
			m := h.fake.Matched()
			if len(m) != before+1 {
				t.Fatalf("backend Match called %d times, want 1", len(m)-before)
			}
			got := m[len(m)-1]
			if len(got) != len(tt.signals) {
				t.Fatalf("backend got %d signals, want %d", len(got), len(tt.signals))
			}
			for i := range got {
				if !proto.Equal(got[i], tt.signals[i]) {
					t.Errorf("signal %d: got %v, want %v", i, got[i], tt.signals[i])
				}
			}
		})
	}
}

// A vpdq query's answer carries, for each matching stored video, the
// comparison (percentages, frame counts, segments in seconds), and the
// frame hits with their hash, distance and frame times; an active frame
// hit makes the result matched.
func TestMatchVideo(t *testing.T) {
	h := newHarness(t)
	video := `["` + strings.Repeat("a5", 32) + `,100,0.0","` + strings.Repeat("5a", 32) + `,90,1.5"]`
	sig := mustSignal(t, "vpdq", video)
	id := func(b byte) protocol.ID { return protocol.ID{0x12, 0x20, b} }
	var img [32]byte
	img[0] = 7
	h.fake.SetFound(sig, api.Found{
		Attestations: []api.FoundAttestation{{
			Attestation: store.Attestation{Author: other.AuthorKey, EntryID: id(1), Seq: 2, Labels: []string{"graphic-violence"}, TimeMs: 1_700_000_003_000, Status: store.StatusRetracted},
			Video: &matching.VideoMatch{QueryPercent: 100, ComparedPercent: 12.5, QueryFrames: 2, QueryMatched: 2, ComparedFrames: 16, ComparedMatched: 2,
				Segments: []matching.Segment{{FromMs: 0, ToMs: 1500}}},
		}},
		FrameHits: []api.FoundAttestation{{
			Attestation: store.Attestation{Author: h.fake.Author(), EntryID: id(2), Seq: 5, Labels: []string{"other:a flag"}, TimeMs: 1_700_000_004_000, Status: store.StatusActive},
			Hash:        img, Distance: 12, FrameTimesMs: []uint32{0, 1500},
		}},
		Verdict: api.VerdictReview,
	})
	i1, i2 := id(1), id(2)
	want := `{"signal":{"type":"vpdq","value":` + strconv.Quote(api.FormatSignal(sig).Value) + `},"matched":true,"attestations":[
		{"kind":"addition","author":"platform-a","author_key":"` + other.AuthorKey.String() + `","id":"` + i1.String() + `","seq":2,
		 "labels":["graphic-violence"],"case_ref":"","time":"2023-11-14T22:13:23.000Z","status":"retracted","reasons":[],"equivocated":false,
		 "video":{"query_percent":100,"compared_percent":12.5,"query_frames":2,"query_matched":2,"compared_frames":16,"compared_matched":2,
		  "segments":[{"from":0,"to":1.5}]}}],
		"verdict":"review",
		"frame_hits":[{"kind":"addition","author":"bka","author_key":"` + h.fake.Author().String() + `","id":"` + i2.String() + `","seq":5,
		 "labels":["other:a flag"],"case_ref":"","time":"2023-11-14T22:13:24.000Z","status":"active","reasons":[],"equivocated":false,
		 "hash":"07` + strings.Repeat("00", 31) + `","distance":12,"frame_times":[0,1.5]}]}`
	r := h.do(t, "POST", "/v1/match", `{"signals":[{"type":"vpdq","value":`+strconv.Quote(video)+`}]}`)
	if r.code != http.StatusOK {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	wantJSON(t, r.body, `{"results":[`+want+`]}`)
	r = h.do(t, "GET", "/v1/match?type=vpdq&value="+url.QueryEscape(video), "")
	if r.code != http.StatusOK {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	wantJSON(t, r.body, want)
}

// shortBackend answers Match with fewer results than signals asked.
type shortBackend struct{ *apitest.Backend }

func (b shortBackend) Match(ctx context.Context, queries []api.Query) ([]api.Found, error) {
	return nil, nil
}

func TestMatchBackendAnswersTooFew(t *testing.T) {
	fake := apitest.New("bka", protocol.RoleReferral)
	log := &lockedBuffer{}
	srv := httptest.NewServer(api.NewServer(shortBackend{fake}, tokens.Static(token), slog.New(slog.NewTextHandler(log, nil))))
	defer srv.Close()
	h := &harness{fake: fake, srv: srv, log: log}
	wantError(t, h.do(t, "GET", "/v1/match?type=sha256&value="+sha, ""), 500, "internal error")
	if !strings.Contains(log.String(), "0 results for 1 signals") {
		t.Errorf("log:\n%s", log)
	}
}

func TestStatus(t *testing.T) {
	tests := []struct {
		name   string
		status api.Status
		want   string
	}{
		{"full", api.Status{
			ID: "12D3KooWabc", Name: "bka", Role: "referral", Author: strings.Repeat("aa", 32), Federation: "staydown",
			Genesis: strings.Repeat("9e", 32), RosterVersion: 3, Member: true, Proposals: 1, Peers: 2, TopicPeers: 1, Entries: 42, Heads: map[string]uint64{"bka": 40, "platform-a": 2},
			Members: []api.Peer{
				{Name: "platform-a", PeerID: "12D3KooWpa", Connected: true, OnTopic: true, LastSeen: "2026-12-03T13:05:00Z"},
				{Name: "platform-b", PeerID: "12D3KooWpb", Refusing: "closed the connection right after the handshake"},
			},
			HeadsDigest: strings.Repeat("d1", 32), Flagged: []string{"platform-a"}, Listen: []string{"/ip4/127.0.0.1/tcp/4001"}, StoreWritable: true,
			OwnHeadConfirmed: true, Restored: &status.Restored{At: "2026-12-03T13:00:00Z", Damaged: "store.db.damaged-20261203T125959Z", From: []string{"platform-a", "platform-b"}, Needed: 2, OwnSeq: 40, ConfirmedAt: "2026-12-03T13:00:00Z"},
		}, `{"id":"12D3KooWabc","name":"bka","role":"referral","author":"` + strings.Repeat("aa", 32) + `","federation":"staydown",
			"genesis":"` + strings.Repeat("9e", 32) + `","roster_version":3,"member":true,"proposals":1,"peers":2,
			"members":[{"name":"platform-a","peer_id":"12D3KooWpa","connected":true,"on_topic":true,"refusing":"","last_seen":"2026-12-03T13:05:00Z"},
			           {"name":"platform-b","peer_id":"12D3KooWpb","connected":false,"on_topic":false,"refusing":"closed the connection right after the handshake","last_seen":""}],
			"topic_peers":1,"entries":42,"heads":{"bka":40,"platform-a":2},"heads_digest":"` + strings.Repeat("d1", 32) + `",
			"flagged":["platform-a"],"listen":["/ip4/127.0.0.1/tcp/4001"],"store_writable":true,"behind":0,"own_head_confirmed":true,
			"restored":{"at":"2026-12-03T13:00:00Z","damaged":"store.db.damaged-20261203T125959Z","from":["platform-a","platform-b"],"needed":2,"own_seq":40,"confirmed_at":"2026-12-03T13:00:00Z"}}`},
		{"empty collections are not null", api.Status{Name: "bka", Role: "referral"},
			`{"id":"","name":"bka","role":"referral","author":"","federation":"","genesis":"","roster_version":0,"member":false,"proposals":0,"peers":0,"members":[],"topic_peers":0,"entries":0,
			  "heads":{},"heads_digest":"","flagged":[],"listen":[],"store_writable":false,"behind":0,"own_head_confirmed":false}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.fake.SetStatus(tt.status)
			r := h.do(t, "GET", "/v1/status", "")
			if r.code != http.StatusOK {
				t.Fatalf("status %d: %s", r.code, r.body)
			}
			wantJSON(t, r.body, tt.want)
		})
	}
}

func TestMethodsAndPaths(t *testing.T) {
	tests := []struct {
		method, path string
		code         int
		allow, want  string
	}{
		{"GET", "/v1/additions", 405, "POST", "method GET not allowed on /v1/additions; use POST"},
		{"PUT", "/v1/retractions", 405, "POST", "method PUT not allowed"},
		{"GET", "/v1/disputes", 405, "POST", "not allowed"},
		{"DELETE", "/v1/allows", 405, "POST", "not allowed"},
		{"DELETE", "/v1/match", 405, "GET, POST", "use GET or POST"},
		{"POST", "/v1/status", 405, "GET", "not allowed"},
		{"POST", "/v1/openapi.yaml", 405, "GET", "not allowed"},
		{"GET", "/v1/nope", 404, "", "no endpoint /v1/nope; see /v1/openapi.yaml"},
		{"POST", "/v1/additions/", 404, "", "no endpoint /v1/additions/"},
		{"GET", "/v1/", 404, "", "no endpoint"},
		{"GET", "/v2/status", 404, "", "the API is under /v1/"},
	}
	h := newHarness(t)
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := h.do(t, tt.method, tt.path, "")
			wantError(t, r, tt.code, tt.want)
			if got := r.header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow %q, want %q", got, tt.allow)
			}
		})
	}
	if n := h.fake.Calls(); n != 0 {
		t.Errorf("backend called %d times", n)
	}
}

func TestOpenAPIServed(t *testing.T) {
	h := newHarness(t)
	r := h.do(t, "GET", "/v1/openapi.yaml", "")
	if r.code != http.StatusOK {
		t.Fatalf("status %d", r.code)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/yaml" {
		t.Errorf("Content-Type %q", ct)
	}
	if !bytes.Equal(r.body, api.OpenAPI) || !bytes.HasPrefix(r.body, []byte("openapi: 3.")) {
		t.Errorf("body is not the embedded OpenAPI document")
	}
}

// TestEventsPosition: a position that no arrival can have is refused
// (#12 item 9: after=2^64-1 replayed the whole history, after+1 wrapping
// round to 0).
func TestEventsPosition(t *testing.T) {
	h := newHarness(t)
	for _, pos := range []string{"18446744073709551615", "9223372036854775808", "-1", "x"} {
		wantError(t, h.do(t, "GET", "/v1/events?after="+pos, ""), 400, `after: "`+pos+`" is not a position`)
	}
}
