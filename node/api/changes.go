package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// ChangesReader is what GET /v1/changes needs of a backend beyond
// Backend: a page of the store's changes feed (store.Changes), read in
// one read transaction that ends before the answer is written, so a slow
// client holds nothing of the node's. node.Node implements it.
type ChangesReader interface {
	Changes(ctx context.Context, q store.ChangesQuery) (store.ChangesPage, error)
}

// Page sizes of GET /v1/changes.
const (
	DefaultChangesPage = 500
	MaxChangesPage     = 5000
)

// Changes is the body of GET /v1/changes: the shape of
// python-threatexchange's FetchDelta (updates keyed by signal, a record
// or a tombstone, and the checkpoint to resume from).
type Changes struct {
	Changes []SignalChange `json:"changes"`
	// Checkpoint is the after of the next request.
	Checkpoint string `json:"checkpoint"`
	// More: changes past Checkpoint are ready now; false: Checkpoint is
	// the present, poll it later.
	More bool `json:"more"`
}

// SignalChange is one signal whose state may have changed, with its state
// when the page was read. Active false is a tombstone: no attestation of
// the signal is active or disputed any more (all retracted or
// allowlisted); a client deletes the signal from its bank.
type SignalChange struct {
	Signal string `json:"signal"` // TYPE:VALUE, the key a client files it under
	Type   string `json:"type"`
	Value  string `json:"value"`
	Active bool   `json:"active"`
	// Labels and AttestedBy are those of the attestations in force
	// (active or disputed), sorted; empty for a tombstone.
	Labels       []string          `json:"labels"`
	AttestedBy   []string          `json:"attested_by"`
	Attestations []FeedAttestation `json:"attestations"`
}

// FeedAttestation is one attestation of a changed signal, in force or not.
type FeedAttestation struct {
	Author  string   `json:"author"` // member name (the key in hex if not in the roster)
	Entry   string   `json:"entry"`
	Kind    string   `json:"kind"`   // addition or notice
	Status  string   `json:"status"` // active, disputed, allowlisted or retracted
	Labels  []string `json:"labels"`
	CaseRef string   `json:"case_ref,omitempty"`
	TimeMs  int64    `json:"time_ms"`
	// Equivocated: the author is flagged for equivocation (SPEC 4).
	Equivocated bool `json:"equivocated,omitempty"`
}

// changes answers GET /v1/changes?after=CHECKPOINT&types=T,T&limit=N.
func (s *server) changes(w http.ResponseWriter, r *http.Request) {
	cr, ok := s.backend.(ChangesReader)
	if !ok {
		s.fail(w, http.StatusNotImplemented, "this backend has no changes feed")
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		s.error(w, r, fieldErr("query", "%v", err))
		return
	}
	query := store.ChangesQuery{Limit: DefaultChangesPage}
	for k, v := range q {
		switch {
		case k != "after" && k != "types" && k != "limit":
			s.error(w, r, fieldErr(queryField(k), "unknown query parameter; use after=CHECKPOINT, types=TYPE,... and limit=N"))
			return
		case len(v) > 1:
			s.error(w, r, fieldErr(k, "given %d times", len(v)))
			return
		}
		switch k {
		case "limit":
			n, err := pageLimit(k, v[0], MaxChangesPage)
			if err != nil {
				s.error(w, r, err)
				return
			}
			query.Limit = n
		case "after":
			if v[0] == "" {
				continue // from the beginning, as when absent
			}
			cp, err := store.ParseCheckpoint(v[0])
			if err != nil {
				s.error(w, r, fieldErr(k, "%v; use the checkpoint of an earlier page, or none to start over", err))
				return
			}
			query.After = &cp
		case "types":
			keep, err := parseTypes(v[0])
			if err != nil {
				s.error(w, r, err)
				return
			}
			query.Keep = func(sig *pb.Signal) bool { return keep[protocol.TypeOf(sig)] }
		}
	}
	page, err := cr.Changes(r.Context(), query)
	if errors.Is(err, store.ErrCheckpoint) {
		// 410: the position is gone for good; the client starts over.
		s.fail(w, http.StatusGone, "after: "+err.Error())
		return
	} else if err != nil {
		s.error(w, r, err)
		return
	}
	out := Changes{Changes: make([]SignalChange, len(page.Signals)), Checkpoint: page.Next.String(), More: page.More}
	roster := s.backend.Roster()
	for i, cs := range page.Signals {
		out.Changes[i] = signalChange(roster, cs)
	}
	s.reply(w, http.StatusOK, out)
}

// parseTypes reads the types filter: signal types, comma-separated.
func parseTypes(v string) (map[protocol.SignalType]bool, error) {
	keep := map[protocol.SignalType]bool{}
	for t := range strings.SplitSeq(v, ",") {
		st := protocol.SignalType(strings.TrimSpace(t))
		if !slices.Contains(protocol.SignalTypes, st) {
			return nil, fieldErr("types", "%q is not a signal type; use some of %s, comma-separated", t, typeNames())
		}
		keep[st] = true
	}
	return keep, nil
}

func typeNames() string {
	names := make([]string, len(protocol.SignalTypes))
	for i, t := range protocol.SignalTypes {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

// signalChange aggregates a signal's attestations: in force are those
// whose status still matches (active, disputed).
func signalChange(roster *protocol.Roster, cs store.ChangedSignal) SignalChange {
	typ, val := protocol.SignalValue(cs.Signal)
	out := SignalChange{
		Signal: string(typ) + ":" + val, Type: string(typ), Value: val,
		Labels: []string{}, AttestedBy: []string{}, Attestations: make([]FeedAttestation, len(cs.Attestations)),
	}
	for i, a := range cs.Attestations {
		name := roster.NameOf(a.Author)
		out.Attestations[i] = FeedAttestation{
			Author: name, Entry: a.EntryID.String(), Kind: string(a.Kind), Status: string(a.Status),
			Labels: append([]string{}, a.Labels...), CaseRef: a.CaseRef, TimeMs: a.TimeMs, Equivocated: a.Equivocated,
		}
		if a.Status.Matches() {
			out.Active = true
			out.Labels = append(out.Labels, a.Labels...)
			out.AttestedBy = append(out.AttestedBy, name)
		}
	}
	slices.Sort(out.Labels)
	out.Labels = slices.Compact(out.Labels)
	slices.Sort(out.AttestedBy)
	out.AttestedBy = slices.Compact(out.AttestedBy)
	return out
}
