package protocol

import (
	"testing"

	"github.com/staydown/staydown/protocol/pb"
)

// noticeWorld signs a notice by a referral unit to a platform at t=1000
// with a one-hour deadline, and builds updates and replies around it.
type noticeWorld struct {
	t        *testing.T
	nru, pf  *signer
	stranger *signer
	notice   *Entry
}

type signer struct {
	key  []byte
	seq  uint64
	prev ID
}

const hour = 3_600_000

func newNoticeWorld(t *testing.T) *noticeWorld {
	w := &noticeWorld{t: t, nru: &signer{key: seedKey(1)}, pf: &signer{key: seedKey(2)}, stranger: &signer{key: seedKey(3)}}
	to := AuthorKeyOf(seedKey(2))
	w.notice = w.sign(w.nru, 1000, &pb.Entry{Payload: &pb.Entry_Notice{Notice: &pb.Notice{
		Addressee: to[:], Signals: []*pb.Signal{{Value: &pb.Signal_Pdq{Pdq: make([]byte, 32)}}},
		Category: &pb.Label{Slug: "attacker-manifesto"}, LegalBasis: "TCO Art. 3", Binding: true, DeadlineMs: 1000 + hour}}})
	return w
}

func (w *noticeWorld) sign(s *signer, ts int64, b *pb.Entry) *Entry {
	w.t.Helper()
	s.seq++
	b.Version, b.Federation, b.Seq, b.TimestampMs = 1, "f", s.seq, ts
	if s.seq > 1 {
		b.Prev = s.prev[:]
	}
	e, err := Sign(s.key, b)
	if err != nil {
		w.t.Fatal(err)
	}
	s.prev = e.ID
	return e
}

func (w *noticeWorld) reply(s *signer, ts int64, status pb.ReplyStatus, actionMs int64) *Entry {
	r := &pb.NoticeReply{Notice: w.notice.ID[:], Status: status, ActionTimeMs: actionMs}
	if status == pb.ReplyStatus_REPLY_STATUS_NOT_EXECUTED {
		r.Reason = pb.NotExecutedReason_NOT_EXECUTED_REASON_NOT_HOSTED
	}
	return w.sign(s, ts, &pb.Entry{Payload: &pb.Entry_NoticeReply{NoticeReply: r}})
}

func (w *noticeWorld) update(ts int64, withdraw bool, deadline int64) *Entry {
	u := &pb.NoticeUpdate{Notice: w.notice.ID[:], Withdraw: withdraw, DeadlineMs: deadline}
	if !withdraw && deadline == 0 {
		u.Details = &pb.Sealed{Recipients: []*pb.Recipient{{Member: make([]byte, 32), SealedKey: []byte{1}}}, Nonce: []byte{1}, Ciphertext: []byte{1}}
	}
	return w.sign(w.nru, ts, &pb.Entry{Payload: &pb.Entry_NoticeUpdate{NoticeUpdate: u}})
}

