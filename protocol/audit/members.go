package audit

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/export"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/replica"
)

// MemberViolation: the membership the file's logs make does not take the
// entry in as it is (SPEC 12.5). Verdict is membership.Unknown (its
// author is no member's key: kind unknown-author), Outside or Past (the
// entry is past the end of its key: kind outside) or Role (the member's
// role for that entry may not write its kind, or a notice is not
// addressed to a platform's key: kind role). Related are the signed
// membership entries that show why: for unknown-author, the amendments
// that would have made the key a member's and did not pass; for outside,
// the rotation that ended the key, or the passed revocations and
// removals (each with the approvals that passed it); for role, the
// passed role changes of the member (each with its approvals).
//
// The audit judges entries once it holds every membership entry, at the
// end of the file; Entry has its bytes once the caller has backfilled
// them (Auditor.NeedsBackfill), and until then only its author and seq.
type MemberViolation struct {
	Where
	Entry   *protocol.Entry
	Verdict membership.Verdict
	Why     string
	Related []*protocol.Entry
}

func (v *MemberViolation) Error() string {
	id := ""
	if v.Entry.Raw != nil {
		id = " (" + v.Entry.ID.String() + ")"
	}
	return fmt.Sprintf("record %d: %s seq %d%s: %s", v.Index, v.Entry.Author, v.Entry.Seq(), id, v.Why)
}

func (v *MemberViolation) Kind() string {
	switch v.Verdict {
	case membership.Unknown:
		return "unknown-author"
	case membership.Outside, membership.Past:
		return "outside"
	}
	return "role"
}

func (v *MemberViolation) Evidence() [][]byte {
	out := [][]byte{v.Entry.Raw}
	for _, e := range v.Related {
		out = append(out, e.Raw)
	}
	return out
}

// Unwrap gives replica.ErrMember, and protocol.ErrUnknownAuthor or
// protocol.ErrRole as the roster's check did before membership.
func (v *MemberViolation) Unwrap() []error {
	switch v.Verdict {
	case membership.Unknown:
		return []error{replica.ErrMember, protocol.ErrUnknownAuthor}
	case membership.Role:
		return []error{replica.ErrMember, protocol.ErrRole}
	}
	return []error{replica.ErrMember}
}

// ConflictingApproval: a member voted for two amendments of one roster
// version (SPEC 12.3): evidence against it, like an equivocation. First
// is the vote that counts. Where is the second's record.
type ConflictingApproval struct {
	Where
	Member        string
	Base          uint64
	First, Second *protocol.Entry
}

func (v *ConflictingApproval) Error() string {
	return fmt.Sprintf("record %d: %s voted for two amendments of version %d: %s (%s seq %d, the vote that counts) and %s (%s seq %d)",
		v.Index, v.Member, v.Base, v.First.ID, v.First.Author, v.First.Seq(), v.Second.ID, v.Second.Author, v.Second.Seq())
}
func (v *ConflictingApproval) Kind() string       { return "conflicting-approval" }
func (v *ConflictingApproval) Evidence() [][]byte { return [][]byte{v.First.Raw, v.Second.Raw} }

// GenesisMismatch: the export's header carries a genesis other than the
// one the audit was given (SPEC 19.1): the exporter's federation was not
// founded as the auditor believes. The audit judges the entries under its
// own genesis all the same.
type GenesisMismatch struct {
	Header, Want [32]byte // genesis hashes: of the header's genesis, of the auditor's
	Err          error    // the header's genesis does not parse (then Header is zero)
}

func (v *GenesisMismatch) Error() string {
	if v.Err != nil {
		return fmt.Sprintf("the export's header carries no valid genesis (%v), not the genesis given to the audit (%x)", v.Err, v.Want)
	}
	return fmt.Sprintf("the export's header carries the genesis %x, not the genesis given to the audit (%x)", v.Header, v.Want)
}
func (v *GenesisMismatch) Kind() string       { return "genesis" }
func (v *GenesisMismatch) Evidence() [][]byte { return nil }

