package protocol

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"slices"

	"github.com/staydown/staydown/protocol/pb"
)

// Kind names a payload type.
type Kind string

const (
	KindAddition     Kind = "addition"
	KindRetraction   Kind = "retraction"
	KindDispute      Kind = "dispute"
	KindAllow        Kind = "allow"
	KindNotice       Kind = "notice"
	KindNoticeUpdate Kind = "notice-update"
	KindNoticeReply  Kind = "notice-reply"
	// Membership kinds (SPEC 12).
	KindAmendment  Kind = "amendment"
	KindApproval   Kind = "approval"
	KindRotation   Kind = "rotation"
	KindPeerUpdate Kind = "peer-update"
)

// IsMembership reports whether entries of kind k change the roster (SPEC 12).
func (k Kind) IsMembership() bool {
	return k == KindAmendment || k == KindApproval || k == KindRotation || k == KindPeerUpdate
}

// KindOf returns the kind of the entry's payload, "" if it has none.
func KindOf(b *pb.Entry) Kind {
	switch b.GetPayload().(type) {
	case *pb.Entry_Addition:
		return KindAddition
	case *pb.Entry_Retraction:
		return KindRetraction
	case *pb.Entry_Dispute:
		return KindDispute
	case *pb.Entry_Allow:
		return KindAllow
	case *pb.Entry_Notice:
		return KindNotice
	case *pb.Entry_NoticeUpdate:
		return KindNoticeUpdate
	case *pb.Entry_NoticeReply:
		return KindNoticeReply
	case *pb.Entry_Amendment:
		return KindAmendment
	case *pb.Entry_Approval:
		return KindApproval
	case *pb.Entry_Rotation:
		return KindRotation
	case *pb.Entry_PeerUpdate:
		return KindPeerUpdate
	}
	return ""
}

// MaxFederationLen bounds the federation name in bytes.
const MaxFederationLen = 64

// CheckFederation checks a federation name: 1 to 64 bytes of lower-case
// ASCII letters, digits, '-', '_' and '.'. Every entry is signed with it
// and it names the gossip topic, so it must read the same everywhere.
func CheckFederation(f string) error {
	if f == "" || len(f) > MaxFederationLen {
		return fmt.Errorf("want 1 to %d bytes, got %d", MaxFederationLen, len(f))
	}
	for i := 0; i < len(f); i++ {
		if c := f[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%q: byte %d (%q) is not a lower-case letter, digit, '-', '_' or '.'", f, i, c)
		}
	}
	return nil
}

func malformed(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrMalformed, field, fmt.Sprintf(format, args...))
}

// checkEntry checks the header fields and the payload's shape.
func checkEntry(b *pb.Entry) error {
	switch {
	case b.Version != Version:
		return malformed("version", "%d, want %d", b.Version, Version)
	case CheckFederation(b.Federation) != nil:
		return malformed("federation", "%v", CheckFederation(b.Federation))
	case len(b.Author) != ed25519.PublicKeySize:
		return malformed("author", "want %d bytes, got %d", ed25519.PublicKeySize, len(b.Author))
	case b.Seq == 0:
		return malformed("seq", "must be at least 1")
	case b.Seq == 1 && len(b.Prev) != 0:
		return malformed("prev", "must be empty at seq 1")
	case b.TimestampMs <= 0:
		return malformed("timestamp_ms", "must be positive, got %d", b.TimestampMs)
	}
	if b.Seq > 1 {
		if _, err := idFromBytes(b.Prev); err != nil {
			return malformed("prev", "%v", err)
		}
	}
	return CheckPayload(b)
}

