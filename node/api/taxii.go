package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/staydown/staydown/protocol"
)

// A read-only TAXII 2.1 server (OASIS, TAXII Version 2.1; SPEC 23): the
// discovery resource, one API root, a collection of the whole federation
// and one per member, their objects, single objects and manifests. The
// objects are the STIX 2.1 objects of the signal export (SPEC 22), listed
// in the order this node logged the entries that make or change them, so
// that a page is a position in the node's arrivals (a cursor, not a sort)
// and added_after is a binary search over them.

// TAXII's paths. The API root's name is fixed: a node serves one
// federation.
const (
	TAXIIPrefix    = "/taxii2/"
	taxiiRootPath  = TAXIIPrefix + "staydown/"
	taxiiCollsPath = taxiiRootPath + "collections/"
	// The route table's names of the paths with parameters (taxiiRoute
	// maps a request's path to them).
	taxiiCollRoute     = taxiiCollsPath + "{collection}/"
	taxiiObjectsRoute  = taxiiCollRoute + "objects/"
	taxiiObjectRoute   = taxiiObjectsRoute + "{object}/"
	taxiiManifestRoute = taxiiCollRoute + "manifest/"
)

// TAXII's media types: of every answer, and of the STIX objects a
// collection holds.
const (
	TAXIIMediaType = "application/taxii+json;version=2.1"
	STIXMediaType  = "application/stix+json;version=2.1"
)

// Page sizes of objects/ and manifest/: a larger limit is served as the
// maximum (TAXII lets the server choose).
const (
	DefaultTAXIIPage = 1000
	MaxTAXIIPage     = 10000
)

// TAXIIObject is one STIX object of a collection, as one arrival lists
// it.
type TAXIIObject struct {
	// Key orders the objects of one arrival; a page cursor resumes after
	// it. Keys begin with a byte below 0xff.
	Key  []byte
	ID   string
	Type string
	// Author is the member the object is by (its created_by_ref; an
	// identity's own member): a member's collection lists its objects.
	Author string
	// Modified is the object's version (STIX modified).
	Modified string
	JSON     json.RawMessage
}

// TAXIIArrival is one entry the node logged.
type TAXIIArrival struct {
	N       uint64
	EntryID protocol.ID
	AddedMs int64 // when the node logged it: the objects' date_added
	// Objects makes the objects it lists, sorted by Key, reading the
	// store: a page calls it only for the arrivals it reaches.
	Objects func() ([]TAXIIObject, error)
}

// TAXIISource is what the TAXII server needs of a node (node.Node
// implements it).
type TAXIISource interface {
	// TAXIIArrivals returns up to max arrivals numbered after after, in
	// order.
	TAXIIArrivals(ctx context.Context, after uint64, max int) ([]TAXIIArrival, error)
	// TAXIIArrivalsBy is how many arrivals the node logged at or before
	// ms (Unix milliseconds): the later ones are added after it.
	TAXIIArrivalsBy(ctx context.Context, ms int64) (uint64, error)
	// Federation is the federation's name.
	Federation() string
}

// TAXIIError is TAXII's error message.
type TAXIIError struct {
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	HTTPStatus  string `json:"http_status"`
}

// TAXIIDiscovery is the discovery resource (GET /taxii2/).
type TAXIIDiscovery struct {
	Title       string   `json:"title"`
	Description string   `json:"description"`
	Default     string   `json:"default"`
	APIRoots    []string `json:"api_roots"`
}

// TAXIIAPIRoot is the API root resource.
type TAXIIAPIRoot struct {
	Title            string   `json:"title"`
	Description      string   `json:"description"`
	Versions         []string `json:"versions"`
	MaxContentLength int      `json:"max_content_length"`
}

// TAXIICollections lists the collections.
type TAXIICollections struct {
	Collections []TAXIICollection `json:"collections"`
}

// TAXIICollection is a collection resource: read, never written.
type TAXIICollection struct {
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	CanRead     bool     `json:"can_read"`
	CanWrite    bool     `json:"can_write"`
	MediaTypes  []string `json:"media_types"`
}

// TAXIIEnvelope is a page of objects.
type TAXIIEnvelope struct {
	More    bool              `json:"more"`
	Next    string            `json:"next,omitempty"`
	Objects []json.RawMessage `json:"objects,omitempty"`
}

// TAXIIManifest is a page of a collection's manifest.
type TAXIIManifest struct {
	More    bool                 `json:"more"`
	Next    string               `json:"next,omitempty"`
	Objects []TAXIIManifestEntry `json:"objects,omitempty"`
}