// VoidMembership is a membership entry with no effect (SPEC 12.3:
// membership.History.Voids): an amendment that cannot apply or did not
// pass, a ballot of a member that does not vote, an approval of no
// amendment of its version, a peer update to another member's peer ID.
// It is a signed statement, listed with its reason, not a violation: a
// vote that lost, or an approval that came after another amendment
// passed, is how a federation decides.
type VoidMembership struct {
	Where
	Entry *protocol.Entry
	Why   string
}

// Header compares the export's header with the audit's genesis (FeedBatches
// calls it). A header with no genesis, from an exporter that predates
// membership, is noted in the result, not a violation.
func (a *Auditor) Header(h *pb.ExportHeader) {
	for _, k := range h.GetAuthors() {
		if len(k) == len(protocol.AuthorKey{}) {
			a.exported = append(a.exported, protocol.AuthorKey(k))
		}
	}
	if len(h.GetGenesis()) == 0 {
		a.noHeaderGenesis = true
		return
	}
	// The same genesis is the same hash (SPEC 12.1: the members'
	// addresses are left out): an exporter may list other addresses.
	theirs, err := membership.ParseGenesis(h.Genesis)
	if err != nil {
		a.fail(&GenesisMismatch{Want: a.genesis.Hash(), Err: err})
		return
	}
	if theirs.Hash() != a.genesis.Hash() {
		a.fail(&GenesisMismatch{Header: theirs.Hash(), Want: a.genesis.Hash()})
	}
}

// kindCodes numbers the kinds, for the compact record of each entry the
// audit judges at the end.
var kindCodes = [...]protocol.Kind{
	protocol.KindAddition, protocol.KindRetraction, protocol.KindDispute, protocol.KindAllow,
	protocol.KindNotice, protocol.KindNoticeUpdate, protocol.KindNoticeReply,
	protocol.KindAmendment, protocol.KindApproval, protocol.KindRotation, protocol.KindPeerUpdate,
}

// shells are entries of each kind with an empty payload, by kind code:
// what Judge reads of an entry other than a notice is its kind; of a
// notice, its addressee too (judge fills it in).
var shells = func() []*pb.Entry {
	out := make([]*pb.Entry, len(kindCodes))
	for i, k := range kindCodes {
		var e pb.Entry
		switch k {
		case protocol.KindAddition:
			e.Payload = &pb.Entry_Addition{Addition: &pb.Addition{}}
		case protocol.KindRetraction:
			e.Payload = &pb.Entry_Retraction{Retraction: &pb.Retraction{}}
		case protocol.KindDispute:
			e.Payload = &pb.Entry_Dispute{Dispute: &pb.Dispute{}}
		case protocol.KindAllow:
			e.Payload = &pb.Entry_Allow{Allow: &pb.Allow{}}
		case protocol.KindNotice:
			e.Payload = &pb.Entry_Notice{Notice: &pb.Notice{}}
		case protocol.KindNoticeUpdate:
			e.Payload = &pb.Entry_NoticeUpdate{NoticeUpdate: &pb.NoticeUpdate{}}
		case protocol.KindNoticeReply:
			e.Payload = &pb.Entry_NoticeReply{NoticeReply: &pb.NoticeReply{}}
		case protocol.KindAmendment:
			e.Payload = &pb.Entry_Amendment{Amendment: &pb.Amendment{}}
		case protocol.KindApproval:
			e.Payload = &pb.Entry_Approval{Approval: &pb.Approval{}}
		case protocol.KindRotation:
			e.Payload = &pb.Entry_Rotation{Rotation: &pb.Rotation{}}
		case protocol.KindPeerUpdate:
			e.Payload = &pb.Entry_PeerUpdate{PeerUpdate: &pb.PeerUpdate{}}
		}
		if protocol.KindOf(&e) != k {
			panic("audit: no shell for kind " + string(k))
		}
		out[i] = &e
	}
	return out
}()

func kindCode(k protocol.Kind) uint8 {
	return uint8(slices.Index(kindCodes[:], k))
}

