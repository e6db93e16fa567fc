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

// FuzzImport sends any body to POST /v1/import: the answer is 200/201
// with as many entries as the backend signed (each within the entry
// bound), or 400 with nothing signed; never another status.
func FuzzImport(f *testing.F) {
	md5 := strings.Repeat("ab", 16)
	for _, seed := range []string{
		`{"labels":["graphic-violence"],"signals":[{"type":"md5","value":"` + md5 + `"},{"type":"url","value":"https://x.example/a","labels":["other:x"]}]}`,
		`{"signals":[{"type":"md5","value":"` + md5 + `","deleted":true}],"dry_run":true}`,
		`{"signals":[{"type":"pdq","value":"` + strings.Repeat("0", 64) + `","labels":["attacker-manifesto","attacker-manifesto"]}],"case_ref":"c"}`,
		`{"signals":[]}`, `{}`, `null`, `{"signals":[{"type":1}]}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		fake := apitest.New("bka", protocol.RoleReferral, apitest.Member("pa", protocol.RolePlatform))
		h := api.NewServer(fake, tokens.Static(token), slog.New(slog.DiscardHandler))
		req := httptest.NewRequest("POST", "/v1/import", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusCreated:
			var out api.ImportOutcome
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				t.Fatalf("answer %q: %v", rec.Body, err)
			}
			if len(out.Entries) != len(fake.Signed()) {
				t.Fatalf("answered %d entries, signed %d", len(out.Entries), len(fake.Signed()))
			}
			for _, e := range fake.Signed() {
				if len(e.Raw) > protocol.MaxEntrySize {
					t.Fatalf("entry of %d bytes", len(e.Raw))
				}
			}
		case http.StatusBadRequest:
			if n := len(fake.Signed()); n != 0 {
				t.Fatalf("400 (%s) after signing %d entries", rec.Body, n)
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}
