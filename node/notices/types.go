package notices

import (
	"fmt"
	"time"

	"github.com/staydown/staydown/protocol/pb"
)

// IssueRequest is a notice to issue: the body of POST /v1/notices with its
// signals parsed.
type IssueRequest struct {
	To       string       // member name of a platform
	URLs     []string     // sealed: only the addressee, the issuer and auditors read them
	Signals  []*pb.Signal // public targets; an actioned notice makes them stay down
	Text     string       // sealed free text
	Category string       // a content label
	Basis    string       // legal basis, public
	Order    bool         // a binding removal order (else a voluntary referral)
	// Deadline: a duration from now ("1h", "90m") or an RFC 3339 time;
	// default 1h.
	Deadline string
}

// UpdateRequest is the body of POST /v1/notice-updates.
type UpdateRequest struct {
	Notice   string   `json:"notice"` // id, hex
	Withdraw bool     `json:"withdraw,omitempty"`
	Deadline string   `json:"deadline,omitempty"` // as in IssueRequest; "" leaves it
	URLs     []string `json:"urls,omitempty"`     // sealed clarification
	Text     string   `json:"text,omitempty"`     // sealed clarification
}

// ReplyRequest is the body of POST /v1/replies.
type ReplyRequest struct {
	Notice string `json:"notice"` // id, hex
	Status string `json:"status"` // received | removed | disabled | clarification-requested | not-executed | not-found | blocked | unblocked
	Reason string `json:"reason,omitempty"`
	Text   string `json:"text,omitempty"` // public
	// ActionTime: when the content was acted on, RFC 3339; default the
	// reply's own time.
	ActionTime string `json:"action_time,omitempty"`
}

// Query filters the notices listed (GET /v1/notices).
type Query struct {
	// Box: "in" (addressed to this node), "out" (issued by it), "all".
	// "" is the node's own: in for a platform, out for a referral unit,
	// all for an auditor.
	Box     string
	Open    bool // not final: open, acknowledged, clarification-requested or overdue
	Overdue bool
	AtMs    int64
	// Limit, when > 0, keeps only that many notices: those with the
	// soonest deadlines (stopped clocks last), or with Latest the latest
	// ones; only those are read from the store (the web console's pages
	// of 10,000 notices). The order of the list is the same either way.
	Limit  int
	Latest bool
}

// View is a notice and its thread as this node sees them.
type View struct {
	ID     string `json:"id"`
	From   string `json:"from"` // member names
	To     string `json:"to"`
	State  string `json:"state"`
	Issued string `json:"issued"` // the issuer's timestamp
	// Deadline in force, RFC 3339; "" while a clarification is awaited
	// (the clock is stopped).
	Deadline   string `json:"deadline"`
	DeadlineMs int64  `json:"deadline_ms"`
	// TimeRemainingS: seconds to the deadline at the time asked about
	// (negative once passed), for notices not final; null otherwise.
	TimeRemainingS *float64 `json:"time_remaining_s"`
	// TimeToActionS and WithinDeadline: once the addressee acted (SPEC
	// 10.1); null before.
	TimeToActionS  *float64 `json:"time_to_action_s"`
	WithinDeadline *bool    `json:"within_deadline"`
	Category       string   `json:"category"`
	LegalBasis     string   `json:"legal_basis"`
	Order          bool     `json:"order"` // binding removal order
	Signals        []string `json:"signals"`
	// Sealed: the notice carries sealed details; Details is them, opened,
	// when this node is a recipient (null otherwise).
	Sealed  bool         `json:"sealed"`
	Details *Details     `json:"details"`
	Updates []UpdateView `json:"updates"`
	Replies []ReplyView  `json:"replies"`
	// Blocking is set for a blocking order (SPEC 6.9): when it binds and
	// whether its addressee unblocked in time once it ended.
	Blocking *BlockingView `json:"blocking,omitempty"`
}

