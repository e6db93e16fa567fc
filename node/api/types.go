package api

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/staydown/staydown/node/notices"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// The JSON bodies of the API. The CLI uses the same types, so the server
// and its one client cannot drift apart. openapi.yaml describes them.

// Signal is a typed signal as users write it: a type from
// protocol.SignalTypes and a value that protocol.ParseSignal accepts. In
// responses, Value is the normalised form (protocol.SignalValue).
type Signal struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// AdditionRequest is the body of POST /v1/additions.
type AdditionRequest struct {
	Signals []Signal `json:"signals"`
	Labels  []string `json:"labels"` // slugs, or "other:FREE TEXT"
	CaseRef string   `json:"case_ref,omitempty"`
}

// RetractionRequest is the body of POST /v1/retractions.
type RetractionRequest struct {
	Target string `json:"target"` // entry id, hex
	Reason string `json:"reason,omitempty"`
	// Signals are the target's signals it withdraws (SPEC 6.2); none:
	// all of them. Sent in any order: the entry names them sorted, once
	// each.
	Signals []Signal `json:"signals,omitempty"`
}

// DisputeRequest is the body of POST /v1/disputes. Reason is required.
type DisputeRequest struct {
	Target string `json:"target"` // entry id of an addition, hex
	Reason string `json:"reason"`
	// Signals are the target's signals it disputes (SPEC 6.3); none: all
	// of them.
	Signals []Signal `json:"signals,omitempty"`
}

// AllowRequest is the body of POST /v1/allows. Reason is required.
type AllowRequest struct {
	Signals  []Signal `json:"signals"`
	Category string   `json:"category"` // one of protocol.AllowCategories
	Reason   string   `json:"reason"`
}

// Published is the 201 answer to every write: the new entry of this node's
// log.
type Published struct {
	ID     string `json:"id"` // entry id, hex
	Seq    uint64 `json:"seq"`
	Author string `json:"author"` // member name
}

// MatchRequest is the body of POST /v1/match.
type MatchRequest struct {
	Signals []Signal `json:"signals"`
}

// MatchResults answers POST /v1/match: one result per signal, in order.
type MatchResults struct {
	Results []MatchResult `json:"results"`
}

// MatchResult is what the federation says about one signal. It is also the
// whole answer of GET /v1/match and of `staydown match --json`.
type MatchResult struct {
	Signal Signal `json:"signal"`
	// Matched: at least one attestation's status is active (the
	// protocol's status, which any member's allow entry or dispute
	// changes). What to do is the Verdict's business: it weighs only the
	// members the node's policy trusts.
	Matched      bool          `json:"matched"`
	Attestations []Attestation `json:"attestations"`
	// Verdict is the node's local policy's reading of the attestations:
	// block, review or none (README, "Matching").
	Verdict string `json:"verdict"`
	// Skipped, when present, says why the signal was not matched (a PDQ
	// hash, or every frame of a vpdq video, of too low a quality).
	Skipped string `json:"skipped,omitempty"`
	// FrameHits (vpdq only): stored images (PDQ) near some frame of the
	// video, each attestation with the stored hash, its smallest
	// distance and the frames' timestamps (FrameTimes). They count in
	// Matched and the Verdict as an image match does.
	FrameHits []Attestation `json:"frame_hits,omitempty"`
}

// VideoMatch is how a stored video compares with the queried one (vpdq
// only, README "Matching"): frames counted after dropping repeated hashes
// and those below the policy's min_quality.
type VideoMatch struct {
	QueryPercent    float64 `json:"query_percent"`    // share of the query's frames near some frame of the stored video
	ComparedPercent float64 `json:"compared_percent"` // share of the stored video's frames near some frame of the query
	QueryFrames     int     `json:"query_frames"`
	QueryMatched    int     `json:"query_matched"`
	ComparedFrames  int     `json:"compared_frames"`
	ComparedMatched int     `json:"compared_matched"`
	// Segments are the runs of consecutive query frames that match, in
	// seconds of the query video.
	Segments []Segment `json:"segments"`
}

// Segment is a run of a video, from and to in seconds.
type Segment struct {
	From float64 `json:"from"`
	To   float64 `json:"to"`
}

