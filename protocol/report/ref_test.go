package report

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"unsafe"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/replica"
)

// refBuilder is the builder as it was before it kept compact records:
// it keeps every entry whole. The tests compare Builder with it.
//
// refBuilder accumulates entries, in any order, and computes reports. Entries
// are assumed decoded and checked (signature, chain) by the caller. It is
// not safe for concurrent use.
type refBuilder struct {
	roster  *protocol.Roster
	members replica.Members
	logs    map[protocol.AuthorKey]map[uint64]*protocol.Entry
	forks   []*protocol.Entry // second entries for a seq taken
	seen    map[protocol.ID]struct{}
	ignored int
}

// newRef returns an empty builder for the federation of roster, judging
// entries under members (nil: roster alone).
func newRef(roster *protocol.Roster, members replica.Members) *refBuilder {
	return &refBuilder{
		roster:  roster,
		members: members,
		logs:    map[protocol.AuthorKey]map[uint64]*protocol.Entry{},
		seen:    map[protocol.ID]struct{}{},
	}
}

// Add records an entry. An entry added again (same id) is ignored
// silently, whatever it is. An entry of another federation is ignored and
// counted in ignored_entries, as is a nil entry. A second, different entry
// for an author and seq already taken is an equivocation: the first added
// is kept and the other counted in equivocations, if the membership takes
// in the first, else in ignored_entries.
func (b *refBuilder) Add(e *protocol.Entry) {
	if e == nil || e.Body == nil {
		b.ignored++
		return
	}
	if _, dup := b.seen[e.ID]; dup {
		return
	}
	b.seen[e.ID] = struct{}{}
	if e.Body.Federation != b.roster.Federation {
		b.ignored++
		return
	}
	log := b.logs[e.Author]
	if log == nil {
		log = map[uint64]*protocol.Entry{}
		b.logs[e.Author] = log
	}
	if _, taken := log[e.Seq()]; taken {
		b.forks = append(b.forks, e)
		return
	}
	log[e.Seq()] = e
}

// verdict judges e, with its whole body: taken in (void or not) or not.
func (b *refBuilder) verdict(e *protocol.Entry) (taken, void bool) {
	m := b.members
	if m == nil {
		m = rosterMembers{b.roster}
	}
	v, _ := m.Judge(e.Author, e.Seq(), e.Body)
	if _, named := b.roster.ByKey(e.Author); !named {
		return false, false
	}
	return v == membership.In || v == membership.Outside || v == membership.Role, v != membership.In
}