// entryRun is what the audit keeps of consecutive entry records of one log,
// to judge them once it knows the membership: one byte each.
type entryRun struct {
	author   uint32 // index in Auditor.authors
	firstSeq uint64
	firstRec uint64 // record index of the first
	kinds    []uint8
}

// noteEntry keeps what judging e, at record rec, needs.
func (a *Auditor) noteEntry(rec export.Record, e *protocol.Entry) {
	author := a.authorIndex(e.Author)
	code := kindCode(e.Kind())
	extends := false
	if n := len(a.runs); n > 0 {
		r := &a.runs[n-1]
		k := uint64(len(r.kinds))
		extends = r.author == author && r.firstSeq+k == e.Seq() && r.firstRec+k == rec.Index
	}
	if extends {
		r := &a.runs[len(a.runs)-1]
		r.kinds = append(r.kinds, code)
	} else {
		a.runs = append(a.runs, entryRun{author: author, firstSeq: e.Seq(), firstRec: rec.Index, kinds: []uint8{code}})
	}
	if n := e.Body.GetNotice(); n != nil {
		if a.addressees == nil {
			a.addressees = map[uint64]protocol.AuthorKey{}
		}
		a.addressees[rec.Index] = protocol.AuthorKey(n.Addressee)
		if n.Blocking != nil {
			if a.orders == nil {
				a.orders = map[uint64]bool{}
			}
			a.orders[rec.Index] = true
		}
	}
	if r := e.Body.GetNoticeReply(); r != nil && protocol.MayReply(protocol.RoleAccess, r.Status) != protocol.MayReply(protocol.RolePlatform, r.Status) {
		// Membership judges these replies by their status (SPEC 9.1).
		if a.replyStatus == nil {
			a.replyStatus = map[uint64]pb.ReplyStatus{}
		}
		a.replyStatus[rec.Index] = r.Status
	}
}

// memberEntry is a membership entry whose log held up to it, and where.
type memberEntry struct {
	e     *protocol.Entry
	where Where
}

// settle computes the membership from the membership entries of the
// logs, and judges every entry against it (SPEC 12.5), once.
func (a *Auditor) settle() {
	if a.history != nil {
		return
	}
	es := make([]*protocol.Entry, len(a.memberEntries))
	where := map[protocol.ID]Where{}
	for i, m := range a.memberEntries {
		es[i] = m.e
		where[m.e.ID] = m.where
	}
	h := membership.Compute(a.genesis, es)
	a.history = h
	var notice, reply pb.Entry
	noticeBody, replyBody := &pb.Notice{}, &pb.NoticeReply{}
	notice.Payload = &pb.Entry_Notice{Notice: noticeBody}
	reply.Payload = &pb.Entry_NoticeReply{NoticeReply: replyBody}
	for _, r := range a.runs {
		author := a.authors[r.author]
		for i, code := range r.kinds {
			seq, index := r.firstSeq+uint64(i), r.firstRec+uint64(i)
			body := shells[code]
			switch kindCodes[code] {
			case protocol.KindNotice:
				to := a.addressees[index]
				noticeBody.Addressee, noticeBody.Blocking = to[:], nil
				if a.orders[index] {
					noticeBody.Blocking = &pb.Blocking{}
				}
				body = &notice
			case protocol.KindNoticeReply:
				if st, ok := a.replyStatus[index]; ok {
					replyBody.Status = st
					body = &reply
				}
			}
			verdict, why := h.Judge(author, seq, body)
			if verdict == membership.In {
				continue
			}
			v := &MemberViolation{Where: Where{Index: index}, Verdict: verdict, Why: why,
				Entry: &protocol.Entry{Author: author, Body: &pb.Entry{Seq: seq}}}
			a.related(v)
			if a.wanted == nil {
				a.wanted = map[uint64]*MemberViolation{}
			}
			a.wanted[index] = v
			a.memberFindings = append(a.memberFindings, v)
		}
	}
	for _, c := range h.Conflicts {
		a.memberFindings = append(a.memberFindings, &ConflictingApproval{Where: where[c.Second.ID], Member: c.Member, Base: c.Base, First: c.First, Second: c.Second})
	}
	for _, v := range h.Voids {
		a.voids = append(a.voids, VoidMembership{Where: where[v.Entry.ID], Entry: v.Entry, Why: v.Why})
	}
	slices.SortStableFunc(a.voids, func(x, y VoidMembership) int { return compareWhere(x.Where, y.Where) })
	slices.SortStableFunc(a.memberFindings, func(x, y Violation) int { return compareWhere(whereOf(x), whereOf(y)) })
}

