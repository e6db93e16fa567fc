package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/staydown/staydown/interop"
	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// The TAXII server's collections (api.TAXIISource, SPEC 23): each entry
// this node logged lists the STIX objects it makes or changes, as the
// signal export writes them (interop's STIX writer, the one mapper):
//
//   - an addition or allowlist entry, the indicators of its signals;
//   - a retraction or dispute, the indicators of its target's signals it
//     names (all of them when it names none); a dispute its opinions
//     too (an opinion is listed with its dispute only);
//   - an allowlist entry also the indicators of every addition of its
//     signals, whose status it changes;
//   - an author's first entry (seq 1), first, the author's identity;
//   - anything else, or a void entry, nothing.
//
// Every object is listed in its state when read, as the export writes it
// at the arrival's time (modified is that time when the status is not
// active).
var _ api.TAXIISource = (*Node)(nil)

// TAXIIArrivalsBy is how many arrivals the store logged at or before ms.
func (n *Node) TAXIIArrivalsBy(ctx context.Context, ms int64) (uint64, error) {
	return n.store.ArrivalsBy(ms)
}

// TAXIIArrivals reads up to max arrivals after after in one read
// transaction; each one's objects are made outside it when asked for (in
// short reads of their own, as the export does).
func (n *Node) TAXIIArrivals(ctx context.Context, after uint64, max int) ([]api.TAXIIArrival, error) {
	var out []api.TAXIIArrival
	err := n.store.Arrivals(after, max, func(a store.Arrival) error {
		out = append(out, api.TAXIIArrival{N: a.N, EntryID: a.Entry.ID, AddedMs: a.AddedMs, Objects: func() ([]api.TAXIIObject, error) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			objs, err := n.taxiiCached(a)
			if err != nil {
				return nil, fmt.Errorf("taxii: arrival %d (%s): %w", a.N, a.Entry.ID, err)
			}
			return objs, nil
		}})
		return nil
	})
	return out, err
}

// taxiiCache keeps the objects of the arrival made last, while the store
// logs nothing new: a page that ends inside an entry's objects (an
// addition carries up to 1,000 signals) leaves the rest to the next
// page, which would make them all again.
type taxiiCache struct {
	mu    sync.Mutex // guards the fields
	n     uint64     // the arrival
	count uint64     // the store's arrivals when it was made
	objs  []api.TAXIIObject
}

func (n *Node) taxiiCached(a store.Arrival) ([]api.TAXIIObject, error) {
	count, err := n.store.LastArrival()
	if err != nil {
		return nil, err
	}
	c := &n.taxii
	c.mu.Lock()
	if c.n == a.N && c.count == count && c.objs != nil {
		objs := c.objs
		c.mu.Unlock()
		return objs, nil
	}
	c.mu.Unlock()
	objs, err := n.taxiiObjects(a)
	if err != nil {
		return nil, err
	}
	if objs == nil {
		objs = []api.TAXIIObject{}
	}
	c.mu.Lock()
	c.n, c.count, c.objs = a.N, count, objs
	c.mu.Unlock()
	return objs, nil
}

// keyedRecord is a record with the entry it is of.
type keyedRecord struct {
	entry protocol.ID
	rec   interop.Record
	key   []byte // recordKey
}

// Object keys: an identity's is taxiiKeyIdentity; a record's objects'
// are its recordKey and the object's index within the record (big-endian
// uint16: the indicator 0, its opinions 1, 2, ...).
const (
	taxiiKeyIdentity = 0
	taxiiKeyRecord   = 1
)

// recordKey is taxiiKeyRecord, the entry id and SHA-256 of the signal key:
// of one length, so that no record's key begins another's and an index
// appended keeps the records' order; short, whatever the signal (a URL's
// key is the URL), so that a cursor stays small.
func recordKey(entry protocol.ID, sig *pb.Signal) []byte {
	sk := sha256.Sum256(protocol.SignalKey(sig))
	return append(append([]byte{taxiiKeyRecord}, entry[:]...), sk[:]...)
}

