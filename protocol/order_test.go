package protocol

import (
	"errors"
	"testing"

	"github.com/staydown/staydown/protocol/pb"
)

func newOrderWorld(t *testing.T, start, end int64) *noticeWorld {
	w := &noticeWorld{t: t, nru: &signer{key: seedKey(1)}, pf: &signer{key: seedKey(2)}, stranger: &signer{key: seedKey(3)}}
	to := AuthorKeyOf(seedKey(2))
	w.notice = w.sign(w.nru, 1000, &pb.Entry{Payload: &pb.Entry_Notice{Notice: &pb.Notice{
		Addressee: to[:], Signals: []*pb.Signal{mustSignal("domain", "*.propaganda.example")},
		Category: &pb.Label{Slug: "attacker-manifesto"}, LegalBasis: "CPCE L. 34-1 / decree 2015-125", Binding: true,
		DeadlineMs: 1000 + 24*hour, Blocking: &pb.Blocking{StartMs: start, EndMs: end}}}})
	return w
}

// TestOrderPayload: the wire rules of a blocking order (SPEC 6.9).
func TestOrderPayload(t *testing.T) {
	to := AuthorKeyOf(seedKey(2))
	for _, c := range []struct {
		name    string
		change  func(n *pb.Notice)
		mention string
	}{
		{"no signals", func(n *pb.Notice) { n.Signals = nil }, "names no target"},
		{"a hash", func(n *pb.Notice) { n.Signals = append(n.Signals, mustSignal("sha256", sha256Empty)) }, "domain signals only, got sha256"},
		{"sealed details", func(n *pb.Notice) { n.Details = testSealed(to) }, "no sealed details"},
		{"negative start", func(n *pb.Notice) { n.Blocking.StartMs = -1 }, "start_ms"},
		{"end before its timestamp", func(n *pb.Notice) { n.Blocking.EndMs = 999 }, "not after the order's start 1000"},
		{"end before its start", func(n *pb.Notice) { n.Blocking.StartMs, n.Blocking.EndMs = 5000, 5000 }, "not after the order's start 5000"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := &pb.Entry{Version: 1, Federation: "f", Author: to[:], Seq: 1, TimestampMs: 1000, Payload: &pb.Entry_Notice{Notice: &pb.Notice{
				Addressee: to[:], Signals: []*pb.Signal{mustSignal("domain", "propaganda.example")},
				Category: &pb.Label{Slug: "attacker-manifesto"}, LegalBasis: "basis", DeadlineMs: 2000, Blocking: &pb.Blocking{}}}}
			if err := CheckPayload(b); err != nil {
				t.Fatalf("the valid order: %v", err)
			}
			c.change(b.GetNotice())
			checkErr(t, CheckPayload(b), ErrMalformed, c.mention)
		})
	}
}