// Report computes the report at nowMs (Unix ms) for the period from
// sinceMs (0: everything). It does not change the builder: it can be
// called again after more Adds.
func (b *refBuilder) Report(nowMs, sinceMs int64) Report {
	in := func(e *protocol.Entry) bool { return e.Body.TimestampMs >= sinceMs }

	byID := map[protocol.ID]*protocol.Entry{}
	void := map[protocol.ID]bool{}
	entries, ignored, equivocations := 0, b.ignored, 0
	logs := map[protocol.AuthorKey]map[uint64]*protocol.Entry{} // the entries taken in
	for author, log := range b.logs {
		for seq, e := range log {
			taken, v := b.verdict(e)
			if !taken {
				ignored++
				continue
			}
			if logs[author] == nil {
				logs[author] = map[uint64]*protocol.Entry{}
			}
			logs[author][seq] = e
			entries++
			byID[e.ID] = e
			void[e.ID] = v
		}
	}
	for _, e := range b.forks {
		if _, ok := logs[e.Author][e.Seq()]; ok {
			equivocations++
		} else {
			ignored++
		}
	}
	figs := make(map[protocol.AuthorKey]*member, len(b.roster.Members))
	for _, m := range b.roster.Members {
		f := &member{}
		f.SignalsByType = SignalCounts{}
		for _, t := range protocol.SignalTypes {
			f.SignalsByType[t] = 0
		}
		figs[m.AuthorKey] = f
		for _, k := range m.Keys {
			figs[k] = f
		}
	}

	// Each log in seq order: the stateful rules (void entries), and the
	// figures that need nothing from other logs.
	var (
		notices  []*protocol.Entry
		updates  = map[protocol.ID][]*protocol.Entry{}
		replies  = map[protocol.ID][]*protocol.Entry{}
		disputes = map[protocol.ID]protocol.ID{} // the period's disputes of additions: dispute id -> target
	)
	retracted := map[protocol.ID]*protocol.Entry{} // targets of valid retractions → the retraction
	// own returns the entry target names if it is an earlier entry of e's
	// own log, of one of the kinds; nil otherwise (e is void).
	own := func(e *protocol.Entry, target []byte, kinds ...protocol.Kind) *protocol.Entry {
		t := byID[idOf(target)]
		if t == nil || t.Author != e.Author || t.Seq() >= e.Seq() || !slices.Contains(kinds, t.Kind()) {
			return nil
		}
		return t
	}
	for author, log := range logs {
		f := figs[author]
		for _, e := range refSortedLog(log) {
			if void[e.ID] {
				if in(e) {
					f.VoidEntries++
				}
				continue
			}
			switch p := e.Body.GetPayload().(type) {
			case *pb.Entry_Addition:
				if in(e) {
					f.Additions++
					f.Signals += len(p.Addition.Signals)
					for _, s := range p.Addition.Signals {
						f.SignalsByType[protocol.TypeOf(s)]++
					}
				}
			case *pb.Entry_Allow:
				if in(e) {
					f.Allows++
				}
			case *pb.Entry_Retraction:
				t := own(e, p.Retraction.Target, protocol.KindAddition, protocol.KindAllow, protocol.KindDispute)
				if t != nil {
					if _, done := retracted[t.ID]; done {
						t = nil // only the first retraction of a target counts
					}
				}
				switch {
				case t == nil:
					if in(e) {
						f.VoidEntries++
					}
				case t.Kind() == protocol.KindAddition:
					retracted[t.ID] = e
					if in(e) {
						f.Retracted++
						f.SignalsRetracted += len(refBearsOn(p.Retraction.Signals, t))
					}
				case t.Kind() == protocol.KindDispute:
					retracted[t.ID] = e
					if in(e) {
						f.DisputesWithdrawn++
					}
				default:
					retracted[t.ID] = e
					if in(e) {
						f.AllowsRetracted++
					}
				}
			case *pb.Entry_Dispute:
				if in(e) {
					f.DisputesFiled++
					if t := byID[idOf(p.Dispute.Target)]; t != nil && !void[t.ID] && t.Kind() == protocol.KindAddition {
						disputes[e.ID] = t.ID
					}
				}
			case *pb.Entry_Notice:
				if in(e) {
					f.NoticesIssued++
					notices = append(notices, e)
				}
			case *pb.Entry_NoticeUpdate:
				t := own(e, p.NoticeUpdate.Notice, protocol.KindNotice)
				if t == nil {
					if in(e) {
						f.VoidEntries++
					}
					continue
				}
				updates[t.ID] = append(updates[t.ID], e)
			case *pb.Entry_NoticeReply:
				// Kept whatever its author: NoticeLifecycle takes only the
				// addressee's.
				id := idOf(p.NoticeReply.Notice)
				replies[id] = append(replies[id], e)
			}
		}
	}
	// A dispute withdrawn (its author retracted it, whenever) counts for
	// nothing; an addition counts once however many disputes stand.
	disputed := map[protocol.ID]map[string]bool{}
	for d, id := range disputes {
		stands := refBearsOn(byID[d].Body.GetDispute().Signals, byID[id])
		if r, withdrawn := retracted[d]; withdrawn {
			named := r.Body.GetRetraction().Signals
			if len(named) == 0 {
				continue
			}
			for _, s := range named {
				delete(stands, string(protocol.SignalKey(s)))
			}
		}
		if len(stands) == 0 {
			continue
		}
		if disputed[id] == nil {
			disputed[id] = map[string]bool{}
		}
		maps.Copy(disputed[id], stands)
	}
	for id, sigs := range disputed {
		figs[byID[id].Author].Disputed++
		figs[byID[id].Author].SignalsDisputed += len(sigs)
	}

	for _, n := range notices {
		st := protocol.NoticeLifecycle(n, updates[n.ID], replies[n.ID], nowMs)
		var to protocol.AuthorKey
		copy(to[:], n.Body.GetNotice().Addressee)
		f := figs[to] // Roster.Check made it a member (a platform)
		if f == nil {
			continue
		}
		f.NoticesReceived++
		switch st.State {
		case protocol.NoticeActioned, protocol.NoticeNotExecuted:
			if st.WithinDeadline {
				f.AnsweredWithinDeadline++
			} else {
				f.AnsweredLate++
			}
			if st.State == protocol.NoticeActioned {
				f.Actioned++
			} else {
				f.NotExecuted++
			}
			f.times = append(f.times, st.TimeToActionMs)
		case protocol.NoticeWithdrawn:
			f.Withdrawn++
		case protocol.NoticeOverdue:
			f.Overdue++
		case protocol.NoticeClarificationRequested:
			f.Open++
			f.ClarificationRequested++
		default: // open, acknowledged
			f.Open++
		}
	}

	r := Report{
		Federation: b.roster.Federation,
		NowMs:      nowMs,
		SinceMs:    sinceMs,
		Members:    make([]Member, 0, len(b.roster.Members)),
		Totals:     Totals{Entries: entries, IgnoredEntries: ignored, Equivocations: equivocations},
	}
	r.Totals.SignalsByType = SignalCounts{}
	for _, t := range protocol.SignalTypes {
		r.Totals.SignalsByType[t] = 0
	}
	var all []int64
	for _, m := range b.roster.Members {
		f := figs[m.AuthorKey]
		f.MedianTimeToActionS, f.P90TimeToActionS = percentiles(f.times)
		all = append(all, f.times...)
		r.Members = append(r.Members, Member{Name: m.Name, Role: m.Role, Key: m.AuthorKey.String(), Figures: f.Figures})
		r.Totals.add(&f.Figures)
	}
	r.Totals.MedianTimeToActionS, r.Totals.P90TimeToActionS = percentiles(all)
	slices.SortFunc(r.Members, func(x, y Member) int { return cmp.Compare(x.Name, y.Name) })
	return r
}