// TAXIIManifestEntry describes one object of a manifest page.
type TAXIIManifestEntry struct {
	ID        string `json:"id"`
	DateAdded string `json:"date_added"`
	Version   string `json:"version"`
	MediaType string `json:"media_type"`
}

// taxiiNS is SPEC 22's namespace of stable ids.
var taxiiNS = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/staydown/staydown"))

// TAXIICollectionID is the id of the federation's collection (member
// ""), or of a member's.
func TAXIICollectionID(federation, member string) string {
	parts := []string{federation, "taxii-collection"}
	if member != "" {
		parts = append(parts, member)
	}
	return uuid.NewSHA1(taxiiNS, []byte(strings.Join(parts, "\x00"))).String()
}

// taxiiRoute maps a request's path under TAXIIPrefix to its route.
func taxiiRoute(path string) string {
	rest, ok := strings.CutPrefix(path, taxiiCollsPath)
	if !ok || rest == "" {
		return path
	}
	parts := strings.Split(rest, "/")
	if slices.Contains(parts[:len(parts)-1], "") || parts[len(parts)-1] != "" {
		return path // an empty segment, or no trailing slash: no route
	}
	switch parts = parts[:len(parts)-1]; {
	case len(parts) == 1:
		return taxiiCollRoute
	case len(parts) == 2 && parts[1] == "objects":
		return taxiiObjectsRoute
	case len(parts) == 2 && parts[1] == "manifest":
		return taxiiManifestRoute
	case len(parts) == 3 && parts[1] == "objects":
		return taxiiObjectRoute
	}
	return path
}

// taxiiAccepts reports whether an Accept header admits TAXII 2.1's media
// type: application/taxii+json with version 2.1 or none, or a wildcard.
// No header admits anything.
func taxiiAccepts(accept string) bool {
	if strings.TrimSpace(accept) == "" {
		return true
	}
	for part := range strings.SplitSeq(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if q, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(q, 64); err != nil || f <= 0 {
				continue
			}
		}
		switch mt {
		case "*/*", "application/*":
			return true
		case "application/taxii+json":
			if v, ok := params["version"]; !ok || v == "2.1" {
				return true
			}
		}
	}
	return false
}

// basicAsBearer turns HTTP Basic credentials (any user name, the token as
// the password: what TAXII clients send) into the bearer form the token
// keeper reads; any other header is returned as it is.
func basicAsBearer(header string) string {
	scheme, cred, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return header
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return header
	}
	_, password, ok := strings.Cut(string(raw), ":")
	if !ok {
		return header
	}
	return "Bearer " + password
}

// taxiiFail answers a TAXII error message.
func (s *server) taxiiFail(w http.ResponseWriter, code int, msg string) {
	s.taxiiReply(w, code, TAXIIError{Title: http.StatusText(code), Description: msg, HTTPStatus: strconv.Itoa(code)})
}

func (s *server) taxiiError(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := s.statusOf(r, err)
	s.taxiiFail(w, code, msg)
}

func (s *server) taxiiReply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", TAXIIMediaType)
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		s.log.Debug("api: writing TAXII response", "err", err)
	}
}

func (s *server) taxiiSource(w http.ResponseWriter) TAXIISource {
	src, ok := s.backend.(TAXIISource)
	if !ok {
		s.taxiiFail(w, http.StatusNotImplemented, "this backend has no TAXII collections")
	}
	return src
}

// taxiiNoQuery refuses query parameters on the resources that take none.
func (s *server) taxiiNoQuery(w http.ResponseWriter, r *http.Request) bool {
	if err := checkKnown(r.URL.Query()); err != nil {
		s.taxiiError(w, r, err)
		return false
	}
	return true
}

func taxiiTitle(federation string) string { return "Staydown federation " + federation }

