package protocol

import (
	"cmp"
	"slices"

	"github.com/staydown/staydown/protocol/pb"
)

// OrderStatus is where a blocking order stands (SPEC.md 10.3): its notice
// lifecycle, in which a blocked reply is the action, and when blocking
// ends and whether the provider said it unblocked in time.
type OrderStatus struct {
	NoticeStatus
	// StartMs is when blocking starts; EndMs when it ends: the order's
	// end_ms or its lift (its issuer's withdrawal), whichever is first;
	// 0 while it has neither.
	StartMs, EndMs int64
	// LiftID is the issuer's update that lifted the order, zero if none.
	LiftID ID
	// UnblockedMs is when the provider says it unblocked (its first
	// unblocked reply at or after EndMs, action time bounded as for the
	// first action), 0 if it has not.
	UnblockedMs int64
	UnblockedID ID
	// UnblockedWithin: that was no later than EndMs plus the order's
	// allowance (its deadline minus its timestamp).
	UnblockedWithin bool
}

// InForce reports whether the order binds its addressee at nowMs: started,
// not ended, not lifted. (Whether the provider blocked is its reply's
// business: OrderStatus.State.)
func (st OrderStatus) InForce(nowMs int64) bool {
	return st.StartMs <= nowMs && (st.EndMs == 0 || nowMs < st.EndMs)
}

// OrderLifecycle computes a blocking order's status at nowMs from the
// order, its issuer's updates and its addressee's replies, as
// NoticeLifecycle does; entries by anyone else are ignored. The order
// must be a notice with Blocking set.
func OrderLifecycle(order *Entry, updates, replies []*Entry, nowMs int64) OrderStatus {
	n := order.Body.GetNotice()
	st := OrderStatus{NoticeStatus: NoticeLifecycle(order, updates, replies, nowMs), StartMs: OrderStartMs(n, order.Body.TimestampMs)}
	st.EndMs = n.GetBlocking().GetEndMs()
	var lift *Entry
	for _, u := range updates {
		if p := u.Body.GetNoticeUpdate(); p != nil && p.Withdraw && u.Author == order.Author && ID(p.Notice) == order.ID {
			if lift == nil || cmp.Or(cmp.Compare(u.Body.TimestampMs, lift.Body.TimestampMs), slices.Compare(u.ID[:], lift.ID[:])) < 0 {
				lift = u
			}
		}
	}
	if lift != nil {
		// A lift before the start ends the order at its start: it never
		// bound anyone.
		at := max(lift.Body.TimestampMs, st.StartMs)
		if st.EndMs == 0 || at < st.EndMs {
			st.EndMs, st.LiftID = at, lift.ID
		}
	}
	if st.EndMs == 0 || st.EndMs > nowMs {
		return st
	}
	allowance := n.DeadlineMs - order.Body.TimestampMs
	to := AuthorKey(n.Addressee)
	for _, r := range replies {
		p := r.Body.GetNoticeReply()
		if p == nil || r.Author != to || ID(p.Notice) != order.ID || p.Status != pb.ReplyStatus_REPLY_STATUS_UNBLOCKED {
			continue
		}
		ts := r.Body.TimestampMs
		if ts < st.EndMs {
			continue // unblocked before the order ended: not an answer to its end
		}
		at := min(max(cmp.Or(p.ActionTimeMs, ts), st.EndMs), ts)
		if st.UnblockedID.IsZero() || at < st.UnblockedMs || at == st.UnblockedMs && slices.Compare(r.ID[:], st.UnblockedID[:]) < 0 {
			st.UnblockedMs, st.UnblockedID = at, r.ID
		}
	}
	if !st.UnblockedID.IsZero() {
		st.UnblockedWithin = st.UnblockedMs <= st.EndMs+allowance
	}
	return st
}