func (n *Node) taxiiObjects(a store.Arrival) ([]api.TAXIIObject, error) {
	e := a.Entry
	var out []api.TAXIIObject
	if e.Seq() == 1 {
		id, err := n.taxiiIdentity(n.nameOf(e.Author), a.AddedMs)
		if err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	recs, err := n.taxiiRecords(e)
	if err != nil {
		return nil, err
	}
	for i := range recs {
		recs[i].key = recordKey(recs[i].entry, recs[i].rec.Signal)
	}
	slices.SortFunc(recs, func(x, y keyedRecord) int { return bytes.Compare(x.key, y.key) })
	objs, err := n.stixObjects(a.AddedMs, e.ID, recs)
	if err != nil {
		return nil, err
	}
	return append(out, objs...), nil
}

// taxiiRecords are the records an entry lists (see above).
func (n *Node) taxiiRecords(e *protocol.Entry) ([]keyedRecord, error) {
	var target []byte
	var named []*pb.Signal
	var allowed []*pb.Signal
	switch p := e.Body.GetPayload().(type) {
	case *pb.Entry_Addition:
	case *pb.Entry_Allow:
		allowed = p.Allow.GetSignals()
	case *pb.Entry_Retraction:
		target, named = p.Retraction.GetTarget(), p.Retraction.GetSignals()
	case *pb.Entry_Dispute:
		target, named = p.Dispute.GetTarget(), p.Dispute.GetSignals()
	default:
		return nil, nil
	}
	if void, err := n.isVoid(e.ID); err != nil || void {
		return nil, err
	}
	if target == nil {
		recs, err := n.entryRecords(e, nil)
		if err != nil || len(allowed) == 0 {
			return recs, err
		}
		more, err := n.allowedRecords(allowed)
		return append(recs, more...), err
	}
	id, err := protocol.IDFromBytes(target)
	if err != nil {
		return nil, nil // a void entry's target; not reached
	}
	t, err := n.store.Get(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if void, err := n.isVoid(t.ID); err != nil || void {
		return nil, err
	}
	keys := map[string]bool{}
	for _, s := range named {
		keys[string(protocol.SignalKey(s))] = true
	}
	return n.entryRecords(t, keys)
}

// entryRecords are the export's records of an addition or allowlist
// entry, of the signals keys names (all when nil).
func (n *Node) entryRecords(e *protocol.Entry, keys map[string]bool) ([]keyedRecord, error) {
	recs, err := n.exportRecords(n.nameOf(e.Author), []*protocol.Entry{e})
	if err != nil {
		return nil, err
	}
	var out []keyedRecord
	for _, r := range recs {
		if keys == nil || keys[string(protocol.SignalKey(r.Signal))] {
			out = append(out, keyedRecord{entry: e.ID, rec: r})
		}
	}
	return out, nil
}

// allowedRecords are the records of every addition of the signals an
// allowlist entry names: their status is now allowlisted.
func (n *Node) allowedRecords(sigs []*pb.Signal) ([]keyedRecord, error) {
	keys := make([][]byte, len(sigs))
	for i, s := range sigs {
		keys[i] = protocol.SignalKey(s)
	}
	found, err := n.store.MatchMany(keys)
	if err != nil {
		return nil, err
	}
	byEntry := map[protocol.ID]map[string]bool{}
	var order []protocol.ID
	for i, atts := range found {
		for _, a := range atts {
			if a.Kind != protocol.KindAddition {
				continue
			}
			if byEntry[a.EntryID] == nil {
				byEntry[a.EntryID] = map[string]bool{}
				order = append(order, a.EntryID)
			}
			byEntry[a.EntryID][string(keys[i])] = true
		}
	}
	var out []keyedRecord
	for _, id := range order {
		e, err := n.store.Get(id)
		if err != nil {
			return nil, err
		}
		recs, err := n.entryRecords(e, byEntry[id])
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
	}
	return out, nil
}

func (n *Node) isVoid(id protocol.ID) (bool, error) {
	_, err := n.store.VoidReason(id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// stixHeader is what the TAXII server reads of an object.
type stixHeader struct {
	Type     string `json:"type"`
	ID       string `json:"id"`
	Modified string `json:"modified"`
}

// stixObjects writes records through the export's STIX writer, with the
// time of the arrival that lists them as the export's time, and returns
// their objects, keyed, without the identities the writer puts before
// them (an identity is listed with its member's first entry) and without
// the opinions of disputes other than the listing entry (an opinion is
// listed with its dispute, after its author's identity).
func (n *Node) stixObjects(ms int64, listing protocol.ID, recs []keyedRecord) ([]api.TAXIIObject, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	var buf bytes.Buffer
	w, err := interop.NewWriter(interop.STIX, &buf, interop.Meta{Federation: n.cfg.Federation, Exporter: "taxii", CreatedMs: ms})
	if err != nil {
		return nil, err
	}
	var written []keyedRecord
	for _, r := range recs {
		if err := w.Write(r.rec); errors.Is(err, interop.ErrSkip) {
			continue // a type STIX patterns cannot name
		} else if err != nil {
			return nil, err
		}
		written = append(written, r)
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	var bundle struct {
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.Unmarshal(buf.Bytes(), &bundle); err != nil {
		return nil, fmt.Errorf("reading the STIX writer's bundle: %w", err)
	}
	var out []api.TAXIIObject
	rec, index := -1, 0 // the record the objects are of, and the object's index in it
	for _, raw := range bundle.Objects {
		var h stixHeader
		if err := json.Unmarshal(raw, &h); err != nil {
			return nil, fmt.Errorf("reading the STIX writer's object: %w", err)
		}
		switch h.Type {
		case "identity":
			continue
		case "indicator": // each record's first object
			rec, index = rec+1, 0
		default: // its opinions, one per dispute
			index++
		}
		if rec < 0 || rec >= len(written) {
			return nil, fmt.Errorf("the STIX writer wrote %s %s before an indicator or past the records", h.Type, h.ID)
		}
		kr := written[rec]
		author := kr.rec.Author
		if h.Type == "opinion" {
			if index > len(kr.rec.Disputes) {
				return nil, fmt.Errorf("the STIX writer wrote opinion %s of %d disputes", h.ID, len(kr.rec.Disputes))
			}
			d := kr.rec.Disputes[index-1]
			if d.EntryID != listing.String() {
				continue // listed with its own dispute
			}
			author = d.Author
		}
		key := binary.BigEndian.AppendUint16(slices.Clip(kr.key), uint16(index))
		out = append(out, api.TAXIIObject{Key: key, ID: h.ID, Type: h.Type, Author: author, Modified: h.Modified, JSON: raw})
	}
	return out, nil
}

// placeholderSignal is the signal of the record taxiiIdentity hands the
// writer: never listed.
var placeholderSignal = &pb.Signal{Value: &pb.Signal_Multihash{Multihash: append([]byte{0x12, 0x20}, make([]byte, 32)...)}}

// taxiiIdentity is member name's identity as the export writes it, at
// time ms. The writer writes an identity before the first object of its
// member; it is handed a record of the member and only the identity is
// kept.
func (n *Node) taxiiIdentity(name string, ms int64) (api.TAXIIObject, error) {
	var buf bytes.Buffer
	w, err := interop.NewWriter(interop.STIX, &buf, interop.Meta{Federation: n.cfg.Federation, Exporter: "taxii", CreatedMs: ms})
	if err != nil {
		return api.TAXIIObject{}, err
	}
	if err := w.Write(interop.Record{Signal: placeholderSignal, Author: name, Status: interop.StatusActive, TimeMs: ms}); err != nil {
		return api.TAXIIObject{}, err
	}
	if err := w.Close(); err != nil {
		return api.TAXIIObject{}, err
	}
	var bundle struct {
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.Unmarshal(buf.Bytes(), &bundle); err != nil || len(bundle.Objects) == 0 {
		return api.TAXIIObject{}, fmt.Errorf("reading the STIX writer's bundle: %v", err)
	}
	var h stixHeader
	if err := json.Unmarshal(bundle.Objects[0], &h); err != nil || h.Type != "identity" {
		return api.TAXIIObject{}, fmt.Errorf("the STIX writer's first object is not the identity: %s", bundle.Objects[0])
	}
	return api.TAXIIObject{Key: []byte{taxiiKeyIdentity}, ID: h.ID, Type: h.Type, Author: name, Modified: h.Modified, JSON: bundle.Objects[0]}, nil
}