// TestOrderRoles: an order goes to an access provider and a notice to a
// platform; blocked and unblocked are access providers' replies, removed
// and disabled platforms' (SPEC 9.1).
func TestOrderRoles(t *testing.T) {
	nru, pf, isp := seedKey(1), seedKey(2), seedKey(3)
	roster, err := NewRoster("f", []Member{
		{Name: "nru", Role: RoleReferral, AuthorKey: AuthorKeyOf(nru)},
		{Name: "pf", Role: RolePlatform, AuthorKey: AuthorKeyOf(pf)},
		{Name: "isp", Role: RoleAccess, AuthorKey: AuthorKeyOf(isp)},
	})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(key []byte, body *pb.Entry) *Entry {
		body.Version, body.Federation, body.Seq, body.TimestampMs = 1, "f", 1, 1000
		e, err := Sign(key, body)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	order := func(to []byte, blocking bool) *pb.Entry {
		n := &pb.Notice{Addressee: to, Signals: []*pb.Signal{mustSignal("domain", "propaganda.example")},
			Category: &pb.Label{Slug: "attacker-manifesto"}, LegalBasis: "basis", DeadlineMs: 2000}
		if blocking {
			n.Blocking = &pb.Blocking{}
		}
		return &pb.Entry{Payload: &pb.Entry_Notice{Notice: n}}
	}
	reply := func(s pb.ReplyStatus) *pb.Entry {
		return &pb.Entry{Payload: &pb.Entry_NoticeReply{NoticeReply: &pb.NoticeReply{Notice: fakeID(9), Status: s}}}
	}
	pfKey, ispKey := AuthorKeyOf(pf), AuthorKeyOf(isp)
	for _, c := range []struct {
		name string
		key  []byte
		body *pb.Entry
		ok   bool
	}{
		{"order to an access provider", nru, order(ispKey[:], true), true},
		{"order to a platform", nru, order(pfKey[:], true), false},
		{"notice to an access provider", nru, order(ispKey[:], false), false},
		{"notice to a platform", nru, order(pfKey[:], false), true},
		{"access provider: blocked", isp, reply(pb.ReplyStatus_REPLY_STATUS_BLOCKED), true},
		{"access provider: unblocked", isp, reply(pb.ReplyStatus_REPLY_STATUS_UNBLOCKED), true},
		{"access provider: not-found", isp, reply(pb.ReplyStatus_REPLY_STATUS_NOT_FOUND), true},
		{"access provider: removed", isp, reply(pb.ReplyStatus_REPLY_STATUS_REMOVED), false},
		{"platform: blocked", pf, reply(pb.ReplyStatus_REPLY_STATUS_BLOCKED), false},
		{"access provider: an addition", isp, &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{
			Signals: []*pb.Signal{mustSignal("domain", "a.example")}, Labels: []*pb.Label{{Slug: "attacker-manifesto"}}}}}, false},
	} {
		err := roster.Check(sign(c.key, c.body))
		if c.ok != (err == nil) || err != nil && !errors.Is(err, ErrRole) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// TestOrderLifecycle: blocked is the action; the lift or end_ms ends the
// order, whichever is first; an unblocked reply after the end counts, in
// time if within the order's allowance (24 h here) of the end.
func TestOrderLifecycle(t *testing.T) {
	const day = 24 * hour
	t.Run("blocked, lifted, unblocked in time", func(t *testing.T) {
		w := newOrderWorld(t, 0, 0)
		blocked := w.reply(w.pf, 2000, pb.ReplyStatus_REPLY_STATUS_BLOCKED, 1500)
		lift := w.update(10*hour, true, 0)
		early := w.reply(w.pf, 9*hour, pb.ReplyStatus_REPLY_STATUS_UNBLOCKED, 0)
		unblocked := w.reply(w.pf, 11*hour, pb.ReplyStatus_REPLY_STATUS_UNBLOCKED, 0)
		st := OrderLifecycle(w.notice, []*Entry{lift}, []*Entry{blocked, early, unblocked}, 12*hour)
		if st.State != NoticeActioned || st.ActionMs != 1500 || st.StartMs != 1000 || st.EndMs != 10*hour || st.LiftID != lift.ID {
			t.Errorf("%+v", st)
		}
		if !st.InForce(5*hour) || st.InForce(10*hour) || st.InForce(999) {
			t.Error("in force at the wrong times")
		}
		if st.UnblockedID != unblocked.ID || st.UnblockedMs != 11*hour || !st.UnblockedWithin {
			t.Errorf("unblocked: %+v", st)
		}
	})
	t.Run("end_ms before the lift, unblocked late", func(t *testing.T) {
		w := newOrderWorld(t, 5000, 3*hour)
		lift := w.update(4*hour, true, 0)
		late := w.reply(w.pf, 3*hour+day+1, pb.ReplyStatus_REPLY_STATUS_UNBLOCKED, 0)
		st := OrderLifecycle(w.notice, []*Entry{lift}, []*Entry{late}, 2*day)
		if st.StartMs != 5000 || st.EndMs != 3*hour || !st.LiftID.IsZero() || st.UnblockedID != late.ID || st.UnblockedWithin {
			t.Errorf("%+v", st)
		}
	})
	t.Run("a stranger's replies and lifts count for nothing", func(t *testing.T) {
		w := newOrderWorld(t, 0, 0)
		r := w.reply(w.stranger, 2000, pb.ReplyStatus_REPLY_STATUS_BLOCKED, 0)
		u := w.sign(w.stranger, 3000, &pb.Entry{Payload: &pb.Entry_NoticeUpdate{NoticeUpdate: &pb.NoticeUpdate{Notice: w.notice.ID[:], Withdraw: true}}})
		st := OrderLifecycle(w.notice, []*Entry{u}, []*Entry{r}, 4000)
		if st.State != NoticeOpen || st.EndMs != 0 || !st.InForce(4000) {
			t.Errorf("%+v", st)
		}
	})
}
