package store

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/prototest"
)

// bank is what a feed client keeps: signal -> whether it is in force,
// from the last record it got (a tombstone deletes).
type bank map[string]bool

// feedState is a signal's state as the feed tells it: in force and by
// whom.
func feedState(cs ChangedSignal) (active bool, by []protocol.AuthorKey) {
	for _, a := range cs.Attestations {
		if a.Status.Matches() {
			active = true
			by = append(by, a.Author)
		}
	}
	return active, by
}

// page reads one page and checks that no signal is listed twice in it.
func (ts *testStore) page(after *Checkpoint, limit int, keep func(*pb.Signal) bool) ChangesPage {
	ts.tb.Helper()
	p, err := ts.Changes(ChangesQuery{After: after, Limit: limit, Keep: keep})
	if err != nil {
		ts.tb.Fatalf("changes: %v", err)
	}
	seen := map[string]bool{}
	for _, cs := range p.Signals {
		if seen[string(cs.Key)] {
			ts.tb.Fatalf("signal %s listed twice in one page", protocol.FormatSignal(cs.Signal))
		}
		seen[string(cs.Key)] = true
		if !bytes.Equal(cs.Key, protocol.SignalKey(cs.Signal)) {
			ts.tb.Fatalf("key %x is not the key of %s", cs.Key, protocol.FormatSignal(cs.Signal))
		}
	}
	return p
}

// sync pages from after until more is false, into b, and returns the
// checkpoint reached and how many signals were listed in all.
func (ts *testStore) sync(b bank, after *Checkpoint, limit int) (Checkpoint, int) {
	ts.tb.Helper()
	listed := 0
	for {
		p := ts.page(after, limit, nil)
		for _, cs := range p.Signals {
			active, _ := feedState(cs)
			if active {
				b[protocol.FormatSignal(cs.Signal)] = true
			} else {
				delete(b, protocol.FormatSignal(cs.Signal))
			}
		}
		listed += len(p.Signals)
		next := p.Next
		after = &next
		if !p.More {
			return next, listed
		}
	}
}

// truth is the set of signals in force now, from Match, over sigs.
func (ts *testStore) truth(sigs []*pb.Signal) bank {
	ts.tb.Helper()
	out := bank{}
	for _, s := range sigs {
		atts, err := ts.Match(protocol.SignalKey(s))
		if err != nil {
			ts.tb.Fatal(err)
		}
		for _, a := range atts {
			if a.Status.Matches() {
				out[protocol.FormatSignal(s)] = true
			}
		}
	}
	return out
}

func byName(cs []ChangedSignal) map[string]ChangedSignal {
	out := map[string]ChangedSignal{}
	for _, c := range cs {
		out[protocol.FormatSignal(c.Signal)] = c
	}
	return out
}