func (s *server) taxiiDiscovery(w http.ResponseWriter, r *http.Request) {
	src := s.taxiiSource(w)
	if src == nil || !s.taxiiNoQuery(w, r) {
		return
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	root := (&url.URL{Scheme: scheme, Host: r.Host, Path: taxiiRootPath}).String()
	s.taxiiReply(w, http.StatusOK, TAXIIDiscovery{
		Title:       taxiiTitle(src.Federation()),
		Description: "Hash lists of the Staydown federation " + src.Federation() + " as this node holds them, as STIX 2.1 indicators",
		Default:     root, APIRoots: []string{root},
	})
}

func (s *server) taxiiAPIRoot(w http.ResponseWriter, r *http.Request) {
	src := s.taxiiSource(w)
	if src == nil || !s.taxiiNoQuery(w, r) {
		return
	}
	s.taxiiReply(w, http.StatusOK, TAXIIAPIRoot{
		Title:       taxiiTitle(src.Federation()),
		Description: "One collection of the whole federation, one per member; read-only",
		Versions:    []string{TAXIIMediaType}, MaxContentLength: MaxBodySize,
	})
}

// taxiiCollections are the collections: the federation's, then each
// member's in roster order.
func (s *server) taxiiCollections(src TAXIISource) []TAXIICollection {
	fed := src.Federation()
	out := []TAXIICollection{{ID: TAXIICollectionID(fed, ""), Title: "Federation " + fed,
		Description: "Every member's indicators, allowlist entries and disputes", CanRead: true, MediaTypes: []string{STIXMediaType}}}
	for _, m := range s.backend.Roster().Members {
		out = append(out, TAXIICollection{ID: TAXIICollectionID(fed, m.Name), Title: m.Name,
			Description: "The indicators, allowlist entries and disputes of " + m.Name + " (" + string(m.Role) + ")",
			CanRead:     true, MediaTypes: []string{STIXMediaType}})
	}
	return out
}

// taxiiCollection finds the collection a path names: its member (""
// for the federation's), or false after answering 404.
func (s *server) taxiiCollection(w http.ResponseWriter, r *http.Request, src TAXIISource) (TAXIICollection, string, bool) {
	id, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, taxiiCollsPath), "/")
	colls := s.taxiiCollections(src)
	for i, c := range colls {
		if c.ID == id {
			member := ""
			if i > 0 {
				member = c.Title
			}
			return c, member, true
		}
	}
	s.taxiiFail(w, http.StatusNotFound, fmt.Sprintf("no collection %q; see %s", id, taxiiCollsPath))
	return TAXIICollection{}, "", false
}

func (s *server) taxiiListCollections(w http.ResponseWriter, r *http.Request) {
	src := s.taxiiSource(w)
	if src == nil || !s.taxiiNoQuery(w, r) {
		return
	}
	s.taxiiReply(w, http.StatusOK, TAXIICollections{Collections: s.taxiiCollections(src)})
}

func (s *server) taxiiGetCollection(w http.ResponseWriter, r *http.Request) {
	src := s.taxiiSource(w)
	if src == nil || !s.taxiiNoQuery(w, r) {
		return
	}
	if c, _, ok := s.taxiiCollection(w, r, src); ok {
		s.taxiiReply(w, http.StatusOK, c)
	}
}

// taxiiObjects answers objects/, and objects/{object}/ (which is objects/
// with match[id] the object's id, answered 404 when no object has it).
func (s *server) taxiiObjects(w http.ResponseWriter, r *http.Request) {
	page, ok := s.taxiiWalk(w, r)
	if !ok {
		return
	}
	env := TAXIIEnvelope{More: page.more, Next: page.next}
	for _, o := range page.objects {
		env.Objects = append(env.Objects, o.obj.JSON)
	}
	s.taxiiPageReply(w, page, env)
}

func (s *server) taxiiManifest(w http.ResponseWriter, r *http.Request) {
	page, ok := s.taxiiWalk(w, r)
	if !ok {
		return
	}
	m := TAXIIManifest{More: page.more, Next: page.next}
	for _, o := range page.objects {
		m.Objects = append(m.Objects, TAXIIManifestEntry{ID: o.obj.ID, DateAdded: taxiiTime(o.addedMs), Version: o.obj.Modified, MediaType: STIXMediaType})
	}
	s.taxiiPageReply(w, page, m)
}

func (s *server) taxiiPageReply(w http.ResponseWriter, page taxiiPage, v any) {
	if n := len(page.objects); n > 0 {
		w.Header().Set("X-TAXII-Date-Added-First", taxiiTime(page.objects[0].addedMs))
		w.Header().Set("X-TAXII-Date-Added-Last", taxiiTime(page.objects[n-1].addedMs))
	}
	s.taxiiReply(w, http.StatusOK, v)
}

func taxiiTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(TimeFormat) }

// taxiiPage is one page of a collection's objects.
type taxiiPage struct {
	objects []pagedObject
	more    bool
	next    string
}

type pagedObject struct {
	obj     TAXIIObject
	addedMs int64
}