func refSortedLog(log map[uint64]*protocol.Entry) []*protocol.Entry {
	es := make([]*protocol.Entry, 0, len(log))
	for _, e := range log {
		es = append(es, e)
	}
	slices.SortFunc(es, func(x, y *protocol.Entry) int { return cmp.Compare(x.Seq(), y.Seq()) })
	return es
}

// randomLogs signs n random entries (with zero signatures) for the
// fixture's members, a stranger and one member signing for another
// federation: every kind, targets of any author and kind (some never
// seen), notices and their threads, entries a role may not write, and
// forks (equivocations). They come in signing order.
func randomLogs(tb testing.TB, rng *rand.Rand, n int) []*protocol.Entry {
	ruA, ruB, pfC, pfD := newSigner(0x01), newSigner(0x21), newSigner(0x41), newSigner(0x61)
	signers := []*signer{ruA, ruB, pfC, pfD, ruA, ruB, pfC, pfD, ruA, ruB, pfC, pfD, newSigner(0x81), newSigner(0xa1)}
	addressees := []protocol.AuthorKey{pfC.author(), pfD.author(), pfC.author(), pfD.author(), ruA.author()}
	statuses := []pb.ReplyStatus{received, removed, disabled, clarify, notExec, pb.ReplyStatus_REPLY_STATUS_NOT_FOUND}
	hist := map[*signer][]protocol.ID{} // ids by seq - 1
	var es []*protocol.Entry
	var ids, notices []protocol.ID
	pick := func(from []protocol.ID) protocol.ID {
		if len(from) == 0 || rng.IntN(10) == 0 {
			return protocol.IDOf(fmt.Appendf(nil, "unseen %d", rng.Int()))
		}
		return from[rng.IntN(len(from))]
	}
	noticesBy := map[*signer][]protocol.ID{}
	noticesTo := map[protocol.AuthorKey][]protocol.ID{}
	carried := map[protocol.ID][]*pb.Signal{} // the signals of each entry signed, for naming some
	// name makes a retraction or a dispute of target name some signals
	// half the time: some of those target carries, sometimes one it does
	// not.
	name := func(target protocol.ID) []*pb.Signal {
		if rng.IntN(2) == 0 {
			return nil
		}
		var named []*pb.Signal
		for _, s := range carried[target] {
			if rng.IntN(2) == 0 {
				named = append(named, s)
			}
		}
		if len(named) == 0 || rng.IntN(4) == 0 {
			named = append(named, signal("elsewhere", rng.IntN(3)))
		}
		return protocol.SortSignals(named)
	}
	for len(es) < n {
		s := signers[rng.IntN(len(signers))]
		ts := t0 + rng.Int64N(300)*minute
		// Mostly what the author's role may write; 1 in 20 anything.
		// Kinds: 0, 1 addition, 2 allow, 3 retraction, 4 dispute, 5 notice,
		// 6 update, 7 reply.
		var k int
		switch {
		case rng.IntN(20) == 0:
			k = rng.IntN(8)
		case s == pfC || s == pfD:
			k = []int{0, 1, 2, 3, 4, 7, 7, 7}[rng.IntN(8)]
		default:
			k = []int{0, 1, 2, 3, 4, 5, 5, 6, 6}[rng.IntN(9)]
		}
		var b *pb.Entry
		switch k {
		case 0, 1:
			b = addition(fmt.Sprint("r", len(es)), 1+rng.IntN(3))
			if rng.IntN(2) == 0 {
				b.GetAddition().Signals = typedSignals(fmt.Sprint("r", len(es)), rng.IntN(len(protocol.SignalTypes)), 1+rng.IntN(8))
			}
		case 2:
			b = allow(fmt.Sprint("r", len(es)))
		case 3:
			from := ids
			if rng.IntN(3) > 0 {
				from = hist[s]
			}
			b = retraction(pick(from))
			b.GetRetraction().Signals = name(protocol.ID(b.GetRetraction().Target))
		case 4:
			b = dispute(pick(ids))
			b.GetDispute().Signals = name(protocol.ID(b.GetDispute().Target))
		case 5:
			to := addressees[rng.IntN(len(addressees))]
			b = notice(to, ts)
			b.GetNotice().DeadlineMs = ts + (1+rng.Int64N(120))*minute
		case 6:
			deadline := int64(0)
			if rng.IntN(2) == 0 {
				deadline = ts + (1+rng.Int64N(120))*minute
			}
			from := notices
			if rng.IntN(4) > 0 {
				from = noticesBy[s]
			}
			b = update(pick(from), rng.IntN(6) == 0, deadline)
		default:
			var action int64
			if rng.IntN(3) == 0 {
				action = ts - rng.Int64N(60)*minute
			}
			from := notices
			if rng.IntN(4) > 0 {
				from = noticesTo[s.author()]
			}
			b = reply(pick(from), statuses[rng.IntN(len(statuses))], action)
		}
		w := s
		switch r := rng.IntN(40); {
		case r == 0 && s.seq > 0: // a fork of s at an earlier seq
			seq := rng.Uint64N(s.seq)
			w = &signer{key: s.key, fed: s.fed, seq: seq}
			if seq > 0 {
				w.prev = hist[s][seq-1]
			}
		case r == 1:
			w = &signer{key: s.key, fed: "g"}
		}
		e := w.fakeSign(tb, ts, b)
		if w == s {
			hist[s] = append(hist[s], e.ID)
		}
		es = append(es, e)
		ids = append(ids, e.ID)
		carried[e.ID], _ = protocol.CarriedSignals(b)
		if p := b.GetNotice(); p != nil {
			notices = append(notices, e.ID)
			noticesBy[s] = append(noticesBy[s], e.ID)
			noticesTo[protocol.AuthorKey(p.Addressee)] = append(noticesTo[protocol.AuthorKey(p.Addressee)], e.ID)
		}
	}
	return es
}

