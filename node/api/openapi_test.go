package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"go.yaml.in/yaml/v4"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/notices"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/report"
)

// The OpenAPI document (openapi.yaml, served at /v1/openapi.yaml) is read
// with a YAML parser and kin-openapi, the way its users' tools read it:
// it must be valid OpenAPI 3, describe exactly the routes the server has
// and the fields of the JSON types, and every response the API tests get
// (harness.do checks each one) must be one the document allows.

// loadOpenAPI parses and validates the document; the test binary does it
// once.
var loadOpenAPI = sync.OnceValues(func() (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		return nil, fmt.Errorf("load openapi.yaml: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi.yaml is not valid OpenAPI 3: %w", err)
	}
	return doc, nil
})

// openAPIRouter finds a request's operation in the document, whatever
// the host: the document's server is the default address, the tests'
// httptest servers listen elsewhere.
var openAPIRouter = sync.OnceValues(func() (routers.Router, error) {
	doc, err := loadOpenAPI()
	if err != nil {
		return nil, err
	}
	local := *doc
	local.Servers = nil
	return legacy.NewRouter(&local)
})

func openAPI(t testing.TB) *openapi3.T {
	t.Helper()
	doc, err := loadOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func init() {
	// The two response types the library has no decoder for: an export
	// file is bytes, an event stream is checked event by event.
	openapi3filter.RegisterBodyDecoder("application/vnd.staydown.export", openapi3filter.FileBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/event-stream", eventStreamDecoder)
	openapi3filter.RegisterBodyDecoder("application/taxii+json", openapi3filter.JSONBodyDecoder)
}

// eventStreamDecoder checks the data of every event of a Server-Sent
// Events stream against the schema (which describes one event) and
// returns the last.
func eventStreamDecoder(body io.Reader, _ http.Header, schema *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	var last any = map[string]any{}
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var v any
		if err := json.Unmarshal([]byte(data), &v); err != nil {
			return nil, fmt.Errorf("event data %q: %w", data, err)
		}
		if err := schema.Value.VisitJSON(v); err != nil {
			return nil, fmt.Errorf("event data %s: %w", data, err)
		}
		last = v
	}
	return last, sc.Err()
}

// TestOpenAPIIsValid: the document is valid YAML and valid OpenAPI 3. An
// unquoted comma in a flow mapping ({ description: a, b }) ends the
// scalar and makes a key "b" with no value: the document never means an
// empty value, so any is such a comma.
func TestOpenAPIIsValid(t *testing.T) {
	var root yaml.Node
	if err := yaml.Unmarshal(api.OpenAPI, &root); err != nil {
		t.Fatalf("openapi.yaml is not YAML: %v", err)
	}
	var walk func(*yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if k, v := n.Content[i], n.Content[i+1]; v.Tag == "!!null" {
					t.Errorf("openapi.yaml:%d: key %q has no value (an unquoted comma before it?)", k.Line, k.Value)
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
	openAPI(t)
}

func TestOpenAPIPathsMatchRoutes(t *testing.T) {
	doc := openAPI(t)
	// Each method is documented as "METHOD scope" (x-scope).
	documented := map[string][]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			scope, ok := op.Extensions["x-scope"].(string)
			if !ok {
				scope = "(no x-scope)"
			}
			documented[path] = append(documented[path], method+" "+scope)
		}
	}
	served := map[string][]string{}
	for _, r := range api.Routes() {
		served[r.Path] = append(served[r.Path], r.Method+" "+r.Scope.String())
	}
	for _, m := range []map[string][]string{documented, served} {
		for p := range m {
			slices.Sort(m[p])
		}
	}
	if !reflect.DeepEqual(documented, served) {
		t.Errorf("openapi.yaml documents\n %v\nthe server serves\n %v", documented, served)
	}
}

// properties returns the property names of a schema, those of its allOf
// parts included.
func properties(s *openapi3.Schema) []string {
	var names []string
	for name := range s.Properties {
		names = append(names, name)
	}
	for _, part := range s.AllOf {
		names = append(names, properties(part.Value)...)
	}
	return names
}

// jsonFields returns the JSON names of a struct type's fields, those of
// embedded structs included (encoding/json flattens them).
func jsonFields(rt reflect.Type) []string {
	var names []string
	for i := range rt.NumField() {
		f := rt.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case tag == "-" || !f.IsExported():
		case f.Anonymous && tag == "":
			names = append(names, jsonFields(f.Type)...)
		case tag == "":
			names = append(names, f.Name)
		default:
			names = append(names, tag)
		}
	}
	return names
}

