package api

import (
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/store"
)

// The legacy-content watchlist: the signals of content a platform already
// hosts, kept by its node only (never gossiped, never exported). When an
// attestation arrives that matches one, the node raises an alert.

// MaxWatchBatch is the most signals one POST /v1/watchlist may add (or
// POST /v1/watchlist/remove remove); the CLI sends longer lists in
// batches.
const MaxWatchBatch = 100_000

// maxWatchBody bounds the body of POST /v1/watchlist (and /remove): MaxWatchBatch
// signals of up to about 160 bytes of JSON each.
const maxWatchBody = 16 << 20

// WatchRequest is the body of POST /v1/watchlist and of POST
// /v1/watchlist/remove.
type WatchRequest struct {
	Signals []WatchSignal `json:"signals"` // 1 to MaxWatchBatch
}

// WatchSignal is a signal of a WatchRequest, with the caller's own
// reference to the item it hosts that carries it (an upload id, a URL):
// kept by this node only, returned in the alerts the signal raises.
// store.CheckWatchRef says what a ref may be. To give a signal several
// refs (the same file hosted twice), list it once per ref.
type WatchSignal struct {
	Type  string `json:"type"`
	Value string `json:"value"`
	Ref   string `json:"ref,omitempty"`
}

// WatchResult answers POST /v1/watchlist.
type WatchResult struct {
	Added     int `json:"added"`      // new on the watchlist
	Known     int `json:"known"`      // already on it
	RefsAdded int `json:"refs_added"` // refs attached that their signal did not have
	Total     int `json:"total"`      // signals on the watchlist now
	// Alerts raised at once because attestations already stored match
	// signals just added.
	Alerts []Alert `json:"alerts"`
}

// UnwatchResult answers POST /v1/watchlist/remove, whose body is a
// WatchRequest.
type UnwatchResult struct {
	Removed     int `json:"removed"`      // taken off the watchlist (with all their refs)
	RefsRemoved int `json:"refs_removed"` // refs taken off signals that stay watched
	Unknown     int `json:"unknown"`      // not on it (or, given with a ref, not with that ref)
	Total       int `json:"total"`        // signals on the watchlist now
}

// Watchlist answers GET /v1/watchlist: a page of the watchlist.
type Watchlist struct {
	Signals []WatchedItem `json:"signals"` // in the order of their index keys
	// Next, when more signals follow, is the cursor to ask for them with
	// (after=NEXT); absent on the last page.
	Next  string `json:"next,omitempty"`
	Total int    `json:"total"` // signals on the watchlist now
}

// WatchedItem is a signal on the watchlist with its refs.
type WatchedItem struct {
	Type  string   `json:"type"`
	Value string   `json:"value"`
	Refs  []string `json:"refs"` // in the order added; empty when it has none
}

// Paging of GET /v1/watchlist.
const (
	DefaultWatchPage = 1000
	MaxWatchPage     = 10_000
	// maxWatchCursor bounds the cursor, the hex of a signal key: well
	// above the longest (a url's, protocol.MaxURLLen bytes and a tag).
	maxWatchCursor = 16 << 10
)

// AlertList answers GET /v1/alerts.
type AlertList struct {
	Alerts []Alert `json:"alerts"` // oldest first
}

// Alert says that an attestation matches a signal of the watchlist: the
// platform hosts content that a member has just attested.
type Alert struct {
	Seq    uint64 `json:"seq"`    // 1, 2, ... in the order raised
	Raised string `json:"raised"` // when, by this node's clock, RFC 3339 in UTC with milliseconds
	// Watched is the watchlist's signal; Signal the attested one, the same
	// but for a near PDQ match, whose Hamming distance is Distance.
	Watched  Signal `json:"watched"`
	Signal   Signal `json:"signal"`
	Distance *int   `json:"distance,omitempty"`
	// Attestation is the addition, with its status now (it was active when
	// the alert was raised).
	Attestation Attestation `json:"attestation"`
	// Refs are the refs the watched signal had when the alert was raised:
	// which of this platform's items to take down. Empty when it had none.
	Refs []string `json:"refs"`
}

func newAlert(a RaisedAlert, roster *protocol.Roster) Alert {
	out := Alert{
		Seq:         a.Seq,
		Raised:      time.UnixMilli(a.RaisedMs).UTC().Format(TimeFormat),
		Watched:     FormatSignal(a.Watched),
		Signal:      FormatSignal(a.Signal),
		Attestation: newAttestation(a.Attestation, roster),
		Refs:        append([]string{}, a.Refs...),
	}
	if protocol.TypeOf(a.Signal) == protocol.SignalPDQ {
		d := a.Distance
		out.Distance = &d
	}
	return out
}

func newAlerts(raised []RaisedAlert, roster *protocol.Roster) []Alert {
	out := make([]Alert, len(raised))
	for i, a := range raised {
		out[i] = newAlert(a, roster)
	}
	return out
}

