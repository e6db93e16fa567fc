package report

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

const (
	t0     = 1767225600000 // 2026-01-01T00:00:00Z
	minute = 60_000        // a minute in ms
	hour   = 3_600_000
)

// seedKey returns the ed25519 key whose 32-byte seed is first, first+1, ...
// (as in protocol's tests).
func seedKey(first byte) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = first + byte(i)
	}
	return ed25519.NewKeyFromSeed(seed)
}

// signer writes one log.
type signer struct {
	key  ed25519.PrivateKey
	fed  string
	seq  uint64
	prev protocol.ID
}

func newSigner(first byte) *signer { return &signer{key: seedKey(first), fed: "f"} }

func (s *signer) author() protocol.AuthorKey { return protocol.AuthorKeyOf(s.key) }

func (s *signer) sign(tb testing.TB, ts int64, b *pb.Entry) *protocol.Entry {
	tb.Helper()
	s.seq++
	b.Version, b.Federation, b.Seq, b.TimestampMs = protocol.Version, s.fed, s.seq, ts
	if s.seq > 1 {
		b.Prev = s.prev[:]
	}
	e, err := protocol.Sign(s.key, b)
	if err != nil {
		tb.Fatal(err)
	}
	s.prev = e.ID
	return e
}

// signal n of tag: a distinct sha256 signal.
func signal(tag string, n int) *pb.Signal {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", tag, n))
	s, err := protocol.ParseSignal("sha256", hex.EncodeToString(sum[:]))
	if err != nil {
		panic(err)
	}
	return s
}

func signals(tag string, n int) []*pb.Signal {
	var ss []*pb.Signal
	for i := range n {
		ss = append(ss, signal(tag, i))
	}
	return ss
}

func addition(tag string, n int) *pb.Entry {
	return &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{
		Signals: signals(tag, n), Labels: []*pb.Label{{Slug: "graphic-violence"}}}}}
}

func allow(tag string) *pb.Entry {
	return &pb.Entry{Payload: &pb.Entry_Allow{Allow: &pb.Allow{
		Signals: signals(tag, 1), Category: "news", Reason: "broadcast report"}}}
}

func retraction(target protocol.ID) *pb.Entry {
	return &pb.Entry{Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{Target: target[:]}}}
}

func dispute(target protocol.ID) *pb.Entry {
	return &pb.Entry{Payload: &pb.Entry_Dispute{Dispute: &pb.Dispute{Target: target[:], Reason: "news footage"}}}
}

// notice to a platform, issued at ts with the default one-hour deadline.
func notice(to protocol.AuthorKey, ts int64) *pb.Entry {
	return &pb.Entry{Payload: &pb.Entry_Notice{Notice: &pb.Notice{
		Addressee: to[:], Signals: signals(fmt.Sprint("notice", ts), 1),
		Category: &pb.Label{Slug: "attacker-manifesto"}, LegalBasis: "TCO Art. 3", Binding: true,
		DeadlineMs: ts + hour}}}
}

// update of a notice: a withdrawal, a new deadline, or (neither) details.
func update(n protocol.ID, withdraw bool, deadline int64) *pb.Entry {
	u := &pb.NoticeUpdate{Notice: n[:], Withdraw: withdraw, DeadlineMs: deadline}
	if !withdraw && deadline == 0 {
		u.Details = &pb.Sealed{Recipients: []*pb.Recipient{{Member: make([]byte, 32), SealedKey: []byte{1}}}, Nonce: []byte{1}, Ciphertext: []byte{1}}
	}
	return &pb.Entry{Payload: &pb.Entry_NoticeUpdate{NoticeUpdate: u}}
}

func reply(n protocol.ID, status pb.ReplyStatus, actionMs int64) *pb.Entry {
	r := &pb.NoticeReply{Notice: n[:], Status: status, ActionTimeMs: actionMs}
	if status == pb.ReplyStatus_REPLY_STATUS_NOT_EXECUTED {
		r.Reason = pb.NotExecutedReason_NOT_EXECUTED_REASON_NOT_HOSTED
	}
	return &pb.Entry{Payload: &pb.Entry_NoticeReply{NoticeReply: r}}
}

const (
	received = pb.ReplyStatus_REPLY_STATUS_RECEIVED
	removed  = pb.ReplyStatus_REPLY_STATUS_REMOVED
	disabled = pb.ReplyStatus_REPLY_STATUS_DISABLED
	clarify  = pb.ReplyStatus_REPLY_STATUS_CLARIFICATION_REQUESTED
	notExec  = pb.ReplyStatus_REPLY_STATUS_NOT_EXECUTED
)