// CheckPayload checks the shape of the entry's payload: fields present,
// values in their vocabularies and within their limits. It needs no state.
func CheckPayload(b *pb.Entry) error {
	if payloadIsNil(b) {
		return malformed("payload", "present but empty")
	}
	switch p := b.GetPayload().(type) {
	case *pb.Entry_Addition:
		a := p.Addition
		if err := checkSignals("addition.signals", a.Signals, 1); err != nil {
			return err
		}
		if len(a.Labels) == 0 || len(a.Labels) > MaxLabels {
			return malformed("addition.labels", "want 1 to %d labels, got %d", MaxLabels, len(a.Labels))
		}
		for i, l := range a.Labels {
			if err := CheckLabel(l); err != nil {
				return malformed(fmt.Sprintf("addition.labels[%d]", i), "%v", err)
			}
		}
		return checkText("addition.case_ref", a.CaseRef, MaxCaseRefLen, false)
	case *pb.Entry_Retraction:
		if err := checkID("retraction.target", p.Retraction.Target); err != nil {
			return err
		}
		if err := checkNamedSignals("retraction.signals", p.Retraction.Signals); err != nil {
			return err
		}
		return checkText("retraction.reason", p.Retraction.Reason, MaxReasonLen, false)
	case *pb.Entry_Dispute:
		if err := checkID("dispute.target", p.Dispute.Target); err != nil {
			return err
		}
		if err := checkNamedSignals("dispute.signals", p.Dispute.Signals); err != nil {
			return err
		}
		return checkText("dispute.reason", p.Dispute.Reason, MaxReasonLen, true)
	case *pb.Entry_Allow:
		a := p.Allow
		if err := checkSignals("allow.signals", a.Signals, 1); err != nil {
			return err
		}
		if !inVocab(AllowCategories, a.Category) {
			return malformed("allow.category", "%q; use one of counter-speech, news, research, other", a.Category)
		}
		return checkText("allow.reason", a.Reason, MaxReasonLen, true)
	case *pb.Entry_Notice:
		n := p.Notice
		if len(n.Addressee) != ed25519.PublicKeySize {
			return malformed("notice.addressee", "want a %d-byte author key, got %d bytes", ed25519.PublicKeySize, len(n.Addressee))
		}
		if err := checkSignals("notice.signals", n.Signals, 0); err != nil {
			return err
		}
		if len(n.Signals) == 0 && n.Details == nil {
			return malformed("notice", "names no target: give signals, or URLs in sealed details")
		}
		if err := CheckLabel(n.Category); err != nil {
			return malformed("notice.category", "%v", err)
		}
		if err := checkText("notice.legal_basis", n.LegalBasis, MaxReasonLen, true); err != nil {
			return err
		}
		if n.DeadlineMs <= b.TimestampMs {
			return malformed("notice.deadline_ms", "%d is not after the entry's timestamp %d", n.DeadlineMs, b.TimestampMs)
		}
		if err := checkBlocking(n, b.TimestampMs); err != nil {
			return err
		}
		return checkSealed("notice.details", n.Details)
	case *pb.Entry_NoticeUpdate:
		u := p.NoticeUpdate
		if err := checkID("notice_update.notice", u.Notice); err != nil {
			return err
		}
		if u.DeadlineMs < 0 || (u.DeadlineMs > 0 && u.DeadlineMs <= b.TimestampMs) {
			return malformed("notice_update.deadline_ms", "%d must be 0 (unchanged) or after the entry's timestamp", u.DeadlineMs)
		}
		if !u.Withdraw && u.DeadlineMs == 0 && u.Details == nil {
			return malformed("notice_update", "changes nothing: withdraw, or give a deadline or details")
		}
		return checkSealed("notice_update.details", u.Details)
	case *pb.Entry_NoticeReply:
		r := p.NoticeReply
		if err := checkID("notice_reply.notice", r.Notice); err != nil {
			return err
		}
		if _, ok := pb.ReplyStatus_name[int32(r.Status)]; !ok || r.Status == pb.ReplyStatus_REPLY_STATUS_UNSPECIFIED {
			return malformed("notice_reply.status", "unknown status %d", r.Status)
		}
		_, known := pb.NotExecutedReason_name[int32(r.Reason)]
		switch {
		case r.Status == pb.ReplyStatus_REPLY_STATUS_NOT_EXECUTED && (!known || r.Reason == pb.NotExecutedReason_NOT_EXECUTED_REASON_UNSPECIFIED):
			return malformed("notice_reply.reason", "not-executed needs a reason from the list, got %d", r.Reason)
		case r.Status != pb.ReplyStatus_REPLY_STATUS_NOT_EXECUTED && r.Reason != pb.NotExecutedReason_NOT_EXECUTED_REASON_UNSPECIFIED:
			return malformed("notice_reply.reason", "only a not-executed reply carries a reason")
		case r.ActionTimeMs < 0:
			return malformed("notice_reply.action_time_ms", "negative")
		}
		return checkText("notice_reply.text", r.Text, MaxReplyText, false)
	case *pb.Entry_Amendment:
		return checkAmendment(p.Amendment)
	case *pb.Entry_Approval:
		return checkID("approval.proposal", p.Approval.Proposal)
	case *pb.Entry_Rotation:
		if err := checkKey("rotation.new_key", p.Rotation.NewKey); err != nil {
			return err
		}
		if string(p.Rotation.NewKey) == string(b.Author) {
			return malformed("rotation.new_key", "is the author's own key")
		}
		return nil
	case *pb.Entry_PeerUpdate:
		return CheckPeer("peer_update", p.PeerUpdate.PeerId, p.PeerUpdate.Addrs)
	}
	return malformed("payload", "missing or of an unknown type")
}

func checkSignals(field string, sigs []*pb.Signal, min int) error {
	if len(sigs) < min || len(sigs) > MaxSignals {
		return malformed(field, "want %d to %d signals, got %d", min, MaxSignals, len(sigs))
	}
	for i, s := range sigs {
		if err := CheckSignal(s); err != nil {
			return malformed(fmt.Sprintf("%s[%d]", field, i), "%v", err)
		}
	}
	return nil
}

