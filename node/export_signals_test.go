package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/staydown/staydown/interop"
	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/tokens"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// The API serves a node's signal export and MISP feed.
var _ api.SignalExporter = (*Node)(nil)

func sig(t *testing.T, typed string) *pb.Signal {
	t.Helper()
	typ, val, _ := strings.Cut(typed, ":")
	s, err := protocol.ParseSignal(typ, val)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// exportState is what an export says of a store: "SIGNAL labels status"
// per attestation, sorted.
func exportState(t *testing.T, n *Node, f interop.Filter, types []protocol.SignalType) []string {
	t.Helper()
	var out []string
	err := n.ExportSignals(context.Background(), f, func(r interop.Record) error {
		if r.Allow != nil || !slices.Contains(types, protocol.TypeOf(r.Signal)) {
			return nil
		}
		out = append(out, protocol.FormatSignal(r.Signal)+" "+strings.Join(r.Labels, "|")+" "+r.Status)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// Signals exported from one federation in each format and imported into
// another (the interop readers, then additions as `staydown import`
// publishes them) are the same signals with the same labels, as far as
// the format carries them; the dispute, the retraction and the allowlist
// entry come out as the statuses and objects the formats have.
func TestExportImportAcrossFederations(t *testing.T) {
	inSim(t, func(t *testing.T) {
		a := newSimFed(t, simDefaults(61), "nru=referral", "pa=platform")
		nru, pa := a.start("nru"), a.start("pa")
		a.meshed(time.Minute)
		ctx := context.Background()
		pdq := sig(t, "pdq:f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22")
		md5 := sig(t, "md5:d41d8cd98f00b204e9800998ecf8427e")
		url := sig(t, "url:https://example.org/propaganda")
		sha := sig(t, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
		news := sig(t, "url:https://news.example/report")
		add1, err := nru.Publish(ctx, &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{
			Signals: protocol.SortSignals([]*pb.Signal{pdq, md5, url}), Labels: []*pb.Label{{Slug: "graphic-violence"}, {Slug: "attacker-manifesto"}}}}})
		if err != nil {
			t.Fatal(err)
		}
		add2, err := nru.Publish(ctx, &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{
			Signals: []*pb.Signal{sha}, Labels: []*pb.Label{{Slug: "recruitment-and-instruction"}}}}})
		if err != nil {
			t.Fatal(err)
		}
		a.converge(time.Minute)
		if _, err := pa.Publish(ctx, &pb.Entry{Payload: &pb.Entry_Dispute{Dispute: &pb.Dispute{
			Target: add1.ID[:], Reason: "md5 is a news clip", Signals: []*pb.Signal{md5}}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := nru.Publish(ctx, &pb.Entry{Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{
			Target: add2.ID[:], Reason: "misfiled"}}}); err != nil {
			t.Fatal(err)
		}
		allow, err := pa.Publish(ctx, &pb.Entry{Payload: &pb.Entry_Allow{Allow: &pb.Allow{
			Signals: []*pb.Signal{news}, Category: "news", Reason: "a news report"}}})
		if err != nil {
			t.Fatal(err)
		}
		a.converge(time.Minute)

		all := interop.Filter{Statuses: []string{"active", "retracted", "disputed", "allowlisted"}}
		everything := []protocol.SignalType{protocol.SignalPDQ, protocol.SignalMD5, protocol.SignalSHA256, protocol.SignalURL}
		want := []string{
			"md5:d41d8cd98f00b204e9800998ecf8427e graphic-violence|attacker-manifesto disputed",
			"pdq:f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22 graphic-violence|attacker-manifesto active",
			"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 recruitment-and-instruction retracted",
			"url:https://example.org/propaganda graphic-violence|attacker-manifesto active",
		}
		if got := exportState(t, pa, all, everything); !slices.Equal(got, want) {
			t.Fatalf("pa's export:\n %q\nwant\n %q", got, want)
		}
		// The default filter: active only; --label narrows.
		if got := exportState(t, pa, interop.Filter{}, everything); len(got) != 2 {
			t.Errorf("default export: %q, want the 2 active", got)
		}
		if got := exportState(t, pa, interop.Filter{Statuses: []string{"retracted"}, Labels: []string{"recruitment-and-instruction"}}, everything); len(got) != 1 {
			t.Errorf("retracted, labelled recruitment: %q", got)
		}
		if got := exportState(t, pa, interop.Filter{SinceMs: time.Now().Add(time.Hour).UnixMilli()}, everything); len(got) != 0 {
			t.Errorf("since an hour from now: %q", got)
		}

		// Each format, out of federation a (its active attestations, the
		// default) and into federation b.
		for _, tc := range []struct {
			f      interop.Format
			types  []protocol.SignalType
			labels bool
		}{
			{interop.PyTX, []protocol.SignalType{protocol.SignalPDQ, protocol.SignalMD5, protocol.SignalURL}, false},
			{interop.PyTXCSV, []protocol.SignalType{protocol.SignalPDQ, protocol.SignalMD5, protocol.SignalURL}, true},
			{interop.TAT, []protocol.SignalType{protocol.SignalPDQ, protocol.SignalMD5}, false},
			{interop.STIX, everything, true},
			{interop.CSV, everything, true},
			{interop.MISP, everything, true},
		} {
			var file bytes.Buffer
			var w interop.Writer
			if tc.f == interop.MISP {
				w, err = interop.NewMISPEvent(&file, nil, "a", interop.MISPEventMeta{UUID: interop.MISPEventUUID("a", "x")})
			} else {
				w, err = interop.NewWriter(tc.f, &file, interop.Meta{Federation: "a", Exporter: "pa", CreatedMs: 1})
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := pa.ExportSignals(ctx, interop.Filter{}, func(r interop.Record) error {
				if err := w.Write(r); err != nil && !errorsIsSkip(err) {
					return err
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			// Federation b: one referral node, imports the file as
			// `staydown import --label other:imported` would: rows
			// without labels take the command's.
			b := newSimFed(t, simDefaults(62), "unit=referral")
			unit := b.start("unit")
			var rows []interop.Row
			if err := interop.Read(tc.f, bytes.NewReader(file.Bytes()), interop.Sink{
				Row:    func(r interop.Row) error { rows = append(rows, r); return nil },
				Reject: func(p interop.Problem) { t.Errorf("%s: %v", tc.f, p) },
			}); err != nil {
				t.Fatalf("%s: %v\n%s", tc.f, err, file.Bytes())
			}
			for _, r := range rows {
				labels := r.Labels
				if len(labels) == 0 {
					labels = []string{"other:imported"}
				}
				var pl []*pb.Label
				for _, l := range labels {
					x, err := protocol.ParseLabel(l)
					if err != nil {
						t.Fatal(err)
					}
					pl = append(pl, x)
				}
				if _, err := unit.Publish(ctx, &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{
					Signals: []*pb.Signal{r.Signal}, Labels: pl}}}); err != nil {
					t.Fatalf("%s: publishing %s: %v", tc.f, protocol.FormatSignal(r.Signal), err)
				}
			}
			var wantB []string
			for _, s := range exportState(t, pa, interop.Filter{}, tc.types) {
				if !tc.labels {
					sg, _, _ := strings.Cut(s, " ")
					s = sg + " other:imported active"
				}
				wantB = append(wantB, s)
			}
			if got := exportState(t, unit, interop.Filter{}, everything); !slices.Equal(got, wantB) {
				t.Errorf("%s: federation b holds\n %q\nwant\n %q\nfile:\n%s", tc.f, got, wantB, file.Bytes())
			}
			b.stop("unit")
		}

		// The MISP feed over HTTP, with a read token: the manifest names
		// nru's event, the event holds its attestations (the retracted
		// and disputed ones deleted, with status all), hashes.csv a line
		// per attribute.
		h := api.NewServer(pa, tokens.Static("secret"), testLogger(t, "api"))
		get := func(path string) *httptest.ResponseRecorder {
			req := httptest.NewRequest("GET", path, nil)
			req.Header.Set("Authorization", "Bearer secret")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec
		}
		res := get("/v1/misp-feed/manifest.json")
		var manifest map[string]interop.MISPManifestEntry
		if err := json.Unmarshal(res.Body.Bytes(), &manifest); res.Code != http.StatusOK || err != nil {
			t.Fatalf("manifest: %d %v %s", res.Code, err, res.Body)
		}
		var nruEvent string
		for u, e := range manifest {
			if e.Orgc.Name == "nru" {
				nruEvent = u
			}
		}
		if len(manifest) != 2 || nruEvent == "" {
			t.Fatalf("manifest: %+v, want an event of nru's log and one of pa's", manifest)
		}
		res = get("/v1/misp-feed/" + nruEvent + ".json?status=all")
		var rows []string
		if err := interop.Read(interop.MISP, res.Body, interop.Sink{
			Row: func(r interop.Row) error {
				rows = append(rows, protocol.FormatSignal(r.Signal)+" "+strings.Join(r.Labels, "|")+" "+map[bool]string{true: "deleted"}[r.Deleted])
				return nil
			},
			Reject: func(p interop.Problem) { t.Error(p) },
		}); err != nil || res.Code != http.StatusOK {
			t.Fatalf("event: %d %v", res.Code, err)
		}
		slices.Sort(rows)
		wantRows := []string{
			"md5:d41d8cd98f00b204e9800998ecf8427e graphic-violence|attacker-manifesto deleted",
			"pdq:f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22 graphic-violence|attacker-manifesto ",
			"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 recruitment-and-instruction deleted",
			"url:https://example.org/propaganda graphic-violence|attacker-manifesto ",
		}
		if !slices.Equal(rows, wantRows) {
			t.Errorf("event rows\n %q\nwant\n %q", rows, wantRows)
		}
		res = get("/v1/misp-feed/hashes.csv")
		if n := strings.Count(res.Body.String(), ","+nruEvent+"\n"); res.Code != http.StatusOK || n != 2 {
			t.Errorf("hashes.csv: %d, %d lines of nru's event (want the 2 active):\n%s", res.Code, n, res.Body)
		}
		for path, code := range map[string]int{
			"/v1/misp-feed/00000000-0000-0000-0000-000000000000.json": http.StatusNotFound,
			"/v1/signals/export?format=xml":                           http.StatusBadRequest,
			"/v1/signals/export?format=csv&status=gone":               http.StatusBadRequest,
			"/v1/signals/export?format=csv&since=yesterday":           http.StatusBadRequest,
			"/v1/signals/export?format=csv&author=nobody":             http.StatusBadRequest,
			"/v1/signals/export?format=misp":                          http.StatusBadRequest,
		} {
			if res := get(path); res.Code != code {
				t.Errorf("%s: %d, want %d: %s", path, res.Code, code, res.Body)
			}
		}
		if res := get("/v1/signals/export?format=stix&status=all"); res.Code != http.StatusOK || !strings.Contains(res.Body.String(), `"opinion":"strongly-disagree"`) ||
			!strings.Contains(res.Body.String(), `"indicator_types":["benign"]`) {
			t.Errorf("stix export: %d\n%s", res.Code, res.Body)
		}

		// The allowlist entry is exported while in force; once pa
		// retracts it, only with the retracted ones.
		allows := func(f interop.Filter) (out []string) {
			if err := nru.ExportSignals(ctx, f, func(r interop.Record) error {
				if r.Allow != nil {
					out = append(out, r.Author+" "+protocol.FormatSignal(r.Signal)+" "+r.Allow.Category+" "+r.Status)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			return out
		}
		if got := allows(interop.Filter{}); !slices.Equal(got, []string{"pa url:https://news.example/report news active"}) {
			t.Errorf("allows in force: %q", got)
		}
		if _, err := pa.Publish(ctx, &pb.Entry{Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{Target: allow.ID[:], Reason: "not news"}}}); err != nil {
			t.Fatal(err)
		}
		a.converge(time.Minute)
		if got := allows(interop.Filter{}); len(got) != 0 {
			t.Errorf("a retracted allow is exported by default: %q", got)
		}
		if got := allows(all); !slices.Equal(got, []string{"pa url:https://news.example/report news retracted"}) {
			t.Errorf("allows, status all: %q", got)
		}
	})
}

func errorsIsSkip(err error) bool { return errors.Is(err, interop.ErrSkip) }