// fixture is a small federation: referral units ru-a and ru-b, platforms
// pf-c and pf-d, auditor aud-e. Times are t0 + minutes ("7m" below); the
// report is taken at t0 + 10h unless said otherwise. Each notice has the
// default one-hour deadline.
type fixture struct {
	roster                             *protocol.Roster
	entries                            []*protocol.Entry // in signing order
	ruA, ruB, pfC, pfD, audE, stranger *signer
}

func newFixture(t testing.TB) *fixture {
	f := &fixture{
		ruA: newSigner(0x01), ruB: newSigner(0x21), pfC: newSigner(0x41), pfD: newSigner(0x61),
		audE: newSigner(0x81), stranger: newSigner(0xa1),
	}
	var err error
	// Not in name order: the report sorts.
	f.roster, err = protocol.NewRoster("f", []protocol.Member{
		{Name: "pf-d", Role: protocol.RolePlatform, AuthorKey: f.pfD.author()},
		{Name: "ru-b", Role: protocol.RoleReferral, AuthorKey: f.ruB.author()},
		{Name: "aud-e", Role: protocol.RoleAuditor, AuthorKey: f.audE.author()},
		{Name: "ru-a", Role: protocol.RoleReferral, AuthorKey: f.ruA.author()},
		{Name: "pf-c", Role: protocol.RolePlatform, AuthorKey: f.pfC.author()},
	})
	if err != nil {
		t.Fatal(err)
	}
	at := func(s *signer, m int64, b *pb.Entry) *protocol.Entry {
		e := s.sign(t, t0+m*minute, b)
		f.entries = append(f.entries, e)
		return e
	}
	c, d := f.pfC.author(), f.pfD.author()

	a1 := at(f.ruA, 1, addition("a1", 3)) // ru-a 1: 3 signals
	a2 := at(f.ruA, 2, addition("a2", 2)) // ru-a 2: 2 signals
	c1 := at(f.pfC, 2, addition("c1", 2)) // pf-c 1: 2 signals
	at(f.ruA, 3, allow("w1"))             // ru-a 3
	at(f.ruA, 4, retraction(a1.ID))       // ru-a 4: retracts a1
	at(f.ruA, 5, retraction(a1.ID))       // ru-a 5: void, a1 already retracted
	at(f.ruA, 6, retraction(c1.ID))       // ru-a 6: void, c1 is pf-c's
	n1 := at(f.ruA, 7, notice(c, t0+7*minute))
	n2 := at(f.ruA, 8, notice(c, t0+8*minute))
	n3 := at(f.ruA, 9, notice(d, t0+9*minute))
	n4 := at(f.ruA, 10, notice(d, t0+10*minute))
	at(f.ruA, 15, update(n4.ID, true, 0)) // withdraws n4

	b1 := at(f.ruB, 1, addition("b1", 1))
	at(f.ruB, 2, dispute(c1.ID)) // of an addition
	at(f.ruB, 3, dispute(n1.ID)) // of a notice: no effect
	n5 := at(f.ruB, 20, notice(c, t0+20*minute))
	n6 := at(f.ruB, 30, notice(d, t0+30*minute))
	n7 := at(f.ruB, 35, notice(d, t0+35*minute))
	at(f.ruB, 40, update(n5.ID, false, 0)) // clarifies n5 (details)
	at(f.ruB, 50, retraction(b1.ID))       // retracts b1, after "since" below

	at(f.ruA, 41, update(n5.ID, false, t0+3*hour)) // void: n5 is ru-b's

	at(f.pfC, 3, dispute(a2.ID))
	wc := at(f.pfC, 4, allow("wc"))
	at(f.pfC, 5, retraction(wc.ID)) // retracts its allow
	at(f.pfC, 25, reply(n5.ID, clarify, 0))
	at(f.pfC, 27, reply(n1.ID, removed, t0+20*minute)) // claims it acted at 20m
	at(f.pfC, 36, reply(n7.ID, removed, 0))            // n7 is pf-d's: ignored
	at(f.pfC, 90, reply(n5.ID, removed, 0))
	at(f.pfC, 128, reply(n2.ID, disabled, 0))

	at(f.pfD, 10, reply(n3.ID, received, 0))
	at(f.pfD, 12, addition("d1", 4))
	at(f.pfD, 13, dispute(c1.ID))                               // c1's second dispute
	at(f.pfD, 14, dispute(protocol.IDOf([]byte("never seen")))) // no effect
	at(f.pfD, 45, reply(n7.ID, clarify, 0))                     // n7 waits
	at(f.pfD, 50, reply(n6.ID, notExec, 0))                     // n6 not executed

	// Void: an auditor may not write an addition (SPEC 12.5: stored, no
	// effect). Ignored: a stranger is not in the roster, and ru-a's key
	// signing for another federation.
	at(f.audE, 20, addition("e", 1))
	at(f.stranger, 20, addition("x", 1))
	other := &signer{key: f.ruA.key, fed: "g"}
	at(other, 20, addition("g", 1))
	return f
}