// checkNamedSignals checks the signals a retraction or a dispute names
// (SPEC 6.2, 6.3): none (all of the target's), or up to MaxSignals valid
// signals in strictly increasing index-key order, so that a set has one
// encoding and names no signal twice.
func checkNamedSignals(field string, sigs []*pb.Signal) error {
	if err := checkSignals(field, sigs, 0); err != nil {
		return err
	}
	var prev []byte
	for i, s := range sigs {
		k := SignalKey(s)
		if i > 0 && bytes.Compare(prev, k) >= 0 {
			return malformed(fmt.Sprintf("%s[%d]", field, i), "%s is not after %s in index-key order (SPEC 7.5): sort them and name each once", FormatSignal(s), FormatSignal(sigs[i-1]))
		}
		prev = k
	}
	return nil
}

// SortSignals sorts signals into index-key order and drops repeats, the
// form a retraction or a dispute names them in (SPEC 6.2, 6.3). The
// signals must have passed CheckSignal.
func SortSignals(sigs []*pb.Signal) []*pb.Signal {
	out := slices.Clone(sigs)
	slices.SortStableFunc(out, func(a, b *pb.Signal) int { return bytes.Compare(SignalKey(a), SignalKey(b)) })
	return slices.CompactFunc(out, func(a, b *pb.Signal) bool { return bytes.Equal(SignalKey(a), SignalKey(b)) })
}

// Names reports whether a retraction or a dispute that names these
// signals (nil: all of its target's) bears on the signal with index key
// key.
func Names(named []*pb.Signal, key []byte) bool {
	if len(named) == 0 {
		return true
	}
	for _, s := range named {
		if bytes.Equal(SignalKey(s), key) {
			return true
		}
	}
	return false
}

func checkID(field string, b []byte) error {
	if _, err := idFromBytes(b); err != nil {
		return malformed(field, "%v", err)
	}
	return nil
}

func checkText(field, s string, max int, required bool) error {
	switch {
	case required && s == "":
		return malformed(field, "required")
	case len(s) > max:
		return malformed(field, "%d bytes, limit %d", len(s), max)
	}
	return nil
}

// Limits on sealed details.
const (
	MaxRecipients      = 64
	MaxSealedKeyLen    = 256
	MaxSealedNonceLen  = 64
	MaxSealedTextBytes = 32 << 10
)

func checkSealed(field string, s *pb.Sealed) error {
	if s == nil {
		return nil
	}
	if len(s.Recipients) == 0 || len(s.Recipients) > MaxRecipients {
		return malformed(field+".recipients", "want 1 to %d, got %d", MaxRecipients, len(s.Recipients))
	}
	for i, r := range s.Recipients {
		if len(r.Member) != ed25519.PublicKeySize || len(r.SealedKey) == 0 || len(r.SealedKey) > MaxSealedKeyLen {
			return malformed(fmt.Sprintf("%s.recipients[%d]", field, i), "want a 32-byte member key and a sealed key of 1 to %d bytes", MaxSealedKeyLen)
		}
	}
	if len(s.Nonce) == 0 || len(s.Nonce) > MaxSealedNonceLen {
		return malformed(field+".nonce", "want 1 to %d bytes, got %d", MaxSealedNonceLen, len(s.Nonce))
	}
	if len(s.Ciphertext) == 0 || len(s.Ciphertext) > MaxSealedTextBytes {
		return malformed(field+".ciphertext", "want 1 to %d bytes, got %d", MaxSealedTextBytes, len(s.Ciphertext))
	}
	return nil
}

// ReplyStatuses maps reply statuses to their names in SPEC.md and the CLI.
var ReplyStatuses = map[pb.ReplyStatus]string{
	pb.ReplyStatus_REPLY_STATUS_RECEIVED:                "received",
	pb.ReplyStatus_REPLY_STATUS_REMOVED:                 "removed",
	pb.ReplyStatus_REPLY_STATUS_DISABLED:                "disabled",
	pb.ReplyStatus_REPLY_STATUS_CLARIFICATION_REQUESTED: "clarification-requested",
	pb.ReplyStatus_REPLY_STATUS_NOT_EXECUTED:            "not-executed",
	pb.ReplyStatus_REPLY_STATUS_NOT_FOUND:               "not-found",
	pb.ReplyStatus_REPLY_STATUS_BLOCKED:                 "blocked",
	pb.ReplyStatus_REPLY_STATUS_UNBLOCKED:               "unblocked",
}