// Attestation is one addition that names the signal, or one actioned
// takedown notice that does (stay down), with its status now.
type Attestation struct {
	Kind        string   `json:"kind"`       // addition | notice
	Author      string   `json:"author"`     // member name; the hex key if not in the roster
	AuthorKey   string   `json:"author_key"` // hex
	ID          string   `json:"id"`         // entry id of the addition, hex
	Seq         uint64   `json:"seq"`
	Labels      []string `json:"labels"`
	CaseRef     string   `json:"case_ref"`
	Time        string   `json:"time"`   // the author's timestamp, RFC 3339, UTC, milliseconds
	Status      string   `json:"status"` // active | retracted | disputed | allowlisted
	Reasons     []Reason `json:"reasons"`
	Equivocated bool     `json:"equivocated"` // the author forked its log
	// Notice attestations only: the platform that removed or disabled the
	// content, and its reply.
	Notice *NoticeAction `json:"notice,omitempty"`
	// PDQ only: the stored hash the attestation carries (it may differ
	// from the one asked for), its Hamming distance from the query, and
	// the rotation or mirror image of the query it matched ("" for none).
	Hash      string `json:"hash,omitempty"`
	Distance  *int   `json:"distance,omitempty"`
	Transform string `json:"transform,omitempty"`
	// Video (vpdq only): how the stored video this attestation carries
	// compares with the query; absent when it carries the same value
	// exactly and no frame was of quality enough to compare.
	Video *VideoMatch `json:"video,omitempty"`
	// Via (domain and url queries only): the stored domain signal that
	// covers the query's domain or URL host, when it is not the query.
	Via string `json:"via,omitempty"`
	// FrameTimes (frame hits only): the timestamps, in seconds, of the
	// query's frames near the stored image.
	FrameTimes []float64 `json:"frame_times,omitempty"`
}

// Reason is an entry that changed an attestation's status: a retraction,
// a dispute, or an allowlist entry.
type Reason struct {
	Kind     string `json:"kind"`
	Author   string `json:"author"` // member name; the hex key if not in the roster
	ID       string `json:"id"`     // the entry's id, hex
	Category string `json:"category"`
	Reason   string `json:"reason"`
	// Ignored (match results only): an allow entry or a dispute by a
	// member the node's policy does not trust for the attestation's
	// labels. It makes the status (the protocol's), but the verdict
	// ignores it.
	Ignored bool `json:"ignored,omitempty"`
}

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	Error string `json:"error"`
}

// TimeFormat is how the API writes times: RFC 3339 in UTC with
// milliseconds.
const TimeFormat = notices.TimeFormat

// FieldError is a problem with one field of a request. It wraps ErrInvalid
// and the underlying error (often a protocol sentinel).
type FieldError struct {
	Field string // JSON path, e.g. "signals[0].value"
	Err   error
}

