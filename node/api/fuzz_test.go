package api_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/api/apitest"
	"github.com/staydown/staydown/node/tokens"
	"github.com/staydown/staydown/protocol"
)

// FuzzRequest sends arbitrary bodies to every body-taking endpoint (in
// process, not over a socket: the decoding is what is fuzzed). The server
// must never panic, must answer 201/200 or a 400 with a JSON error, and
// must not call the backend for a request it rejects. A membership
// request may also be refused by the node (403, 404, 409), which then
// publishes nothing. Each input gets a fresh fake, so that what one
// proposal changed does not decide the next.
func FuzzRequest(f *testing.F) {
	approvals := "/v1/proposals/" + target + "/approvals"
	paths := []string{"/v1/additions", "/v1/retractions", "/v1/disputes", "/v1/allows", "/v1/match", "/v1/proposals", approvals}
	sig := `{"type":"sha256","value":"` + sha + `"}`
	joiner := apitest.Member("pc", protocol.RolePlatform)
	block := `{"name":"pc","role":"platform","author_key":"` + joiner.AuthorKey.String() + `","peer_id":"` + joiner.PeerID + `","addrs":["/ip4/192.0.2.7/tcp/4001"]}`
	for _, seed := range []string{
		`{"signals":[` + sig + `],"labels":["recruitment-and-instruction","other:x"],"case_ref":"c"}`,
		`{"signals":[{"type":"url","value":"https://EXAMPLE.com:443/a#b"},{"type":"account","value":"x.com:y"}],"labels":["other: t"]}`,
		`{"target":"` + target + `","reason":"r"}`,
		`{"target":"` + target + `","reason":"r","signals":[` + sig + `,{"type":"url","value":"https://x.example/"}]}`,
		`{"signals":[` + sig + `],"category":"news","reason":"r"}`,
		`{"signals":[{"type":"pdq","value":"` + sha + `"},{"typ":1}],"labels":[null]}`,
		`{"signals":{"0":1}}`, `[]`, `null`, `{}{}`, `{"Signals":[` + sig + `]}`, `"x"`, `{"signals":[` + sig + `],"labels":"`,
		`{"admit":` + block + `}`,
		`{"remove":{"member":"pa","after_seq":3}}`,
		`{"role":{"member":"pa","role":"auditor","key":"` + strings.Repeat("ab", 32) + `"}}`,
		`{"revoke":{"member":"pa","after_seq":0,"new_key":"` + strings.Repeat("cd", 32) + `"}}`,
		`{"rule":{"roles":["referral","platform"],"threshold_percent":66}}`,
		`{"admit":{"addrs":[1]},"rule":null}`, `{"remove":{"after_seq":-1}}`, ``, `{}`,
	} {
		for i := range paths {
			f.Add(uint8(i), seed)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, body string) {
		path := paths[int(which)%len(paths)]
		fake := apitest.New("bka", protocol.RoleReferral, apitest.Member("pa", protocol.RolePlatform))
		h := api.NewServer(fake, tokens.Static(token), slog.New(slog.DiscardHandler))
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		membership := path == "/v1/proposals" || path == approvals
		switch rec.Code {
		case http.StatusCreated, http.StatusOK:
			if membership && fake.Calls() < 1 || !membership && fake.Calls() != 1 {
				t.Fatalf("%s answered %d after %d backend calls", path, rec.Code, fake.Calls())
			}
		case http.StatusBadRequest:
			var e api.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("400 without a JSON error: %q", rec.Body)
			}
			if fake.Calls() != 0 {
				t.Fatalf("backend called for a rejected request: %s", e.Error)
			}
		case http.StatusForbidden, http.StatusNotFound, http.StatusConflict:
			if !membership {
				t.Fatalf("%s: status %d: %s", path, rec.Code, rec.Body)
			}
			if n := len(fake.Signed()); n != 0 {
				t.Fatalf("%s: refused (%d: %s) after publishing %d entries", path, rec.Code, rec.Body, n)
			}
		default:
			t.Fatalf("%s: status %d: %s", path, rec.Code, rec.Body)
		}
	})
}

// FuzzSniffVideo: SniffVideo takes any bytes, names only the containers
// it knows, and is decided by the first 12 bytes alone.
func FuzzSniffVideo(f *testing.F) {
	for _, seed := range []string{"\x00\x00\x00\x20ftypisom", "\x1a\x45\xdf\xa3\x01", "RIFF\x00\x00\x00\x00AVI LIST", "RIFF\x00\x00\x00\x00WAVE", "", "ftyp", "\x00\x00\x00\x08mdat"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := api.SniffVideo(b)
		switch got {
		case "", "mp4", "matroska", "avi":
		default:
			t.Fatalf("SniffVideo(%q) = %q", b, got)
		}
		if len(b) > 12 && api.SniffVideo(b[:12]) != got {
			t.Fatalf("SniffVideo(%q) reads past the first 12 bytes", b)
		}
	})
}
