package matching

import (
	"crypto/ed25519"
	"encoding/binary"
	"log/slog"
	"math/bits"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/node/match"
	"github.com/staydown/staydown/node/match/vmatch"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/prototest"
	"github.com/staydown/staydown/store"
)

// videoWorld is a real store with members who write entries, and a
// Matching over it.
type videoWorld struct {
	t      testing.TB
	dir    string
	st     *store.Store
	roster *protocol.Roster
	logs   map[string]*prototest.Log
	m      *Matching
}

func newVideoWorld(t testing.TB, names ...string) *videoWorld {
	w := &videoWorld{t: t, dir: t.TempDir(), logs: map[string]*prototest.Log{}}
	var members []protocol.Member
	for i, n := range names {
		seed := make([]byte, ed25519.SeedSize)
		seed[0] = byte(i + 1)
		k := ed25519.NewKeyFromSeed(seed)
		w.logs[n] = prototest.NewLog(k, "test")
		members = append(members, protocol.Member{Name: n, Role: protocol.RolePlatform, AuthorKey: protocol.AuthorKeyOf(k)})
	}
	var err error
	if w.roster, err = protocol.NewRoster("test", members); err != nil {
		t.Fatal(err)
	}
	if w.st, err = store.Open(filepath.Join(w.dir, "store.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if w.m != nil {
			w.m.Close()
		}
		if err := w.st.Check(); err != nil {
			t.Error(err)
		}
		w.st.Close()
	})
	return w
}

// start builds the Matching from what is stored now.
func (w *videoWorld) start(policy config.Policy) {
	w.t.Helper()
	if w.m != nil {
		w.m.Close()
	}
	var err error
	w.m, err = New(w.st, func() *protocol.Roster { return w.roster }, policy, w.dir, prometheus.NewRegistry(), slog.New(slog.DiscardHandler), time.Now)
	if err != nil {
		w.t.Fatal(err)
	}
}

// write stores an entry by author and tells the Matching, if started, as
// the node does.
func (w *videoWorld) write(author string, body *pb.Entry) *protocol.Entry {
	w.t.Helper()
	e := w.logs[author].Next(w.t, body)
	batch := []*protocol.Entry{e}
	var hooks []func(*store.Writes, []store.Result) error
	if w.m != nil {
		hooks = append(hooks, w.m.WatchHook(batch))
	}
	res, err := w.st.Apply(batch, hooks...)
	if err != nil || res[0].Outcome != store.Applied {
		w.t.Fatalf("apply %s's %s: %v %v", author, e.Kind(), res, err)
	}
	if w.m != nil {
		w.m.Stored(e)
	}
	return e
}

func (w *videoWorld) match(q *pb.Signal) Found {
	w.t.Helper()
	f, err := w.m.Match([]Query{{Signal: q, Quality: NoQuality}})
	if err != nil {
		w.t.Fatal(err)
	}
	return f[0]
}

func randomHash(rng *rand.Rand) match.Hash {
	var h match.Hash
	for j := 0; j < len(h); j += 8 {
		binary.LittleEndian.PutUint64(h[j:], rng.Uint64())
	}
	return h
}

// flip returns h with n random bits flipped (some may coincide).
func flip(rng *rand.Rand, h match.Hash, n int) match.Hash {
	for range n {
		b := rng.IntN(256)
		h[b/8] ^= 1 << (b % 8)
	}
	return h
}

func videoSignal(t testing.TB, frames []vmatch.Frame) *pb.Signal {
	t.Helper()
	v, err := protocol.EncodeVPDQ(frames)
	if err != nil {
		t.Fatal(err)
	}
	return &pb.Signal{Value: &pb.Signal_Vpdq{Vpdq: v}}
}

// frameSet returns frames with the hashes hs, one a second, of quality q
// (or random 30..100 when q is 0).
func frameSet(rng *rand.Rand, hs []match.Hash, q int) []vmatch.Frame {
	out := make([]vmatch.Frame, len(hs))
	for i, h := range hs {
		qi := q
		if q == 0 {
			qi = 30 + rng.IntN(71)
		}
		out[i] = vmatch.Frame{Hash: h, Quality: uint8(qi), Timestamp: uint32(i * 1000)}
	}
	return out
}