func sec(s float64) *float64 { return &s }

// wantAll is the report of the fixture at t0+10h for everything, worked
// out by hand.
//
// Notice threads (issued, deadline = issued + 60m):
//
//	n1 ru-a→pf-c  7m, dl 67m: removed, reply at 27m claiming 20m: first
//	   action 20m, time to action 13m = 780 s, within. (ru-b's dispute of
//	   n1 has no effect.)
//	n2 ru-a→pf-c  8m, dl 68m: disabled at 128m (no claim): 120m = 7200 s,
//	   late.
//	n3 ru-a→pf-d  9m, dl 69m: received at 10m, nothing since: overdue at
//	   10h.
//	n4 ru-a→pf-d 10m, dl 70m: withdrawn at 15m.
//	n5 ru-b→pf-c 20m, dl 80m: clarification requested at 25m (clock
//	   stops), ru-b clarifies at 40m (deadline 40m + 60m = 100m; ru-a's
//	   update of n5 is void and not the issuer's anyway), removed at 90m:
//	   70m = 4200 s, within.
//	n6 ru-b→pf-d 30m, dl 90m: not executed at 50m: 20m = 1200 s, within.
//	n7 ru-b→pf-d 35m, dl 95m: pf-c's "removed" at 36m is not the
//	   addressee's (ignored); pf-d asks for clarification at 45m, none
//	   comes: open, waiting for a clarification.
func wantAll(f *fixture) Report {
	return sha256Only(Report{
		Federation: "f", NowMs: t0 + 10*hour, SinceMs: 0,
		Members: []Member{
			{Name: "aud-e", Role: protocol.RoleAuditor, Key: f.audE.author().String(), Figures: Figures{
				VoidEntries: 1, // its addition: an auditor may not write one
			}},
			{Name: "pf-c", Role: protocol.RolePlatform, Key: f.pfC.author().String(), Figures: Figures{
				Additions:       1, // c1
				Signals:         2, // c1's 2
				Retracted:       0, // ru-a's retraction of c1 is void
				AllowsRetracted: 1, // wc
				Disputed:        1, // c1, by ru-b and pf-d: once
				SignalsDisputed: 2, // c1's 2
				DisputesFiled:   1, // of a2
				Allows:          1, // wc
				NoticesReceived: 3, // n1, n2, n5
				// within: n1, n5; late: n2; all three removed or disabled
				AnsweredWithinDeadline: 2, AnsweredLate: 1, Actioned: 3,
				// times 780, 4200, 7200 s: median rank ceil(1.5) = 2,
				// p90 rank ceil(2.7) = 3
				MedianTimeToActionS: sec(4200), P90TimeToActionS: sec(7200),
			}},
			{Name: "pf-d", Role: protocol.RolePlatform, Key: f.pfD.author().String(), Figures: Figures{
				Additions:       1, // d1
				Signals:         4,
				DisputesFiled:   2, // of c1 and of an unseen id
				NoticesReceived: 4, // n3, n4, n6, n7
				// n6 within, not executed; n3 overdue; n7 open and
				// waiting; n4 withdrawn
				AnsweredWithinDeadline: 1, NotExecuted: 1, Overdue: 1, Open: 1,
				ClarificationRequested: 1, Withdrawn: 1,
				// one time, 1200 s: both ranks are 1
				MedianTimeToActionS: sec(1200), P90TimeToActionS: sec(1200),
			}},
			{Name: "ru-a", Role: protocol.RoleReferral, Key: f.ruA.author().String(), Figures: Figures{
				Additions:        2, // a1, a2
				Signals:          5, // 3 + 2
				Retracted:        1, // a1 (its second retraction is void)
				Disputed:         1, // a2, by pf-c
				SignalsRetracted: 3, // a1's 3
				SignalsDisputed:  2, // a2's 2
				Allows:           1, // w1
				VoidEntries:      3, // second retraction of a1, retraction of c1, update of n5
				NoticesIssued:    4, // n1..n4
			}},
			{Name: "ru-b", Role: protocol.RoleReferral, Key: f.ruB.author().String(), Figures: Figures{
				Additions:        1, // b1
				Signals:          1,
				Retracted:        1, // b1
				SignalsRetracted: 1,
				DisputesFiled:    2, // of c1 and of n1
				NoticesIssued:    3, // n5, n6, n7
			}},
		},
		Totals: Totals{
			Figures: Figures{
				Additions: 5, Signals: 12, Retracted: 2, AllowsRetracted: 1, Disputed: 2,
				SignalsRetracted: 4, SignalsDisputed: 4,
				DisputesFiled: 5, Allows: 2, VoidEntries: 4, NoticesIssued: 7, NoticesReceived: 7,
				AnsweredWithinDeadline: 3, AnsweredLate: 1, Actioned: 3, NotExecuted: 1,
				Overdue: 1, Open: 1, Withdrawn: 1, ClarificationRequested: 1,
				// pooled 780, 1200, 4200, 7200 s: median rank ceil(2) = 2,
				// p90 rank ceil(3.6) = 4
				MedianTimeToActionS: sec(1200), P90TimeToActionS: sec(7200),
			},
			// ru-a 12, ru-b 8, pf-c 9, pf-d 6, aud-e 1 (void); ignored:
			// stranger, other federation
			Entries: 36, IgnoredEntries: 2,
		},
	})
}

