// Package matching answers match queries for a node, and keeps its
// legacy-content watchlist.
package matching

import (
	"bytes"
	"cmp"
	"fmt"
	"hash/maphash"
	"log/slog"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/node/kind"
	"github.com/staydown/staydown/node/match"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// Matching answers match queries. Exact signals (sha256, md5, url,
// account) are looked up in the store's own index, behind a fingerprint
// set of every stored key that answers the misses from memory. PDQ hashes
// go through
// an in-memory near-match index of every PDQ hash that some addition
// carries, built from the store at start-up and told of every addition
// stored since (published or applied), so that a query finds the stored
// hashes within the policy's threshold; their attestations then come from
// the store. Nothing is ever removed from the index: the status of each
// attestation (retracted, allowlisted, disputed) is read from the store at
// query time, so a retracted hash is found and shown as retracted. The
// policy turns each result into a verdict. What the store says of a
// stored signal (exact, or a stored PDQ hash near a query) is cached per
// signal key (cache.go), and the cache is told of every entry stored,
// so that a result is never stale once the apply that changes it is
// reported.
//
// match, stored and the watchlist's methods may run concurrently: the
// indexes and the watchlist guard themselves (the PDQ index serialises
// its writers and lets queries run beside them); the other fields are
// read-only after New.
type Matching struct {
	store  *store.Store
	roster func() *protocol.Roster // the roster in force, for names
	policy config.Policy
	log    *slog.Logger
	now    func() time.Time // the node's clock: when a watchlist alert was raised
	pdq    *match.PDQIndex  // one entry per distinct stored PDQ hash, ref 0
	exact  *keySet          // every other stored signal key, as a fingerprint
	videos *videoIndex      // every stored video's frames (video.go)
	cache  *matchCache      // store results per signal key
	// watchlist is the platform's legacy-content watchlist (watchlist.go),
	// checked against every addition stored.
	watchlist *watchlist
	// exactRead, pdqRead and pdqBuild: reading the exact signal keys and
	// the PDQ hashes from the store at start-up, and the latter and
	// building the index (BenchmarkStartupPDQ).
	exactRead, pdqRead, pdqBuild time.Duration
	// videoRead and videoBuild: reading the stored videos, and that and
	// building their index.
	videoRead, videoBuild time.Duration
}

// New builds the match indexes from every addition in st and
// loads the watchlist kept in st. It checks that the policy names only
// roster members (the error names the config.toml of the node directory
// dir), and registers the indexes' metrics with reg. now is the node's
// clock.
func New(st *store.Store, roster func() *protocol.Roster, policy config.Policy, dir string, reg prometheus.Registerer, log *slog.Logger, now func() time.Time) (*Matching, error) {
	if err := policy.CheckMembers(filepath.Join(dir, config.ConfigFile), roster()); err != nil {
		return nil, err
	}
	w, err := openWatchlist(st, policy.MinQuality, reg, log)
	if err != nil {
		return nil, err
	}
	m := &Matching{store: st, roster: roster, policy: policy, log: log, now: now, pdq: match.NewPDQIndex(), exact: newKeySet(),
		cache: newMatchCache(defaultMatchCacheBytes), watchlist: w}
	m.cache.register(reg)
	// The index's merges (a few seconds at 10 million hashes) run beside
	// the apply loop, which adds to it, instead of stalling it.
	m.pdq.MergeInBackground()
	start := time.Now()
	for _, typ := range protocol.SignalTypes {
		if typ == protocol.SignalPDQ {
			continue
		}
		if err := st.SignalKeys(typ, func(k []byte) error { m.exact.add(k); return nil }); err != nil {
			return nil, fmt.Errorf("loading %s signals: %w", typ, err)
		}
	}
	exactTook := time.Since(start)
	start = time.Now()
	var hashes []match.Hash
	err = st.SignalKeys(protocol.SignalPDQ, func(k []byte) error {
		var h match.Hash
		copy(h[:], k[1:])
		hashes = append(hashes, h)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("loading PDQ hashes: %w", err)
	}
	read := time.Since(start)
	m.pdq.Build(hashes, make([]uint64, len(hashes)))
	took := time.Since(start)
	if len(hashes) > 1<<20 {
		// The hashes read for Build (32 bytes each: 320 MB at 10 million)
		// and Build's scratch are garbage now: give their memory back at
		// once rather than when the heap next doubles.
		hashes = nil
		debug.FreeOSMemory()
	}
	m.exactRead, m.pdqRead, m.pdqBuild = exactTook, read, took
	videoRead, videoTook, err := m.loadVideos()
	if err != nil {
		m.pdq.Close()
		return nil, fmt.Errorf("loading videos: %w", err)
	}
	m.videoRead, m.videoBuild = videoRead, videoTook
	log.Info("match indexes built", "exact_signals", m.exact.len(), "exact_took", exactTook.Round(time.Millisecond),
		"pdq_hashes", len(hashes), "pdq_read", read.Round(time.Millisecond), "pdq_took", took.Round(time.Millisecond),
		"videos", m.videos.x.Videos(), "video_frames", m.videos.x.Frames(), "videos_read", videoRead.Round(time.Millisecond), "videos_took", videoTook.Round(time.Millisecond))

	buildSeconds := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "staydown_pdq_index_build_seconds", Help: "Time to build the PDQ index from the store at start-up.",
	})
	buildSeconds.Set(took.Seconds())
	reg.MustRegister(buildSeconds, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "staydown_pdq_index_hashes", Help: "Entries in the PDQ near-match index (distinct stored PDQ hashes).",
	}, func() float64 { return float64(m.pdq.Len()) }))
	return m, nil
}