// TestBuilderMatchesRef feeds random logs, in various orders, with
// duplicates and nil entries, to Builder and to refBuilder (the builder
// that kept whole entries) and compares their reports, at several times
// and periods, as the entries come in.
func TestBuilderMatchesRef(t *testing.T) {
	roster := newFixture(t).roster
	var seen Totals // over every seed: each case must come up
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 2))
		es := randomLogs(t, rng, 1500)
		feed := slices.Clone(es)
		switch seed {
		case 0: // signing order
		case 1:
			slices.Reverse(feed)
		default:
			rng.Shuffle(len(feed), func(i, j int) { feed[i], feed[j] = feed[j], feed[i] })
		}
		for range len(es) / 10 {
			i := rng.IntN(len(feed) + 1)
			feed = slices.Insert(feed, i, es[rng.IntN(len(es))])
		}
		feed = slices.Insert(feed, rng.IntN(len(feed)+1), nil)
		b, ref := New(roster, nil), newRef(roster, nil)
		for i, e := range feed {
			b.Add(e)
			ref.Add(e)
			if i%400 != 399 && i != len(feed)-1 {
				continue
			}
			for _, now := range []int64{t0 + 150*minute, t0 + 100*hour} {
				for _, since := range []int64{0, t0 + 100*minute, t0 + 200*minute} {
					got, want := b.Report(now, since), ref.Report(now, since)
					if !reflect.DeepEqual(got, want) {
						g, _ := json.MarshalIndent(got.Totals, "", "  ")
						w, _ := json.MarshalIndent(want.Totals, "", "  ")
						t.Fatalf("seed %d, after %d entries, now %d since %d: report differs\ngot totals:  %s\nwant totals: %s",
							seed, i+1, now, since, g, w)
					}
				}
			}
		}
		for _, now := range []int64{t0 + 150*minute, t0 + 100*hour} {
			r := b.Report(now, 0).Totals
			seen.Equivocations += r.Equivocations
			seen.IgnoredEntries += r.IgnoredEntries
			seen.add(&r.Figures)
		}
	}
	t.Logf("summed totals: %+v", seen)
	if r := seen; r.Equivocations == 0 || r.IgnoredEntries == 0 || r.Retracted == 0 || r.AllowsRetracted == 0 ||
		r.Disputed == 0 || r.SignalsRetracted == 0 || r.SignalsDisputed == 0 || r.VoidEntries == 0 || r.AnsweredWithinDeadline == 0 || r.AnsweredLate == 0 ||
		r.Actioned == 0 || r.NotExecuted == 0 || r.Withdrawn == 0 || r.Overdue == 0 || r.Open == 0 || r.ClarificationRequested == 0 {
		t.Fatalf("the random logs miss a case: %+v", r)
	}
}

