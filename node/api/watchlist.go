package api

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
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
	Signals []Signal `json:"signals"` // 1 to MaxWatchBatch
}

// WatchResult answers POST /v1/watchlist.
type WatchResult struct {
	Added int `json:"added"` // new on the watchlist
	Known int `json:"known"` // already on it
	Total int `json:"total"` // signals on the watchlist now
	// Alerts raised at once because attestations already stored match
	// signals just added.
	Alerts []Alert `json:"alerts"`
}

// UnwatchResult answers POST /v1/watchlist/remove, whose body is a
// WatchRequest.
type UnwatchResult struct {
	Removed int `json:"removed"` // taken off the watchlist
	Unknown int `json:"unknown"` // not on it
	Total   int `json:"total"`   // signals on the watchlist now
}

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
}

func newAlert(a RaisedAlert, roster *protocol.Roster) Alert {
	out := Alert{
		Seq:         a.Seq,
		Raised:      time.UnixMilli(a.RaisedMs).UTC().Format(TimeFormat),
		Watched:     FormatSignal(a.Watched),
		Signal:      FormatSignal(a.Signal),
		Attestation: newAttestation(a.Attestation, roster),
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

// Parse validates the request and returns its signals.
func (r *WatchRequest) Parse() ([]*pb.Signal, error) {
	switch {
	case len(r.Signals) == 0:
		return nil, fieldErr("signals", "required: give 1 to %d signals", MaxWatchBatch)
	case len(r.Signals) > MaxWatchBatch:
		return nil, fieldErr("signals", "%d signals, limit %d per request: send them in batches", len(r.Signals), MaxWatchBatch)
	}
	out := make([]*pb.Signal, len(r.Signals))
	for i, s := range r.Signals {
		sig, err := parseSignal("signals["+strconv.Itoa(i)+"]", s)
		if err != nil {
			return nil, err
		}
		out[i] = sig
	}
	return out, nil
}

func (s *server) watch(w http.ResponseWriter, r *http.Request) {
	sigs, ok := decodeSignals[WatchRequest](s, w, r)
	if !ok {
		return
	}
	out, err := s.backend.Watch(r.Context(), sigs)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.reply(w, http.StatusOK, WatchResult{Added: out.Added, Known: out.Known, Total: out.Total, Alerts: newAlerts(out.Alerts, s.backend.Roster())})
}

func (s *server) unwatch(w http.ResponseWriter, r *http.Request) {
	sigs, ok := decodeSignals[WatchRequest](s, w, r)
	if !ok {
		return
	}
	out, err := s.backend.Unwatch(r.Context(), sigs)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.reply(w, http.StatusOK, UnwatchResult{Removed: out.Removed, Unknown: out.Unknown, Total: out.Total})
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
			s.error(w, r, fieldErr(k, "unknown query parameter; the only one is since=SEQ"))
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