// Stored tells matching of an entry now in the store, before the apply
// that stored it is reported. An addition's signals enter the indexes (PDQ
// hashes unless already there) and leave the result cache, and the
// watchlist alerts its transaction raised are reported (watchHook); any
// other entry may change the result of
// any signal (a retraction, dispute or allow entry: the status of
// attestations) and empties the cache.
func (m *Matching) Stored(e *protocol.Entry) {
	var sigs []*pb.Signal
	switch {
	case e.Body.GetAddition() != nil:
		sigs = e.Body.GetAddition().Signals
		defer m.storedAlerts(e)
	case e.Body.GetNotice() != nil:
		// A notice's signals match once it is actioned (stay down); the
		// store decides that at query time. The reply that actions it is
		// another kind of entry, which empties the cache.
		sigs = e.Body.GetNotice().Signals
	default:
		m.cache.invalidateAll()
		return
	}
	for _, s := range sigs {
		k := protocol.SignalKey(s)
		m.cache.invalidate(k)
		if s.GetVpdq() != nil && e.Body.GetAddition() != nil {
			// Only additions' videos are in the store's frame index,
			// which the video index is built from.
			m.storedVideo(s)
		}
		p := s.GetPdq()
		if len(p) != protocol.PDQSize {
			m.exact.add(k)
			continue
		}
		h := match.Hash(p)
		// Two writers may both miss and both add; queries drop the
		// duplicate (see pdqCandidates).
		if len(m.pdq.Query(h, 0)) == 0 {
			m.pdq.Add(h, 0)
		}
	}
}

