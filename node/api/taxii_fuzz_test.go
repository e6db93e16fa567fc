package api_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"testing"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/api/apitest"
	"github.com/staydown/staydown/node/tokens"
	"github.com/staydown/staydown/protocol"
)

// FuzzTAXIIQuery sends arbitrary query strings, Accept and Authorization
// headers to a collection's objects/ (in process: the parsing is what is
// fuzzed). The server must never panic and must answer a TAXII envelope
// of at most the page size (200), or a TAXII error message of its status
// (400, 401, 406), always with the TAXII media type. A next it accepts
// reads back to itself (ParseTAXIICursor of its String).
func FuzzTAXIIQuery(f *testing.F) {
	next := api.TAXIICursor{N: 1, ID8: [8]byte{0x12, 0x20, 1}, Key: []byte{0}}.String()
	for _, seed := range []struct{ query, accept, auth string }{
		{"limit=1", api.TAXIIMediaType, "Bearer " + token},
		{"added_after=2026-01-01T00:00:00.000Z&match[type]=indicator", "application/taxii+json", "Basic eDo=" + token},
		{"next=" + next + "&limit=5", "*/*", "Bearer " + token},
		{"match[id]=a,,b", "application/json", "Bearer " + token},
		{"match[version]=all&match[spec_version]=2.0", "application/taxii+json;version=2.0, */*;q=0", "Bearer x"},
		{"%zz&limit=-1", "", ""},
	} {
		f.Add(seed.query, seed.accept, seed.auth)
	}
	fake := apitest.New("bka", protocol.RoleReferral, apitest.Member("pa", protocol.RolePlatform))
	h := api.NewServer(documented{fake}, tokens.Static(token), slog.New(slog.DiscardHandler))
	path := "/taxii2/staydown/collections/" + api.TAXIICollectionID(apitest.Federation, "") + "/objects/"
	f.Fuzz(func(t *testing.T, query, accept, auth string) {
		req := httptest.NewRequest(http.MethodGet, "http://node.example"+path, nil)
		req.URL.RawQuery = query
		req.Header.Set("Accept", accept)
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if ct := rec.Header().Get("Content-Type"); ct != api.TAXIIMediaType {
			t.Fatalf("%q: %d with Content-Type %q", query, rec.Code, ct)
		}
		switch rec.Code {
		case http.StatusOK:
			var env api.TAXIIEnvelope
			if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
				t.Fatalf("%q: 200 with %s: %v", query, rec.Body, err)
			}
			limit := api.DefaultTAXIIPage
			if v := req.URL.Query()["limit"]; len(v) == 1 {
				limit, _ = strconv.Atoi(v[0])
			}
			if len(env.Objects) > limit {
				t.Fatalf("%q: %d objects, limit %d", query, len(env.Objects), limit)
			}
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotAcceptable:
			var e api.TAXIIError
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.HTTPStatus != strconv.Itoa(rec.Code) || e.Description == "" {
				t.Fatalf("%q: %d with %s: %v", query, rec.Code, rec.Body, err)
			}
		default:
			t.Fatalf("%q: %d %s", query, rec.Code, rec.Body)
		}
		if v := req.URL.Query()["next"]; len(v) == 1 {
			if c, err := api.ParseTAXIICursor(v[0]); err == nil {
				again, err := api.ParseTAXIICursor(c.String())
				if err != nil || !reflect.DeepEqual(again, c) {
					t.Fatalf("cursor %q reads back as %+v, %v; was %+v", v[0], again, err, c)
				}
			}
		}
	})
}