// BlockingView is a blocking order's terms and their state at the time
// asked about.
type BlockingView struct {
	Start   string `json:"start"`
	End     string `json:"end,omitempty"` // end_ms or the lift, whichever first; "" while neither
	InForce bool   `json:"in_force"`
	Lift    string `json:"lift,omitempty"` // id of the issuer's update that lifted it
	// Unblocked: the addressee's claim of when it unblocked, after the
	// end; UnblockedWithin: no later than the end plus the order's
	// allowance (null before).
	Unblocked       string `json:"unblocked,omitempty"`
	UnblockedWithin *bool  `json:"unblocked_within_deadline"`
}

// Details are the sealed URLs and text, opened.
type Details struct {
	URLs []string `json:"urls"`
	Text string   `json:"text"`
}

// UpdateView is one update of a notice by its issuer.
type UpdateView struct {
	ID       string   `json:"id"`
	Time     string   `json:"time"`
	Withdraw bool     `json:"withdraw"`
	Deadline string   `json:"deadline,omitempty"`
	Sealed   bool     `json:"sealed"`
	Details  *Details `json:"details"`
}

// ReplyView is one reply of the addressee.
type ReplyView struct {
	ID         string `json:"id"`
	Time       string `json:"time"`
	Status     string `json:"status"`
	Reason     string `json:"reason,omitempty"`
	Text       string `json:"text"`
	ActionTime string `json:"action_time,omitempty"`
}

// Event is one Server-Sent Event of GET /v1/events.
type Event struct {
	N    uint64 `json:"n"` // position: resume with ?after=N or Last-Event-ID
	Type string `json:"type"`
	// ID and Author of the entry that caused the event.
	ID     string `json:"id"`
	Author string `json:"author"`
	// Notice: for notice, notice-update and reply events, the notice as it
	// stands after the entry.
	Notice *View `json:"notice,omitempty"`
	// Signals and Labels: for attestation events.
	Signals []string `json:"signals,omitempty"`
	Labels  []string `json:"labels,omitempty"`
	// Membership events (SPEC 12). amendment: Change (what it changes,
	// for people) and Base (the roster version it amends; Author is the
	// proposer); approval: Proposal (the amendment's id) and Base. Both
	// carry RosterVersion, the version in force when the event is sent.
	Change        string  `json:"change,omitempty"`
	Proposal      string  `json:"proposal,omitempty"`
	Base          *uint64 `json:"base,omitempty"`
	RosterVersion *uint64 `json:"roster_version,omitempty"`
	// member-key: Key, the key the author's member signs with after its
	// rotation; member-peer: PeerID and Addrs, its node's new identity.
	Key    string   `json:"key,omitempty"`
	PeerID string   `json:"peer_id,omitempty"`
	Addrs  []string `json:"addrs,omitempty"`
}

// Event types.
const (
	EventNotice       = "notice"        // a notice addressed to this node
	EventNoticeUpdate = "notice-update" // an update of a notice addressed to this node
	EventReply        = "reply"         // a reply to a notice of this node
	EventAttestation  = "attestation"   // an addition, or a reply that actioned a notice naming signals
	EventAmendment    = "amendment"     // a member proposed a change of the roster
	EventApproval     = "approval"      // a member approved a proposed change
	EventMemberKey    = "member-key"    // a member rotated its author key
	EventMemberPeer   = "member-peer"   // a member gave its node a new peer ID or addresses
)

// parseDeadline reads a deadline: a positive duration from now, or an
// RFC 3339 time after now.
func parseDeadline(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("%q is not a positive duration", s)
		}
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a duration (1h, 90m) nor an RFC 3339 time", s)
	}
	if !t.After(now) {
		return time.Time{}, fmt.Errorf("%s is not in the future", t.Format(time.RFC3339))
	}
	return t, nil
}

// TimeFormat is how notices write times: RFC 3339 in UTC with
// milliseconds (the API's api.TimeFormat).
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"
