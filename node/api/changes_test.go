package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/api/apitest"
	"github.com/staydown/staydown/node/tokens"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// feedBackend is the fake with a real store's changes feed.
type feedBackend struct {
	*apitest.Backend
	st *store.Store
}

func (b feedBackend) Changes(_ context.Context, q store.ChangesQuery) (store.ChangesPage, error) {
	return b.st.Changes(q)
}

// feedHarness serves the API over a real store in the test's directory.
func feedHarness(t *testing.T) (*harness, *store.Store) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "staydown.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &harness{fake: apitest.New("bka", protocol.RoleReferral, other), log: &lockedBuffer{}}
	h.srv = httptest.NewServer(api.NewServer(feedBackend{h.fake, st}, tokens.Static(token), slog.New(slog.NewTextHandler(h.log, nil))))
	t.Cleanup(h.srv.Close)
	return h, st
}

// signer signs the log of the fake's own member.
type signer struct {
	t    *testing.T
	head protocol.Head
}

func (s *signer) next(body *pb.Entry) *protocol.Entry {
	s.t.Helper()
	body.Version, body.Federation, body.Seq, body.TimestampMs = protocol.Version, apitest.Federation, s.head.Seq+1, 1_700_000_000_000+int64(s.head.Seq)
	if s.head.Seq > 0 {
		body.Prev = bytes.Clone(s.head.ID[:])
	}
	e, err := protocol.Sign(apitest.Key("bka"), body)
	if err != nil {
		s.t.Fatal(err)
	}
	s.head = protocol.Head{Author: e.Author, Seq: e.Seq(), ID: e.ID}
	return e
}

func feedPage(t *testing.T, h *harness, query string) api.Changes {
	t.Helper()
	r := h.do(t, "GET", "/v1/changes?"+query, "")
	if r.code != 200 {
		t.Fatalf("GET /v1/changes?%s: %d %s", query, r.code, r.body)
	}
	var out api.Changes
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// GET /v1/changes pages through a real store's feed: records with labels
// and authors by name, a tombstone after a retraction, the types filter,
// and clear errors for a bad or foreign checkpoint.
func TestChangesEndpoint(t *testing.T) {
	h, st := feedHarness(t)
	s := &signer{t: t}
	sha, md5 := mustSignal(t, "sha256", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"), mustSignal(t, "md5", "098f6bcd4621d373cade4e832627b4f6")
	add := s.next(&pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{Signals: []*pb.Signal{sha, md5}, Labels: []*pb.Label{{Slug: "graphic-violence"}}}}})
	if _, err := st.Apply([]*protocol.Entry{add}); err != nil {
		t.Fatal(err)
	}
	p := feedPage(t, h, "limit=1")
	if len(p.Changes) != 1 || !p.More {
		t.Fatalf("limit 1: %d changes, more %v", len(p.Changes), p.More)
	}
	p2 := feedPage(t, h, "limit=5&after="+url.QueryEscape(p.Checkpoint))
	if len(p2.Changes) != 1 || p2.More || p2.Changes[0].Signal == p.Changes[0].Signal {
		t.Fatalf("second page: %+v", p2)
	}
	c := p.Changes[0]
	if !c.Active || len(c.AttestedBy) != 1 || c.AttestedBy[0] != "bka" || len(c.Labels) != 1 || c.Labels[0] != "graphic-violence" {
		t.Fatalf("record %+v", c)
	}
	only := feedPage(t, h, "types=md5")
	if len(only.Changes) != 1 || only.Changes[0].Type != "md5" {
		t.Fatalf("types=md5: %+v", only.Changes)
	}

	ret := s.next(&pb.Entry{Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{Target: add.ID[:], Reason: "mistake", Signals: []*pb.Signal{md5}}}})
	if _, err := st.Apply([]*protocol.Entry{ret}); err != nil {
		t.Fatal(err)
	}
	p3 := feedPage(t, h, "after="+url.QueryEscape(p2.Checkpoint))
	if len(p3.Changes) != 1 || p3.Changes[0].Signal != "md5:098f6bcd4621d373cade4e832627b4f6" || p3.Changes[0].Active || p3.Changes[0].Attestations[0].Status != "retracted" {
		t.Fatalf("after the retraction: %+v", p3.Changes)
	}

	wantError(t, h.do(t, "GET", "/v1/changes?after=!!", ""), 400, "after: checkpoint \"!!\" is not URL-safe base64")
	wantError(t, h.do(t, "GET", "/v1/changes?types=sha1", ""), 400, "types: \"sha1\" is not a signal type")
	wantError(t, h.do(t, "GET", "/v1/changes?limit=0", ""), 400, "limit: \"0\": want a number from 1 to 5000")
	wantError(t, h.do(t, "GET", "/v1/changes?since=1", ""), 400, "since: unknown query parameter")
	foreign := store.Checkpoint{Feed: [16]byte{1}}.String()
	wantError(t, h.do(t, "GET", "/v1/changes?after="+foreign, ""), 410, "after: checkpoint not issued by this store")
}