// taxiiFilter selects a collection's objects: its member's (all for
// ""), of the ids and types named (all when nil).
type taxiiFilter struct {
	member     string
	ids, types map[string]bool
	none       bool // a spec_version no object has
}

func (f taxiiFilter) match(o TAXIIObject) bool {
	return !f.none && (f.member == "" || o.Author == f.member) &&
		(f.ids == nil || f.ids[o.ID]) && (f.types == nil || f.types[o.Type])
}

// TAXIICursor is a position in a node's arrivals, the next of a page:
// the objects of arrivals before N are listed, and of arrival N those
// whose keys are at most Key (Key 0xff: all of them). ID8 is the start
// of arrival N's entry id, so that a cursor of another store, or of a
// store made anew, is refused rather than misread.
type TAXIICursor struct {
	N   uint64
	ID8 [8]byte
	Key []byte
}

// taxiiCursorVersion is the cursor's first byte.
const taxiiCursorVersion = 1

// String is the cursor's text: base64url without padding of the version
// byte, N (8 bytes, big-endian), ID8, and Key.
func (c TAXIICursor) String() string {
	b := []byte{taxiiCursorVersion}
	b = binary.BigEndian.AppendUint64(b, c.N)
	b = append(b, c.ID8[:]...)
	b = append(b, c.Key...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// maxTAXIIKey bounds a cursor's key: a node's object keys are an entry
// id and a digest with a few bytes more.
const maxTAXIIKey = 128

// ParseTAXIICursor reads a cursor's text.
func ParseTAXIICursor(s string) (TAXIICursor, error) {
	var c TAXIICursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	switch {
	case err != nil:
		return c, fmt.Errorf("%q is not base64url", s)
	case len(b) < 1+8+8 || len(b) > 1+8+8+maxTAXIIKey:
		return c, fmt.Errorf("%q is %d bytes, want 17 to %d", s, len(b), 17+maxTAXIIKey)
	case b[0] != taxiiCursorVersion:
		return c, fmt.Errorf("%q is of version %d, want %d", s, b[0], taxiiCursorVersion)
	}
	c.N = binary.BigEndian.Uint64(b[1:9])
	copy(c.ID8[:], b[9:17])
	c.Key = b[17:]
	if c.N == 0 {
		return c, fmt.Errorf("%q names arrival 0", s)
	}
	return c, nil
}

// taxiiQuery reads the parameters of objects/, objects/{id}/ and
// manifest/: the filter, the page size and where the page starts.
type taxiiQuery struct {
	filter     taxiiFilter
	limit      int
	cursor     *TAXIICursor // next
	addedAfter *time.Time
}

func parseTAXIIQuery(q url.Values, objectID string) (taxiiQuery, error) {
	out := taxiiQuery{limit: DefaultTAXIIPage}
	known := []string{"added_after", "limit", "next", "match[id]", "match[type]", "match[spec_version]"}
	if objectID != "" {
		known = []string{"added_after", "limit", "next", "match[spec_version]"}
		out.filter.ids = map[string]bool{objectID: true}
	}
	for k, v := range q {
		switch {
		case k == "match[version]":
			return out, fieldErr(k, "is not supported: each object is listed in the state it has when the page is read (SPEC 23); leave it out")
		case !slices.Contains(known, k):
			return out, fieldErr(queryField(k), "unknown query parameter; use %s", strings.Join(known, ", "))
		case len(v) > 1:
			return out, fieldErr(k, "given %d times; give a comma-separated list", len(v))
		}
		switch val := v[0]; k {
		case "added_after":
			t, err := time.Parse(time.RFC3339Nano, val)
			if err != nil {
				return out, fieldErr(k, "%q is not a timestamp; want RFC 3339, e.g. 2026-01-02T15:04:05.000Z", val)
			}
			out.addedAfter = &t
		case "limit":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 {
				return out, fieldErr(k, "%q: want a positive number (at most %d are served)", val, MaxTAXIIPage)
			}
			out.limit = min(n, MaxTAXIIPage)
		case "next":
			c, err := ParseTAXIICursor(val)
			if err != nil {
				return out, fieldErr(k, "%v; use the next of an earlier page", err)
			}
			out.cursor = &c
		case "match[id]", "match[type]":
			set := map[string]bool{}
			for x := range strings.SplitSeq(val, ",") {
				if x = strings.TrimSpace(x); x == "" {
					return out, fieldErr(k, "%q has an empty item", val)
				}
				set[x] = true
			}
			if k == "match[id]" {
				out.filter.ids = set
			} else {
				out.filter.types = set
			}
		case "match[spec_version]":
			out.filter.none = !slices.Contains(strings.Split(val, ","), "2.1")
		}
	}
	return out, nil
}

// taxiiWalk reads the page a request of objects/, objects/{id}/ or
// manifest/ asks for; it answers the error itself and reports false when
// there is one.
func (s *server) taxiiWalk(w http.ResponseWriter, r *http.Request) (taxiiPage, bool) {
	src := s.taxiiSource(w)
	if src == nil {
		return taxiiPage{}, false
	}
	_, member, ok := s.taxiiCollection(w, r, src)
	if !ok {
		return taxiiPage{}, false
	}
	var objectID string
	if taxiiRoute(r.URL.Path) == taxiiObjectRoute {
		objectID = strings.Split(strings.TrimPrefix(r.URL.Path, taxiiCollsPath), "/")[2]
	}
	q, err := parseTAXIIQuery(r.URL.Query(), objectID)
	if err != nil {
		s.taxiiError(w, r, err)
		return taxiiPage{}, false
	}
	q.filter.member = member
	page, err := walkTAXII(r.Context(), src, q)
	if err != nil {
		s.taxiiError(w, r, err)
		return taxiiPage{}, false
	}
	if objectID != "" && len(page.objects) == 0 && !page.more {
		s.taxiiFail(w, http.StatusNotFound, fmt.Sprintf("the collection has no object %q", objectID))
		return taxiiPage{}, false
	}
	return page, true
}

// A page reads arrivals 2 at first, then twice as many each time up to
// taxiiBatch: an unfiltered page needs an arrival or two (an addition
// lists up to 1,000 objects), a filtered one may need thousands, and
// each arrival read is an entry decoded.
const taxiiBatch = 64

// walkTAXII reads a page: the objects q selects from q's position on, up
// to q.limit of them, reading at most max(16 x limit, 10,000) arrivals
// (so that a filter that keeps little cannot make one request read the
// whole store; such a page has few or no objects and more true).
func walkTAXII(ctx context.Context, src TAXIISource, q taxiiQuery) (taxiiPage, error) {
	var page taxiiPage
	if q.filter.none {
		return page, nil // a spec_version no object has
	}
	// pos: the objects of arrivals before pos.N are past; of arrival
	// pos.N, those with keys at most pos.Key.
	pos := TAXIICursor{N: 1}
	switch {
	case q.cursor != nil:
		pos = *q.cursor
	case q.addedAfter != nil:
		n, err := src.TAXIIArrivalsBy(ctx, q.addedAfter.UnixMilli())
		if err != nil {
			return page, err
		}
		pos.N = n + 1
	}
	maxScan := max(16*q.limit, 10000)
	scanned, batchSize := 0, 2
	after := pos.N - 1
	for scanned < maxScan {
		want := min(batchSize, maxScan-scanned)
		batchSize = min(2*batchSize, taxiiBatch)
		batch, err := src.TAXIIArrivals(ctx, after, want)
		if err != nil {
			return page, err
		}
		if q.cursor != nil && after == q.cursor.N-1 {
			if len(batch) == 0 || batch[0].N != q.cursor.N || !bytes.Equal(batch[0].EntryID[:8], q.cursor.ID8[:]) {
				return page, fieldErr("next", "names a position this node's store does not have (a cursor of another node, or of a store made anew); start over without next")
			}
		}
		for _, a := range batch {
			objs, err := a.Objects()
			if err != nil {
				return page, err
			}
			for _, o := range objs {
				if a.N == pos.N && bytes.Compare(o.Key, pos.Key) <= 0 || !q.filter.match(o) {
					continue
				}
				if len(page.objects) == q.limit {
					page.more = true
					page.next = pos.String()
					return page, nil
				}
				page.objects = append(page.objects, pagedObject{o, a.AddedMs})
				pos = TAXIICursor{N: a.N, Key: o.Key}
				copy(pos.ID8[:], a.EntryID[:8])
			}
			pos = TAXIICursor{N: a.N, Key: []byte{0xff}}
			copy(pos.ID8[:], a.EntryID[:8])
			scanned++
		}
		if len(batch) < want {
			return page, nil // the last arrival: the present
		}
		after = batch[len(batch)-1].N
	}
	// The scan's bound: there may be more.
	page.more = true
	page.next = pos.String()
	return page, nil
}