// Match answers queries, in order: the attestations of each signal
// with their status now, and the verdict of the node's policy.
func (m *Matching) Match(queries []Query) ([]Found, error) {
	out := make([]Found, len(queries))
	for i, q := range queries {
		if err := protocol.CheckSignal(q.Signal); err != nil {
			return nil, fmt.Errorf("%w: signals[%d]: %w", kind.ErrInvalid, i, err)
		}
		var err error
		switch protocol.TypeOf(q.Signal) {
		case protocol.SignalPDQ:
			out[i], err = m.matchPDQ(q)
		case protocol.SignalVPDQ:
			out[i], err = m.matchVPDQ(q)
		default:
			out[i], err = m.lookupExact(q)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// lookupExact answers a query for an exact signal. A domain is also
// matched by the domain signals that cover it, and a URL by those that
// cover its host (SPEC.md 7.7).
func (m *Matching) lookupExact(q Query) (Found, error) {
	k := protocol.SignalKey(q.Signal)
	var host string
	switch v := q.Signal.GetValue().(type) {
	case *pb.Signal_Domain:
		host = v.Domain.Name
	case *pb.Signal_Url:
		host, _ = protocol.URLHostDomain(v.Url)
	}
	if host == "" {
		if m.exact.has(k) {
			return m.lookup(k)
		}
		return Found{Verdict: VerdictNone}, nil
	}
	var out Found
	if m.exact.has(k) {
		f, err := m.lookup(k)
		if err != nil {
			return Found{}, err
		}
		out.Attestations = append(out.Attestations, f.Attestations...)
	}
	for _, dk := range protocol.DomainMatchKeys(host) {
		if bytes.Equal(dk, k) || !m.exact.has(dk) {
			continue
		}
		f, err := m.lookup(dk)
		if err != nil {
			return Found{}, err
		}
		via := protocol.FormatSignal(&pb.Signal{Value: &pb.Signal_Domain{Domain: &pb.Domain{
			Name: strings.TrimPrefix(string(dk[1:]), protocol.SubdomainPrefix), Subdomains: bytes.HasPrefix(dk[1:], []byte(protocol.SubdomainPrefix))}}})
		for _, a := range f.Attestations {
			a.Via = via
			out.Attestations = append(out.Attestations, a)
		}
	}
	out.Verdict = m.verdict(out.Attestations)
	return out, nil
}

// lookup returns what the store says of the signal with key k, with the
// verdict, from the cache or else from the store. The result is shared
// with the cache: callers must not change it.
func (m *Matching) lookup(k []byte) (Found, error) {
	f, ok, ticket := m.cache.get(k)
	if ok {
		return f, nil
	}
	atts, err := m.store.Match(k)
	if err != nil {
		return Found{}, err
	}
	f.Attestations = make([]FoundAttestation, len(atts))
	for j, a := range atts {
		f.Attestations[j] = FoundAttestation{Attestation: a, Ignored: m.ignored(a)}
	}
	f.Verdict = m.verdict(f.Attestations)
	m.cache.put(k, ticket, f)
	return f, nil
}

// candidate is a stored PDQ hash near a query.
type candidate struct {
	hash      match.Hash
	distance  int
	transform string
}

func (m *Matching) matchPDQ(q Query) (Found, error) {
	if q.Quality != NoQuality && q.Quality < m.policy.MinQuality {
		return Found{Verdict: VerdictNone, Skipped: fmt.Sprintf("quality %d is below min_quality %d: not matched", q.Quality, m.policy.MinQuality)}, nil
	}
	var f Found
	for _, c := range m.pdqCandidates(q) {
		stored, err := m.lookup(append([]byte{pdqTag}, c.hash[:]...))
		if err != nil {
			return Found{}, err
		}
		for _, a := range stored.Attestations {
			a.Hash, a.Distance, a.Transform = c.hash, c.distance, c.transform
			f.Attestations = append(f.Attestations, a)
		}
	}
	f.Verdict = m.verdict(f.Attestations)
	return f, nil
}

// pdqTag is the first byte of a PDQ signal key (SPEC.md section 7.5).
var pdqTag = protocol.SignalKey(pdqSignal(match.Hash{}))[0]

// pdqCandidates returns the distinct stored hashes within the threshold of
// the query's hash or of one of its variants, each with its smallest
// distance (the query itself winning a tie), nearest first, then by hash.
func (m *Matching) pdqCandidates(q Query) []candidate {
	best := map[match.Hash]candidate{}
	search := func(h match.Hash, transform string) {
		for _, r := range m.pdq.Query(h, m.policy.PDQThreshold) {
			if c, seen := best[r.Hash]; !seen || r.Distance < c.distance {
				best[r.Hash] = candidate{r.Hash, r.Distance, transform}
			}
		}
	}
	search(match.Hash(q.Signal.GetPdq()), "")
	for _, v := range q.Variants {
		search(v.Hash, v.Transform)
	}
	out := make([]candidate, 0, len(best))
	for _, c := range best {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b candidate) int {
		if c := cmp.Compare(a.distance, b.distance); c != 0 {
			return c
		}
		return bytes.Compare(a.hash[:], b.hash[:])
	})
	return out
}

// verdict applies the policy to the attestations of one result (README,
// "Verdicts: the node's local policy"). Statuses are protocol state
// (SPEC 10, replica.StatusOf), the same on every node; what they weigh is
// this node's policy, so the verdict reads the entries behind a status
// (a.Reasons) and takes the word only of the members the policy trusts:
//
//   - An allow or dispute bears on the verdict when the policy trusts its
//     author for at least one of the attestation's labels; the others are
//     shown (the status says allowlisted or disputed) but weigh nothing,
//     so a member the node does not trust cannot lower a verdict below
//     what the trusted attestations give.
//   - An attestation is, for the verdict, retracted (its status says so),
//     else disputed (a dispute that bears on it), else active, whatever
//     allow entries name its signal.
//   - It counts towards block when it is active, its author is not
//     flagged for equivocation, and the policy trusts its author for at
//     least one of its labels (an actioned notice counts for its issuer
//     and for the platform that removed the content).
//   - block: at least BlockMinAttesters distinct members have an
//     attestation that counts, and no attestation of the result has an
//     allow entry that bears on it (whatever its status; for PDQ, whichever
//     near hash it carries: an allowlisted signal is never acted on
//     automatically on a trusted member's word).
//   - review: otherwise, when some attestation is active or disputed. A
//     trusted allow entry therefore turns block into review, never into
//     none: the attester and the allow's author, both trusted, disagree,
//     and the allow's categories (news, research, counter-speech) are
//     about a context that a person must judge for each upload.
//   - none: no attestation is active or disputed (nothing found, or only
//     retracted ones).
func (m *Matching) verdict(atts []FoundAttestation) Verdict {
	active, disputed, allowed := false, false, false
	counted := map[protocol.AuthorKey]bool{}
	for _, a := range atts {
		contested := false
		for _, r := range a.Reasons {
			if !m.bears(r, a.Labels) {
				continue
			}
			switch r.Kind {
			case protocol.KindAllow:
				allowed = true
			case protocol.KindDispute:
				contested = true
			}
		}
		switch {
		case a.Status == store.StatusRetracted:
			continue
		case contested:
			// One member says it is terrorist content, another the node
			// trusts disagrees: a person should look.
			disputed = true
			continue
		}
		active = true
		if a.Equivocated {
			continue
		}
		// An actioned notice is attested by its issuer and by the
		// platform that removed the content.
		attesters := []protocol.AuthorKey{a.Author}
		if a.Notice != nil {
			attesters = append(attesters, a.Notice.Addressee)
		}
		for _, who := range attesters {
			if !counted[who] && m.trusted(who, a.Labels) {
				counted[who] = true
			}
		}
	}
	switch {
	case !active && !disputed:
		return VerdictNone
	case len(counted) >= m.policy.BlockMinAttesters && !allowed:
		return VerdictBlock
	}
	return VerdictReview
}

// bears reports whether the reason r weighs in the verdict of an
// attestation with labels: a retraction always (its status says so), an
// allow entry or a dispute when the policy trusts its author for one of
// the labels.
func (m *Matching) bears(r store.Reason, labels []string) bool {
	switch r.Kind {
	case protocol.KindAllow, protocol.KindDispute:
		return m.trusted(r.Author, labels)
	}
	return true
}

// ignored returns, for a's reasons, which of them the verdict ignores
// (bears), or nil when it ignores none.
func (m *Matching) ignored(a store.Attestation) []bool {
	var out []bool
	for i, r := range a.Reasons {
		if m.bears(r, a.Labels) {
			continue
		}
		if out == nil {
			out = make([]bool, len(a.Reasons))
		}
		out[i] = true
	}
	return out
}

// trusted reports whether the policy trusts the member with key who for
// at least one of labels.
func (m *Matching) trusted(who protocol.AuthorKey, labels []string) bool {
	name := m.roster().NameOf(who)
	for _, l := range labels {
		if m.policy.Trusts(name, l) {
			return true
		}
	}
	return false
}

func pdqSignal(h match.Hash) *pb.Signal {
	return &pb.Signal{Value: &pb.Signal_Pdq{Pdq: h[:]}}
}

// keySet holds a 64-bit fingerprint of every exact signal key that some
// addition carries, so that a lookup of a signal nobody attested (nearly
// every upload) is answered from memory. Through the store alone a lookup
// opens a read transaction, hit or miss: 4.1 microseconds for a miss, 243
// thousand a second on one core; with the set in front a miss takes 0.15
// microseconds (6.8 million a second), 0.39 with 10 million keys, whose
// fingerprints take 30 bytes each, 300 MB (BenchmarkExactLookup,
// BenchmarkKeySet10M). An index of the keys themselves would answer as fast
// but keep the keys and refs, which matching does not need: 156 bytes a
// key, 1.5 GB at 10 million. A fingerprint found sends the lookup on to the result cache
// and then the store, which has the last word, so a collision (one in
// 2^64 per stored key) costs only that store lookup.
type keySet struct {
	seed maphash.Seed
	mu   sync.RWMutex // guards m
	m    map[uint64]struct{}
}

func newKeySet() *keySet {
	return &keySet{seed: maphash.MakeSeed(), m: map[uint64]struct{}{}}
}

func (s *keySet) add(k []byte) {
	f := maphash.Bytes(s.seed, k)
	s.mu.Lock()
	s.m[f] = struct{}{}
	s.mu.Unlock()
}

// remove takes k out. Another key with the same fingerprint (one chance
// in 2^64 per pair) would go with it: only the watchlist removes keys,
// and there a lost fingerprint would miss an alert, a found one is
// confirmed in the file.
func (s *keySet) remove(k []byte) {
	f := maphash.Bytes(s.seed, k)
	s.mu.Lock()
	delete(s.m, f)
	s.mu.Unlock()
}

// has reports whether k may be stored: false means certainly not.
func (s *keySet) has(k []byte) bool {
	f := maphash.Bytes(s.seed, k)
	s.mu.RLock()
	_, ok := s.m[f]
	s.mu.RUnlock()
	return ok
}

func (s *keySet) len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m)
}