// NotExecutedReasons maps not-executed reasons to their names.
var NotExecutedReasons = map[pb.NotExecutedReason]string{
	pb.NotExecutedReason_NOT_EXECUTED_REASON_FORCE_MAJEURE:            "force-majeure",
	pb.NotExecutedReason_NOT_EXECUTED_REASON_MANIFEST_ERROR:           "manifest-error",
	pb.NotExecutedReason_NOT_EXECUTED_REASON_INSUFFICIENT_INFORMATION: "insufficient-information",
	pb.NotExecutedReason_NOT_EXECUTED_REASON_NOT_HOSTED:               "not-hosted",
}

// payloadIsNil reports a oneof wrapper holding a nil message, which Go
// code can build (&pb.Entry_Addition{}) though no decoder produces it.
func payloadIsNil(b *pb.Entry) bool {
	switch p := b.GetPayload().(type) {
	case *pb.Entry_Addition:
		return p.Addition == nil
	case *pb.Entry_Retraction:
		return p.Retraction == nil
	case *pb.Entry_Dispute:
		return p.Dispute == nil
	case *pb.Entry_Allow:
		return p.Allow == nil
	case *pb.Entry_Notice:
		return p.Notice == nil
	case *pb.Entry_NoticeUpdate:
		return p.NoticeUpdate == nil
	case *pb.Entry_NoticeReply:
		return p.NoticeReply == nil
	case *pb.Entry_Amendment:
		return p.Amendment == nil
	case *pb.Entry_Approval:
		return p.Approval == nil
	case *pb.Entry_Rotation:
		return p.Rotation == nil
	case *pb.Entry_PeerUpdate:
		return p.PeerUpdate == nil
	}
	return false
}

// NamedSignals returns the signals a retraction or a dispute names (nil:
// all of its target's), and false for an entry of any other kind.
func NamedSignals(b *pb.Entry) ([]*pb.Signal, bool) {
	switch p := b.GetPayload().(type) {
	case *pb.Entry_Retraction:
		return p.Retraction.GetSignals(), true
	case *pb.Entry_Dispute:
		return p.Dispute.GetSignals(), true
	}
	return nil, false
}

// CarriedSignals returns the signals an entry carries, the ones a
// retraction or a dispute of it may name: an addition's, an allow
// entry's, a notice's, and those a dispute names. known is false when
// the set is not the entry's to say: a dispute that names none bears on
// all of its own target's signals.
func CarriedSignals(b *pb.Entry) (sigs []*pb.Signal, known bool) {
	switch p := b.GetPayload().(type) {
	case *pb.Entry_Addition:
		return p.Addition.Signals, true
	case *pb.Entry_Allow:
		return p.Allow.Signals, true
	case *pb.Entry_Notice:
		return p.Notice.Signals, true
	case *pb.Entry_Dispute:
		return p.Dispute.Signals, len(p.Dispute.Signals) > 0
	}
	return nil, true
}

// NamedElsewhere returns the signals in named that target does not carry
// (SPEC 6.2, 6.3): naming them concerns nothing. It returns nil when
// target's signals are not known (CarriedSignals).
func NamedElsewhere(named []*pb.Signal, target *pb.Entry) []*pb.Signal {
	carried, known := CarriedSignals(target)
	if !known {
		return nil
	}
	keys := make(map[string]bool, len(carried))
	for _, s := range carried {
		keys[string(SignalKey(s))] = true
	}
	var out []*pb.Signal
	for _, s := range named {
		if !keys[string(SignalKey(s))] {
			out = append(out, s)
		}
	}
	return out
}

// checkBlocking checks a blocking order's terms (SPEC.md 6.9): 1 to 1000
// signals, every one a domain; no sealed details (the list a provider
// blocks is public); start and end not negative, and an end after the
// order starts.
func checkBlocking(n *pb.Notice, timestampMs int64) error {
	bl := n.Blocking
	if bl == nil {
		return nil
	}
	if len(n.Signals) == 0 {
		return malformed("notice.signals", "a blocking order names 1 to 1000 domain signals, got none")
	}
	for i, s := range n.Signals {
		if s.GetDomain() == nil {
			return malformed(fmt.Sprintf("notice.signals[%d]", i), "a blocking order names domain signals only, got %s", TypeOf(s))
		}
	}
	if n.Details != nil {
		return malformed("notice.details", "a blocking order carries no sealed details: what a provider blocks is public")
	}
	if bl.StartMs < 0 {
		return malformed("notice.blocking.start_ms", "negative")
	}
	if start := OrderStartMs(n, timestampMs); bl.EndMs != 0 && bl.EndMs <= start {
		return malformed("notice.blocking.end_ms", "%d is not after the order's start %d", bl.EndMs, start)
	}
	return nil
}

// OrderStartMs is when a blocking order starts: its start_ms, or the
// notice's timestamp if that is 0.
func OrderStartMs(n *pb.Notice, timestampMs int64) int64 {
	if s := n.GetBlocking().GetStartMs(); s != 0 {
		return s
	}
	return timestampMs
}
