package replica

import (
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// Effect is what a stored entry changes, for the readers that keep state
// derived from the replica (match results, notice threads, heads). It is
// derived from the entry alone (SPEC 10: the status of an attestation is
// read from the facts of every log when asked), so it names what may
// have changed, not the new value.
type Effect struct {
	// Head is the author's new head (zero for an equivocation).
	Head protocol.Head
	// Signals are the keys (protocol.SignalKey) whose match results may
	// have changed: an addition's, an allow entry's, a notice's.
	Signals [][]byte
	// Entries are the ids whose attestations may have changed status:
	// the target of a retraction or a dispute (an addition, an allow
	// entry, a notice).
	Entries []protocol.ID
	// Thread is the notice whose thread changed (a notice, its update or
	// a reply to it), if any.
	Thread *protocol.ID
	// Flagged is set when the entry proves its author equivocated: every
	// attestation of that author changes.
	Flagged protocol.AuthorKey
}

// Equivocated reports whether the effect flags an author.
func (f Effect) Equivocated() bool { return f.Flagged != protocol.AuthorKey{} }

// effectOf is the effect of an applied entry.
func effectOf(e *protocol.Entry, head protocol.Head) Effect {
	f := Effect{Head: head}
	keys := func(sigs []*pb.Signal) {
		for _, s := range sigs {
			f.Signals = append(f.Signals, protocol.SignalKey(s))
		}
	}
	thread := func(b []byte) {
		if id, ok := idFrom(b); ok {
			f.Thread = &id
		}
	}
	switch p := e.Body.GetPayload().(type) {
	case *pb.Entry_Addition:
		keys(p.Addition.Signals)
	case *pb.Entry_Allow:
		keys(p.Allow.Signals)
	case *pb.Entry_Retraction:
		if id, ok := idFrom(p.Retraction.Target); ok {
			f.Entries = append(f.Entries, id)
		}
	case *pb.Entry_Dispute:
		if id, ok := idFrom(p.Dispute.Target); ok {
			f.Entries = append(f.Entries, id)
		}
	case *pb.Entry_Notice:
		keys(p.Notice.Signals)
		id := e.ID
		f.Thread = &id
	case *pb.Entry_NoticeUpdate:
		thread(p.NoticeUpdate.Notice)
	case *pb.Entry_NoticeReply:
		thread(p.NoticeReply.Notice)
	}
	return f
}