func TestOpenAPISchemasMatchTypes(t *testing.T) {
	types := map[string]any{
		"Error":               api.ErrorBody{},
		"Signal":              api.Signal{},
		"AdditionRequest":     api.AdditionRequest{},
		"RetractionRequest":   api.RetractionRequest{},
		"DisputeRequest":      api.DisputeRequest{},
		"AllowRequest":        api.AllowRequest{},
		"Published":           api.Published{},
		"MatchRequest":        api.MatchRequest{},
		"MatchResults":        api.MatchResults{},
		"MatchResult":         api.MatchResult{},
		"Attestation":         api.Attestation{},
		"Reason":              api.Reason{},
		"Status":              api.Status{},
		"FileMatch":           api.FileMatch{},
		"FileHash":            api.FileHash{},
		"VideoMatch":          api.VideoMatch{},
		"WatchRequest":        api.WatchRequest{},
		"WatchSignal":         api.WatchSignal{},
		"Watchlist":           api.Watchlist{},
		"WatchedItem":         api.WatchedItem{},
		"WatchResult":         api.WatchResult{},
		"UnwatchResult":       api.UnwatchResult{},
		"AlertList":           api.AlertList{},
		"Alert":               api.Alert{},
		"NoticeRequest":       api.NoticeRequest{},
		"NoticeUpdateRequest": api.NoticeUpdateRequest{},
		"ReplyRequest":        api.ReplyRequest{},
		"NoticeList":          api.NoticeList{},
		"NoticeView":          api.NoticeView{},
		"BlockingView":        notices.BlockingView{},
		"OrderRequest":        api.OrderRequest{},
		"OrderLiftRequest":    api.OrderLiftRequest{},
		"OrdersPublished":     api.OrdersPublished{},
		"NoticeDetails":       api.NoticeDetails{},
		"NoticeUpdate":        api.NoticeUpdate{},
		"NoticeReply":         api.NoticeReply{},
		"NoticeAction":        api.NoticeAction{},
		"Event":               api.Event{},
		"EntryProof":          protocol.EntryProof{},
		"Report":              report.Report{},
		"ReportMember":        report.Member{},
		"ReportTotals":        report.Totals{},
		"ReportFigures":       report.Figures{},
		"MembersView":         api.MembersView{},
		"VotingRule":          api.VotingRule{},
		"MemberView":          api.MemberView{},
		"MemberKey":           api.MemberKey{},
		"RemovedMember":       api.RemovedMember{},
		"VoteConflict":        api.VoteConflict{},
		"RosterVersion":       api.RosterVersion{},
		"ProposalList":        api.ProposalList{},
		"ProposalView":        api.ProposalView{},
		"AmendmentView":       api.AmendmentView{},
		"ProposeRequest":      api.ProposeRequest{},
		"PeerRequest":         api.PeerRequest{},
		"PeerAnnounced":       api.PeerAnnounced{},
		"MemberBlock":         api.MemberBlock{},
		"Removal":             api.Removal{},
		"RoleChange":          api.RoleChange{},
		"Revocation":          api.Revocation{},
		"ImportRequest":       api.ImportRequest{},
		"ImportOutcome":       api.ImportOutcome{},
		"Changes":             api.Changes{},
		"SignalChange":        api.SignalChange{},
		"FeedAttestation":     api.FeedAttestation{},
		"TAXIIError":          api.TAXIIError{},
		"TAXIIDiscovery":      api.TAXIIDiscovery{},
		"TAXIIAPIRoot":        api.TAXIIAPIRoot{},
		"TAXIICollections":    api.TAXIICollections{},
		"TAXIICollection":     api.TAXIICollection{},
		"TAXIIEnvelope":       api.TAXIIEnvelope{},
		"TAXIIManifest":       api.TAXIIManifest{},
		"TAXIIManifestEntry":  api.TAXIIManifestEntry{},
	}
	schemas := openAPI(t).Components.Schemas
	for name, v := range types {
		s, ok := schemas[name]
		if !ok {
			t.Errorf("openapi.yaml has no schema %s", name)
			continue
		}
		fields, got := jsonFields(reflect.TypeOf(v)), properties(s.Value)
		slices.Sort(fields)
		slices.Sort(got)
		if !slices.Equal(fields, got) {
			t.Errorf("schema %s: openapi.yaml has properties %v, the Go type has %v", name, got, fields)
		}
	}
	for name, s := range schemas {
		if _, ok := types[name]; !ok && len(properties(s.Value)) > 0 {
			t.Errorf("schema %s with properties is not checked against a Go type", name)
		}
	}
}