// Close stops the PDQ indexes' background merges (of the stored hashes
// and of the watchlist's), if any runs; the node is closing and the
// indexes go with it.
func (m *Matching) Close() {
	m.pdq.Close()
	m.videos.x.Close()
	m.watchlist.videos.x.Close()
	m.watchlist.pdq.Close()
}

// InvalidateAll empties the result cache: every stored result may have
// changed (an author was flagged for equivocation).
func (m *Matching) InvalidateAll() { m.cache.invalidateAll() }

// Startup is what building the indexes at start-up took: reading the
// exact signal keys, reading the PDQ hashes, and reading them and
// building the index (BenchmarkStartupPDQ); and how many PDQ hashes the
// index holds now.
type Startup struct {
	ExactRead, PDQRead, PDQBuild time.Duration
	PDQHashes                    int
	// VideoRead is reading the stored videos, VideoBuild that and
	// building their frame index; Videos and VideoFrames what it holds
	// now.
	VideoRead, VideoBuild time.Duration
	Videos, VideoFrames   int
}

// Startup reports what building the indexes took.
func (m *Matching) Startup() Startup {
	return Startup{ExactRead: m.exactRead, PDQRead: m.pdqRead, PDQBuild: m.pdqBuild, PDQHashes: m.pdq.Len(),
		VideoRead: m.videoRead, VideoBuild: m.videoBuild, Videos: m.videos.x.Videos(), VideoFrames: m.videos.x.Frames()}
}