// On a random store of videos (families of near copies: re-encodings,
// clips, unrelated ones) and images, every vpdq query finds exactly the
// stored videos that vmatch.Compare, run against every stored video,
// says match under the policy, with the same figures and segments; and
// exactly the stored images within the threshold of a frame of quality
// at least min_quality, with the timestamps of those frames. Half the
// store is there when the Matching starts, half arrives after (Stored).
func TestMatchVideosAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 3))
	w := newVideoWorld(t, "a", "b")
	policy := config.DefaultPolicy()
	policy.VPDQComparedMatch = 10
	params := vmatch.Params{MinQuality: policy.MinQuality, MaxDistance: policy.PDQThreshold, QueryPercent: policy.VPDQQueryMatch, ComparedPercent: policy.VPDQComparedMatch}

	type video struct {
		frames []vmatch.Frame
		sig    *pb.Signal
	}
	var families [][]match.Hash
	for range 12 {
		hs := make([]match.Hash, 20+rng.IntN(60))
		for i := range hs {
			hs[i] = randomHash(rng)
		}
		families = append(families, hs)
	}
	// variant derives a video from a family: a clip of it with each
	// frame's bits flipped by up to 40 (near or not), qualities random.
	variant := func() []vmatch.Frame {
		fam := families[rng.IntN(len(families))]
		from := rng.IntN(len(fam) / 2)
		to := from + 1 + rng.IntN(len(fam)-from)
		hs := slices.Clone(fam[from:to])
		maxFlip := []int{4, 20, 40}[rng.IntN(3)]
		for i := range hs {
			hs[i] = flip(rng, hs[i], rng.IntN(maxFlip+1))
		}
		return frameSet(rng, hs, 0)
	}
	var stored []video
	byEntry := map[protocol.ID]int{} // addition -> index in stored
	images := map[match.Hash]protocol.ID{}
	add := func(n int) {
		for range n {
			v := video{frames: variant()}
			v.sig = videoSignal(t, v.frames)
			e := w.write([]string{"a", "b"}[rng.IntN(2)], prototest.Addition(v.sig))
			byEntry[e.ID] = len(stored)
			stored = append(stored, v)
			if rng.IntN(3) == 0 {
				// A still of a family's frame, as an image.
				fam := families[rng.IntN(len(families))]
				h := flip(rng, fam[rng.IntN(len(fam))], rng.IntN(30))
				images[h] = w.write("a", prototest.Addition(pdqSignal(h))).ID
			}
		}
	}
	add(40)
	w.start(policy)
	add(40)

	matches, hits := 0, 0
	for qi := range 60 {
		q := variant()
		if qi%10 == 0 {
			q[0].Quality = 10
		}
		f := w.match(videoSignal(t, q))
		// Video matches, by stored video.
		got := map[int]VideoMatch{}
		for _, a := range f.Attestations {
			if a.Video == nil {
				t.Fatalf("query %d: attestation %s without Video (no query equals a stored video)", qi, a.EntryID)
			}
			got[byEntry[a.EntryID]] = *a.Video
		}
		want := map[int]VideoMatch{}
		for i, v := range stored {
			r := vmatch.Compare(q, v.frames, uint64(i), params)
			if !r.Match {
				continue
			}
			want[i] = *videoMatch(r)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("query %d: matched %d videos, brute force %d:\n got %+v\nwant %+v", qi, len(got), len(want), got, want)
		}
		matches += len(want)
		// Frame hits.
		gotHits := map[protocol.ID][]uint32{}
		for _, a := range f.FrameHits {
			gotHits[a.EntryID] = a.FrameTimesMs
		}
		wantHits := map[protocol.ID][]uint32{}
		for h, id := range images {
			for _, fr := range vmatch.Prepare(q, policy.MinQuality) {
				if vmatchDistance(h, fr.Hash) <= policy.PDQThreshold {
					wantHits[id] = append(wantHits[id], fr.Timestamp)
				}
			}
		}
		hits += len(wantHits)
		if !reflect.DeepEqual(gotHits, wantHits) {
			t.Errorf("query %d: frame hits\n got %v\nwant %v", qi, gotHits, wantHits)
		}
		wantVerdict := VerdictNone
		if len(want) > 0 || len(wantHits) > 0 {
			wantVerdict = VerdictReview // each attested by one member; block needs 2
		}
		if f.Verdict != wantVerdict && !(wantVerdict == VerdictReview && f.Verdict == VerdictBlock) {
			t.Errorf("query %d: verdict %s, want %s", qi, f.Verdict, wantVerdict)
		}
	}
	if matches < 20 || hits < 10 {
		t.Errorf("only %d video matches and %d images hit in all the queries: the test data matches too little to test much", matches, hits)
	}
	t.Logf("%d stored videos, %d images, %d video matches and %d images hit over 60 queries", len(stored), len(images), matches, hits)
}

func vmatchDistance(a, b match.Hash) int {
	n := 0
	for i := range a {
		n += bits.OnesCount8(a[i] ^ b[i])
	}
	return n
}