// wantSince is the report at t0+10h from t0+20m: entries and notices
// signed at 20m or later.
func wantSince(f *fixture) Report {
	return sha256Only(Report{
		Federation: "f", NowMs: t0 + 10*hour, SinceMs: t0 + 20*minute,
		Members: []Member{
			{Name: "aud-e", Role: protocol.RoleAuditor, Key: f.audE.author().String(), Figures: Figures{
				VoidEntries: 1, // its addition at 20m
			}},
			{Name: "pf-c", Role: protocol.RolePlatform, Key: f.pfC.author().String(), Figures: Figures{
				// c1 (2m), the dispute of a2 (3m), wc and its retraction
				// (4m, 5m) are before; so are the disputes of c1 (2m, 13m).
				NoticesReceived:        1, // n5 (n1, n2 were issued before)
				AnsweredWithinDeadline: 1, Actioned: 1,
				MedianTimeToActionS: sec(4200), P90TimeToActionS: sec(4200),
			}},
			{Name: "pf-d", Role: protocol.RolePlatform, Key: f.pfD.author().String(), Figures: Figures{
				NoticesReceived:        2, // n6, n7
				AnsweredWithinDeadline: 1, NotExecuted: 1, Open: 1, ClarificationRequested: 1,
				MedianTimeToActionS: sec(1200), P90TimeToActionS: sec(1200),
			}},
			{Name: "ru-a", Role: protocol.RoleReferral, Key: f.ruA.author().String(), Figures: Figures{
				VoidEntries: 1, // the update of n5 (41m); the void retractions are at 5m, 6m
			}},
			{Name: "ru-b", Role: protocol.RoleReferral, Key: f.ruB.author().String(), Figures: Figures{
				Retracted:        1, // b1's retraction at 50m counts, though b1 is from 1m
				SignalsRetracted: 1,
				NoticesIssued:    3,
			}},
		},
		Totals: Totals{
			Figures: Figures{
				Retracted: 1, SignalsRetracted: 1, VoidEntries: 2, NoticesIssued: 3, NoticesReceived: 3,
				AnsweredWithinDeadline: 2, Actioned: 1, NotExecuted: 1, Open: 1, ClarificationRequested: 1,
				// 1200, 4200 s: median rank ceil(1) = 1, p90 rank ceil(1.8) = 2
				MedianTimeToActionS: sec(1200), P90TimeToActionS: sec(4200),
			},
			Entries: 36, IgnoredEntries: 2,
		},
	})
}

func build(f *fixture, entries []*protocol.Entry) *Builder {
	b := New(f.roster, nil)
	for _, e := range entries {
		b.Add(e)
	}
	return b
}

// sha256Only fills in the signals_by_type of a report whose signals are
// all sha256 (the fixture's: signal makes sha256 signals).
func sha256Only(r Report) Report {
	fill := func(f *Figures) {
		f.SignalsByType = newByType()
		f.SignalsByType[protocol.SignalSHA256] = f.Signals
	}
	for i := range r.Members {
		fill(&r.Members[i].Figures)
	}
	fill(&r.Totals.Figures)
	return r
}

func checkReport(t *testing.T, got, want Report) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	g, _ := json.MarshalIndent(got, "", "  ")
	w, _ := json.MarshalIndent(want, "", "  ")
	t.Fatalf("report differs\ngot:  %s\nwant: %s", g, w)
}

func TestReportFixture(t *testing.T) {
	f := newFixture(t)
	b := build(f, f.entries)
	checkReport(t, b.Report(t0+10*hour, 0), wantAll(f))
	checkReport(t, b.Report(t0+10*hour, t0+20*minute), wantSince(f))
	// Report does not change the builder.
	checkReport(t, b.Report(t0+10*hour, 0), wantAll(f))
}

func TestReportOrderIndependent(t *testing.T) {
	f := newFixture(t)
	want, wantS := wantAll(f), wantSince(f)
	rev := make([]*protocol.Entry, len(f.entries))
	for i, e := range f.entries {
		rev[len(rev)-1-i] = e
	}
	checkReport(t, build(f, rev).Report(t0+10*hour, 0), want)
	for seed := range uint64(20) {
		es := append([]*protocol.Entry(nil), f.entries...)
		rand.New(rand.NewPCG(seed, 1)).Shuffle(len(es), func(i, j int) { es[i], es[j] = es[j], es[i] })
		b := build(f, es)
		checkReport(t, b.Report(t0+10*hour, 0), want)
		checkReport(t, b.Report(t0+10*hour, t0+20*minute), wantS)
	}
}