func compareWhere(x, y Where) int {
	if x.Index != y.Index {
		if x.Index < y.Index {
			return -1
		}
		return 1
	}
	return 0
}

func whereOf(v Violation) Where {
	switch v := v.(type) {
	case *MemberViolation:
		return v.Where
	case *ConflictingApproval:
		return v.Where
	}
	return Where{}
}

// related finds the membership entries that show why v's entry is not
// taken in (see MemberViolation).
func (a *Auditor) related(v *MemberViolation) {
	h := a.history
	key := v.Entry.Author
	switch v.Verdict {
	case membership.Unknown:
		// Amendments that would have made the key a member's: every
		// amendment that did not pass is pending or void.
		names := func(am *pb.Amendment) bool {
			if b := am.GetAdmit(); b != nil {
				return bytes.Equal(b.AuthorKey, key[:])
			}
			if r := am.GetRevoke(); r != nil {
				return bytes.Equal(r.NewKey, key[:])
			}
			return false
		}
		var notes []string
		for _, p := range h.Pending {
			if names(p.Body) {
				if e, ok := h.Entry(p.ID); ok {
					v.Related = append(v.Related, e)
					notes = append(notes, fmt.Sprintf("amendment %s (%s) would have made it a member's key but was approved by too few (%d of the %d votes needed)", p.ID, p.Change, len(p.Votes), p.Needed))
				}
			}
		}
		for _, d := range h.Voids {
			if am := d.Entry.Body.GetAmendment(); am != nil && names(am) {
				v.Related = append(v.Related, d.Entry)
				notes = append(notes, fmt.Sprintf("amendment %s would have made it a member's key but did not pass: %s", d.Entry.ID, d.Why))
			}
		}
		if len(notes) > 0 {
			v.Why += "; " + strings.Join(notes, "; ")
		}
	case membership.Outside, membership.Past:
		ks, _ := h.Key(key)
		if v.Verdict == membership.Past {
			v.Why += fmt.Sprintf(" (more than %d past its end: nodes do not store it)", membership.OutsideSlack)
		}
		if ks.Why == "rotated" {
			for _, m := range a.memberEntries {
				if m.e.Author == key && m.e.Seq() == ks.End && m.e.Kind() == protocol.KindRotation {
					v.Related = append(v.Related, m.e)
				}
			}
			return
		}
		v.Related = a.passed(func(c *pb.Amendment) bool {
			switch x := c.Change.(type) {
			case *pb.Amendment_Revoke:
				return x.Revoke.Member == ks.Member && (ks.Why == "replaced" || bytes.Equal(x.Revoke.Key, key[:]))
			case *pb.Amendment_Remove:
				return x.Remove.Member == ks.Member && (ks.Why == "replaced" || bytes.Equal(x.Remove.Key, key[:]))
			}
			return false
		})
	case membership.Role:
		ks, _ := h.Key(key)
		v.Related = a.passed(func(c *pb.Amendment) bool {
			r := c.GetRole()
			return r != nil && r.Member == ks.Member
		})
	}
}

// passed lists the amendments that passed (in version order) for which
// match holds, each followed by the other votes that passed it.
func (a *Auditor) passed(match func(*pb.Amendment) bool) []*protocol.Entry {
	h := a.history
	var out []*protocol.Entry
	for _, v := range h.Versions[1:] {
		e, ok := h.Entry(v.Proposal)
		if !ok || !match(e.Body.GetAmendment()) {
			continue
		}
		out = append(out, e)
		for _, vote := range v.Votes {
			if vote.Entry == e.ID {
				continue
			}
			if ve, ok := h.Entry(vote.Entry); ok {
				out = append(out, ve)
			}
		}
	}
	return out
}