func (e *FieldError) Error() string   { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() []error { return []error{ErrInvalid, e.Err} }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

// parseSignals parses request signals; field names the array in errors.
// It accepts 1 to protocol.MaxSignals signals.
func parseSignals(field string, in []Signal) ([]*pb.Signal, error) {
	switch {
	case len(in) == 0:
		return nil, fieldErr(field, "required: give 1 to %d signals", protocol.MaxSignals)
	case len(in) > protocol.MaxSignals:
		return nil, fieldErr(field, "%d signals, limit %d", len(in), protocol.MaxSignals)
	}
	out := make([]*pb.Signal, len(in))
	for i, s := range in {
		f := fmt.Sprintf("%s[%d]", field, i)
		sig, err := parseSignal(f, s)
		if err != nil {
			return nil, err
		}
		out[i] = sig
	}
	return out, nil
}

// parseSignal parses one request signal; field names it in errors ("" for
// the query parameters of GET /v1/match).
func parseSignal(field string, s Signal) (*pb.Signal, error) {
	typ, value := "type", "value"
	if field != "" {
		typ, value = field+".type", field+".value"
	}
	switch {
	case s.Type == "":
		return nil, fieldErr(typ, "required; use one of %s", signalTypeNames())
	case !knownSignalType(s.Type):
		_, err := protocol.ParseSignal(s.Type, s.Value)
		return nil, &FieldError{Field: typ, Err: err}
	case s.Value == "":
		return nil, fieldErr(value, "required")
	}
	sig, err := protocol.ParseSignal(s.Type, s.Value)
	if err != nil {
		return nil, &FieldError{Field: value, Err: err}
	}
	return sig, nil
}

func knownSignalType(t string) bool {
	return slices.Contains(protocol.SignalTypes, protocol.SignalType(t))
}

func signalTypeNames() string {
	names := make([]string, len(protocol.SignalTypes))
	for i, k := range protocol.SignalTypes {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

// FormatSignal is the response form of a signal.
func FormatSignal(s *pb.Signal) Signal {
	t, v := protocol.SignalValue(s)
	return Signal{Type: string(t), Value: v}
}

func checkText(field, s string, max int, required bool) error {
	switch {
	case required && s == "":
		return fieldErr(field, "required")
	case len(s) > max:
		return fieldErr(field, "%d bytes, limit %d", len(s), max)
	}
	return nil
}

func parseTarget(s string) ([]byte, error) {
	id, err := parseID("target", s)
	if err != nil {
		return nil, err
	}
	return id[:], nil
}

// checked runs the protocol's own payload checks on a body built from a
// request, so that the API never hands the node something its peers would
// reject. The request checks above should have caught everything first.
func checked(body *pb.Entry) (*pb.Entry, error) {
	if err := protocol.CheckPayload(body); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return body, nil
}

// Entry validates the request and builds the entry body to publish. Errors
// are *FieldError (or wrap ErrInvalid).
func (r *AdditionRequest) Entry() (*pb.Entry, error) {
	sigs, err := parseSignals("signals", r.Signals)
	if err != nil {
		return nil, err
	}
	switch {
	case len(r.Labels) == 0:
		return nil, fieldErr("labels", "required: give 1 to %d labels, e.g. %q", protocol.MaxLabels, protocol.Labels[3])
	case len(r.Labels) > protocol.MaxLabels:
		return nil, fieldErr("labels", "%d labels, limit %d", len(r.Labels), protocol.MaxLabels)
	}
	labels := make([]*pb.Label, len(r.Labels))
	for i, s := range r.Labels {
		l, err := protocol.ParseLabel(s)
		if err != nil {
			return nil, &FieldError{Field: fmt.Sprintf("labels[%d]", i), Err: err}
		}
		labels[i] = l
	}
	if err := checkText("case_ref", r.CaseRef, protocol.MaxCaseRefLen, false); err != nil {
		return nil, err
	}
	return checked(&pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{
		Signals: sigs, Labels: labels, CaseRef: r.CaseRef,
	}}})
}

// Entry validates the request and builds the entry body to publish.
func (r *RetractionRequest) Entry() (*pb.Entry, error) {
	target, err := parseTarget(r.Target)
	if err != nil {
		return nil, err
	}
	if err := checkText("reason", r.Reason, protocol.MaxReasonLen, false); err != nil {
		return nil, err
	}
	sigs, err := parseNamed(r.Signals)
	if err != nil {
		return nil, err
	}
	return checked(&pb.Entry{Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{Target: target, Reason: r.Reason, Signals: sigs}}})
}

// Entry validates the request and builds the entry body to publish.
func (r *DisputeRequest) Entry() (*pb.Entry, error) {
	target, err := parseTarget(r.Target)
	if err != nil {
		return nil, err
	}
	if err := checkText("reason", r.Reason, protocol.MaxReasonLen, true); err != nil {
		return nil, err
	}
	sigs, err := parseNamed(r.Signals)
	if err != nil {
		return nil, err
	}
	return checked(&pb.Entry{Payload: &pb.Entry_Dispute{Dispute: &pb.Dispute{Target: target, Reason: r.Reason, Signals: sigs}}})
}

// parseNamed parses the signals a retraction or a dispute names: none,
// or up to protocol.MaxSignals, put in index-key order with repeats
// dropped (SPEC 6.2, 6.3).
func parseNamed(in []Signal) ([]*pb.Signal, error) {
	if len(in) == 0 {
		return nil, nil
	}
	sigs, err := parseSignals("signals", in)
	if err != nil {
		return nil, err
	}
	return protocol.SortSignals(sigs), nil
}

// Entry validates the request and builds the entry body to publish.
func (r *AllowRequest) Entry() (*pb.Entry, error) {
	sigs, err := parseSignals("signals", r.Signals)
	if err != nil {
		return nil, err
	}
	if err := CheckCategory(r.Category); err != nil {
		return nil, &FieldError{Field: "category", Err: err}
	}
	if err := checkText("reason", r.Reason, protocol.MaxReasonLen, true); err != nil {
		return nil, err
	}
	return checked(&pb.Entry{Payload: &pb.Entry_Allow{Allow: &pb.Allow{Signals: sigs, Category: r.Category, Reason: r.Reason}}})
}