// Before n3's deadline (69m), n3 is acknowledged, not overdue. nowMs only
// decides overdue: NoticeLifecycle takes every event it is given.
func TestReportNow(t *testing.T) {
	f := newFixture(t)
	r := build(f, f.entries).Report(t0+60*minute, 0)
	d := r.Members[2]
	if d.Name != "pf-d" || d.Overdue != 0 || d.Open != 2 || d.ClarificationRequested != 1 {
		t.Fatalf("pf-d at 60m: %+v", d)
	}
}

func TestReportDuplicateAndEquivocation(t *testing.T) {
	f := newFixture(t)
	b := build(f, f.entries)
	for _, e := range f.entries { // again: duplicates change nothing
		b.Add(e)
	}
	// A second pf-d seq 2 (its seq 2 is d1, four signals): kept out.
	fork := &signer{key: f.pfD.key, fed: "f", seq: 1, prev: f.entries[len(f.entries)-9].ID}
	if f.entries[len(f.entries)-9].Author != f.pfD.author() || f.entries[len(f.entries)-9].Seq() != 1 {
		t.Fatal("fixture changed: want pf-d's first entry")
	}
	b.Add(fork.sign(t, t0+12*minute, addition("fork", 9)))
	b.Add(nil)
	want := wantAll(f)
	want.Totals.Equivocations = 1
	want.Totals.IgnoredEntries++ // nil
	checkReport(t, b.Report(t0+10*hour, 0), want)
}

func TestReportInvariants(t *testing.T) {
	f := newFixture(t)
	r := build(f, f.entries).Report(t0+10*hour, 0)
	for _, m := range append(r.Members, Member{Name: "totals", Figures: r.Totals.Figures}) {
		if got := m.AnsweredWithinDeadline + m.AnsweredLate + m.Withdrawn + m.Overdue + m.Open; got != m.NoticesReceived {
			t.Errorf("%s: outcomes sum to %d, received %d", m.Name, got, m.NoticesReceived)
		}
		if m.Actioned+m.NotExecuted != m.AnsweredWithinDeadline+m.AnsweredLate {
			t.Errorf("%s: actioned + not executed != answered", m.Name)
		}
	}
}

func TestReportJSON(t *testing.T) {
	f := newFixture(t)
	j, err := json.Marshal(build(f, f.entries).Report(t0+10*hour, 0))
	if err != nil {
		t.Fatal(err)
	}
	s := string(j)
	for _, want := range []string{
		`"now_ms":1767261600000`, `"since_ms":0`, `"members":[{"name":"aud-e","role":"auditor","key":"`,
		`"median_time_to_action_s":null`, `"median_time_to_action_s":4200,"p90_time_to_action_s":7200`,
		`"answered_within_deadline":2`, `"clarification_requested":1`, `"ignored_entries":2`, `"equivocations":0`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("JSON lacks %s:\n%s", want, s)
		}
	}
}

func TestNearestRank(t *testing.T) {
	for _, c := range []struct {
		ms          []int64
		median, p90 float64
	}{
		{[]int64{5000}, 5, 5},
		{[]int64{2000, 1000}, 1, 2},                                // median rank 1, p90 rank ceil(1.8) = 2
		{[]int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.005, 0.009},     // ranks 5 and 9
		{[]int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 0.006, 0.010}, // ranks ceil(5.5) = 6, ceil(9.9) = 10
	} {
		m, p := percentiles(c.ms)
		if *m != c.median || *p != c.p90 {
			t.Errorf("%v: median %v p90 %v, want %v %v", c.ms, *m, *p, c.median, c.p90)
		}
	}
	if m, p := percentiles(nil); m != nil || p != nil {
		t.Error("empty: want nil")
	}
}

// benchFixture: 4 referral units, 20 platforms; 10,000 notices with 3
// replies each (received, the action, a redundant later one), 2,000
// additions of 5 signals, 200 disputes, 100 retractions.
var bench struct {
	once    sync.Once
	roster  *protocol.Roster
	entries []*protocol.Entry
}