// The feed lists additions, then each change: a retraction of one signal
// of an addition (a tombstone once no attestation is in force), a
// dispute (still in force, disputed), an allowlist entry (a tombstone).
func TestChangesStates(t *testing.T) {
	ts := mustOpen(t)
	a, b, c := newAuthor(t, 1), newAuthor(t, 2), newAuthor(t, 3)
	s1, s2, s3 := sha("one"), sha("two"), sha("three")
	addA := a.next(addition(s1, s2))
	ts.mustApply(Applied, addA, b.next(addition(s2)), c.next(addition(s3)))

	p := ts.page(nil, 10, nil)
	got := byName(p.Signals)
	if len(got) != 3 || p.More {
		t.Fatalf("first page: %d signals, more %v; want 3, false", len(got), p.More)
	}
	if active, by := feedState(got[protocol.FormatSignal(s2)]); !active || len(by) != 2 {
		t.Fatalf("s2: active %v by %d, want active by 2", active, len(by))
	}
	cp := p.Next
	if p := ts.page(&cp, 10, nil); len(p.Signals) != 0 || p.More || p.Next.N != cp.N {
		t.Fatalf("nothing changed, yet a page of %d (more %v, at %d; was %d)", len(p.Signals), p.More, p.Next.N, cp.N)
	}

	// a retracts s1 of its addition: s1 has no attestation in force.
	ts.mustApply(Applied, a.next(retraction(addA.ID, "mistake", s1)))
	p = ts.page(&cp, 10, nil)
	got = byName(p.Signals)
	if active, _ := feedState(got[protocol.FormatSignal(s1)]); active || got[protocol.FormatSignal(s1)].Signal == nil {
		t.Fatalf("after the retraction of s1: listed %v, active %v; want a tombstone", got[protocol.FormatSignal(s1)].Signal != nil, active)
	}
	if cs, ok := got[protocol.FormatSignal(s2)]; ok {
		if active, by := feedState(cs); !active || len(by) != 2 {
			t.Fatalf("s2 (not retracted): active %v by %d", active, len(by))
		}
	}
	cp = p.Next

	// b disputes c's addition: s3 stays in force, disputed.
	ts.mustApply(Applied, b.next(dispute(c.log[0].ID, "false positive")))
	p = ts.page(&cp, 10, nil)
	got = byName(p.Signals)
	cs3, ok := got[protocol.FormatSignal(s3)]
	if !ok || len(p.Signals) != 1 {
		t.Fatalf("after the dispute: %d signals, s3 listed %v", len(p.Signals), ok)
	}
	if active, _ := feedState(cs3); !active || cs3.Attestations[0].Status != StatusDisputed {
		t.Fatalf("s3 disputed: active %v, status %s", active, cs3.Attestations[0].Status)
	}
	cp = p.Next

	// c allowlists s2: a tombstone though a and b attest it.
	ts.mustApply(Applied, c.next(allow("news", "reporting", s2)))
	p = ts.page(&cp, 10, nil)
	got = byName(p.Signals)
	cs2, ok := got[protocol.FormatSignal(s2)]
	if !ok || len(p.Signals) != 1 {
		t.Fatalf("after the allowlist entry: %d signals, s2 listed %v", len(p.Signals), ok)
	}
	if active, _ := feedState(cs2); active || len(cs2.Attestations) != 2 || cs2.Attestations[0].Status != StatusAllowlisted {
		t.Fatalf("s2 allowlisted: active %v, %d attestations", active, len(cs2.Attestations))
	}
}

// The types filter lists only signals of the types asked for, and the
// checkpoint still moves past the others.
func TestChangesTypes(t *testing.T) {
	ts := mustOpen(t)
	a := newAuthor(t, 1)
	sum := md5.Sum([]byte("m"))
	m, err := protocol.ParseSignal("md5", fmt.Sprintf("%x", sum))
	if err != nil {
		t.Fatal(err)
	}
	ts.mustApply(Applied, a.next(addition(sha("x"), m)), a.next(addition(sha("y"))))
	onlyMD5 := func(s *pb.Signal) bool { return protocol.TypeOf(s) == protocol.SignalMD5 }
	p := ts.page(nil, 10, onlyMD5)
	if len(p.Signals) != 1 || protocol.TypeOf(p.Signals[0].Signal) != protocol.SignalMD5 || p.More || p.Next.N != 2 {
		t.Fatalf("md5 only: %d signals, more %v, at %d; want the md5 one, at 2", len(p.Signals), p.More, p.Next.N)
	}
}

// 10,000 signals in additions of up to 1,000 (an addition is cut across
// pages), with retractions among them, read in pages of 137: every signal
// is listed, none twice, and the bank is the truth.
func TestChangesPaging(t *testing.T) {
	ts := mustOpen(t)
	a, b := newAuthor(t, 1), newAuthor(t, 2)
	var all []*pb.Signal
	for i := range 10_000 {
		all = append(all, shaN(uint64(i)))
	}
	var batch []*protocol.Entry
	for i := 0; i < len(all); i += 1000 {
		add := a.next(addition(all[i : i+1000]...))
		batch = append(batch, add)
		if i%3000 == 0 {
			batch = append(batch, a.next(retraction(add.ID, "withdrawn", all[i+1])))
			batch = append(batch, b.next(addition(all[i+2])))
		}
	}
	ts.mustApply(Applied, batch...)

	listedAt := map[string]int{}
	var after *Checkpoint
	for pages := 0; ; pages++ {
		p := ts.page(after, 137, nil)
		if len(p.Signals) > 137 {
			t.Fatalf("page of %d, limit 137", len(p.Signals))
		}
		for _, cs := range p.Signals {
			listedAt[protocol.FormatSignal(cs.Signal)]++
		}
		next := p.Next
		after = &next
		if !p.More {
			break
		}
	}
	if len(listedAt) != len(all) {
		t.Fatalf("listed %d distinct signals, want %d", len(listedAt), len(all))
	}
	// A signal is listed again only when a later arrival names it: the
	// retracted ones and those b attests too (4 each).
	again := 0
	for s, n := range listedAt {
		if n > 2 {
			t.Errorf("%s listed %d times", s, n)
		}
		if n == 2 {
			again++
		}
	}
	if again > 8 {
		t.Errorf("%d signals listed twice, want at most 8 (those a later entry names)", again)
	}
	b1 := bank{}
	ts.sync(b1, nil, 137)
	if want := ts.truth(all); !maps.Equal(b1, want) {
		t.Fatalf("bank from the feed holds %d signals, the truth %d", len(b1), len(want))
	}
}

