package api_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/staydown/staydown/interop"
	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/api/apitest"
	"github.com/staydown/staydown/node/tokens"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/prototest"
	"github.com/staydown/staydown/protocol/report"
	"github.com/staydown/staydown/store"
)

// documented is the fake with what a node has beyond it: proofs, and an
// event stream that sends a few events and ends.
type documented struct{ *apitest.Backend }

// The signal export and the MISP feed: one active attestation of bka's,
// in one event.
func (documented) ExportSignals(ctx context.Context, f interop.Filter, fn func(interop.Record) error) error {
	return documented{}.ExportSignalsRange(ctx, protocol.AuthorKey{}, 1, 1, f, fn)
}

func (documented) ExportSignalsRange(_ context.Context, _ protocol.AuthorKey, _, _ uint64, f interop.Filter, fn func(interop.Record) error) error {
	s, err := protocol.ParseSignal("md5", strings.Repeat("ab", 16))
	if err != nil {
		return err
	}
	r := interop.Record{Signal: s, Author: "bka", EntryID: "e1", TimeMs: 1_767_225_600_000, Labels: []string{"graphic-violence"}, Status: interop.StatusActive}
	if !f.Match(r) {
		return nil
	}
	return fn(r)
}

func (documented) MISPFeed(context.Context) ([]interop.MISPFeedEvent, error) {
	return []interop.MISPFeedEvent{{From: 1, To: 1, Meta: interop.MISPEventMeta{UUID: feedEvent, Info: "bka", Date: "2026-01-01", Timestamp: 1_767_225_600, OrgName: "bka"}}}, nil
}

func (documented) Federation() string { return apitest.Federation }

// The TAXII collections: arrival 1 lists bka's identity and an indicator.
func (documented) TAXIIArrivals(_ context.Context, after uint64, max int) ([]api.TAXIIArrival, error) {
	if after >= 1 || max < 1 {
		return nil, nil
	}
	return []api.TAXIIArrival{{N: 1, EntryID: protocol.ID{0x12, 0x20, 1}, AddedMs: 1_767_225_600_000, Objects: func() ([]api.TAXIIObject, error) {
		return []api.TAXIIObject{
			{Key: []byte{0}, ID: taxiiIdentity, Type: "identity", Author: "bka", Modified: "2026-01-01T00:00:00.000Z",
				JSON: []byte(`{"type":"identity","spec_version":"2.1","id":"` + taxiiIdentity + `","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"bka","identity_class":"organization"}`)},
			{Key: []byte{1}, ID: taxiiIndicator, Type: "indicator", Author: "bka", Modified: "2026-01-01T00:00:00.000Z",
				JSON: []byte(`{"type":"indicator","spec_version":"2.1","id":"` + taxiiIndicator + `","created_by_ref":"` + taxiiIdentity + `","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","indicator_types":["malicious-activity"],"pattern":"[file:hashes.MD5 = 'abababababababababababababababab']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00.000Z"}`)},
		}, nil
	}}}, nil
}

func (documented) TAXIIArrivalsBy(_ context.Context, ms int64) (uint64, error) {
	if ms >= 1_767_225_600_000 {
		return 1, nil
	}
	return 0, nil
}

const (
	taxiiIdentity  = "identity--7b0e1d2f-3a4b-5c6d-8e7f-0123456789ab"
	taxiiIndicator = "indicator--8c0e1d2f-3a4b-5c6d-8e7f-0123456789ab"
)

const feedEvent = "5c0e1d2f-3a4b-5c6d-8e7f-0123456789ab"

func (documented) Proof(ctx context.Context, id protocol.ID) (protocol.EntryProof, error) {
	return protocol.EntryProof{Entry: "0a0b", LeafIndex: 2, TreeSize: 4, Proof: []string{strings.Repeat("aa", 32), strings.Repeat("bb", 32)},
		Checkpoint: "staydown/staydown/" + strings.Repeat("cd", 32) + "\n4\nAAAA\n\n— bka sig\n"}, nil
}

