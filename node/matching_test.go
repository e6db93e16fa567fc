package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"log/slog"
	"math/bits"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/match"
	"github.com/staydown/staydown/node/match/pdq"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// referenceImages is the PDQ reference data (shared/testdata/pdq/images,
// beside the module root).
func referenceImage(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "shared", "testdata", "pdq", "images", name))
	if err != nil {
		t.Fatalf("PDQ reference image: %v", err)
	}
	return b
}

// hashedImages holds what hashImage computed, by file name: the tests
// hash the same reference images again and again, and under the race
// detector each costs seconds.
var hashedImages sync.Map // name -> hashedImage

type hashedImage struct {
	res      pdq.Result
	variants [8]pdq.Hash
}

func hashImage(t *testing.T, name string) (pdq.Result, [8]pdq.Hash) {
	t.Helper()
	if h, ok := hashedImages.Load(name); ok {
		return h.(hashedImage).res, h.(hashedImage).variants
	}
	res, variants, err := pdq.FromReaderDihedral(strings.NewReader(string(referenceImage(t, name))))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	hashedImages.Store(name, hashedImage{res, variants})
	return res, variants
}

func pdqQuery(h pdq.Hash, quality int, variants *[8]pdq.Hash) api.Query {
	q := api.Query{Signal: pdqSignal(match.Hash(h)), Quality: quality}
	if variants != nil {
		for d := pdq.Rotate90; d <= pdq.FlipMinus1; d++ {
			q.Variants = append(q.Variants, api.Variant{Transform: d.String(), Hash: variants[d]})
		}
	}
	return q
}