func TestNoticeLifecycle(t *testing.T) {
	const (
		received = pb.ReplyStatus_REPLY_STATUS_RECEIVED
		removed  = pb.ReplyStatus_REPLY_STATUS_REMOVED
		disabled = pb.ReplyStatus_REPLY_STATUS_DISABLED
		clarify  = pb.ReplyStatus_REPLY_STATUS_CLARIFICATION_REQUESTED
		notExec  = pb.ReplyStatus_REPLY_STATUS_NOT_EXECUTED
		notFound = pb.ReplyStatus_REPLY_STATUS_NOT_FOUND
	)
	cases := []struct {
		name   string
		build  func(w *noticeWorld) (updates, replies []*Entry)
		now    int64
		want   NoticeState
		ttaMs  int64
		within bool
		deadMs int64
	}{
		{"nothing yet", func(*noticeWorld) ([]*Entry, []*Entry) { return nil, nil }, 2000, NoticeOpen, -1, false, 1000 + hour},
		{"nothing, past the deadline", func(*noticeWorld) ([]*Entry, []*Entry) { return nil, nil }, 1000 + hour + 1, NoticeOverdue, -1, false, 1000 + hour},
		{"received", func(w *noticeWorld) ([]*Entry, []*Entry) {
			return nil, []*Entry{w.reply(w.pf, 5000, received, 0)}
		}, 6000, NoticeAcknowledged, -1, false, 1000 + hour},
		{"received, then the deadline passes", func(w *noticeWorld) ([]*Entry, []*Entry) {
			return nil, []*Entry{w.reply(w.pf, 5000, received, 0)}
		}, 2 * hour, NoticeOverdue, -1, false, 1000 + hour},
		{"removed in time, action time claimed", func(w *noticeWorld) ([]*Entry, []*Entry) {
			return nil, []*Entry{w.reply(w.pf, 5000, received, 0), w.reply(w.pf, 20*60_000, removed, 10*60_000)}
		}, 3 * hour, NoticeActioned, 10*60_000 - 1000, true, 1000 + hour},
		{"disabled late", func(w *noticeWorld) ([]*Entry, []*Entry) {
			return nil, []*Entry{w.reply(w.pf, 2*hour, disabled, 0)}
		}, 3 * hour, NoticeActioned, 2*hour - 1000, false, 1000 + hour},
		{"action time claimed before the notice is clamped to it", func(w *noticeWorld) ([]*Entry, []*Entry) {
			return nil, []*Entry{w.reply(w.pf, 9000, removed, 1)}
		}, 10_000, NoticeActioned, 0, true, 1000 + hour},
		{"action time claimed after the reply is clamped to the reply", func(w *noticeWorld) ([]*Entry, []*Entry) {
			return nil, []*Entry{w.reply(w.pf, 9000, removed, 50_000)}
		}, 60_000, NoticeActioned, 8000, true, 1000 + hour},
		{"not executed", func(w *noticeWorld) ([]*Entry, []*Entry) {
			return nil, []*Entry{w.reply(w.pf, 9000, notExec, 0)}
		}, 10_000, NoticeNotExecuted, 8000, true, 1000 + hour},
		{"not found", func(w *noticeWorld) ([]*Entry, []*Entry) {
			return nil, []*Entry{w.reply(w.pf, 9000, notFound, 0)}
		}, 10_000, NoticeNotExecuted, 8000, true, 1000 + hour},
		{"clarification requested stops the clock", func(w *noticeWorld) ([]*Entry, []*Entry) {
			return nil, []*Entry{w.reply(w.pf, 9000, clarify, 0)}
		}, 5 * hour, NoticeClarificationRequested, -1, false, 0},
		{"clarified: the clock restarts from the update", func(w *noticeWorld) ([]*Entry, []*Entry) {
			return []*Entry{w.update(2*hour, false, 0)}, []*Entry{w.reply(w.pf, 5000, received, 0), w.reply(w.pf, 9000, clarify, 0)}
		}, 2*hour + 10, NoticeAcknowledged, -1, false, 3 * hour},
		{"clarified, then removed within the new deadline", func(w *noticeWorld) ([]*Entry, []*Entry) {
			return []*Entry{w.update(2*hour, false, 0)}, []*Entry{w.reply(w.pf, 9000, clarify, 0), w.reply(w.pf, 2*hour+30*60_000, removed, 0)}
		}, 4 * hour, NoticeActioned, 2*hour + 30*60_000 - 1000, true, 3 * hour},
		{"withdrawn", func(w *noticeWorld) ([]*Entry, []*Entry) {
			return []*Entry{w.update(9000, true, 0)}, nil
		}, 5 * hour, NoticeWithdrawn, -1, false, 1000 + hour},
		{"withdrawn after removal stays actioned", func(w *noticeWorld) ([]*Entry, []*Entry) {
			return []*Entry{w.update(20_000, true, 0)}, []*Entry{w.reply(w.pf, 9000, removed, 0)}
		}, 5 * hour, NoticeActioned, 8000, true, 1000 + hour},
		{"update extends the deadline", func(w *noticeWorld) ([]*Entry, []*Entry) {
			return []*Entry{w.update(9000, false, 3*hour)}, nil
		}, 2 * hour, NoticeOpen, -1, false, 3 * hour},
		{"replies by another member and updates by another issuer are ignored", func(w *noticeWorld) ([]*Entry, []*Entry) {
			u := w.sign(w.stranger, 9000, &pb.Entry{Payload: &pb.Entry_NoticeUpdate{NoticeUpdate: &pb.NoticeUpdate{Notice: w.notice.ID[:], Withdraw: true}}})
			return []*Entry{u}, []*Entry{w.reply(w.stranger, 9000, removed, 0)}
		}, 2000, NoticeOpen, -1, false, 1000 + hour},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newNoticeWorld(t)
			updates, replies := c.build(w)
			got := NoticeLifecycle(w.notice, updates, replies, c.now)
			if got.State != c.want || got.TimeToActionMs != c.ttaMs || got.WithinDeadline != c.within || got.DeadlineMs != c.deadMs {
				t.Errorf("got %+v, want state %s, time to action %d, within %v, deadline %d", got, c.want, c.ttaMs, c.within, c.deadMs)
			}
		})
	}
}

// The result depends on the entries, not on the order they are given in.
func TestNoticeLifecycleOrderIndependent(t *testing.T) {
	w := newNoticeWorld(t)
	r1 := w.reply(w.pf, 5000, pb.ReplyStatus_REPLY_STATUS_RECEIVED, 0)
	r2 := w.reply(w.pf, 9000, pb.ReplyStatus_REPLY_STATUS_CLARIFICATION_REQUESTED, 0)
	u := w.update(2*hour, false, 0)
	r3 := w.reply(w.pf, 2*hour+60_000, pb.ReplyStatus_REPLY_STATUS_REMOVED, 0)
	a := NoticeLifecycle(w.notice, []*Entry{u}, []*Entry{r1, r2, r3}, 5*hour)
	b := NoticeLifecycle(w.notice, []*Entry{u}, []*Entry{r3, r2, r1}, 5*hour)
	if a != b || a.State != NoticeActioned {
		t.Errorf("order changed the result: %+v vs %+v", a, b)
	}
}