// TestReportIncremental: a report taken part way, then after the rest of
// the entries, is the report of a builder fed only those entries.
func TestReportIncremental(t *testing.T) {
	f := newFixture(t)
	es := slices.Clone(f.entries)
	rand.New(rand.NewPCG(7, 7)).Shuffle(len(es), func(i, j int) { es[i], es[j] = es[j], es[i] })
	b := New(f.roster, nil)
	for i, e := range es {
		b.Add(e)
		fresh := build(f, es[:i+1])
		for _, since := range []int64{0, t0 + 20*minute} {
			checkReport(t, b.Report(t0+10*hour, since), fresh.Report(t0+10*hour, since))
		}
	}
	checkReport(t, b.Report(t0+10*hour, 0), wantAll(f))
	checkReport(t, b.Report(t0+10*hour, t0+20*minute), wantSince(f))
}

// The builder's memory is about a rec an entry: keep it small.
func TestRecSize(t *testing.T) {
	if n := unsafe.Sizeof(rec{}); n != 56 {
		t.Errorf("rec is %d bytes, want 56", n)
	}
}

// refBearsOn is the set of index keys of the addition target's signals
// that a retraction or a dispute naming named bears on: those named that
// target carries, or all of them.
func refBearsOn(named []*pb.Signal, target *protocol.Entry) map[string]bool {
	out := map[string]bool{}
	for _, s := range target.Body.GetAddition().Signals {
		k := string(protocol.SignalKey(s))
		if len(named) == 0 || protocol.Names(named, []byte(k)) {
			out[k] = true
		}
	}
	return out
}