// conforms checks that a response the server gave to req is one the
// document allows for the operation: its status is documented, and its
// Content-Type and body are those documented for the status. An unknown
// path (404) or method (405) has no operation: its answer must be an
// Error.
func conforms(t testing.TB, req *http.Request, r response) {
	t.Helper()
	router, err := openAPIRouter()
	if err != nil {
		t.Fatal(err)
	}
	route, params, err := router.FindRoute(req)
	if err == nil && strings.HasSuffix(req.URL.Path, "/") {
		// The router forgives a trailing slash, the server does not.
		matched := route.Path
		for k, v := range params {
			matched = strings.ReplaceAll(matched, "{"+k+"}", v)
		}
		if matched != req.URL.Path {
			err = routers.ErrPathNotFound
		}
	}
	if err != nil {
		// No operation: the server answers before it finds one (401) or
		// because there is none (404, 405).
		if r.code != http.StatusUnauthorized && r.code != http.StatusNotFound && r.code != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: %v, and answered %d", req.Method, req.URL.Path, err, r.code)
			return
		}
		// TAXII's paths answer TAXII error messages.
		var body any
		wantType, schema := "application/json", "Error"
		if strings.HasPrefix(req.URL.Path, api.TAXIIPrefix) {
			wantType, schema = api.TAXIIMediaType, "TAXIIError"
		}
		if ct := r.header.Get("Content-Type"); ct != wantType {
			t.Errorf("%s %s: answered %d with Content-Type %q, want %s", req.Method, req.URL.Path, r.code, ct, wantType)
		} else if err := json.Unmarshal(r.body, &body); err != nil {
			t.Errorf("%s %s: answered %d with %q: %v", req.Method, req.URL.Path, r.code, r.body, err)
		} else if err := openAPI(t).Components.Schemas[schema].Value.VisitJSON(body); err != nil {
			t.Errorf("%s %s: answered %d with %s, not an %s: %v", req.Method, req.URL.Path, r.code, r.body, schema, err)
		}
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 r.code,
		Header:                 r.header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(r.body)
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		t.Errorf("%s %s answered %d (%s), which openapi.yaml does not allow: %v\nbody: %.2000s",
			req.Method, req.URL.Path, r.code, r.header.Get("Content-Type"), err, r.body)
	}
}

// TestConformsRefusesUndocumented: conforms finds a response the
// document does not allow.
func TestConformsRefusesUndocumented(t *testing.T) {
	req, err := http.NewRequest("GET", "http://127.0.0.1:1/v1/status", nil)
	if err != nil {
		t.Fatal(err)
	}
	json := http.Header{"Content-Type": {"application/json"}}
	for name, r := range map[string]response{
		"status not documented":   {http.StatusTeapot, json, []byte(`{"error":"x"}`)},
		"field of the wrong type": {http.StatusOK, json, []byte(`{"id":1}`)},
		"wrong content type":      {http.StatusOK, http.Header{"Content-Type": {"text/plain"}}, []byte(`x`)},
		"not an error body":       {http.StatusUnauthorized, json, []byte(`{"message":"x"}`)},
	} {
		var ft fakeT
		conforms(&ft, req, r)
		if !ft.failed {
			t.Errorf("%s: accepted", name)
		}
	}
}

// fakeT records whether a check failed.
type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Helper()               {}
func (f *fakeT) Errorf(string, ...any) { f.failed = true }
