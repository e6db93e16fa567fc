package node

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/staydown/staydown/interop"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// exportSignalsChunk bounds how many entries of a log ExportSignals reads
// (and holds, with their records) at a time: memory stays bounded
// whatever the store's size. An addition carries up to
// protocol.MaxSignals signals, so a chunk is at most 32,000 records.
const exportSignalsChunk = 32

// ExportSignals calls fn with every record f selects (interop.Record: an
// attestation with its status now and its disputes, or an allowlist
// entry), log by log in seq order, in chunks of exportSignalsChunk
// entries, each read in its own short read transaction and then matched
// (store.MatchMany) for statuses; fn runs outside any transaction, so a
// slow HTTP client holds up nothing. It stops at fn's first error and
// returns it.
func (n *Node) ExportSignals(ctx context.Context, f interop.Filter, fn func(interop.Record) error) error {
	heads, err := n.store.Heads()
	if err != nil {
		return err
	}
	for _, h := range heads {
		name := n.nameOf(h.Author)
		if len(f.Authors) > 0 && !slices.Contains(f.Authors, name) {
			continue
		}
		if err := n.ExportSignalsRange(ctx, h.Author, 1, h.Seq, f, fn); err != nil {
			return err
		}
	}
	return nil
}

// ExportSignalsRange is ExportSignals over one author's log, from seq from
// to seq to (a MISP feed's event is such a range).
func (n *Node) ExportSignalsRange(ctx context.Context, author protocol.AuthorKey, from, to uint64, f interop.Filter, fn func(interop.Record) error) error {
	name := n.nameOf(author)
	for from <= to {
		if err := ctx.Err(); err != nil {
			return err
		}
		end := min(to, from+exportSignalsChunk-1)
		var chunk []*protocol.Entry
		if err := n.store.Range(author, from, end, func(e *protocol.Entry) error {
			chunk = append(chunk, e)
			return nil
		}); err != nil {
			return err
		}
		if len(chunk) == 0 {
			return nil // below the head asked for: the log ends here
		}
		recs, err := n.exportRecords(name, chunk)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if !f.Match(r) {
				continue
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		from = chunk[len(chunk)-1].Seq() + 1
	}
	return nil
}

// exportRecords makes the records of a chunk of one author's log: one per
// signal of each addition (its status and disputes from the store's
// match), one per signal of each allowlist entry (active while in force,
// retracted once its author withdrew it). Allowlist records come before
// the chunk's attestations.
func (n *Node) exportRecords(name string, chunk []*protocol.Entry) ([]interop.Record, error) {
	var keys [][]byte
	type ref struct {
		e   *protocol.Entry
		sig *pb.Signal
	}
	var refs []ref
	var out, allows []interop.Record
	var allowKeys [][]byte
	for _, e := range chunk {
		switch p := e.Body.GetPayload().(type) {
		case *pb.Entry_Addition:
			for _, s := range p.Addition.GetSignals() {
				keys = append(keys, protocol.SignalKey(s))
				refs = append(refs, ref{e, s})
			}
		case *pb.Entry_Allow:
			for _, s := range p.Allow.GetSignals() {
				allowKeys = append(allowKeys, protocol.SignalKey(s))
				allows = append(allows, interop.Record{Signal: s, Author: name, EntryID: e.ID.String(), TimeMs: e.Body.GetTimestampMs(),
					Status: interop.StatusActive, Allow: &interop.Allow{Category: p.Allow.GetCategory(), Reason: p.Allow.GetReason()}})
			}
		}
	}
	if len(allows) > 0 {
		// An allow its author retracted (for a signal) is written
		// retracted: the default filter leaves it out.
		inForce, err := n.store.AllowsInForce(allowKeys)
		if err != nil {
			return nil, err
		}
		for i := range allows {
			id := allows[i].EntryID
			if !slices.ContainsFunc(inForce[i], func(r store.Reason) bool { return r.EntryID.String() == id }) {
				allows[i].Status = interop.StatusRetracted
			}
		}
		out = append(out, allows...)
	}
	if len(keys) == 0 {
		return out, nil
	}
	found, err := n.store.MatchMany(keys)
	if err != nil {
		return nil, err
	}
	for i, r := range refs {
		var att *store.Attestation
		for j := range found[i] {
			a := &found[i][j]
			if a.Kind == protocol.KindAddition && a.EntryID == r.e.ID {
				att = a
				break
			}
		}
		if att == nil {
			return nil, fmt.Errorf("export: %s's entry %d carries %s, which the index does not list", name, r.e.Seq(), protocol.FormatSignal(r.sig))
		}
		rec := interop.Record{Signal: r.sig, Author: name, EntryID: r.e.ID.String(), TimeMs: att.TimeMs,
			Labels: att.Labels, Status: string(att.Status)}
		for _, why := range att.Reasons {
			if why.Kind == protocol.KindDispute {
				rec.Disputes = append(rec.Disputes, interop.Opinion{Author: n.nameOf(why.Author), EntryID: why.EntryID.String(), Reason: why.Reason})
			}
		}
		out = append(out, rec)
	}
	return out, nil
}

// MISPFeedBatch is how many entries of a log make one event of the MISP
// feed: an event is a fixed seq range of one author's log, so that its
// uuid stays the same as the log grows and a subscribed MISP instance
// fetches only the events whose timestamp moved.
const MISPFeedBatch = 10000

// MISPFeed lists the events of the node's MISP feed: per author, one per
// MISPFeedBatch entries of its log. An event's timestamp is the newest
// entry timestamp of the whole store (the latest head's), not of its own
// range: a retraction, dispute or allow in any log can change the status
// of an attestation in any event, and MISP refetches only an event whose
// timestamp grew. That makes MISP refetch every event after any change;
// exact per-event timestamps would need an index of status changes.
func (n *Node) MISPFeed(ctx context.Context) ([]interop.MISPFeedEvent, error) {
	heads, err := n.store.Heads()
	if err != nil {
		return nil, err
	}
	var newest int64
	for _, h := range heads {
		if err := n.store.Range(h.Author, h.Seq, h.Seq, func(e *protocol.Entry) error {
			newest = max(newest, e.Body.GetTimestampMs())
			return nil
		}); err != nil {
			return nil, err
		}
	}
	fed := n.cfg.Federation
	var out []interop.MISPFeedEvent
	for _, h := range heads {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		name := n.nameOf(h.Author)
		for k := uint64(0); k*MISPFeedBatch < h.Seq; k++ {
			from, to := k*MISPFeedBatch+1, min((k+1)*MISPFeedBatch, h.Seq)
			var first int64
			if err := n.store.Range(h.Author, from, from, func(e *protocol.Entry) error {
				first = e.Body.GetTimestampMs()
				return nil
			}); err != nil {
				return nil, err
			}
			out = append(out, interop.MISPFeedEvent{Author: h.Author, From: from, To: to, Meta: interop.MISPEventMeta{
				UUID:      interop.MISPEventUUID(fed, h.Author.String(), fmt.Sprint(k)),
				Info:      fmt.Sprintf("Staydown %s: %s's attestations, log entries %d to %d", fed, name, from, to),
				Date:      time.UnixMilli(first).UTC().Format(time.DateOnly),
				Timestamp: time.UnixMilli(newest).Unix(),
				OrgName:   name,
				OrgUUID:   interop.MISPOrgUUID(fed, name),
			}})
		}
	}
	return out, nil
}

// Federation is the federation's name (api.SignalExporter).
func (n *Node) Federation() string { return n.cfg.Federation }