// A client pages while entries keep arriving (additions, retractions of
// signals it has already been given, allowlist entries): once it catches
// up, its bank is the truth. This is the checkpoint's promise.
func TestChangesInterleaved(t *testing.T) {
	ts := mustOpen(t)
	a, b := newAuthor(t, 1), newAuthor(t, 2)
	var all []*pb.Signal
	for i := range 3000 {
		all = append(all, shaN(uint64(i)))
	}
	var adds []*protocol.Entry // additions not retracted yet: one retraction per target
	for i := 0; i < 1000; i += 100 {
		e := a.next(addition(all[i : i+100]...))
		adds = append(adds, e)
		ts.mustApply(Applied, e)
	}
	bk := bank{}
	var after *Checkpoint
	next := 1000
	for step := 0; ; step++ {
		p := ts.page(after, 70, nil)
		for _, cs := range p.Signals {
			if active, _ := feedState(cs); active {
				bk[protocol.FormatSignal(cs.Signal)] = true
			} else {
				delete(bk, protocol.FormatSignal(cs.Signal))
			}
		}
		cp := p.Next
		after = &cp
		// Between pages, the federation moves on: new signals, a retraction
		// of a signal listed long ago, an allowlist entry by b.
		switch {
		case step < 20:
			add := a.next(addition(all[next : next+50]...))
			ts.mustApply(Applied, add)
			adds = append(adds, add)
			next += 50
			first := adds[0]
			adds = adds[1:]
			ts.mustApply(Applied, a.next(retraction(first.ID, "withdrawn", first.Body.GetAddition().Signals[step])))
			if step%4 == 0 {
				ts.mustApply(Applied, b.next(allow("research", "study", all[step*7])))
			}
		case !p.More:
			if want := ts.truth(all); !maps.Equal(bk, want) {
				missing, extra := 0, 0
				for s := range want {
					if !bk[s] {
						missing++
					}
				}
				for s := range bk {
					if !want[s] {
						extra++
					}
				}
				t.Fatalf("after %d pages the bank misses %d signals in force and holds %d that are not", step+1, missing, extra)
			}
			return
		}
	}
}

