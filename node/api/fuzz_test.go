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
	"github.com/staydown/staydown/protocol"
)

// FuzzRequest sends arbitrary bodies to every body-taking endpoint (in
// process, not over a socket: the decoding is what is fuzzed). The server
// must never panic, must answer 201/200 or a 400 with a JSON error, and
// must not call the backend for a request it rejects.
func FuzzRequest(f *testing.F) {
	paths := []string{"/v1/additions", "/v1/retractions", "/v1/disputes", "/v1/allows", "/v1/match"}
	sig := `{"type":"sha256","value":"` + sha + `"}`
	for _, seed := range []string{
		`{"signals":[` + sig + `],"labels":["recruitment-and-instruction","other:x"],"case_ref":"c"}`,
		`{"signals":[{"type":"url","value":"https://EXAMPLE.com:443/a#b"},{"type":"account","value":"x.com:y"}],"labels":["other: t"]}`,
		`{"target":"` + target + `","reason":"r"}`,
		`{"signals":[` + sig + `],"category":"news","reason":"r"}`,
		`{"signals":[{"type":"pdq","value":"` + sha + `"},{"typ":1}],"labels":[null]}`,
		`{"signals":{"0":1}}`, `[]`, `null`, `{}{}`, `{"Signals":[` + sig + `]}`, `"x"`, `{"signals":[` + sig + `],"labels":"`,
	} {
		for i := range paths {
			f.Add(uint8(i), seed)
		}
	}
	fake := apitest.New("bka", protocol.RoleReferral)
	h := api.NewServer(fake, token, slog.New(slog.DiscardHandler))
	f.Fuzz(func(t *testing.T, which uint8, body string) {
		path := paths[int(which)%len(paths)]
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		before := fake.Calls()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusCreated, http.StatusOK:
			if fake.Calls() != before+1 {
				t.Fatalf("%s answered %d without calling the backend once", path, rec.Code)
			}
		case http.StatusBadRequest:
			var e api.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("400 without a JSON error: %q", rec.Body)
			}
			if fake.Calls() != before {
				t.Fatalf("backend called for a rejected request: %s", e.Error)
			}
		default:
			t.Fatalf("%s: status %d: %s", path, rec.Code, rec.Body)
		}
	})
}
