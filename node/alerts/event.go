// Package alerts tells people of takedown notices through the hooks of
// config.toml's [alerts] table (config.Alerts): a webhook (a signed JSON
// POST, in Staydown's format or Slack's) and email by SMTP.
//
// # What raises an alert
//
//   - notice-received: a notice addressed to this node arrived (stored,
//     by gossip or sync), unless it is final already.
//   - reply-received: a reply of the addressee arrived to a notice this
//     node issued (each reply once: a referral unit hears of the
//     acknowledgement, the request for clarification and the action).
//   - due-soon: a notice addressed to this node, open or acknowledged,
//     has 15 minutes or less to its deadline (notices.DueSoon).
//   - overdue: a notice addressed to this node, or issued by it, passed
//     its deadline with no action.
//
// A notice that is final (actioned, not executed, withdrawn) raises no
// due-soon or overdue alert. Each alert is raised at most once per notice
// and kind. The arrivals (notice-received, reply-received) follow the
// writer: each entry is stored once, and a restart does not store the
// entries it holds again. The clock's alerts (due-soon, overdue) are
// recorded in the store (store.NoticeAlerts) before they are sent, so a
// restart does not raise them again; a notice that went overdue while
// the node was down raises its alert when it starts.
//
// # Delivery
//
// Each hook has its own queue and goroutine: raising an alert never
// blocks the node. A queue holds at most QueueSize alerts; when full, the
// oldest is dropped, with a log line. A failed delivery is tried again
// after 10 s, 20 s, 40 s and 80 s (MaxTries in all, about 2.5 minutes),
// then given up with an ERROR log line. Delivery is at most once: an
// alert recorded and then lost in a crash is not sent again.
package alerts

import (
	"fmt"
	"strings"
	"time"
)

// Kind is what an alert says happened.
type Kind string

// Kinds of alert.
const (
	Received Kind = "notice-received"
	Replied  Kind = "reply-received"
	DueSoon  Kind = "due-soon"
	Overdue  Kind = "overdue"
)

// bit is the kind's bit in the store's record; only the clock's alerts
// are recorded.
func (k Kind) bit() uint8 {
	switch k {
	case DueSoon:
		return 1
	case Overdue:
		return 2
	}
	return 0
}

// Event is one alert: the body of a webhook in format "json".
type Event struct {
	Event Kind `json:"event"`
	// Node is this node's member name: which node raised it.
	Node   string `json:"node"`
	Notice string `json:"notice"` // the notice's id, hex
	From   string `json:"from"`   // issuer's member name
	To     string `json:"to"`     // addressee's member name
	// Deadline in force, RFC 3339 UTC; "" while a clarification is
	// awaited (the clock is stopped).
	Deadline string `json:"deadline"`
	Status   string `json:"status"` // the notice's state when the alert was raised
	Category string `json:"category"`
	Order    bool   `json:"order"` // a binding removal order
	// Reply: for reply-received, the reply's status (received, removed,
	// ...) and its entry id.
	Reply   string `json:"reply,omitempty"`
	ReplyID string `json:"reply_id,omitempty"`
	Time    string `json:"time"` // when the alert was raised, RFC 3339 UTC
}

// Summary is the alert in one line, for people: the Slack text and the
// mail's subject.
func (e Event) Summary() string {
	what := map[Kind]string{
		Received: "takedown notice received",
		Replied:  "reply to takedown notice",
		DueSoon:  "takedown notice due soon",
		Overdue:  "takedown notice OVERDUE",
	}[e.Event]
	s := fmt.Sprintf("[staydown %s] %s %s from %s to %s", e.Node, what, short(e.Notice), e.From, e.To)
	if e.Reply != "" {
		s += ": " + e.Reply
	}
	if e.Deadline != "" {
		s += ", deadline " + e.Deadline
	} else {
		s += ", clock stopped (clarification requested)"
	}
	return s
}

// Text is the alert for people, several lines: the mail's body.
func (e Event) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", e.Summary())
	for _, kv := range [][2]string{
		{"event", string(e.Event)}, {"notice", e.Notice}, {"from", e.From}, {"to", e.To},
		{"deadline", e.Deadline}, {"status", e.Status}, {"category", e.Category},
		{"order", fmt.Sprint(e.Order)}, {"reply", e.Reply}, {"reply id", e.ReplyID}, {"raised", e.Time},
	} {
		if kv[1] != "" {
			fmt.Fprintf(&b, "%-9s %s\n", kv[0]+":", kv[1])
		}
	}
	fmt.Fprintf(&b, "\nstaydown notices --dir D lists the notices with their state.\n")
	return b.String()
}

func short(id string) string {
	if len(id) > 16 {
		return id[:16]
	}
	return id
}

// timeFormat is how alerts write times (notices.TimeFormat).
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }
