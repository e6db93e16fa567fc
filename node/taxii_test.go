package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/staydown/staydown/internal/testclock"
	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/tokens"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// taxiiClient is a TAXII 2.1 client written from the specification (OASIS
// TAXII Version 2.1, sections 3 to 5): it sends the TAXII media type in
// Accept, authenticates with HTTP Basic (the token as the password) or a
// bearer token, and checks what every answer must be: the TAXII media
// type, and on an error a TAXII error message whose http_status is the
// status.
type taxiiClient struct {
	t      testing.TB
	base   string // scheme://host
	auth   string // the Authorization header
	accept string
}

type taxiiAnswer struct {
	code   int
	header http.Header
	body   []byte
}

func (c *taxiiClient) get(rawURL string) taxiiAnswer {
	c.t.Helper()
	if strings.HasPrefix(rawURL, "/") {
		rawURL = c.base + rawURL
	}
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Accept", c.accept)
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	a := taxiiAnswer{res.StatusCode, res.Header, body}
	if ct := res.Header.Get("Content-Type"); ct != api.TAXIIMediaType {
		c.t.Errorf("GET %s: Content-Type %q, want %q", rawURL, ct, api.TAXIIMediaType)
	}
	if a.code >= 400 {
		var e api.TAXIIError
		if err := json.Unmarshal(body, &e); err != nil || e.Title == "" || e.HTTPStatus != fmt.Sprint(a.code) {
			c.t.Errorf("GET %s: %d with %s, not a TAXII error message of that status", rawURL, a.code, body)
		}
	}
	return a
}

// must answers 200 and decodes the body into v.
func (c *taxiiClient) must(rawURL string, v any) taxiiAnswer {
	c.t.Helper()
	a := c.get(rawURL)
	if a.code != http.StatusOK {
		c.t.Fatalf("GET %s: %d %s", rawURL, a.code, a.body)
	}
	if err := json.Unmarshal(a.body, v); err != nil {
		c.t.Fatalf("GET %s: %v\n%s", rawURL, err, a.body)
	}
	return a
}

// listed is one object as a page listed it.
type listed struct {
	ID, Type, Modified string
	Revoked            bool
	Status             string   `json:"x_staydown_status"`
	IndicatorTypes     []string `json:"indicator_types"`
	Pattern            string
	Labels             []string
	CreatedByRef       string `json:"created_by_ref"`
	raw                json.RawMessage
	dateAdded          string // the page's X-TAXII-Date-Added-Last
}

// walk pages through path (objects/ or manifest/ of a collection) with
// query q, following next until more is false, as section 3.4 says; it
// checks each page's size and its X-TAXII-Date-Added headers.
func (c *taxiiClient) walk(path string, q url.Values, limit int) (objs []listed, pages int) {
	c.t.Helper()
	q = cloneQuery(q)
	q.Set("limit", fmt.Sprint(limit))
	var lastAdded string
	for {
		var env struct {
			More    bool              `json:"more"`
			Next    string            `json:"next"`
			Objects []json.RawMessage `json:"objects"`
		}
		a := c.must(path+"?"+q.Encode(), &env)
		pages++
		if len(env.Objects) > limit {
			c.t.Fatalf("page %d: %d objects, limit %d", pages, len(env.Objects), limit)
		}
		first, last := a.header.Get("X-TAXII-Date-Added-First"), a.header.Get("X-TAXII-Date-Added-Last")
		if len(env.Objects) > 0 && (first == "" || last == "" || first > last || first < lastAdded) {
			c.t.Errorf("page %d: X-TAXII-Date-Added-First %q, -Last %q after a page ending %q", pages, first, last, lastAdded)
		}
		if last != "" {
			lastAdded = last
		}
		for _, raw := range env.Objects {
			var o listed
			if err := json.Unmarshal(raw, &o); err != nil {
				c.t.Fatal(err)
			}
			if strings.HasSuffix(path, "/manifest/") {
				// A manifest record: id, date_added, version, media_type.
				var m api.TAXIIManifestEntry
				if err := json.Unmarshal(raw, &m); err != nil || m.MediaType != api.STIXMediaType || m.DateAdded == "" {
					c.t.Fatalf("manifest record %s: %v", raw, err)
				}
				o.ID, o.Modified = m.ID, m.Version
			}
			o.raw, o.dateAdded = raw, last
			objs = append(objs, o)
		}
		if !env.More {
			if env.Next != "" {
				c.t.Errorf("page %d: more false with next %q", pages, env.Next)
			}
			return objs, pages
		}
		if env.Next == "" {
			c.t.Fatalf("page %d: more true without next", pages)
		}
		q.Set("next", env.Next)
		if pages > 100_000 {
			c.t.Fatal("more than 100,000 pages: next does not move")
		}
	}
}