func publishAddition(t *testing.T, n *Node, labels []string, sigs ...*pb.Signal) *protocol.Entry {
	t.Helper()
	add := &pb.Addition{Signals: sigs}
	for _, l := range labels {
		pl, err := protocol.ParseLabel(l)
		if err != nil {
			t.Fatal(err)
		}
		add.Labels = append(add.Labels, pl)
	}
	e, err := n.Publish(context.Background(), &pb.Entry{Payload: &pb.Entry_Addition{Addition: add}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func matchOne(t *testing.T, n *Node, q api.Query) api.Found {
	t.Helper()
	found, err := n.Match(context.Background(), []api.Query{q})
	if err != nil {
		t.Fatal(err)
	}
	return found[0]
}

// TestMatchingPDQ publishes the bridge photo's hash and matches edited,
// rotated and unrelated photos against it, before and after a restart
// (which rebuilds the index from the store), and after a retraction.
func TestMatchingPDQ(t *testing.T) {
	f := newFederation(t, "nru=referral")
	n := f.start("nru")
	orig, _ := hashImage(t, "bridge-mods--aaa-orig.jpg")
	add := publishAddition(t, n, []string{"graphic-violence"}, pdqSignal(match.Hash(orig.Hash)))
	// The same hash again in nru's log, as another implementation's node
	// may write it (this node refuses to sign it: Node.checkNewSignals),
	// arriving by sync.
	again, err := protocol.Sign(f.key("nru"), &pb.Entry{Version: protocol.Version, Federation: "test", Seq: 2, Prev: add.ID[:], TimestampMs: add.Body.TimestampMs + 1,
		Payload: &pb.Entry_Addition{Addition: &pb.Addition{Signals: []*pb.Signal{pdqSignal(match.Hash(orig.Hash))}, Labels: []*pb.Label{{Slug: "attacker-manifesto"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := n.writer.Apply([]*protocol.Entry{again}); err != nil || res[0].Outcome != store.Applied {
		t.Fatalf("apply the same hash again: %v %v", res, err)
	}

	check := func(t *testing.T, n *Node) {
		for _, tt := range []struct {
			file     string
			dihedral bool
			want     bool
		}{
			{"bridge-mods--aaa-orig.jpg", false, true},
			{"bridge-mods--blur-a-lot.jpg", false, true},
			{"bridge-mods--sharpen-a-lot.jpg", false, true},
			{"bridge-mods--shrink-a-lot.jpg", false, true},
			{"bridge-mods--high-saturation.jpg", false, true},
			{"dih--bridge-2-rotate-90.jpg", false, false}, // rotated: only with dihedral matching
			{"dih--bridge-2-rotate-90.jpg", true, true},
			{"dih--bridge-6-flipy.jpg", true, true},
			{"labelme-subset--q0003.jpg", true, false},
			{"misc-images--c.png", true, false},
		} {
			res, variants := hashImage(t, tt.file)
			var vs *[8]pdq.Hash
			if tt.dihedral {
				vs = &variants
			}
			found := matchOne(t, n, pdqQuery(res.Hash, res.Quality, vs))
			if got := len(found.Attestations) > 0; got != tt.want {
				t.Errorf("%s (dihedral %v): matched %v, want %v: %+v", tt.file, tt.dihedral, got, tt.want, found)
				continue
			}
			if !tt.want {
				if found.Verdict != api.VerdictNone {
					t.Errorf("%s: verdict %s with nothing found", tt.file, found.Verdict)
				}
				continue
			}
			if len(found.Attestations) != 2 {
				t.Errorf("%s: %d attestations, want the 2 additions of the hash", tt.file, len(found.Attestations))
			}
			a := found.Attestations[0]
			want := hashDistance(res.Hash, orig.Hash)
			for d := pdq.Rotate90; d <= pdq.FlipMinus1; d++ {
				if d.String() == a.Transform {
					want = hashDistance(variants[d], orig.Hash)
				}
			}
			if a.Hash != match.Hash(orig.Hash) || a.Distance != want || a.Distance > config.DefaultPDQThreshold || a.Status != store.StatusActive {
				t.Errorf("%s: attestation hash %x distance %d (want %d) transform %q status %s", tt.file, a.Hash, a.Distance, want, a.Transform, a.Status)
			}
			// One member attests (twice): review under the default policy.
			if found.Verdict != api.VerdictReview {
				t.Errorf("%s: verdict %s, want review", tt.file, found.Verdict)
			}
			t.Logf("%-36s dihedral %-5v distance %2d %s", tt.file, tt.dihedral, a.Distance, a.Transform)
		}
	}
	t.Run("published", func(t *testing.T) { check(t, n) })
	if got := n.gauge(t, "staydown_pdq_index_hashes"); got != 1 {
		t.Errorf("index holds %v hashes, want 1 (the same hash published twice)", got)
	}

	n.Close()
	n = f.start("nru")
	t.Run("rebuilt at start-up", func(t *testing.T) { check(t, n) })

	t.Run("low quality is reported, not matched", func(t *testing.T) {
		found := matchOne(t, n, pdqQuery(orig.Hash, config.DefaultMinQuality-1, nil))
		if len(found.Attestations) != 0 || found.Skipped != "quality 49 is below min_quality 50: not matched" || found.Verdict != api.VerdictNone {
			t.Errorf("found %+v", found)
		}
		if found := matchOne(t, n, pdqQuery(orig.Hash, api.NoQuality, nil)); len(found.Attestations) != 2 {
			t.Errorf("a hash of unknown quality is not matched: %+v", found)
		}
	})

	t.Run("retracted: found, shown retracted, none", func(t *testing.T) {
		if _, err := n.Publish(context.Background(), &pb.Entry{Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{Target: add.ID[:], Reason: "wrong file"}}}); err != nil {
			t.Fatal(err)
		}
		found := matchOne(t, n, pdqQuery(orig.Hash, api.NoQuality, nil))
		var statuses []store.Status
		for _, a := range found.Attestations {
			statuses = append(statuses, a.Status)
		}
		slices.Sort(statuses)
		if !slices.Equal(statuses, []store.Status{store.StatusActive, store.StatusRetracted}) || found.Verdict != api.VerdictReview {
			t.Errorf("statuses %v verdict %s, want active and retracted, review", statuses, found.Verdict)
		}
	})
}

// gauge reads a registered gauge by name.
func (n *Node) gauge(t *testing.T, name string) float64 { t.Helper(); return n.metric(t, name) }

// metric is the value of the node's gauge or counter name.
func (n *Node) metric(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := n.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.Metric) == 1 {
			if c := mf.Metric[0].GetCounter(); c != nil {
				return c.GetValue()
			}
			return mf.Metric[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestMatchingApplied: a PDQ hash published on one node reaches the near-
// match index of another through gossip or sync, and two members' additions
// make block there.
func TestMatchingApplied(t *testing.T) {
	inSim(t, func(t *testing.T) {
		f := newSimFed(t, simDefaults(44), "nru=referral", "pa=platform", "pb=platform")
		nru, pa, pb := f.start("nru"), f.start("pa"), f.start("pb")
		orig, _ := hashImage(t, "bridge-mods--aaa-orig.jpg")
		blurred, _ := hashImage(t, "bridge-mods--blur-a-lot.jpg")
		publishAddition(t, nru, []string{"graphic-violence"}, pdqSignal(match.Hash(orig.Hash)))
		f.waitFor(20*time.Second, "pa matches the blurred copy", func() bool {
			return len(matchOne(t, pa, pdqQuery(blurred.Hash, blurred.Quality, nil)).Attestations) == 1
		})
		if v := matchOne(t, pa, pdqQuery(blurred.Hash, blurred.Quality, nil)).Verdict; v != api.VerdictReview {
			t.Errorf("one member: verdict %s, want review", v)
		}
		publishAddition(t, pb, []string{"graphic-violence"}, pdqSignal(match.Hash(blurred.Hash)))
		f.waitFor(20*time.Second, "pa sees both additions", func() bool {
			return len(matchOne(t, pa, pdqQuery(orig.Hash, orig.Quality, nil)).Attestations) == 2
		})
		found := matchOne(t, pa, pdqQuery(orig.Hash, orig.Quality, nil))
		if found.Verdict != api.VerdictBlock {
			t.Errorf("two members: verdict %s, want block", found.Verdict)
		}
		if a := found.Attestations; a[0].Distance != 0 || a[1].Distance != hashDistance(orig.Hash, blurred.Hash) {
			t.Errorf("distances %d, %d: want nearest first", a[0].Distance, a[1].Distance)
		}
	})
}

// TestMatchingPolicyMembers: a policy that trusts a member the roster does
// not list stops the node at start-up, naming the key.
func TestMatchingPolicyMembers(t *testing.T) {
	f := newFederation(t, "nru=referral")
	cfg := *f.cfgs["nru"]
	cfg.Policy.Trust = map[string][]string{"nru-demo": {"*"}}
	_, err := Start(context.Background(), &cfg, testLogger(t, "nru"))
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), `policy.trust.nru-demo: no member "nru-demo" in the roster`) {
		t.Fatalf("start: %v", err)
	}
}

// TestMatchingExact: exact signals come from the store, with a verdict.
func TestMatchingExact(t *testing.T) {
	f := newFederation(t, "nru=referral")
	n := f.start("nru")
	sig, err := protocol.ParseSignal("url", "https://Example.com/x#frag")
	if err != nil {
		t.Fatal(err)
	}
	publishAddition(t, n, []string{"recruitment-and-instruction"}, sig)
	other, _ := protocol.ParseSignal("url", "https://example.com/y")
	found, err := n.Match(context.Background(), []api.Query{{Signal: sig, Quality: api.NoQuality}, {Signal: other, Quality: api.NoQuality}})
	if err != nil {
		t.Fatal(err)
	}
	if len(found[0].Attestations) != 1 || found[0].Verdict != api.VerdictReview || len(found[1].Attestations) != 0 || found[1].Verdict != api.VerdictNone {
		t.Errorf("found %+v", found)
	}
	if _, err := n.Match(context.Background(), []api.Query{{Signal: &pb.Signal{Value: &pb.Signal_Pdq{Pdq: []byte{1}}}}}); !errors.Is(err, api.ErrInvalid) {
		t.Errorf("bad signal: %v, want ErrInvalid", err)
	}
}

// exactBench is a node holding 100,000 sha256 signals (100 additions of
// 1,000), shared by the exact-lookup benchmarks.
func exactBench(b *testing.B) (*Node, []*pb.Signal) {
	b.Helper()
	dir := b.TempDir()
	roster := filepath.Join(dir, "roster.toml")
	_, block, err := config.Init(config.InitOptions{
		Dir: filepath.Join(dir, "nru"), Name: "nru", Role: protocol.RoleReferral, Federation: "test",
		Listen: []string{"/ip4/127.0.0.1/tcp/0"}, API: loopbackAddr(b), Roster: roster,
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(roster, []byte(addrsLine.ReplaceAllString(block, "addrs = []")), 0o644); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load(filepath.Join(dir, "nru"))
	if err != nil {
		b.Fatal(err)
	}
	n, err := StartWith(context.Background(), cfg, slog.New(slog.DiscardHandler), withAPI(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close() })
	var stored []*pb.Signal
	for a := range 100 {
		sigs := make([]*pb.Signal, protocol.MaxSignals)
		for i := range sigs {
			sigs[i] = sha256Signal(uint64(a*protocol.MaxSignals + i))
		}
		if _, err := n.Publish(context.Background(), &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{
			Signals: sigs, Labels: []*pb.Label{{Slug: "graphic-violence"}}}}}); err != nil {
			b.Fatal(err)
		}
		stored = append(stored, sigs...)
	}
	return n, stored
}

func sha256Signal(i uint64) *pb.Signal {
	sum := sha256.Sum256(binary.BigEndian.AppendUint64(nil, i))
	return &pb.Signal{Value: &pb.Signal_Multihash{Multihash: append([]byte{0x12, 0x20}, sum[:]...)}}
}

// BenchmarkExactLookup measures one exact signal's match in-process, with
// the fingerprint set in front of the store (what the node does) and
// through the store alone, for a signal stored and one not.
func BenchmarkExactLookup(b *testing.B) {
	n, stored := exactBench(b)
	absent := sha256Signal(1 << 40)
	for _, tt := range []struct {
		name string
		sig  *pb.Signal
		want int
	}{{"miss", absent, 0}, {"hit", stored[len(stored)/2], 1}} {
		b.Run("node/"+tt.name, func(b *testing.B) {
			q := []api.Query{{Signal: tt.sig, Quality: api.NoQuality}}
			for b.Loop() {
				found, err := n.matcher.Match(q)
				if err != nil || len(found[0].Attestations) != tt.want {
					b.Fatalf("%v %v", found, err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
		})
		b.Run("store-only/"+tt.name, func(b *testing.B) {
			k := protocol.SignalKey(tt.sig)
			for b.Loop() {
				atts, err := n.store.Match(k)
				if err != nil || len(atts) != tt.want {
					b.Fatalf("%v %v", atts, err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
		})
	}
	b.Run("node/batch-of-1000-misses", func(b *testing.B) {
		q := make([]api.Query, protocol.MaxSignals)
		for i := range q {
			q[i] = api.Query{Signal: sha256Signal(1<<40 + uint64(i)), Quality: api.NoQuality}
		}
		for b.Loop() {
			if _, err := n.matcher.Match(q); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*len(q))/b.Elapsed().Seconds(), "lookups/s")
	})
}

// loopbackAddr is a free loopback TCP address.
func loopbackAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestMatchFileOverHTTP posts reference images to a real node's API: a
// rotated copy of a published photo matches through its dihedral variant
// (and not with dihedral=false), an unrelated photo does not.
func TestMatchFileOverHTTP(t *testing.T) {
	f := newFederation(t, "nru=referral")
	n := f.start("nru")
	token, err := f.cfgs["nru"].Token()
	if err != nil {
		t.Fatal(err)
	}
	orig, _ := hashImage(t, "bridge-mods--aaa-orig.jpg")
	publishAddition(t, n, []string{"graphic-violence"}, pdqSignal(match.Hash(orig.Hash)))
	post := func(file, query string) api.FileMatch {
		t.Helper()
		req, err := http.NewRequest("POST", "http://"+n.APIAddr().String()+"/v1/match/file"+query, bytes.NewReader(referenceImage(t, file)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/octet-stream")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var fm api.FileMatch
		if res.StatusCode != http.StatusOK || json.NewDecoder(res.Body).Decode(&fm) != nil {
			t.Fatalf("%s: status %d", file, res.StatusCode)
		}
		return fm
	}
	fm := post("dih--bridge-8-flip-minus-1.jpg", "")
	if !fm.Matched || fm.Verdict != "review" || len(fm.Results) != 3 {
		t.Fatalf("rotated copy: matched %v verdict %s", fm.Matched, fm.Verdict)
	}
	a := fm.Results[2].Attestations[0]
	if a.Hash != orig.Hash.String() || a.Transform != "flipMinus1" || *a.Distance > config.DefaultPDQThreshold {
		t.Errorf("attestation %+v", a)
	}
	if fm := post("dih--bridge-8-flip-minus-1.jpg", "?dihedral=false"); fm.Matched || fm.Verdict != "none" {
		t.Errorf("rotated copy without dihedral: matched %v verdict %s", fm.Matched, fm.Verdict)
	}
	if fm := post("bridge-mods--blur-a-lot.jpg", "?dihedral=false"); !fm.Matched || fm.Results[2].Attestations[0].Transform != "" {
		t.Errorf("blurred copy: %+v", fm.Results[2])
	}
	if fm := post("labelme-subset--q0746.jpg", ""); fm.Matched || fm.Verdict != "none" || len(fm.Results[2].Attestations) != 0 {
		t.Errorf("unrelated photo: %+v", fm.Results[2])
	}
}

// BenchmarkMatchHTTP posts POST /v1/match with batches of 1,000 sha256
// signals (1% of them stored) to a real node over loopback HTTP, from one
// client and from four at once, and reports signals matched per second.
func BenchmarkMatchHTTP(b *testing.B) {
	n, stored := exactBench(b)
	token, err := n.cfg.Token()
	if err != nil {
		b.Fatal(err)
	}
	var req api.MatchRequest
	for i := range protocol.MaxSignals {
		s := sha256Signal(1<<40 + uint64(i))
		if i%100 == 0 {
			s = stored[i*37%len(stored)]
		}
		req.Signals = append(req.Signals, api.FormatSignal(s))
	}
	body, err := json.Marshal(req)
	if err != nil {
		b.Fatal(err)
	}
	url := "http://" + n.APIAddr().String() + "/v1/match"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	post := func() {
		r, err := http.NewRequest("POST", url, bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		r.Header.Set("Authorization", "Bearer "+token)
		r.Header.Set("Content-Type", "application/json")
		res, err := client.Do(r)
		if err != nil {
			b.Fatal(err)
		}
		var out api.MatchResults
		err = json.NewDecoder(res.Body).Decode(&out)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusOK || len(out.Results) != protocol.MaxSignals || !out.Results[0].Matched {
			b.Fatalf("status %d, %d results, %v", res.StatusCode, len(out.Results), err)
		}
	}
	b.Run("one-client", func(b *testing.B) {
		for b.Loop() {
			post()
		}
		b.ReportMetric(float64(b.N*protocol.MaxSignals)/b.Elapsed().Seconds(), "signals/s")
	})
	b.Run("four-clients", func(b *testing.B) {
		b.SetParallelism(2) // 2 x GOMAXPROCS goroutines: 4 on this machine
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				post()
			}
		})
		b.ReportMetric(float64(b.N*protocol.MaxSignals)/b.Elapsed().Seconds(), "signals/s")
	})
}

// hashDistance is the Hamming distance between two PDQ hashes, computed
// apart from the index's own.
func hashDistance(a, b pdq.Hash) int {
	n := 0
	for i := range a {
		n += bits.OnesCount8(a[i] ^ b[i])
	}
	return n
}

// pdqSignal is a PDQ signal of h.
func pdqSignal(h match.Hash) *pb.Signal {
	return &pb.Signal{Value: &pb.Signal_Pdq{Pdq: h[:]}}
}