// A checkpoint this store did not issue is refused: another store's,
// one past this store's arrivals, one whose arrival is another entry.
func TestChangesForeignCheckpoint(t *testing.T) {
	x, y := mustOpen(t), mustOpen(t)
	a := newAuthor(t, 1)
	e1, e2 := a.next(addition(sha("1"))), a.next(addition(sha("2")))
	x.mustApply(Applied, e1, e2)
	y.mustApply(Applied, e1)
	cp := x.page(nil, 10, nil).Next
	if _, err := y.Changes(ChangesQuery{After: &cp, Limit: 10}); !errors.Is(err, ErrCheckpoint) {
		t.Fatalf("another store's checkpoint: %v, want ErrCheckpoint", err)
	}
	yid, err := y.FeedID()
	if err != nil {
		t.Fatal(err)
	}
	beyond := cp
	beyond.Feed = yid
	if _, err := y.Changes(ChangesQuery{After: &beyond, Limit: 10}); !errors.Is(err, ErrCheckpoint) {
		t.Fatalf("a checkpoint past the arrivals: %v, want ErrCheckpoint", err)
	}
	other := y.page(nil, 10, nil).Next
	other.At[0] ^= 1
	if _, err := y.Changes(ChangesQuery{After: &other, Limit: 10}); !errors.Is(err, ErrCheckpoint) {
		t.Fatalf("a checkpoint naming another arrival: %v, want ErrCheckpoint", err)
	}
	// Its own still works, parsed back from its string.
	own, err := ParseCheckpoint(x.page(nil, 1, nil).Next.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x.Changes(ChangesQuery{After: &own, Limit: 10}); err != nil {
		t.Fatalf("own checkpoint: %v", err)
	}
}

// A new membership voids entries no arrival after the checkpoint names
// (here c's addition after its key's end, whose signal then has no
// attestation at all): the next pages list every signal again, under
// the membership in force.
func TestChangesMembership(t *testing.T) {
	ts := mustOpen(t)
	a, b, c := newAuthor(t, 1), newAuthor(t, 2), newAuthor(t, 3)
	var ms []protocol.Member
	for i, x := range []struct {
		au   *author
		role protocol.Role
	}{{a, protocol.RoleReferral}, {b, protocol.RoleReferral}, {c, protocol.RoleReferral}} {
		ms = append(ms, protocol.Member{Name: string(rune('a' + i)), Role: x.role, AuthorKey: x.au.key, PeerID: "12D3KooW" + string(rune('a'+i))})
	}
	r, err := protocol.NewRoster(federation, ms)
	if err != nil {
		t.Fatal(err)
	}
	g, err := membership.NewGenesis(r, membership.Rule{})
	if err != nil {
		t.Fatal(err)
	}
	h0 := membership.Compute(g, nil)
	if _, err := ts.SetMembers(h0, nil); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		ts.mustApply(Applied, c.next(addition(shaN(uint64(i+1)))))
	}
	rev := a.next(prototest.Amend(0, &pb.Revocation{Member: "c", Key: c.key[:], AfterSeq: 2}))
	ts.mustApply(Applied, rev, b.next(prototest.Approve(0, rev.ID)))
	// The client reads before the node takes the new membership in.
	bk := bank{}
	cp, _ := ts.sync(bk, nil, 2)
	if !bk[protocol.FormatSignal(shaN(3))] {
		t.Fatal("c's seq 3 is not in force before the revocation counts")
	}
	es, err := ts.MembershipEntries()
	if err != nil {
		t.Fatal(err)
	}
	h1 := membership.Compute(g, es)
	if rebuilt, err := ts.SetMembers(h1, h1.Affected(h0)); err != nil || !rebuilt {
		t.Fatalf("SetMembers: rebuilt %v, %v", rebuilt, err)
	}
	ts.sync(bk, &cp, 2)
	want := ts.truth([]*pb.Signal{shaN(1), shaN(2), shaN(3)})
	if !maps.Equal(bk, want) {
		t.Fatalf("bank %v, truth %v", slices.Sorted(maps.Keys(bk)), slices.Sorted(maps.Keys(want)))
	}
}

func FuzzParseCheckpoint(f *testing.F) {
	f.Add("")
	f.Add(Checkpoint{N: 7, Key: []byte{1, 2, 3}}.String())
	f.Add(Checkpoint{Feed: [16]byte{9}, N: 1 << 40}.String())
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCheckpoint(s)
		if err != nil {
			return
		}
		if len(c.Key) > maxCheckpointKey {
			t.Fatalf("accepted a key of %d bytes", len(c.Key))
		}
		again, err := ParseCheckpoint(c.String())
		if err != nil {
			t.Fatalf("String of a parsed checkpoint does not parse: %v", err)
		}
		if again.String() != c.String() {
			t.Fatalf("round trip changed %q to %q", c.String(), again.String())
		}
	})
}

// BenchmarkChangesSync reads a whole feed of 100,000 signals (100
// additions of 1,000) in pages of 1,000: the first sync of a bank.
func BenchmarkChangesSync(b *testing.B) {
	ts := mustOpen(b)
	a := newAuthor(b, 1)
	var batch []*protocol.Entry
	for i := range 100 {
		sigs := make([]*pb.Signal, 1000)
		for j := range sigs {
			sigs[j] = shaN(uint64(i*1000 + j))
		}
		batch = append(batch, a.next(addition(sigs...)))
	}
	ts.mustApply(Applied, batch...)
	b.ResetTimer()
	for b.Loop() {
		listed := 0
		var after *Checkpoint
		for {
			p, err := ts.Changes(ChangesQuery{After: after, Limit: 1000})
			if err != nil {
				b.Fatal(err)
			}
			listed += len(p.Signals)
			next := p.Next
			after = &next
			if !p.More {
				break
			}
		}
		if listed != 100_000 {
			b.Fatalf("listed %d", listed)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100_000, "ns/signal")
}
