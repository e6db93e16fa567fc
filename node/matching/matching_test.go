package matching

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/node/match"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/prototest"
	"github.com/staydown/staydown/store"
)

// TestVerdict checks every rule of the verdict (matching.verdict; README,
// "Matching") on attestations made up for it.
func TestVerdict(t *testing.T) {
	members := []protocol.Member{
		{Name: "nru", Role: protocol.RoleReferral, AuthorKey: protocol.AuthorKey{1}},
		{Name: "platform-a", Role: protocol.RolePlatform, AuthorKey: protocol.AuthorKey{2}},
		{Name: "platform-b", Role: protocol.RolePlatform, AuthorKey: protocol.AuthorKey{3}},
	}
	roster, err := protocol.NewRoster("test", members)
	if err != nil {
		t.Fatal(err)
	}
	nru, pa, pb, outsider := members[0].AuthorKey, members[1].AuthorKey, members[2].AuthorKey, protocol.AuthorKey{9}
	att := func(author protocol.AuthorKey, status store.Status, labels ...string) FoundAttestation {
		if len(labels) == 0 {
			labels = []string{"graphic-violence"}
		}
		a := FoundAttestation{Attestation: store.Attestation{Author: author, Status: status, Labels: labels}}
		if status == store.StatusDisputed {
			// The verdict weighs the dispute behind the status: by a
			// member the default policy trusts.
			a.Reasons = append(a.Reasons, store.Reason{Kind: protocol.KindDispute, Author: pb, Reason: "a film still"})
		}
		return a
	}
	allowed := func(a FoundAttestation) FoundAttestation {
		a.Reasons = append(a.Reasons, store.Reason{Kind: protocol.KindAllow, Author: pb, Category: "news", Reason: "report"})
		return a
	}
	flagged := func(a FoundAttestation) FoundAttestation { a.Equivocated = true; return a }
	active, retracted, disputed, allowlisted := store.StatusActive, store.StatusRetracted, store.StatusDisputed, store.StatusAllowlisted

	def := config.DefaultPolicy()
	with := func(change func(*config.Policy)) config.Policy { p := config.DefaultPolicy(); change(&p); return p }
	trustSome := with(func(p *config.Policy) {
		p.Trust = map[string][]string{"nru": {"*"}, "platform-a": {"graphic-violence", "other"}}
	})
	tests := []struct {
		name   string
		policy config.Policy
		atts   []FoundAttestation
		want   Verdict
	}{
		{"nothing found: none", def, nil, VerdictNone},
		{"only retracted: none", def, []FoundAttestation{att(nru, retracted), att(pa, retracted)}, VerdictNone},
		{"only disputed: review", def, []FoundAttestation{att(nru, disputed), att(pa, disputed)}, VerdictReview},
		{"only allowlisted: review, never none", def, []FoundAttestation{allowed(att(nru, allowlisted)), allowed(att(pa, allowlisted))}, VerdictReview},
		{"allowlisted and retracted: none", def, []FoundAttestation{allowed(att(nru, retracted))}, VerdictNone},
		{"one active: review", def, []FoundAttestation{att(nru, active)}, VerdictReview},
		{"two members active: block", def, []FoundAttestation{att(nru, active), att(pa, active)}, VerdictBlock},
		{"one member twice: review", def, []FoundAttestation{att(nru, active), att(nru, active)}, VerdictReview},
		{"second member retracted: review", def, []FoundAttestation{att(nru, active), att(pa, retracted)}, VerdictReview},
		{"second member disputed: review", def, []FoundAttestation{att(nru, active), att(pa, disputed)}, VerdictReview},
		{"second member flagged for equivocation: review", def, []FoundAttestation{att(nru, active), flagged(att(pa, active))}, VerdictReview},
		{"flagged members still make review", def, []FoundAttestation{flagged(att(nru, active))}, VerdictReview},
		{"three members, one flagged: block", def, []FoundAttestation{att(nru, active), flagged(att(pa, active)), att(pb, active)}, VerdictBlock},
		{"two members, and a near hash allowlisted: review", def,
			[]FoundAttestation{att(nru, active), att(pa, active), allowed(att(pb, allowlisted))}, VerdictReview},
		{"allow in force on a retracted attestation still prevents block", def,
			[]FoundAttestation{att(nru, active), att(pa, active), allowed(att(pb, retracted))}, VerdictReview},
		{"block_min_attesters 1: one member blocks", with(func(p *config.Policy) { p.BlockMinAttesters = 1 }),
			[]FoundAttestation{att(pa, active)}, VerdictBlock},
		{"block_min_attesters 3: two members review", with(func(p *config.Policy) { p.BlockMinAttesters = 3 }),
			[]FoundAttestation{att(nru, active), att(pa, active)}, VerdictReview},
		{"block_min_attesters 3: three members block", with(func(p *config.Policy) { p.BlockMinAttesters = 3 }),
			[]FoundAttestation{att(nru, active), att(pa, active), att(pb, active)}, VerdictBlock},
		{"trusted for the label: block", trustSome,
			[]FoundAttestation{att(nru, active, "attacker-manifesto"), att(pa, active, "graphic-violence")}, VerdictBlock},
		{"trusted for one of several labels: block", trustSome,
			[]FoundAttestation{att(nru, active), att(pa, active, "attacker-manifesto", "graphic-violence")}, VerdictBlock},
		{"trusted for other, whatever its text: block", trustSome,
			[]FoundAttestation{att(nru, active), att(pa, active, "other:beheading video")}, VerdictBlock},
		{"not trusted for the label: review", trustSome,
			[]FoundAttestation{att(nru, active), att(pa, active, "recruitment-and-instruction")}, VerdictReview},
		{"member not trusted at all: review", trustSome,
			[]FoundAttestation{att(nru, active), att(pb, active)}, VerdictReview},
		{"untrusted member alone: still review", trustSome, []FoundAttestation{att(pb, active)}, VerdictReview},
		{"trust no one: never block", with(func(p *config.Policy) { p.Trust = map[string][]string{} }),
			[]FoundAttestation{att(nru, active), att(pa, active), att(pb, active)}, VerdictReview},
		{"every member for one label", with(func(p *config.Policy) { p.Trust = map[string][]string{"*": {"attacker-manifesto"}} }),
			[]FoundAttestation{att(pa, active, "attacker-manifesto"), att(pb, active, "attacker-manifesto")}, VerdictBlock},
		{"author outside the roster counts under the default", def,
			[]FoundAttestation{att(nru, active), att(outsider, active)}, VerdictBlock},
		{"author outside the roster is not a named member", trustSome,
			[]FoundAttestation{att(nru, active), att(outsider, active)}, VerdictReview},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Matching{roster: func() *protocol.Roster { return roster }, policy: tt.policy}
			if got := m.verdict(tt.atts); got != tt.want {
				t.Errorf("verdict %s, want %s", got, tt.want)
			}
		})
	}
}

