package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// ImportRequest is the body of POST /v1/import: one batch of a bulk
// import (`staydown import` reads a file in the field's formats, package
// interop, and sends it in batches). The node skips the signals this
// member already attests, publishes the others in as few additions as the
// entry bounds allow, and retracts this member's attestations of the
// signals marked deleted. The body is read whole (at most MaxBodySize)
// before the store is read, so a slow client holds nothing of the node's.
type ImportRequest struct {
	// Labels apply to every signal, beside each signal's own.
	Labels  []string       `json:"labels,omitempty"`
	CaseRef string         `json:"case_ref,omitempty"`
	Signals []ImportSignal `json:"signals"`
	// DryRun: answer what would be done, publish nothing.
	DryRun bool `json:"dry_run,omitempty"`
}

// ImportSignal is one signal of an import batch.
type ImportSignal struct {
	Type    string   `json:"type"`
	Value   string   `json:"value"`
	Labels  []string `json:"labels,omitempty"`
	Deleted bool     `json:"deleted,omitempty"`
}

// ImportOutcome is the answer to POST /v1/import.
type ImportOutcome struct {
	Added     int `json:"added"`     // signals published in new additions
	Skipped   int `json:"skipped"`   // signals this member already attests (or listed twice)
	Retracted int `json:"retracted"` // deleted signals whose attestation by this member was retracted
	// NotAttested counts deleted signals this member does not attest
	// (never did, or already retracted): nothing to do.
	NotAttested int `json:"not_attested"`
	// Entries are the ids of the entries published, in order.
	Entries []string `json:"entries"`
}

// MaxImportSignals bounds the signals of one import batch.
const MaxImportSignals = 10 * protocol.MaxSignals

// OwnAttester is what the import needs of a backend beyond Backend: this
// member's own attestations of each signal by addition (exact signals, not
// PDQ neighbours), read from the store now. node.Node implements it.
type OwnAttester interface {
	OwnAttestations(ctx context.Context, sigs []*pb.Signal) ([][]store.Attestation, error)
}

// BatchPublisher is what makes an import fast: a backend that checks
// several bodies as Publish does and then signs and stores them together,
// in order, in one write transaction. It returns each body's entry (nil
// for one not published) and the first error. node.Node implements it;
// the import publishes one body at a time through Publish otherwise.
type BatchPublisher interface {
	PublishAll(ctx context.Context, bodies []*pb.Entry) ([]*protocol.Entry, error)
}

// entryBudget is how many bytes of signals one addition may carry: the
// entry bound (SPEC 2.4) less room for the header, labels and case.
const entryBudget = protocol.MaxEntrySize - 8<<10

func (s *server) importBatch(w http.ResponseWriter, r *http.Request) {
	var req ImportRequest
	if err := decodeBody(r.Body, &req); err != nil {
		s.error(w, r, err)
		return
	}
	out, err := s.runImport(r.Context(), req)
	if err != nil {
		s.error(w, r, err)
		return
	}
	code := http.StatusCreated
	if len(out.Entries) == 0 {
		code = http.StatusOK
	}
	s.reply(w, code, out)
}

// importItem is one parsed signal of a batch.
type importItem struct {
	sig       *pb.Signal
	labels    []string // sorted, FormatLabel form, without repeats
	labelsKey string   // labels joined, the key of its group
	deleted   bool
}

