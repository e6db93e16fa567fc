package api_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/api/apitest"
	"github.com/staydown/staydown/node/tokens"
	"github.com/staydown/staydown/protocol"
)

// Every route names a valid scope: the route table cannot hold one
// without.
func TestEveryRouteHasAScope(t *testing.T) {
	routes := api.Routes()
	if len(routes) < 20 {
		t.Fatalf("only %d routes", len(routes))
	}
	for _, r := range routes {
		if !r.Scope.Valid() {
			t.Errorf("%s %s has no scope (%v)", r.Method, r.Path, r.Scope)
		}
	}
}

// Every route, driven with a token of every scope (from api.tokens, as
// staydown token add makes them): 403 naming both scopes exactly when the
// scope does not allow the route, else an answer of the route itself
// (requests without a body: 2xx, or 4xx that is neither 401 nor 403).
func TestScopes(t *testing.T) {
	dir := t.TempDir()
	keys := map[tokens.Scope]string{}
	for _, s := range tokens.Scopes {
		tok, _, err := tokens.Add(dir, s, s.String()+"-token", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		keys[s] = tok
	}
	keeper, err := tokens.Open(dir, "", time.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	fake := apitest.New("bka", protocol.RoleReferral, other)
	srv := httptest.NewServer(api.NewServer(fake, keeper, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	want := map[string]tokens.Scope{ // the scopes as the README documents them
		"POST /v1/additions": tokens.Publish, "POST /v1/retractions": tokens.Publish, "POST /v1/disputes": tokens.Publish,
		"POST /v1/allows": tokens.Publish, "POST /v1/notices": tokens.Publish, "POST /v1/notice-updates": tokens.Publish,
		"POST /v1/replies": tokens.Publish, "POST /v1/watchlist": tokens.Publish, "POST /v1/watchlist/remove": tokens.Publish,
		"POST /v1/import": tokens.Publish, "POST /v1/orders": tokens.Publish, "POST /v1/orders/lift": tokens.Publish,
		"GET /v1/match": tokens.Match, "POST /v1/match": tokens.Match, "POST /v1/match/file": tokens.Match,
		"GET /v1/status": tokens.Read, "GET /v1/report": tokens.Read, "GET /v1/events": tokens.Read, "GET /v1/alerts": tokens.Read, "GET /v1/watchlist": tokens.Read,
		"GET /v1/members": tokens.Read, "GET /v1/proposals": tokens.Read, "GET /v1/notices": tokens.Read, "GET /v1/export": tokens.Read, "GET /v1/changes": tokens.Read,
		"GET /v1/proof": tokens.Read, "GET /v1/openapi.yaml": tokens.Read,
		"GET /v1/signals/export": tokens.Read, "GET /v1/misp-feed/manifest.json": tokens.Read, "GET /v1/misp-feed/hashes.csv": tokens.Read,
		"GET /v1/misp-feed/{event}": tokens.Read,
		"POST /v1/members/peer":     tokens.Admin, "POST /v1/proposals": tokens.Admin, "POST /v1/proposals/{id}/approvals": tokens.Admin,
		"GET /taxii2/": tokens.Read, "GET /taxii2/staydown/": tokens.Read, "GET /taxii2/staydown/collections/": tokens.Read,
		"GET /taxii2/staydown/collections/{collection}/": tokens.Read, "GET /taxii2/staydown/collections/{collection}/objects/": tokens.Read,
		"GET /taxii2/staydown/collections/{collection}/objects/{object}/": tokens.Read,
		"GET /taxii2/staydown/collections/{collection}/manifest/":         tokens.Read,
	}
	for _, r := range api.Routes() {
		key := r.Method + " " + r.Path
		if r.Scope != want[key] {
			t.Errorf("%s needs scope %v, want %v", key, r.Scope, want[key])
		}
		delete(want, key)
		path := strings.ReplaceAll(r.Path, "{id}", strings.Repeat("ab", 34))
		if r.Path == "/v1/events" {
			path += "?after=x" // a bad position: answered at once, not a stream
		}
		for _, s := range tokens.Scopes {
			t.Run(fmt.Sprintf("%s/%s", key, s), func(t *testing.T) {
				req, err := http.NewRequest(r.Method, srv.URL+path, strings.NewReader(""))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Authorization", "Bearer "+keys[s])
				res, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				var body api.ErrorBody
				if strings.HasPrefix(r.Path, api.TAXIIPrefix) {
					var te api.TAXIIError // TAXII's paths answer TAXII error messages
					json.NewDecoder(res.Body).Decode(&te)
					body.Error = te.Description
				} else {
					json.NewDecoder(res.Body).Decode(&body)
				}
				allowed := s.Allows(r.Scope)
				switch {
				case !allowed && res.StatusCode != http.StatusForbidden:
					t.Errorf("scope %s: status %d, want 403", s, res.StatusCode)
				case !allowed:
					msg := fmt.Sprintf("authorization: %s needs a token with scope %s; this token's scope is %s", key, r.Scope, s)
					if body.Error != msg {
						t.Errorf("message %q, want %q", body.Error, msg)
					}
				case res.StatusCode == http.StatusForbidden || res.StatusCode == http.StatusUnauthorized || res.StatusCode >= 500 && res.StatusCode != http.StatusNotImplemented: // 501: the fake gives no proofs
					t.Errorf("scope %s allows %s: status %d: %s", s, key, res.StatusCode, body.Error)
				}
			})
		}
	}
	for key := range want {
		t.Errorf("%s is not served", key)
	}
}