func benchFixture(b *testing.B) (*protocol.Roster, []*protocol.Entry) {
	bench.once.Do(func() {
		var refs, pfs []*signer
		var members []protocol.Member
		for i := range 4 {
			s := newSigner(byte(i + 1))
			refs = append(refs, s)
			members = append(members, protocol.Member{Name: fmt.Sprint("ru-", i), Role: protocol.RoleReferral, AuthorKey: s.author()})
		}
		for i := range 20 {
			s := newSigner(byte(100 + i))
			pfs = append(pfs, s)
			members = append(members, protocol.Member{Name: fmt.Sprint("pf-", i), Role: protocol.RolePlatform, AuthorKey: s.author()})
		}
		r, err := protocol.NewRoster("f", members)
		if err != nil {
			b.Fatal(err)
		}
		var es []*protocol.Entry
		var adds []*protocol.Entry
		for i := range 2000 {
			s := refs[i%4]
			if i%2 == 1 {
				s = pfs[i%20]
			}
			e := s.sign(b, t0+int64(i)*1000, addition(fmt.Sprint("b", i), 5))
			es, adds = append(es, e), append(adds, e)
		}
		for i := range 200 {
			es = append(es, pfs[i%20].sign(b, t0+hour+int64(i), dispute(adds[i*10].ID)))
		}
		for i := range 100 {
			a := adds[i*20] // by refs[0]
			es = append(es, refs[0].sign(b, t0+hour+int64(i), retraction(a.ID)))
		}
		for i := range 10_000 {
			issued := t0 + 2*hour + int64(i)*60_000
			to := pfs[i%20]
			n := refs[i%4].sign(b, issued, notice(to.author(), issued))
			es = append(es, n,
				to.sign(b, issued+minute, reply(n.ID, received, 0)),
				to.sign(b, issued+int64(i%120)*minute+2*minute, reply(n.ID, removed, 0)),
				to.sign(b, issued+200*minute, reply(n.ID, disabled, 0)))
		}
		bench.roster, bench.entries = r, es
	})
	return bench.roster, bench.entries
}

func BenchmarkReport(b *testing.B) {
	r, es := benchFixture(b)
	now := int64(t0 + 1000*hour)
	b.Run("report", func(b *testing.B) {
		bl := New(r, nil)
		for _, e := range es {
			bl.Add(e)
		}
		b.ResetTimer()
		for b.Loop() {
			rep := bl.Report(now, 0)
			if rep.Totals.NoticesReceived != 10_000 {
				b.Fatal(rep.Totals)
			}
		}
	})
	b.Run("add+report", func(b *testing.B) {
		for b.Loop() {
			bl := New(r, nil)
			for _, e := range es {
				bl.Add(e)
			}
			bl.Report(now, 0)
		}
	})
}

// memBench is a large export's worth of entries, as SignedEntry bytes:
// memEntries additions of one sha256 signal each across 4 referral units
// (a log after the other, in seq order, as the auditor and the node feed
// them), then 2,000 notices to 4 platforms with 2 replies each, 500
// disputes and 100 retractions. The signatures are zero: the builder does
// not verify them, and signing a million entries would dominate.
const memEntries = 1_000_000

var memBench struct {
	once   sync.Once
	roster *protocol.Roster
	raws   [][]byte
}

// fakeSign encodes b for s, with a zero signature, and decodes it.
func (s *signer) fakeSign(tb testing.TB, ts int64, b *pb.Entry) *protocol.Entry {
	tb.Helper()
	s.seq++
	a := s.author()
	b.Version, b.Federation, b.Seq, b.TimestampMs, b.Author = protocol.Version, s.fed, s.seq, ts, a[:]
	if s.seq > 1 {
		b.Prev = s.prev[:]
	}
	signed, err := proto.MarshalOptions{Deterministic: true}.Marshal(b)
	if err != nil {
		tb.Fatal(err)
	}
	raw := protowire.AppendTag(nil, 1, protowire.BytesType)
	raw = protowire.AppendBytes(raw, signed)
	raw = protowire.AppendTag(raw, 2, protowire.BytesType)
	raw = protowire.AppendBytes(raw, make([]byte, ed25519.SignatureSize))
	e, err := protocol.Decode(raw)
	if err != nil {
		tb.Fatal(err)
	}
	s.prev = e.ID
	return e
}

