package protocol

import (
	"cmp"
	"slices"

	"github.com/staydown/staydown/protocol/pb"
)

// NoticeState is where a takedown notice stands (SPEC.md, "Notice
// lifecycle").
type NoticeState string

const (
	NoticeOpen                   NoticeState = "open"
	NoticeAcknowledged           NoticeState = "acknowledged"
	NoticeClarificationRequested NoticeState = "clarification-requested"
	NoticeActioned               NoticeState = "actioned"
	NoticeNotExecuted            NoticeState = "not-executed"
	NoticeWithdrawn              NoticeState = "withdrawn"
	NoticeOverdue                NoticeState = "overdue"
)

// NoticeStatus is a notice's lifecycle computed from signed entries alone.
type NoticeStatus struct {
	State NoticeState
	// DeadlineMs is the deadline in force: the notice's, or the last one
	// an update set, or, after a clarification was requested and given,
	// the clarification's time plus the notice's original allowance. 0
	// while a clarification is awaited (the clock is stopped).
	DeadlineMs int64
	// ActionMs is when the platform says it first acted (removed,
	// disabled, not executed, not found), 0 if it has not.
	ActionMs int64
	// ActionID is the reply that was the first action, zero if none.
	ActionID ID
	// TimeToActionMs is ActionMs minus the notice's timestamp, -1 if no
	// action yet.
	TimeToActionMs int64
	// WithinDeadline: the first action came no later than the deadline
	// then in force.
	WithinDeadline bool
}

// NoticeLifecycle computes a notice's status at nowMs from the notice,
// its issuer's updates and its addressee's replies; entries by anyone else
// are ignored, as are entries that are not an update or reply of this
// notice. Events are taken in the order of their timestamps (ties: updates
// before replies, then by id), since they come from two logs.
//
// Times are the authors' claims (SPEC.md, "Timestamps"). A reply's
// action_time_ms is its author's claim of when it acted; it is bounded to
// lie between the notice's timestamp and the reply's own timestamp (a
// platform cannot claim to have acted before it was told, or after it
// signed its reply); 0 means the reply's timestamp.
func NoticeLifecycle(notice *Entry, updates, replies []*Entry, nowMs int64) NoticeStatus {
	n := notice.Body.GetNotice()
	issued := notice.Body.TimestampMs
	allowance := n.DeadlineMs - issued
	st := NoticeStatus{State: NoticeOpen, DeadlineMs: n.DeadlineMs, TimeToActionMs: -1}

	type event struct {
		e      *Entry
		update *pb.NoticeUpdate
		reply  *pb.NoticeReply
	}
	var events []event
	var to AuthorKey
	copy(to[:], n.Addressee)
	for _, u := range updates {
		if p := u.Body.GetNoticeUpdate(); p != nil && u.Author == notice.Author && ID(p.Notice) == notice.ID {
			events = append(events, event{e: u, update: p})
		}
	}
	for _, r := range replies {
		if p := r.Body.GetNoticeReply(); p != nil && r.Author == to && ID(p.Notice) == notice.ID {
			events = append(events, event{e: r, reply: p})
		}
	}
	slices.SortStableFunc(events, func(a, b event) int {
		if c := cmp.Compare(a.e.Body.TimestampMs, b.e.Body.TimestampMs); c != 0 {
			return c
		}
		if (a.update != nil) != (b.update != nil) {
			if a.update != nil {
				return -1
			}
			return 1
		}
		return slices.Compare(a.e.ID[:], b.e.ID[:])
	})

	closed := func() bool {
		switch st.State {
		case NoticeActioned, NoticeNotExecuted, NoticeWithdrawn:
			return true
		}
		return false
	}
	acknowledged := false
	for _, ev := range events {
		if closed() {
			break
		}
		ts := ev.e.Body.TimestampMs
		if u := ev.update; u != nil {
			if u.Withdraw {
				st.State = NoticeWithdrawn
				continue
			}
			if st.State == NoticeClarificationRequested {
				// The clock restarts from the clarification.
				st.DeadlineMs = ts + allowance
				st.State = NoticeOpen
				if acknowledged {
					st.State = NoticeAcknowledged
				}
			}
			if u.DeadlineMs > 0 {
				st.DeadlineMs = u.DeadlineMs
			}
			continue
		}
		switch r := ev.reply; r.Status {
		case pb.ReplyStatus_REPLY_STATUS_RECEIVED:
			acknowledged = true
			if st.State == NoticeOpen {
				st.State = NoticeAcknowledged
			}
		case pb.ReplyStatus_REPLY_STATUS_CLARIFICATION_REQUESTED:
			st.State = NoticeClarificationRequested
			st.DeadlineMs = 0
		case pb.ReplyStatus_REPLY_STATUS_REMOVED, pb.ReplyStatus_REPLY_STATUS_DISABLED, pb.ReplyStatus_REPLY_STATUS_BLOCKED,
			pb.ReplyStatus_REPLY_STATUS_NOT_EXECUTED, pb.ReplyStatus_REPLY_STATUS_NOT_FOUND:
			deadline := st.DeadlineMs
			st.ActionMs = min(max(cmp.Or(r.ActionTimeMs, ts), issued), ts)
			st.ActionID = ev.e.ID
			st.TimeToActionMs = st.ActionMs - issued
			st.WithinDeadline = deadline == 0 || st.ActionMs <= deadline // 0: the clock was stopped
			st.State = NoticeNotExecuted
			if r.Status == pb.ReplyStatus_REPLY_STATUS_REMOVED || r.Status == pb.ReplyStatus_REPLY_STATUS_DISABLED || r.Status == pb.ReplyStatus_REPLY_STATUS_BLOCKED {
				st.State = NoticeActioned
			}
		}
	}
	st.State = st.At(nowMs)
	return st
}

// At is the state at nowMs of a status computed at an earlier time: an
// open or acknowledged notice is overdue once its deadline has passed.
// Nothing else about a notice changes with the clock alone, so a status
// computed once serves any later time until a new update or reply.
func (st NoticeStatus) At(nowMs int64) NoticeState {
	if (st.State == NoticeOpen || st.State == NoticeAcknowledged) && nowMs > st.DeadlineMs {
		return NoticeOverdue
	}
	return st.State
}