func (documented) Events(ctx context.Context, after uint64, send func(api.Event) error) error {
	base, version := uint64(0), uint64(1)
	for _, ev := range []api.Event{
		{Type: ""}, // a keep-alive
		{N: 1, Type: "notice", ID: target, Author: "bka", Notice: ptr(noticeView())},
		{N: 2, Type: "attestation", ID: target2, Author: "pa", Signals: []string{"sha256:" + sha}, Labels: []string{"graphic-violence"}},
		{N: 3, Type: "amendment", ID: target, Author: "pa", Change: "admit pc (platform)", Base: &base, RosterVersion: &base},
		{N: 4, Type: "approval", ID: target2, Author: "pb", Proposal: target, Base: &base, RosterVersion: &version},
		{N: 5, Type: "member-peer", ID: target, Author: "pa", PeerID: apitest.PeerID("pa"), Addrs: []string{"/ip4/192.0.2.7/tcp/4001"}},
	} {
		if err := send(ev); err != nil {
			return err
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// noticeView is a notice as a node lists it: acknowledged, with an
// update and a reply.
func noticeView() api.NoticeView {
	return api.NoticeView{ID: target, From: "bka", To: "pa", State: "actioned", Issued: "2026-12-03T12:00:00.000Z",
		Deadline: "2026-12-03T13:00:00.000Z", DeadlineMs: 1_796_302_800_000, TimeToActionS: ptr(600.5), WithinDeadline: ptr(true),
		Category: "attacker-manifesto", LegalBasis: "Regulation (EU) 2021/784, art. 3", Order: true, Signals: []string{"sha256:" + sha},
		Sealed: true, Details: &api.NoticeDetails{URLs: []string{"https://video.example/watch?v=1"}, Text: "the second video"},
		Updates: []api.NoticeUpdate{{ID: target2, Time: "2026-12-03T12:05:00.000Z", Deadline: "2026-12-03T13:00:00.000Z", Sealed: true}},
		Replies: []api.NoticeReply{{ID: target2, Time: "2026-12-03T12:10:00.000Z", Status: "removed", Text: "", ActionTime: "2026-12-03T12:10:00.000Z"}}}
}

func pngImage(t *testing.T) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 64, 64))
	for x := range 64 {
		for y := range 64 {
			img.SetGray(x, y, color.Gray{uint8(x*4) ^ uint8(y*4)})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestOpenAPIResponses drives every operation of the API, on a fake that
// answers as a node does, to a success (and the documented refusals a
// node gives that the other tests do not reach), and checks each answer
// against openapi.yaml (harness.do does).
func TestOpenAPIResponses(t *testing.T) {
	signal := `{"type":"sha256","value":"` + sha + `"}`
	att := store.Attestation{Kind: protocol.KindAddition, Author: apitest.Member("pa", protocol.RolePlatform).AuthorKey,
		EntryID: protocol.ID{0x12, 0x20, 1}, Seq: 3, Labels: []string{"recruitment-and-instruction", "other:free text"}, CaseRef: "C-1",
		TimeMs: 1_700_000_000_123, Status: store.StatusDisputed,
		Reasons: []store.Reason{{Kind: protocol.KindDispute, Author: apitest.Member("pb", protocol.RolePlatform).AuthorKey, EntryID: protocol.ID{0x12, 0x20, 2}, Reason: "news report"}}}
	attest := func(t *testing.T, h *harness) {
		h.fake.Attest(mustSignal(t, "sha256", sha), att)
	}
	var pending protocol.ID // the amendment pa proposes in setup
	propose := func(t *testing.T, h *harness) {
		e, err := h.fake.Sign("pa", prototest.Amend(0, &pb.VotingRule{Roles: []string{"referral", "platform", "auditor"}, ThresholdPercent: 60}))
		if err != nil {
			t.Fatal(err)
		}
		pending = e.ID
	}
	fail := func(err error) func(*testing.T, *harness) {
		return func(_ *testing.T, h *harness) { h.fake.Fail(err) }
	}
	tests := []struct {
		setup        func(*testing.T, *harness)
		method, path string
		contentType  string // of the body; JSON when empty
		body         string
		code         int
	}{
		{nil, "POST", "/v1/additions", "", `{"signals":[` + signal + `],"labels":["graphic-violence"],"case_ref":"C-2"}`, 201},
		{nil, "POST", "/v1/import", "", `{"signals":[` + signal + `],"labels":["graphic-violence"]}`, 201},
		{nil, "POST", "/v1/import", "", `{"signals":[` + signal + `],"labels":["graphic-violence"],"dry_run":true}`, 200},
		{fail(fmt.Errorf("%w: this member attests sha256:%s already", api.ErrConflict, sha)), "POST", "/v1/additions", "", `{"signals":[` + signal + `],"labels":["graphic-violence"]}`, 409},
		{fail(fmt.Errorf("%w: own log not confirmed yet", api.ErrUnavailable)), "POST", "/v1/additions", "", `{"signals":[` + signal + `],"labels":["graphic-violence"]}`, 503},
		{fail(fmt.Errorf("store: %w", store.ErrNoSpace)), "POST", "/v1/additions", "", `{"signals":[` + signal + `],"labels":["graphic-violence"]}`, 507},
		{nil, "POST", "/v1/retractions", "", `{"target":"` + target + `","reason":"mistake"}`, 201},
		{fail(fmt.Errorf("%w: entry %s", api.ErrNotFound, target)), "POST", "/v1/retractions", "", `{"target":"` + target + `"}`, 404},
		{nil, "POST", "/v1/disputes", "", `{"target":"` + target + `","reason":"news report"}`, 201},
		{fail(fmt.Errorf("%w: this member disputed entry %s already", api.ErrConflict, target)), "POST", "/v1/disputes", "", `{"target":"` + target + `","reason":"r"}`, 409},
		{nil, "POST", "/v1/allows", "", `{"signals":[` + signal + `],"category":"news","reason":"reporting"}`, 201},
		{fail(fmt.Errorf("%w: auditors write nothing", api.ErrForbidden)), "POST", "/v1/allows", "", `{"signals":[` + signal + `],"category":"news","reason":"r"}`, 403},
		{attest, "GET", "/v1/match?type=sha256&value=" + sha, "", "", 200},
		{attest, "POST", "/v1/match", "", `{"signals":[` + signal + `,{"type":"url","value":"https://example.com/a"}]}`, 200},
		{attest, "POST", "/v1/match/file", "application/octet-stream", "not an image", 200},
		{nil, "POST", "/v1/match/file?dihedral=false", "image/png", string(pngImage(t)), 200},
		{nil, "POST", "/v1/match/file", "multipart/form-data; boundary=x", "--x--", 415},
		{attest, "POST", "/v1/watchlist", "", `{"signals":[` + signal + `,{"type":"sha256","value":"` + sha + `","ref":"upload-123"}]}`, 200},
		{nil, "POST", "/v1/watchlist", "", `{"signals":[{"type":"sha256","value":"` + sha + `","ref":"a\tb"}]}`, 400},
		{func(t *testing.T, h *harness) {
			if _, err := h.fake.Watch(context.Background(), []api.WatchItem{{Signal: mustSignal(t, "sha256", sha), Ref: "upload-123"},
				{Signal: mustSignal(t, "url", "https://example.com/a")}, {Signal: mustSignal(t, "md5", strings.Repeat("0", 32))}}); err != nil {
				t.Fatal(err)
			}
		}, "GET", "/v1/watchlist?limit=2", "", "", 200},
		{nil, "GET", "/v1/watchlist?after=xyz", "", "", 400},
		{nil, "POST", "/v1/watchlist/remove", "", `{"signals":[` + signal + `]}`, 200},
		{func(t *testing.T, h *harness) {
			s := mustSignal(t, "sha256", sha)
			h.fake.SetAlerts(api.RaisedAlert{Seq: 1, RaisedMs: 1_700_000_001_000, Watched: s, Signal: s, Attestation: att, Refs: []string{"upload-123", "https://host.example/v/9"}})
		}, "GET", "/v1/alerts?since=0", "", "", 200},
		{nil, "GET", "/v1/status", "", "", 200},
		{nil, "POST", "/v1/notices", "", `{"to":"pa","urls":["https://video.example/watch?v=1"],"signals":[` + signal + `],"category":"attacker-manifesto","basis":"art. 3","order":true,"deadline":"1h"}`, 201},
		{func(*testing.T, *harness) {}, "GET", "/v1/notices?box=out", "", "", 200},
		{nil, "GET", "/v1/notices?id=" + target, "", "", 200},
		{nil, "GET", "/v1/notices?id=" + target2, "", "", 404},
		{nil, "POST", "/v1/notice-updates", "", `{"notice":"` + target + `","withdraw":true}`, 201},
		{nil, "POST", "/v1/replies", "", `{"notice":"` + target + `","status":"not-executed","reason":"not-hosted"}`, 201},
		{nil, "POST", "/v1/orders", "", `{"to":"all","domains":["Propaganda.example"],"subdomains":true,"basis":"LCEN art. 6-1","until":"720h"}`, 201},
		{nil, "POST", "/v1/orders", "", `{"to":"isp","domains":["co.uk"],"basis":"LCEN art. 6-1"}`, 400},
		{nil, "POST", "/v1/orders/lift", "", `{"order":"` + target + `"}`, 201},
		{func(_ *testing.T, h *harness) {
			f := report.Figures{Additions: 2, Signals: 3, DisputesWithdrawn: 1, NoticesReceived: 1, AnsweredWithinDeadline: 1, Actioned: 1,
				MedianTimeToActionS: ptr(600.5), P90TimeToActionS: ptr(600.5)}
			h.fake.SetReport(report.Report{Federation: apitest.Federation, Members: []report.Member{
				{Name: "bka", Role: protocol.RoleReferral, Key: h.fake.Author().String()},
				{Name: "pa", Role: protocol.RolePlatform, Key: apitest.Member("pa", protocol.RolePlatform).AuthorKey.String(), Figures: f},
			}, Totals: report.Totals{Figures: f, Entries: 9, IgnoredEntries: 1}})
		}, "GET", "/v1/report?since=2026-01-01T00:00:00Z", "", "", 200},
		{func(t *testing.T, h *harness) {
			// What the node's report builder computes, its members'
			// figures included.
			e, err := h.fake.Sign("pa", &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{
				Signals: []*pb.Signal{mustSignal(t, "sha256", sha)}, Labels: []*pb.Label{{Slug: "graphic-violence"}}}}})
			if err != nil {
				t.Fatal(err)
			}
			b := report.New(h.fake.Roster(), nil)
			b.Add(e)
			r := b.Report(e.Body.TimestampMs+1, 0)
			if r.Totals.Additions != 1 || len(r.Members) != 4 {
				t.Fatalf("the builder's report: %+v", r)
			}
			h.fake.SetReport(r)
		}, "GET", "/v1/report", "", "", 200},
		{nil, "GET", "/v1/events?after=0", "", "", 200},
		{func(t *testing.T, h *harness) {
			sig := mustSignal(t, "sha256", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
			h.fake.SetChanges(store.ChangesPage{Signals: []store.ChangedSignal{{Key: protocol.SignalKey(sig), Signal: sig, Attestations: []store.Attestation{
				{Kind: protocol.KindAddition, Author: h.fake.Author(), Labels: []string{"graphic-violence"}, Status: store.StatusActive, TimeMs: 1},
			}}}})
		}, "GET", "/v1/changes?limit=10", "", "", 200},
		{func(_ *testing.T, h *harness) { h.fake.SetExport([]byte("staydown export\n")) }, "GET", "/v1/export", "", "", 200},
		{nil, "GET", "/v1/proof?id=" + target, "", "", 200},
		{nil, "GET", "/v1/signals/export?format=csv&label=graphic-violence", "", "", 200},
		{nil, "GET", "/v1/signals/export?format=pytx", "", "", 200},
		{nil, "GET", "/v1/signals/export?format=tat&status=all", "", "", 200},
		{nil, "GET", "/v1/signals/export?format=xml", "", "", 400},
		{nil, "GET", "/v1/misp-feed/manifest.json", "", "", 200},
		{nil, "GET", "/v1/misp-feed/hashes.csv", "", "", 200},
		{nil, "GET", "/v1/misp-feed/{event}", "", "", 200},
		{nil, "GET", "/v1/misp-feed/00000000-0000-4000-8000-000000000000.json", "", "", 404},
		{nil, "GET", "/v1/members", "", "", 200},
		{nil, "POST", "/v1/members/peer", "", `{"addrs":["/ip4/192.0.2.7/tcp/4001"]}`, 201},
		{propose, "GET", "/v1/proposals", "", "", 200},
		{nil, "POST", "/v1/proposals", "", `{"rule":{"roles":["referral","platform","auditor"],"threshold_percent":60}}`, 201},
		{propose, "POST", "/v1/proposals/{id}/approvals", "", "", 201},
		{nil, "GET", "/v1/openapi.yaml", "", "", 200},
		{nil, "GET", "/taxii2/", "", "", 200},
		{nil, "GET", "/taxii2/staydown/", "", "", 200},
		{nil, "GET", "/taxii2/staydown/collections/", "", "", 200},
		{nil, "GET", "/taxii2/staydown/collections/{collection}/", "", "", 200},
		{nil, "GET", "/taxii2/staydown/collections/00000000-0000-5000-8000-000000000000/", "", "", 404},
		{nil, "GET", "/taxii2/staydown/collections/{collection}/objects/?limit=1", "", "", 200},
		{nil, "GET", "/taxii2/staydown/collections/{collection}/objects/?added_after=2026-01-01T00:00:00Z", "", "", 200},
		{nil, "GET", "/taxii2/staydown/collections/{collection}/objects/?next=x", "", "", 400},
		{nil, "GET", "/taxii2/staydown/collections/{collection}/objects/{object}/", "", "", 200},
		{nil, "GET", "/taxii2/staydown/collections/{collection}/objects/indicator--00000000-0000-5000-8000-000000000000/", "", "", 404},
		{nil, "GET", "/taxii2/staydown/collections/{collection}/manifest/", "", "", 200},
	}
	succeeded := map[string]bool{}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %s %d", tt.method, tt.path, tt.code), func(t *testing.T) {
			fake := apitest.New("bka", protocol.RoleReferral, apitest.Member("pa", protocol.RolePlatform),
				apitest.Member("pb", protocol.RolePlatform), apitest.Member("aud", protocol.RoleAuditor))
			fake.SetNotices(noticeView())
			h := &harness{fake: fake, log: &lockedBuffer{}}
			h.srv = httptest.NewServer(api.NewServer(documented{fake}, tokens.Static(token), slog.New(slog.NewTextHandler(h.log, nil))))
			t.Cleanup(h.srv.Close)
			if tt.setup != nil {
				tt.setup(t, h)
			}
			path := strings.ReplaceAll(tt.path, "{id}", pending.String())
			path = strings.ReplaceAll(path, "{event}", feedEvent+".json")
			path = strings.ReplaceAll(path, "{collection}", api.TAXIICollectionID(apitest.Federation, "bka"))
			path = strings.ReplaceAll(path, "{object}", taxiiIndicator)
			var r response
			if tt.contentType != "" {
				r = h.send(t, tt.method, path, tt.contentType, tt.body)
			} else {
				r = h.do(t, tt.method, path, tt.body)
			}
			if r.code != tt.code {
				t.Fatalf("status %d, want %d: %s", r.code, tt.code, r.body)
			}
			if r.code < 300 {
				route, _, _ := strings.Cut(tt.path, "?")
				succeeded[tt.method+" "+route] = true
			}
		})
	}
	for _, r := range api.Routes() {
		if !succeeded[r.Method+" "+r.Path] {
			t.Errorf("%s %s: no success checked against openapi.yaml", r.Method, r.Path)
		}
	}
}