func memFixture(b *testing.B) (*protocol.Roster, [][]byte) {
	memBench.once.Do(func() {
		var refs, pfs []*signer
		var members []protocol.Member
		for i := range 4 {
			s := newSigner(byte(i + 1))
			refs = append(refs, s)
			members = append(members, protocol.Member{Name: fmt.Sprint("ru-", i), Role: protocol.RoleReferral, AuthorKey: s.author()})
			p := newSigner(byte(100 + i))
			pfs = append(pfs, p)
			members = append(members, protocol.Member{Name: fmt.Sprint("pf-", i), Role: protocol.RolePlatform, AuthorKey: p.author()})
		}
		r, err := protocol.NewRoster("f", members)
		if err != nil {
			b.Fatal(err)
		}
		raws := make([][]byte, 0, memEntries+7_000)
		var adds []protocol.ID
		for i := range memEntries {
			s := refs[i*4/memEntries]
			body := &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{
				Signals: []*pb.Signal{signal("m", i)}, Labels: []*pb.Label{{Slug: "graphic-violence"}}}}}
			e := s.fakeSign(b, t0+int64(i)*1000, body)
			raws = append(raws, e.Raw)
			if i%2000 == 0 {
				adds = append(adds, e.ID)
			}
		}
		base := int64(t0 + memEntries*1000)
		for i := range 2000 {
			issued := base + int64(i)*minute
			to := pfs[i%4]
			n := refs[i%4].fakeSign(b, issued, notice(to.author(), issued))
			raws = append(raws, n.Raw,
				to.fakeSign(b, issued+minute, reply(n.ID, received, 0)).Raw,
				to.fakeSign(b, issued+int64(i%120)*minute+2*minute, reply(n.ID, removed, 0)).Raw)
		}
		for i := range 500 {
			raws = append(raws, pfs[i%4].fakeSign(b, base+int64(i), dispute(adds[i])).Raw)
		}
		for i := range 100 { // refs[0]'s first additions
			raws = append(raws, refs[0].fakeSign(b, base+int64(i), retraction(adds[i])).Raw)
		}
		memBench.roster, memBench.raws = r, raws
	})
	return memBench.roster, memBench.raws
}

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// BenchmarkBuilderMemory reports the heap a builder holds per entry once
// fed (B/entry: heap in use after Add minus before, the entries decoded
// one at a time and dropped, as the auditor does), and how long Report
// takes over them.
func BenchmarkBuilderMemory(b *testing.B) {
	r, raws := memFixture(b)
	fill := func(b *testing.B) *Builder {
		bl := New(r, nil)
		for _, raw := range raws {
			e, err := protocol.Decode(bytes.Clone(raw))
			if err != nil {
				b.Fatal(err)
			}
			bl.Add(e)
		}
		return bl
	}
	now := int64(t0 + memEntries*1000 + 1000*hour)
	check := func(b *testing.B, rep Report) {
		if rep.Totals.Entries != len(raws) || rep.Totals.Additions != memEntries || rep.Totals.NoticesReceived != 2000 ||
			rep.Totals.Disputed != 500 || rep.Totals.Retracted != 100 {
			b.Fatalf("%+v", rep.Totals)
		}
	}
	b.Run("add", func(b *testing.B) {
		var perEntry float64
		for b.Loop() {
			before := heapInuse()
			bl := fill(b)
			after := heapInuse()
			perEntry = float64(int64(after)-int64(before)) / float64(len(raws))
			runtime.KeepAlive(bl)
		}
		b.ReportMetric(perEntry, "heap-B/entry")
	})
	b.Run("report", func(b *testing.B) {
		bl := fill(b)
		b.ResetTimer()
		for b.Loop() {
			check(b, bl.Report(now, 0))
		}
	})
}

// A retraction or a dispute that names signals counts for those of its
// target's signals it names (SPEC 18): signals_retracted,
// signals_disputed. A signal named that the addition does not carry
// counts for nothing; a dispute withdrawn for some signals stands for the
// others.
func TestReportPerSignal(t *testing.T) {
	f := newFixture(t)
	var es []*protocol.Entry
	at := func(s *signer, m int64, b *pb.Entry) *protocol.Entry {
		e := s.sign(t, t0+m*minute, b)
		es = append(es, e)
		return e
	}
	p := signals("p", 4)
	named := func(b *pb.Entry, sigs ...*pb.Signal) *pb.Entry {
		sigs = protocol.SortSignals(sigs)
		if r := b.GetRetraction(); r != nil {
			r.Signals = sigs
		} else {
			b.GetDispute().Signals = sigs
		}
		return b
	}
	a1 := at(f.ruA, 1, addition("p", 4))
	at(f.ruA, 2, named(retraction(a1.ID), p[0], signal("elsewhere", 0))) // withdraws p0 only
	dc := at(f.pfC, 3, named(dispute(a1.ID), p[1], p[2]))
	at(f.pfC, 4, named(retraction(dc.ID), p[2])) // pf-c's dispute stands for p1
	db := at(f.ruB, 5, dispute(a1.ID))
	at(f.ruB, 6, retraction(db.ID))                 // ru-b's dispute withdrawn
	at(f.pfD, 7, named(dispute(a1.ID), p[3], p[1])) // p1 again, p3
	at(f.pfD, 8, named(dispute(a1.ID), signal("elsewhere", 1)))
	b, ref := New(f.roster, nil), newRef(f.roster, nil)
	for _, e := range es {
		b.Add(e)
		ref.Add(e)
	}
	got := b.Report(t0+hour, 0)
	checkReport(t, got, ref.Report(t0+hour, 0))
	tot := got.Totals
	if tot.Retracted != 1 || tot.SignalsRetracted != 1 || tot.Disputed != 1 || tot.SignalsDisputed != 2 ||
		tot.DisputesWithdrawn != 2 || tot.DisputesFiled != 4 {
		t.Errorf("totals: %+v\nwant retracted 1 (1 signal), disputed 1 (2 signals: p1, p3), 2 disputes withdrawn, 4 filed", tot)
	}
}