func cloneQuery(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = slices.Clone(v)
	}
	return out
}

// stixValidator validates objects against the OASIS STIX 2.1 JSON
// schemas of ../shared/testdata/stix2-schemas (draft 2020-12), as the
// export's test does (interop/write_stix_test.go): every file is added
// under its own $id, so that their relative $refs resolve offline.
type stixValidator struct {
	c    *jsonschema.Compiler
	ids  map[string]string
	mu   sync.Mutex
	done map[string]*jsonschema.Schema
}

func newSTIXValidator(tb testing.TB) *stixValidator {
	tb.Helper()
	root := filepath.Join("..", "..", "shared", "testdata", "stix2-schemas", "schemas")
	if _, err := os.Stat(root); err != nil {
		tb.Fatalf("the STIX 2.1 schemas are not at %s (the module's ../shared/testdata): %v", root, err)
	}
	v := &stixValidator{c: jsonschema.NewCompiler(), ids: map[string]string{}, done: map[string]*jsonschema.Schema{}}
	v.c.AssertFormat()
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		doc, err := jsonschema.UnmarshalJSON(f)
		if err != nil {
			return err
		}
		id, _ := doc.(map[string]any)["$id"].(string)
		rel, _ := filepath.Rel(root, p)
		v.ids[filepath.ToSlash(rel)] = id
		return v.c.AddResource(id, doc)
	})
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// validate checks one object against its type's schema (sdos/TYPE.json).
func (v *stixValidator) validate(typ string, raw []byte) error {
	v.mu.Lock()
	s, ok := v.done[typ]
	if !ok {
		id, known := v.ids["sdos/"+typ+".json"]
		if !known {
			v.mu.Unlock()
			return fmt.Errorf("no schema of type %q", typ)
		}
		var err error
		if s, err = v.c.Compile(id); err != nil {
			v.mu.Unlock()
			return err
		}
		v.done[typ] = s
	}
	v.mu.Unlock()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	return s.Validate(inst)
}

// latest is the last listing of each object id (a later listing is the
// object's state when read later), and how often each id was listed.
func latest(objs []listed) (map[string]listed, map[string]int) {
	last, count := map[string]listed{}, map[string]int{}
	for _, o := range objs {
		last[o.ID] = o
		count[o.ID]++
	}
	return last, count
}

