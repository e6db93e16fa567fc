package store

import (
	"math"
	"testing"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

func reply(n protocol.ID, status pb.ReplyStatus) *pb.Entry {
	r := &pb.NoticeReply{Notice: n[:], Status: status}
	if status == pb.ReplyStatus_REPLY_STATUS_NOT_EXECUTED {
		r.Reason = pb.NotExecutedReason_NOT_EXECUTED_REASON_NOT_HOSTED
	}
	return &pb.Entry{Payload: &pb.Entry_NoticeReply{NoticeReply: r}}
}

// Stay down (SPEC 10.2): a notice that names a signal matches it once its
// addressee has removed or disabled the content, and not before.
func TestNoticeAttestation(t *testing.T) {
	const (
		received = pb.ReplyStatus_REPLY_STATUS_RECEIVED
		removed  = pb.ReplyStatus_REPLY_STATUS_REMOVED
		disabled = pb.ReplyStatus_REPLY_STATUS_DISABLED
		notExec  = pb.ReplyStatus_REPLY_STATUS_NOT_EXECUTED
	)
	s, w := mustOpen(t), newWorld(t)
	A, B, C := w.A, w.B, w.C
	n1 := A.next(notice(B.key, sha("n1")))
	n2 := A.next(notice(B.key, sha("n2")))
	n3 := A.next(notice(B.key, sha("n3")))
	n4 := A.next(notice(B.key, sha("n4")))
	n5 := A.next(notice(B.key, sha("n5")))
	s.mustApply(Applied, A.log...)
	for _, sig := range []string{"n1", "n2", "n3", "n4", "n5"} {
		wantMatches(t, s, sha(sig), 0) // nothing actioned yet
	}

	s.mustApply(Applied,
		B.next(reply(n1.ID, received)), // acknowledged only
		B.next(reply(n2.ID, removed)),
		B.next(reply(n3.ID, disabled)),
		B.next(reply(n4.ID, notExec)),
		C.next(reply(n5.ID, removed)), // not the addressee: no effect
	)
	wantMatches(t, s, sha("n1"), 0)
	wantMatches(t, s, sha("n4"), 0)
	wantMatches(t, s, sha("n5"), 0)
	for _, sig := range []string{"n2", "n3"} {
		a := matchOne(t, s, sha(sig))
		if a.Kind != protocol.KindNotice || a.Author != A.key || a.Status != StatusActive || a.Notice == nil ||
			a.Notice.Addressee != B.key || !a.Notice.Binding || a.Labels[0] != "attacker-manifesto" {
			t.Errorf("%s: %+v", sig, a)
		}
	}
	if a := matchOne(t, s, sha("n2")); a.Notice.Reply != B.log[1].ID {
		t.Errorf("n2: action reply %s, want %s", a.Notice.Reply, B.log[1].ID)
	}

	// A dispute of the notice, an allow of the signal, a withdrawal by the
	// issuer: the attestation stays listed, its status says why.
	s.mustApply(Applied, C.next(dispute(n2.ID, "this is news footage")))
	if a := matchOne(t, s, sha("n2")); a.Status != StatusDisputed || a.Reasons[0].Author != C.key {
		t.Errorf("disputed n2: %+v", a)
	}
	s.mustApply(Applied, C.next(allow("news", "broadcast", sha("n2"))))
	if a := matchOne(t, s, sha("n2")); a.Status != StatusAllowlisted {
		t.Errorf("allowlisted n2: %+v", a)
	}
	s.mustApply(Applied, A.next(noticeUpdate(n3.ID)))
	if a := matchOne(t, s, sha("n3")); a.Status != StatusRetracted || a.Reasons[0].Kind != protocol.KindNoticeUpdate {
		t.Errorf("withdrawn n3: %+v", a)
	}

	// The notice signals are loaded like addition signals.
	var keys int
	if err := s.SignalKeys(protocol.SignalSHA256, func([]byte) error { keys++; return nil }); err != nil || keys != 5 {
		t.Errorf("SignalKeys: %d keys, %v; want the 5 notice signals", keys, err)
	}
}

func TestNoticesListsThreads(t *testing.T) {
	s, w := mustOpen(t), newWorld(t)
	A, B, C := w.A, w.B, w.C
	n1 := A.next(notice(B.key, sha("a")))
	n2 := A.next(notice(C.key, sha("b")))
	A.next(noticeUpdate(n1.ID))
	B.next(reply(n1.ID, pb.ReplyStatus_REPLY_STATUS_RECEIVED))
	C.next(reply(n1.ID, pb.ReplyStatus_REPLY_STATUS_REMOVED)) // not its addressee
	s.mustApply(Applied, append(append(A.log, B.log...), C.log...)...)
	got := map[protocol.ID]NoticeThread{}
	if err := s.Notices(func(t NoticeThread) error { got[t.Notice.ID] = t; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d threads, want 2", len(got))
	}
	if th := got[n1.ID]; len(th.Updates) != 1 || len(th.Replies) != 1 || th.Replies[0].Author != B.key {
		t.Errorf("n1 thread: %d updates, %d replies", len(th.Updates), len(th.Replies))
	}
	if th := got[n2.ID]; len(th.Updates) != 0 || len(th.Replies) != 0 {
		t.Errorf("n2 thread: %+v", th)
	}
}

// Arrivals number entries in the order this store logged them, across
// Apply and Append, and survive a Rebuild.
func TestArrivals(t *testing.T) {
	s, w := mustOpen(t), newWorld(t)
	a1 := w.A.next(addition(sha("x")))
	b1 := w.B.next(addition(sha("y")))
	a2 := w.A.next(addition(sha("z")))
	s.mustApply(Applied, b1, a1)
	s.mustApply(Duplicate, a1)
	s.mustApply(Applied, a2)
	c1, err := s.Append(w.C.key, func(h protocol.Head) (*protocol.Entry, error) {
		return w.C.next(addition(sha("w"))), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []protocol.ID{b1.ID, a1.ID, a2.ID, c1.ID}
	read := func(after uint64, limit int) []protocol.ID {
		var got []protocol.ID
		err := s.Arrivals(after, limit, func(a Arrival) error {
			if a.N != after+uint64(len(got))+1 {
				t.Errorf("arrival %d after %d", a.N, after)
			}
			got = append(got, a.Entry.ID)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := read(0, 0); len(got) != 4 || got[0] != want[0] || got[3] != want[3] {
		t.Fatalf("arrivals %v, want %v", got, want)
	}
	if got := read(2, 1); len(got) != 1 || got[0] != want[2] {
		t.Errorf("after 2, limit 1: %v", got)
	}
	if got := read(4, 0); len(got) != 0 {
		t.Errorf("after the last: %v", got)
	}
	if got := read(math.MaxUint64, 0); len(got) != 0 {
		t.Errorf("after the largest position: %v (the position wrapped round to 0)", got)
	}
	if n, _ := s.LastArrival(); n != 4 {
		t.Errorf("last arrival %d", n)
	}
	if err := s.Rebuild(); err != nil {
		t.Fatal(err)
	}
	if got := read(0, 0); len(got) != 4 || got[1] != want[1] {
		t.Errorf("after Rebuild: %v", got)
	}
}