// BenchmarkKeySet10M: the fingerprint set at 10 million keys, its lookup
// cost when the set is far larger than the caches, and its memory.
func BenchmarkKeySet10M(b *testing.B) {
	const n = 10_000_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := newKeySet()
	k := make([]byte, 33)
	for i := range uint64(n) {
		binary.BigEndian.PutUint64(k[1:], i)
		s.add(k)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	i := uint64(0)
	for b.Loop() {
		binary.BigEndian.PutUint64(k[1:], n+i)
		i++
		if s.has(k) {
			b.Fatal("collision")
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-bytes/key")
}

// TestKeySignal: keys turn back into their signals.
func TestKeySignal(t *testing.T) {
	for _, tv := range [][2]string{
		{"sha256", fmt.Sprintf("%064x", 3)}, {"md5", fmt.Sprintf("%032x", 3)},
		{"pdq", fmt.Sprintf("%064x", 3)}, {"url", "https://example.com/a?b"},
		{"account", "example.com:some:one"},
	} {
		s, err := protocol.ParseSignal(tv[0], tv[1])
		if err != nil {
			t.Fatal(err)
		}
		if got := keySignal(protocol.SignalKey(s)); protocol.FormatSignal(got) != protocol.FormatSignal(s) {
			t.Errorf("%s came back as %s", protocol.FormatSignal(s), protocol.FormatSignal(got))
		}
	}
}

// BenchmarkMatchingStartup measures what newMatching costs at start-up
// over a store of 1,000,000 random PDQ hashes (1,000 additions of 1,000):
// reading the hashes from the store and building the index. The store is
// filled once, directly (not through a node).
func BenchmarkMatchingStartup(b *testing.B) {
	const additions = 1000
	dir := b.TempDir()
	st, err := store.Open(filepath.Join(dir, "store.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	member := protocol.Member{Name: "nru", Role: protocol.RoleReferral, AuthorKey: protocol.AuthorKeyOf(key)}
	roster, err := protocol.NewRoster("test", []protocol.Member{member})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	log := prototest.NewLog(key, "test")
	var batch []*protocol.Entry
	for range additions {
		sigs := make([]*pb.Signal, protocol.MaxSignals)
		for i := range sigs {
			var h match.Hash
			for j := 0; j < len(h); j += 8 {
				binary.LittleEndian.PutUint64(h[j:], rng.Uint64())
			}
			sigs[i] = pdqSignal(h)
		}
		if batch = append(batch, log.Next(b, prototest.Addition(sigs...))); len(batch) == 100 {
			if _, err := st.Apply(batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	for b.Loop() {
		m, err := New(st, func() *protocol.Roster { return roster }, config.DefaultPolicy(), dir, prometheus.NewRegistry(), slog.New(slog.DiscardHandler), time.Now)
		if err != nil {
			b.Fatal(err)
		}
		if m.pdq.Len() != additions*protocol.MaxSignals {
			b.Fatalf("%d hashes", m.pdq.Len())
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/start")
}

// BenchmarkWatchlistCheck checks one incoming attestation (an addition of
// one signal that matches nothing, the common case) against a watchlist
// of 10,000,000 signals of its type, in memory as the node holds it.
func BenchmarkWatchlistCheck(b *testing.B) {
	const n = 10_000_000
	rng := rand.New(rand.NewPCG(3, 4))
	random := func() match.Hash {
		var h match.Hash
		for j := 0; j < len(h); j += 8 {
			binary.LittleEndian.PutUint64(h[j:], rng.Uint64())
		}
		return h
	}
	addition := func(s *pb.Signal) *pb.Addition { return &pb.Addition{Signals: []*pb.Signal{s}} }
	m := &Matching{policy: config.DefaultPolicy(), log: slog.New(slog.DiscardHandler)}
	b.Run("sha256", func(b *testing.B) {
		m.watchlist = &watchlist{exact: newKeySet(), pdq: match.NewPDQIndex()}
		k := make([]byte, 33)
		for range n {
			h := random()
			k[0] = sha256Tag
			copy(k[1:], h[:])
			m.watchlist.exact.add(k)
		}
		for b.Loop() {
			h := random()
			if m.watchCandidates(addition(&pb.Signal{Value: &pb.Signal_Multihash{Multihash: append([]byte{0x12, 0x20}, h[:]...)}})) != nil {
				b.Fatal("a random hash is watched")
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/attestation")
	})
	b.Run("pdq", func(b *testing.B) {
		m.watchlist = &watchlist{exact: newKeySet(), pdq: match.NewPDQIndex()}
		hs := make([]match.Hash, n)
		for i := range hs {
			hs[i] = random()
		}
		m.watchlist.pdq.Build(hs, make([]uint64, n))
		hs = nil
		for b.Loop() {
			m.watchCandidates(addition(pdqSignal(random())))
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/attestation")
	})
}