// A clip cut from a longer stored video, re-encoded (bits flipped),
// matches it: the query percentage is 100, the compared one the clip's
// share, and the segment is the clip's span in its own timestamps.
func TestMatchVideoClip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 4))
	w := newVideoWorld(t, "a", "b")
	hs := make([]match.Hash, 120)
	for i := range hs {
		hs[i] = randomHash(rng)
	}
	long := frameSet(rng, hs, 100)
	w.write("a", prototest.Addition(videoSignal(t, long)))
	w.write("b", prototest.Addition(videoSignal(t, frameSet(rng, []match.Hash{randomHash(rng), randomHash(rng)}, 100))))
	w.start(config.DefaultPolicy())

	clip := make([]match.Hash, 30)
	for i := range clip {
		clip[i] = flip(rng, hs[40+i], 8)
	}
	f := w.match(videoSignal(t, frameSet(rng, clip, 90)))
	if len(f.Attestations) != 1 || f.Attestations[0].Video == nil {
		t.Fatalf("the clip found %+v", f.Attestations)
	}
	v := f.Attestations[0].Video
	want := VideoMatch{QueryPercent: 100, ComparedPercent: 25, QueryFrames: 30, QueryMatched: 30, ComparedFrames: 120, ComparedMatched: 30,
		Segments: []Segment{{FromMs: 0, ToMs: 29000}}}
	if !reflect.DeepEqual(*v, want) {
		t.Errorf("clip: %+v, want %+v", *v, want)
	}
	if f.Verdict != VerdictReview {
		t.Errorf("verdict %s, want review (one attester)", f.Verdict)
	}
	// The same value exactly matches too, by the index.
	if f := w.match(videoSignal(t, long)); len(f.Attestations) != 1 || f.Attestations[0].Video.QueryPercent != 100 {
		t.Errorf("the stored video itself: %+v", f.Attestations)
	}
	// Below quality: skipped with the reason, but an exact copy is
	// still found by its key.
	low := frameSet(rng, hs[:10], 20)
	w.write("a", prototest.Addition(videoSignal(t, low)))
	f = w.match(videoSignal(t, low))
	if f.Skipped == "" || len(f.Attestations) != 1 || f.Attestations[0].Video != nil {
		t.Errorf("a low-quality stored video queried: skipped %q, %+v", f.Skipped, f.Attestations)
	}
	low[0].Hash = randomHash(rng)
	f = w.match(videoSignal(t, low))
	if f.Skipped == "" || len(f.Attestations) != 0 || f.Verdict != VerdictNone {
		t.Errorf("a low-quality video: skipped %q, %+v, %s", f.Skipped, f.Attestations, f.Verdict)
	}
	t.Logf("skipped: %s", f.Skipped)
}

// A matched video's attestations carry their status from the store, as
// for PDQ: retracted, disputed, allowlisted; and the verdict follows.
func TestMatchVideoStatus(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	w := newVideoWorld(t, "a", "b", "c")
	w.start(config.DefaultPolicy())
	newVideo := func() ([]match.Hash, *pb.Signal) {
		hs := make([]match.Hash, 20)
		for i := range hs {
			hs[i] = randomHash(rng)
		}
		return hs, videoSignal(t, frameSet(rng, hs, 100))
	}
	reencoded := func(hs []match.Hash) *pb.Signal {
		q := make([]match.Hash, len(hs))
		for i := range hs {
			q[i] = flip(rng, hs[i], 10)
		}
		return videoSignal(t, frameSet(rng, q, 80))
	}
	for _, tt := range []struct {
		name    string
		then    func(a1, a2 *protocol.Entry, sig *pb.Signal)
		status  map[string]store.Status
		verdict Verdict
	}{
		{"both active", func(a1, a2 *protocol.Entry, sig *pb.Signal) {},
			map[string]store.Status{"a": store.StatusActive, "b": store.StatusActive}, VerdictBlock},
		{"one retracted", func(a1, a2 *protocol.Entry, sig *pb.Signal) {
			w.write("a", &pb.Entry{Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{Target: a1.ID[:], Reason: "wrong video"}}})
		}, map[string]store.Status{"a": store.StatusRetracted, "b": store.StatusActive}, VerdictReview},
		{"both retracted", func(a1, a2 *protocol.Entry, sig *pb.Signal) {
			w.write("a", &pb.Entry{Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{Target: a1.ID[:], Reason: "wrong video"}}})
			w.write("b", &pb.Entry{Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{Target: a2.ID[:], Reason: "wrong video"}}})
		}, map[string]store.Status{"a": store.StatusRetracted, "b": store.StatusRetracted}, VerdictNone},
		{"disputed", func(a1, a2 *protocol.Entry, sig *pb.Signal) {
			w.write("c", &pb.Entry{Payload: &pb.Entry_Dispute{Dispute: &pb.Dispute{Target: a2.ID[:], Reason: "a news report"}}})
		}, map[string]store.Status{"a": store.StatusActive, "b": store.StatusDisputed}, VerdictReview},
		{"allowlisted", func(a1, a2 *protocol.Entry, sig *pb.Signal) {
			w.write("c", &pb.Entry{Payload: &pb.Entry_Allow{Allow: &pb.Allow{Signals: []*pb.Signal{sig}, Category: "news", Reason: "a broadcaster's report"}}})
		}, map[string]store.Status{"a": store.StatusAllowlisted, "b": store.StatusAllowlisted}, VerdictReview},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hs, sig := newVideo()
			a1 := w.write("a", prototest.Addition(sig))
			a2 := w.write("b", prototest.Addition(sig))
			tt.then(a1, a2, sig)
			f := w.match(reencoded(hs))
			got := map[string]store.Status{}
			for _, a := range f.Attestations {
				if a.Video == nil || a.Video.QueryPercent != 100 {
					t.Errorf("attestation without the comparison: %+v", a.Video)
				}
				got[w.roster.NameOf(a.Author)] = a.Status
			}
			if !reflect.DeepEqual(got, tt.status) {
				t.Errorf("statuses %v, want %v", got, tt.status)
			}
			if f.Verdict != tt.verdict {
				t.Errorf("verdict %s, want %s", f.Verdict, tt.verdict)
			}
		})
	}
}