// CheckCategory checks an allowlist category against the vocabulary.
func CheckCategory(c string) error {
	if c == "" {
		return fmt.Errorf("required; use one of %s", strings.Join(protocol.AllowCategories, ", "))
	}
	if slices.Contains(protocol.AllowCategories, c) {
		return nil
	}
	return fmt.Errorf("%q is not an allowlist category; use one of %s", c, strings.Join(protocol.AllowCategories, ", "))
}

// Parse validates the request and returns its signals.
func (r *MatchRequest) Parse() ([]*pb.Signal, error) {
	return parseSignals("signals", r.Signals)
}

// newAttestation converts a store attestation for the API, naming authors
// from the roster.
func newAttestation(a store.Attestation, roster *protocol.Roster) Attestation {
	out := Attestation{
		Kind:        string(a.Kind),
		Author:      memberName(roster, a.Author),
		AuthorKey:   a.Author.String(),
		ID:          a.EntryID.String(),
		Seq:         a.Seq,
		Labels:      a.Labels,
		CaseRef:     a.CaseRef,
		Time:        time.UnixMilli(a.TimeMs).UTC().Format(TimeFormat),
		Status:      string(a.Status),
		Reasons:     make([]Reason, len(a.Reasons)),
		Equivocated: a.Equivocated,
	}
	if out.Labels == nil {
		out.Labels = []string{}
	}
	if out.Kind == "" {
		out.Kind = string(protocol.KindAddition)
	}
	if n := a.Notice; n != nil {
		out.Notice = &NoticeAction{
			Addressee: memberName(roster, n.Addressee), Order: n.Binding,
			Reply: n.Reply.String(), ActionTime: time.UnixMilli(n.ActionMs).UTC().Format(TimeFormat),
		}
	}
	for i, r := range a.Reasons {
		out.Reasons[i] = Reason{
			Kind:     string(r.Kind),
			Author:   memberName(roster, r.Author),
			ID:       r.EntryID.String(),
			Category: r.Category,
			Reason:   r.Reason,
		}
	}
	return out
}

// newMatchResult builds the result for one signal.
func newMatchResult(sig *pb.Signal, found Found, roster *protocol.Roster) MatchResult {
	res := MatchResult{
		Signal:       FormatSignal(sig),
		Attestations: make([]Attestation, len(found.Attestations)),
		Verdict:      string(found.Verdict),
		Skipped:      found.Skipped,
	}
	if res.Verdict == "" {
		res.Verdict = string(VerdictNone)
	}
	isPDQ := protocol.TypeOf(sig) == protocol.SignalPDQ
	for i, f := range found.Attestations {
		a := newAttestation(f.Attestation, roster)
		for j, ignored := range f.Ignored {
			a.Reasons[j].Ignored = ignored
		}
		a.Via = f.Via
		if isPDQ {
			d := f.Distance
			a.Hash, a.Distance, a.Transform = hex.EncodeToString(f.Hash[:]), &d, f.Transform
		}
		if v := f.Video; v != nil {
			a.Video = &VideoMatch{QueryPercent: v.QueryPercent, ComparedPercent: v.ComparedPercent,
				QueryFrames: v.QueryFrames, QueryMatched: v.QueryMatched, ComparedFrames: v.ComparedFrames, ComparedMatched: v.ComparedMatched,
				Segments: make([]Segment, len(v.Segments))}
			for j, sg := range v.Segments {
				a.Video.Segments[j] = Segment{From: seconds(sg.FromMs), To: seconds(sg.ToMs)}
			}
		}
		res.Attestations[i] = a
		if f.Status == store.StatusActive {
			res.Matched = true
		}
	}
	for _, f := range found.FrameHits {
		a := newAttestation(f.Attestation, roster)
		for j, ignored := range f.Ignored {
			a.Reasons[j].Ignored = ignored
		}
		d := f.Distance
		a.Hash, a.Distance = hex.EncodeToString(f.Hash[:]), &d
		for _, ms := range f.FrameTimesMs {
			a.FrameTimes = append(a.FrameTimes, seconds(ms))
		}
		res.FrameHits = append(res.FrameHits, a)
		if f.Status == store.StatusActive {
			res.Matched = true
		}
	}
	return res
}

// seconds turns a timestamp in ms into seconds.
func seconds(ms uint32) float64 { return float64(ms) / 1000 }

func memberName(roster *protocol.Roster, k protocol.AuthorKey) string {
	if roster != nil {
		if m, ok := roster.ByKey(k); ok {
			return m.Name
		}
	}
	return k.String()
}