// Parse validates the request and returns its items.
func (r *WatchRequest) Parse() ([]WatchItem, error) {
	switch {
	case len(r.Signals) == 0:
		return nil, fieldErr("signals", "required: give 1 to %d signals", MaxWatchBatch)
	case len(r.Signals) > MaxWatchBatch:
		return nil, fieldErr("signals", "%d signals, limit %d per request: send them in batches", len(r.Signals), MaxWatchBatch)
	}
	out := make([]WatchItem, len(r.Signals))
	for i, s := range r.Signals {
		field := "signals[" + strconv.Itoa(i) + "]"
		sig, err := parseSignal(field, Signal{Type: s.Type, Value: s.Value})
		if err != nil {
			return nil, err
		}
		if s.Ref != "" {
			if err := store.CheckWatchRef(s.Ref); err != nil {
				return nil, &FieldError{Field: field + ".ref", Err: err}
			}
		}
		out[i] = WatchItem{Signal: sig, Ref: s.Ref}
	}
	return out, nil
}

func decodeWatch(s *server, w http.ResponseWriter, r *http.Request) ([]WatchItem, bool) {
	var req WatchRequest
	if err := decodeBody(r.Body, &req); err != nil {
		s.error(w, r, err)
		return nil, false
	}
	items, err := req.Parse()
	if err != nil {
		s.error(w, r, err)
		return nil, false
	}
	return items, true
}

func (s *server) watch(w http.ResponseWriter, r *http.Request) {
	items, ok := decodeWatch(s, w, r)
	if !ok {
		return
	}
	out, err := s.backend.Watch(r.Context(), items)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.reply(w, http.StatusOK, WatchResult{Added: out.Added, Known: out.Known, RefsAdded: out.Refs, Total: out.Total,
		Alerts: newAlerts(out.Alerts, s.backend.Roster())})
}

func (s *server) unwatch(w http.ResponseWriter, r *http.Request) {
	items, ok := decodeWatch(s, w, r)
	if !ok {
		return
	}
	out, err := s.backend.Unwatch(r.Context(), items)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.reply(w, http.StatusOK, UnwatchResult{Removed: out.Removed, RefsRemoved: out.Refs, Unknown: out.Unknown, Total: out.Total})
}

// watchlist answers GET /v1/watchlist?limit=N&after=CURSOR.
func (s *server) watchlist(w http.ResponseWriter, r *http.Request) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		s.error(w, r, fieldErr("query", "%v", err))
		return
	}
	limit := DefaultWatchPage
	var after []byte
	for k, v := range q {
		switch {
		case k != "limit" && k != "after":
			s.error(w, r, fieldErr(queryField(k), "unknown query parameter; use limit=N and after=CURSOR"))
			return
		case len(v) > 1:
			s.error(w, r, fieldErr(k, "given %d times", len(v)))
			return
		}
		switch k {
		case "limit":
			n, err := pageLimit(k, v[0], MaxWatchPage)
			if err != nil {
				s.error(w, r, err)
				return
			}
			limit = n
		case "after":
			if after, err = hex.DecodeString(v[0]); err != nil || len(v[0]) == 0 || len(v[0]) > maxWatchCursor {
				shown := v[0]
				if len(shown) > 80 {
					shown = shown[:80] + "..."
				}
				s.error(w, r, fieldErr(k, "%q: want the next cursor of a page before (hex)", shown))
				return
			}
		}
	}
	page, err := s.backend.Watchlist(r.Context(), after, limit)
	if err != nil {
		s.error(w, r, err)
		return
	}
	out := Watchlist{Signals: make([]WatchedItem, len(page.Signals)), Total: page.Total}
	for i, ws := range page.Signals {
		f := FormatSignal(ws.Signal)
		out.Signals[i] = WatchedItem{Type: f.Type, Value: f.Value, Refs: append([]string{}, ws.Refs...)}
	}
	if page.More && len(page.Signals) > 0 {
		out.Next = hex.EncodeToString(page.Signals[len(page.Signals)-1].Key)
	}
	s.reply(w, http.StatusOK, out)
}

func (s *server) alerts(w http.ResponseWriter, r *http.Request) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		s.error(w, r, fieldErr("query", "%v", err))
		return
	}
	var since uint64
	for k, v := range q {
		switch {
		case k != "since":
			s.error(w, r, fieldErr(queryField(k), "unknown query parameter; the only one is since=SEQ"))
			return
		case len(v) > 1:
			s.error(w, r, fieldErr(k, "given %d times", len(v)))
			return
		}
		if since, err = strconv.ParseUint(v[0], 10, 64); err != nil {
			s.error(w, r, fieldErr(k, "%q: want the seq of the last alert seen, a number", v[0]))
			return
		}
	}
	raised, err := s.backend.Alerts(r.Context(), since)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.reply(w, http.StatusOK, AlertList{Alerts: newAlerts(raised, s.backend.Roster())})
}

// queryField names a query parameter in an error: as it is when it is a
// plain name, else quoted (%q), so that no name the client chose can
// break the message's line or pass for another.
func queryField(k string) string {
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return strconv.Quote(k)
		}
	}
	if k == "" {
		return `""`
	}
	return k
}

// pageLimit reads query parameter k, a page's size, from 1 to most.
func pageLimit(k, v string, most int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > most {
		return 0, fieldErr(k, "%q: want a number from 1 to %d", v, most)
	}
	return n, nil
}