// typedSignal is signal n of tag as a signal of type protocol.SignalTypes[i]:
// every type the report counts, vpdq included.
func typedSignal(tag string, i, n int) *pb.Signal {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", tag, n))
	h := hex.EncodeToString(sum[:])
	var value string
	switch t := protocol.SignalTypes[i]; t {
	case protocol.SignalSHA256, protocol.SignalPDQ:
		value = h
	case protocol.SignalMD5:
		value = h[:32]
	case protocol.SignalURL:
		value = "https://video.example/" + h[:12]
	case protocol.SignalAccount:
		value = "video.example:" + h[:12]
	case protocol.SignalVPDQ:
		value = `["` + h + `,90,0.0", "` + strings.Repeat("0", 64) + `,80,1.5"]`
	case protocol.SignalDomain:
		value = "*." + h[:12] + ".example"
	default:
		panic("typedSignal: no value for type " + string(t))
	}
	s, err := protocol.ParseSignal(string(protocol.SignalTypes[i]), value)
	if err != nil {
		panic(err)
	}
	return s
}

// typedSignals are n signals of tag of the types from SignalTypes[first]
// on, round robin, sorted as an addition carries them.
func typedSignals(tag string, first, n int) []*pb.Signal {
	var ss []*pb.Signal
	for k := range n {
		ss = append(ss, typedSignal(tag, (first+k)%len(protocol.SignalTypes), k))
	}
	return protocol.SortSignals(ss)
}

// TestReportSignalsByType: signals_by_type splits signals by type, for
// each member and the federation, every type listed.
func TestReportSignalsByType(t *testing.T) {
	ruA, pfC := newSigner(0x01), newSigner(0x41)
	roster, err := protocol.NewRoster("f", []protocol.Member{
		{Name: "ru-a", Role: protocol.RoleReferral, AuthorKey: ruA.author()},
		{Name: "pf-c", Role: protocol.RolePlatform, AuthorKey: pfC.author()},
	})
	if err != nil {
		t.Fatal(err)
	}
	var es []*protocol.Entry
	es = append(es, ruA.sign(t, t0, &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{
		Signals: typedSignals("a", 0, 8), Labels: []*pb.Label{{Slug: "graphic-violence"}}}}}))
	es = append(es, ruA.sign(t, t0+minute, &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{
		Signals: typedSignals("b", 5, 1), Labels: []*pb.Label{{Slug: "graphic-violence"}}}}}))
	es = append(es, pfC.sign(t, t0, &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{
		Signals: typedSignals("c", 2, 2), Labels: []*pb.Label{{Slug: "graphic-violence"}}}}}))
	b := New(roster, nil)
	for _, e := range es {
		b.Add(e)
	}
	got := b.Report(t0+hour, 0)
	want := map[string]SignalCounts{
		// 8 round robin from sha256 over the 7 types: two of sha256, one
		// of the rest; then one vpdq.
		"ru-a":         {"sha256": 2, "md5": 1, "pdq": 1, "url": 1, "account": 1, "vpdq": 2, "domain": 1},
		"pf-c":         {"sha256": 0, "md5": 0, "pdq": 1, "url": 1, "account": 0, "vpdq": 0, "domain": 0},
		"(federation)": {"sha256": 2, "md5": 1, "pdq": 2, "url": 2, "account": 1, "vpdq": 2, "domain": 1},
	}
	gotBy := map[string]SignalCounts{"(federation)": got.Totals.SignalsByType}
	for _, m := range got.Members {
		gotBy[m.Name] = m.SignalsByType
	}
	if !reflect.DeepEqual(gotBy, want) {
		t.Errorf("signals_by_type %v, want %v", gotBy, want)
	}
	j, err := json.Marshal(got.Totals)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(j), `"signals_by_type":{"account":1,"domain":1,"md5":1,"pdq":2,"sha256":2,"url":2,"vpdq":2}`) {
		t.Errorf("JSON %s", j)
	}
	// A report put together by hand, without the map, still lists every
	// type (the API's schema requires the object).
	if j, err := json.Marshal(Figures{}); err != nil || !strings.Contains(string(j), `"signals_by_type":{"account":0,"domain":0,"md5":0,"pdq":0,"sha256":0,"url":0,"vpdq":0}`) {
		t.Errorf("empty figures: %v %s", err, j)
	}
	ref := newRef(roster, nil)
	for _, e := range es {
		ref.Add(e)
	}
	checkReport(t, got, ref.Report(t0+hour, 0))
}