func (s *server) runImport(ctx context.Context, req ImportRequest) (ImportOutcome, error) {
	out := ImportOutcome{Entries: []string{}}
	own, ok := s.backend.(OwnAttester)
	if !ok {
		return out, fmt.Errorf("this node cannot import: its backend does not list its own attestations")
	}
	switch {
	case len(req.Signals) == 0:
		return out, fieldErr("signals", "required: 1 to %d signals", MaxImportSignals)
	case len(req.Signals) > MaxImportSignals:
		return out, fieldErr("signals", "%d signals, limit %d in one batch", len(req.Signals), MaxImportSignals)
	}
	if err := checkText("case_ref", req.CaseRef, protocol.MaxCaseRefLen, false); err != nil {
		return out, err
	}
	common, err := importLabels("labels", req.Labels)
	if err != nil {
		return out, err
	}
	common = mergeLabels(common, nil)
	commonKey := strings.Join(common, "\x00")
	items := make([]importItem, 0, len(req.Signals))
	seen := make(map[string]bool, len(req.Signals))
	for i, in := range req.Signals {
		// A batch holds up to MaxImportSignals: nothing is allocated per
		// signal that a good one does not need (the field's name is
		// formatted for an error only; a signal without labels of its own
		// shares the batch's).
		sig, err := parseSignal("", Signal{Type: in.Type, Value: in.Value})
		if err != nil {
			_, err = parseSignal(fmt.Sprintf("signals[%d]", i), Signal{Type: in.Type, Value: in.Value})
			return out, err
		}
		labels, labelsKey := common, commonKey
		if len(in.Labels) > 0 {
			field := fmt.Sprintf("signals[%d]", i)
			own, err := importLabels(field+".labels", in.Labels)
			if err != nil {
				return out, err
			}
			labels = mergeLabels(common, own)
			labelsKey = strings.Join(labels, "\x00")
		}
		switch {
		case !in.Deleted && len(labels) == 0:
			return out, fieldErr(fmt.Sprintf("signals[%d].labels", i), "no label: give labels for the batch or the signal, e.g. %q", protocol.Labels[3])
		case len(labels) > protocol.MaxLabels:
			return out, fieldErr(fmt.Sprintf("signals[%d].labels", i), "%d labels with the batch's, limit %d", len(labels), protocol.MaxLabels)
		}
		key := string(protocol.SignalKey(sig))
		if in.Deleted {
			key = "-" + key
		}
		if seen[key] {
			out.Skipped++
			continue
		}
		seen[key] = true
		items = append(items, importItem{sig, labels, labelsKey, in.Deleted})
	}
	sigs := make([]*pb.Signal, len(items))
	for i, it := range items {
		sigs[i] = it.sig
	}
	atts, err := own.OwnAttestations(ctx, sigs)
	if err != nil {
		return out, err
	}
	// Additions, grouped by label set in first-seen order; retractions,
	// grouped by the entry they retract from.
	type group struct {
		labels []string
		sigs   []*pb.Signal
	}
	var groups []*group
	byLabels := map[string]*group{}
	retract := map[protocol.ID][]*pb.Signal{}
	var targets []protocol.ID
	for i, it := range items {
		var active []store.Attestation
		for _, a := range atts[i] {
			if a.Kind == protocol.KindAddition && a.Status == store.StatusActive {
				active = append(active, a)
			}
		}
		if it.deleted {
			if len(active) == 0 {
				out.NotAttested++
				continue
			}
			out.Retracted++
			for _, a := range active {
				if _, ok := retract[a.EntryID]; !ok {
					targets = append(targets, a.EntryID)
				}
				retract[a.EntryID] = append(retract[a.EntryID], it.sig)
			}
			continue
		}
		if len(active) > 0 {
			out.Skipped++
			continue
		}
		g := byLabels[it.labelsKey]
		if g == nil {
			g = &group{labels: it.labels}
			byLabels[it.labelsKey] = g
			groups = append(groups, g)
		}
		g.sigs = append(g.sigs, it.sig)
		out.Added++
	}
	if req.DryRun {
		return out, nil
	}
	var bodies []*pb.Entry
	for _, g := range groups {
		labels := make([]*pb.Label, len(g.labels))
		for i, l := range g.labels {
			labels[i], _ = protocol.ParseLabel(l) // checked by importLabels
		}
		for _, chunk := range chunkBySize(g.sigs) {
			bodies = append(bodies, &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{Signals: chunk, Labels: labels, CaseRef: req.CaseRef}}})
		}
	}
	// One retraction per target (SPEC 9.2: an entry is retracted once), so
	// all of a target's signals withdrawn in this batch go in one entry.
	for _, t := range targets {
		named := protocol.SortSignals(retract[t])
		bodies = append(bodies, &pb.Entry{Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{Target: t[:], Reason: "withdrawn in the imported source", Signals: named}}})
	}
	for _, body := range bodies {
		if err := protocol.CheckPayload(body); err != nil {
			return out, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	return out, s.publishAll(ctx, bodies, &out)
}

// publishAll publishes the bodies in order, adding the ids of those
// published to out.Entries: all at once when the backend can
// (BatchPublisher), else one by one.
func (s *server) publishAll(ctx context.Context, bodies []*pb.Entry, out *ImportOutcome) error {
	failed := func(err error) error {
		return fmt.Errorf("%w (published before this error: %d entries: %s)", err, len(out.Entries), strings.Join(out.Entries, ", "))
	}
	if bp, ok := s.backend.(BatchPublisher); ok {
		es, err := bp.PublishAll(ctx, bodies)
		for _, e := range es {
			if e != nil {
				out.Entries = append(out.Entries, e.ID.String())
			}
		}
		if err != nil {
			return failed(err)
		}
		return nil
	}
	for _, body := range bodies {
		e, err := s.backend.Publish(ctx, body)
		if err != nil {
			return failed(err)
		}
		out.Entries = append(out.Entries, e.ID.String())
	}
	return nil
}

// chunkBySize splits signals into runs that fit one addition: at most
// protocol.MaxSignals and entryBudget bytes each.
func chunkBySize(sigs []*pb.Signal) [][]*pb.Signal {
	var out [][]*pb.Signal
	start, size := 0, 0
	for i, s := range sigs {
		n := proto.Size(s) + 4
		if i > start && (i-start == protocol.MaxSignals || size+n > entryBudget) {
			out = append(out, sigs[start:i])
			start, size = i, 0
		}
		size += n
	}
	if start < len(sigs) {
		out = append(out, sigs[start:])
	}
	return out
}

func importLabels(field string, in []string) ([]string, error) {
	out := make([]string, 0, len(in))
	for i, s := range in {
		l, err := protocol.ParseLabel(s)
		if err != nil {
			return nil, &FieldError{Field: fmt.Sprintf("%s[%d]", field, i), Err: err}
		}
		out = append(out, protocol.FormatLabel(l))
	}
	return out, nil
}

func mergeLabels(a, b []string) []string {
	out := append(append(make([]string, 0, len(a)+len(b)), a...), b...)
	slices.Sort(out)
	return slices.Compact(out)
}
