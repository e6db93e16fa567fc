package matching

import (
	"slices"
	"testing"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/prototest"
	"github.com/staydown/staydown/store"
)

func mustSignal(t *testing.T, typ, v string) *pb.Signal {
	t.Helper()
	s, err := protocol.ParseSignal(typ, v)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestMatchDomain: a domain signal matches its own name, a signal with
// subdomains matches the names under it (and not its siblings), an exact
// one does not; a url query reports the domain attestations of its host,
// saying which stored signal covered it; a retraction shows, also at a
// parent; the results survive a restart (the index is rebuilt from the
// store).
func TestMatchDomain(t *testing.T) {
	w := newVideoWorld(t, "a", "b")
	w.start(config.DefaultPolicy())
	wild := w.write("a", prototest.Addition(mustSignal(t, "domain", "*.propaganda.example")))
	w.write("b", prototest.Addition(mustSignal(t, "domain", "exact.example")))

	type hit struct{ author, via string }
	found := func(typ, v string) []hit {
		t.Helper()
		var out []hit
		for _, a := range w.match(mustSignal(t, typ, v)).Attestations {
			out = append(out, hit{w.roster.NameOf(a.Author), a.Via})
		}
		return out
	}
	check := func() {
		t.Helper()
		for _, c := range []struct {
			typ, v string
			want   []hit
		}{
			{"domain", "propaganda.example", []hit{{"a", "domain:*.propaganda.example"}}},
			{"domain", "*.propaganda.example", []hit{{"a", ""}}},
			{"domain", "WWW.Propaganda.example", []hit{{"a", "domain:*.propaganda.example"}}},
			{"domain", "a.b.propaganda.example", []hit{{"a", "domain:*.propaganda.example"}}},
			{"domain", "notpropaganda.example", nil},
			{"domain", "exact.example", []hit{{"b", ""}}},
			{"domain", "www.exact.example", nil},
			{"domain", "*.exact.example", []hit{{"b", "domain:exact.example"}}},
			{"url", "https://cdn.propaganda.example/video?id=1", []hit{{"a", "domain:*.propaganda.example"}}},
			{"url", "https://exact.example:8443/", []hit{{"b", "domain:exact.example"}}},
			{"url", "https://www.exact.example/", nil},
			{"url", "https://192.0.2.1/", nil},
		} {
			if got := found(c.typ, c.v); !slices.Equal(got, c.want) {
				t.Errorf("%s:%s: got %v, want %v", c.typ, c.v, got, c.want)
			}
		}
	}
	check()
	w.start(config.DefaultPolicy())
	check()

	w.write("a", &pb.Entry{Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{Target: wild.ID[:], Reason: "wrong site"}}})
	f := w.match(mustSignal(t, "url", "https://www.propaganda.example/"))
	if len(f.Attestations) != 1 || f.Attestations[0].Status != store.StatusRetracted || f.Verdict != VerdictNone {
		t.Errorf("after the retraction: %+v, verdict %s", f.Attestations, f.Verdict)
	}
}