// A TAXII 2.1 client, written from the specification, reads a node's
// collections over its real HTTP listener: discovery, the API root, the
// collections, every object of the federation's collection page by page
// (following next until more is false, with pages that end inside one
// entry's objects) each valid against the STIX 2.1 schemas and each
// listed in the state the export gives it (disputed, retracted,
// allowlisted, the allowlist entry as a benign indicator, the dispute's
// opinion); the manifest lists the same objects; added_after selects what
// the node logged later; objects/{id}/ and match[...] find objects; a
// member's collection holds its objects; the refusals are TAXII error
// messages: 406 for a wrong Accept, 401 without a token, 403 with a
// match token, 404 for an unknown collection or object, 400 for a bad
// next.
func TestTAXII(t *testing.T) {
	f := newFederation(t, "nru=referral", "pa=platform")
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clock := testclock.New(t0)
	for _, name := range []string{"nru", "pa"} {
		f.cfgs[name].Clock = clock.Now
	}
	nru, pa := f.start("nru"), f.start("pa")
	ctx := context.Background()
	publish := func(n *Node, body *pb.Entry) *protocol.Entry {
		t.Helper()
		e, err := n.Publish(ctx, body)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	// relay hands entries to a node's apply loop, as sync does.
	relay := func(to *Node, es ...*protocol.Entry) {
		t.Helper()
		res, err := to.writer.Apply(es)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if r.Outcome != store.Applied {
				t.Fatalf("relaying %s: %s %v", es[i].Kind(), r.Outcome, r.Err)
			}
		}
	}
	addition := func(sigs ...*pb.Signal) *pb.Entry {
		return &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{Signals: protocol.SortSignals(sigs),
			Labels: []*pb.Label{{Slug: "graphic-violence"}}}}}
	}
	shas := func(from, n int) []*pb.Signal {
		out := make([]*pb.Signal, n)
		for i := range out {
			out[i] = sha256Signal(uint64(from + i))
		}
		return out
	}
	pdq := sig(t, "pdq:f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22")
	link := sig(t, "url:https://example.org/propaganda")
	account := &pb.Signal{Value: &pb.Signal_Account{Account: &pb.Account{Service: "example.social", Id: "12345"}}}
	// nru: 600 sha256 in three additions, then a pdq, a URL and an
	// account (which STIX patterns cannot name).
	a1 := publish(nru, addition(shas(0, 400)...))
	a2 := publish(nru, addition(shas(400, 150)...))
	a3 := publish(nru, addition(shas(550, 50)...))
	a4 := publish(nru, addition(pdq, link, account))
	relay(pa, a1, a2, a3, a4)
	// pa disputes one signal of a1; nru retracts a4's pdq; pa allowlists
	// the URL.
	disputed := a1.Body.GetAddition().GetSignals()[0]
	d := publish(pa, &pb.Entry{Payload: &pb.Entry_Dispute{Dispute: &pb.Dispute{Target: a1.ID[:], Reason: "a news clip", Signals: []*pb.Signal{disputed}}}})
	relay(nru, d)
	r := publish(nru, &pb.Entry{Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{Target: a4.ID[:], Reason: "misfiled", Signals: []*pb.Signal{pdq}}}})
	allow := publish(pa, &pb.Entry{Payload: &pb.Entry_Allow{Allow: &pb.Allow{Signals: []*pb.Signal{link}, Category: "news", Reason: "a news report"}}})
	relay(nru, allow)
	_ = r

	token, err := f.cfgs["nru"].Token()
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + nru.APIAddr().String()
	c := &taxiiClient{t: t, base: base, auth: "Basic " + basic("opencti", token), accept: api.TAXIIMediaType}

	// Discovery, API root, collections.
	var disc api.TAXIIDiscovery
	c.must("/taxii2/", &disc)
	if len(disc.APIRoots) != 1 || disc.Default != disc.APIRoots[0] || !strings.HasPrefix(disc.APIRoots[0], base+"/") {
		t.Fatalf("discovery: %+v", disc)
	}
	root := disc.APIRoots[0]
	var ar api.TAXIIAPIRoot
	c.must(root, &ar)
	if !slices.Contains(ar.Versions, api.TAXIIMediaType) || ar.MaxContentLength <= 0 {
		t.Errorf("API root: %+v", ar)
	}
	var colls api.TAXIICollections
	c.must(root+"collections/", &colls)
	byTitle := map[string]api.TAXIICollection{}
	for _, col := range colls.Collections {
		byTitle[col.Title] = col
		if !col.CanRead || col.CanWrite || !slices.Equal(col.MediaTypes, []string{api.STIXMediaType}) {
			t.Errorf("collection %+v", col)
		}
	}
	fed, ok := byTitle["Federation test"]
	if len(colls.Collections) != 3 || !ok || byTitle["nru"].ID == "" || byTitle["pa"].ID == "" || fed.ID != api.TAXIICollectionID("test", "") {
		t.Fatalf("collections: %+v", colls)
	}
	var one api.TAXIICollection
	c.must(root+"collections/"+fed.ID+"/", &one)
	if one.ID != fed.ID {
		t.Errorf("collection %s: %+v", fed.ID, one)
	}

	// Every object, page by page (150: pages end inside an entry's).
	objsPath := root + "collections/" + fed.ID + "/objects/"
	all, pages := c.walk(objsPath, nil, 150)
	v := newSTIXValidator(t)
	types := map[string]int{}
	for _, o := range all {
		types[o.Type]++
		if err := v.validate(o.Type, o.raw); err != nil {
			t.Errorf("%s: %v\n%s", o.ID, err, o.raw)
		}
	}
	// Every object comes after the identity it is created by.
	identities := map[string]bool{}
	for i, o := range all {
		if o.Type == "identity" {
			identities[o.ID] = true
		} else if !identities[o.CreatedByRef] {
			t.Fatalf("object %d, %s, comes before its creator's identity %s", i, o.ID, o.CreatedByRef)
		}
	}
	last, count := latest(all)
	// Listings: nru's identity and 602 indicators (the account has no
	// pattern); pa's dispute lists pa's identity, the disputed indicator
	// and the opinion; the retraction the pdq's indicator; the allow the
	// benign indicator and nru's URL indicator.
	if want := 1 + 602 + 3 + 1 + 2; len(all) != want || pages != (want+149)/150 {
		t.Errorf("%d objects in %d pages, want %d in %d: %v", len(all), pages, want, (want+149)/150, types)
	}
	if len(last) != 606 || types["identity"] != 2 || types["opinion"] != 1 || types["indicator"] != 606 {
		t.Errorf("%d distinct objects (want 606), by type %v", len(last), types)
	}
	var statuses = map[string]string{}
	for _, o := range last {
		if o.Type != "indicator" {
			continue
		}
		switch {
		case slices.Equal(o.IndicatorTypes, []string{"benign"}):
			statuses["benign "+o.Pattern] = o.Status
		case o.Status != "active":
			statuses[o.Pattern] = o.Status + fmt.Sprint(o.Revoked)
		}
	}
	wantStatuses := map[string]string{
		"[file:hashes.'SHA-256' = '" + strings.TrimPrefix(protocol.FormatSignal(disputed), "sha256:") + "']": "disputedfalse",
		"[file:hashes.PDQ = 'f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22']":             "retractedtrue",
		"[url:value = 'https://example.org/propaganda']":                                                     "allowlistedfalse",
		"benign [url:value = 'https://example.org/propaganda']":                                              "",
	}
	if !mapsEqual(statuses, wantStatuses) {
		t.Errorf("indicators not active:\n %v\nwant\n %v", statuses, wantStatuses)
	}
	// Listed twice: the disputed indicator (with a1 and with the
	// dispute), the pdq's (a4, the retraction), the URL's (a4, the
	// allow); each time in its state when read.
	var twice []string
	for id, n := range count {
		if n > 1 {
			twice = append(twice, fmt.Sprintf("%s %s %d", last[id].Type, last[id].Pattern, n))
		}
	}
	slices.Sort(twice)
	wantTwice := []string{
		"indicator [file:hashes.'SHA-256' = '" + strings.TrimPrefix(protocol.FormatSignal(disputed), "sha256:") + "'] 2",
		"indicator [file:hashes.PDQ = 'f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22'] 2",
		"indicator [url:value = 'https://example.org/propaganda'] 2",
	}
	if !slices.Equal(twice, wantTwice) {
		t.Errorf("listed more than once:\n %q\nwant\n %q", twice, wantTwice)
	}

	// The manifest lists the same objects, with their versions.
	manifest, _ := c.walk(root+"collections/"+fed.ID+"/manifest/", nil, 1000)
	if len(manifest) != len(all) {
		t.Fatalf("manifest: %d records, objects: %d", len(manifest), len(all))
	}
	for i, m := range manifest {
		if m.ID != all[i].ID || m.Modified != all[i].Modified {
			t.Fatalf("manifest record %d: %s %s, object %s %s", i, m.ID, m.Modified, all[i].ID, all[i].Modified)
		}
	}

	// added_after: what the node logged after the last page's
	// X-TAXII-Date-Added-Last; nothing, then a later addition.
	added := all[len(all)-1].dateAdded
	if after, _ := c.walk(objsPath, url.Values{"added_after": {added}}, 1000); len(after) != 0 {
		t.Errorf("added after the last: %d objects", len(after))
	}
	clock.Add(time.Second)
	publish(nru, addition(shas(5000, 10)...))
	after, _ := c.walk(objsPath, url.Values{"added_after": {added}}, 3)
	if len(after) != 10 {
		t.Errorf("added after %s: %d objects, want the 10 indicators published since", added, len(after))
	}
	if at := after[0].dateAdded; at != t0.Add(time.Second).Format(api.TimeFormat) {
		t.Errorf("date added %s, want the node's clock when it logged the addition, %s", at, t0.Add(time.Second).Format(api.TimeFormat))
	}

	// One object; filters.
	want := last[all[5].ID]
	var env api.TAXIIEnvelope
	c.must(objsPath+want.ID+"/", &env)
	if len(env.Objects) != 1 || env.More || !bytes.Equal(env.Objects[0], want.raw) {
		t.Errorf("objects/%s/: %+v", want.ID, env)
	}
	if opinions, _ := c.walk(objsPath, url.Values{"match[type]": {"opinion,identity"}}, 10); len(opinions) != 3 {
		t.Errorf("match[type]=opinion,identity: %d objects, want 3", len(opinions))
	}
	if got, _ := c.walk(objsPath, url.Values{"match[id]": {want.ID}}, 10); len(got) != 1 || got[0].ID != want.ID {
		t.Errorf("match[id]: %+v", got)
	}
	if got, _ := c.walk(objsPath, url.Values{"match[spec_version]": {"2.0"}}, 10); len(got) != 0 {
		t.Errorf("match[spec_version]=2.0: %d objects", len(got))
	}
	// pa's collection: its identity, its opinion, its allowlist entry.
	paObjs, _ := c.walk(root+"collections/"+byTitle["pa"].ID+"/objects/", nil, 2)
	var paTypes []string
	for _, o := range paObjs {
		paTypes = append(paTypes, o.Type)
	}
	if !slices.Equal(paTypes, []string{"identity", "opinion", "indicator"}) {
		t.Errorf("pa's collection: %q", paTypes)
	}

	// Refusals.
	wrong := *c
	wrong.accept = "application/json"
	if a := wrong.get(root + "collections/"); a.code != http.StatusNotAcceptable {
		t.Errorf("Accept application/json: %d %s", a.code, a.body)
	}
	wrong.accept = "application/taxii+json;version=2.0"
	if a := wrong.get("/taxii2/"); a.code != http.StatusNotAcceptable {
		t.Errorf("Accept version 2.0: %d %s", a.code, a.body)
	}
	anon := *c
	anon.auth = ""
	if a := anon.get("/taxii2/"); a.code != http.StatusUnauthorized || !strings.Contains(strings.Join(a.header.Values("WWW-Authenticate"), " "), "Basic") {
		t.Errorf("no token: %d %v %s", a.code, a.header, a.body)
	}
	bearer := *c
	bearer.auth = "Bearer " + token
	bearer.must(root, &ar)
	matchTok, _, err := tokens.Add(f.cfgs["nru"].Dir, tokens.Match, "pipeline", clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	readTok, _, err := tokens.Add(f.cfgs["nru"].Dir, tokens.Read, "opencti", clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	clock.Add(tokens.CheckEvery)
	matcher := *c
	matcher.auth = "Basic " + basic("x", matchTok)
	if a := matcher.get(objsPath); a.code != http.StatusForbidden {
		t.Errorf("match token: %d %s", a.code, a.body)
	}
	reader := *c
	reader.auth = "Basic " + basic("opencti", readTok)
	waitUntil(t, 10*time.Second, "the read token to be accepted", func() bool { return reader.get(root).code == http.StatusOK })
	for path, code := range map[string]int{
		root + "collections/" + api.TAXIICollectionID("test", "nobody") + "/":         http.StatusNotFound,
		root + "collections/" + api.TAXIICollectionID("test", "nobody") + "/objects/": http.StatusNotFound,
		objsPath + "indicator--00000000-0000-5000-8000-000000000000/":                 http.StatusNotFound,
		objsPath + "?next=AAAA":                                  http.StatusBadRequest,
		objsPath + "?next=" + api.TAXIICursor{N: 99999}.String(): http.StatusBadRequest,
		objsPath + "?added_after=yesterday":                      http.StatusBadRequest,
		objsPath + "?match[version]=all":                         http.StatusBadRequest,
		objsPath + "?limit=0":                                    http.StatusBadRequest,
		objsPath + "?colour=red":                                 http.StatusBadRequest,
		root + "collections/?limit=1":                            http.StatusBadRequest,
		"/taxii2/elsewhere/":                                     http.StatusNotFound,
	} {
		if a := reader.get(path); a.code != code {
			t.Errorf("%s: %d, want %d: %s", path, a.code, code, a.body)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func basic(user, password string) string {
	req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	req.SetBasicAuth(user, password)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}