// The watchlist takes videos: watching one raises an alert for each
// stored video that matches it under the thresholds (and not for others);
// a video addition stored later that matches a watched video raises one
// too, also after a restart (the watched video's frames are kept in the
// store); unwatched, it raises none.
func TestWatchVideo(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	w := newVideoWorld(t, "a", "b")
	video := func() []match.Hash {
		hs := make([]match.Hash, 30)
		for i := range hs {
			hs[i] = randomHash(rng)
		}
		return hs
	}
	near := func(hs []match.Hash, from, to int) *pb.Signal {
		q := make([]match.Hash, to-from)
		for i := range q {
			q[i] = flip(rng, hs[from+i], 6)
		}
		return videoSignal(t, frameSet(rng, q, 90))
	}
	a, other := video(), video()
	storedA := w.write("a", prototest.Addition(videoSignal(t, frameSet(rng, a, 100))))
	w.write("a", prototest.Addition(videoSignal(t, frameSet(rng, other, 100))))
	w.start(config.DefaultPolicy())

	hosted := near(a, 5, 25) // a clip of a, re-encoded, hosted by the platform
	out, err := w.m.Watch([]WatchItem{{Signal: hosted, Ref: "upload-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Alerts) != 1 || out.Alerts[0].Attestation.EntryID != storedA.ID || !proto.Equal(out.Alerts[0].Watched, hosted) ||
		protocol.TypeOf(out.Alerts[0].Signal) != protocol.SignalVPDQ {
		t.Fatalf("watching a clip of a stored video raised %+v", out.Alerts)
	}
	page, err := w.m.Watchlist(nil, 10)
	if err != nil || len(page.Signals) != 1 || !proto.Equal(page.Signals[0].Signal, hosted) {
		t.Fatalf("watchlist %+v %v", page, err)
	}

	b := video()
	hostedB := near(b, 0, 30)
	if _, err := w.m.Watch([]WatchItem{{Signal: hostedB}}); err != nil {
		t.Fatal(err)
	}
	alerts := func() int {
		as, err := w.m.Alerts(0)
		if err != nil {
			t.Fatal(err)
		}
		return len(as)
	}
	if n := alerts(); n != 1 {
		t.Fatalf("%d alerts before b is attested", n)
	}
	storedB := w.write("b", prototest.Addition(near(b, 2, 28)))
	w.write("b", prototest.Addition(videoSignal(t, frameSet(rng, video(), 100)))) // unrelated
	as, err := w.m.Alerts(1)
	if err != nil || len(as) != 1 || as[0].Attestation.EntryID != storedB.ID || !proto.Equal(as[0].Watched, hostedB) {
		t.Fatalf("after b's addition: alerts %+v %v", as, err)
	}

	w.start(config.DefaultPolicy()) // a restart: the watched videos come from the store
	w.write("a", prototest.Addition(near(b, 5, 30)))
	if n := alerts(); n != 3 {
		t.Fatalf("after a restart, a second copy of b raised %d alerts in all, want 3", n)
	}
	if _, err := w.m.Unwatch([]WatchItem{{Signal: hostedB}}); err != nil {
		t.Fatal(err)
	}
	w.write("b", prototest.Addition(near(b, 1, 29)))
	if n := alerts(); n != 3 {
		t.Errorf("an unwatched video raised an alert: %d alerts", n)
	}
}
