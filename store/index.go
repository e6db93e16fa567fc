package store

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// Key and value layouts are documented in doc.go; keep the two in step.

const (
	authorSize = len(protocol.AuthorKey{})
	idSize     = protocol.IDSize
	// idRowSize: ids value, author || seq || kind code.
	idRowSize = authorSize + 8 + 1
	// headRowSize: heads value, seq || id.
	headRowSize = 8 + idSize
	// evidenceKeySize: author || seq || id.
	evidenceKeySize = authorSize + 8 + idSize
	// logKeySize: author || seq, the additions key and the end of an
	// attest key.
	logKeySize = authorSize + 8
)

// Kind codes as stored in ids rows. Frozen: they are on disk.
var kindCodes = map[protocol.Kind]byte{
	protocol.KindAddition:     1,
	protocol.KindRetraction:   2,
	protocol.KindDispute:      3,
	protocol.KindAllow:        4,
	protocol.KindNotice:       5,
	protocol.KindNoticeUpdate: 6,
	protocol.KindNoticeReply:  7,
	protocol.KindAmendment:    8,
	protocol.KindApproval:     9,
	protocol.KindRotation:     10,
	protocol.KindPeerUpdate:   11,
}

var codeKinds = func() map[byte]protocol.Kind {
	m := make(map[byte]protocol.Kind, len(kindCodes))
	for k, c := range kindCodes {
		m[c] = k
	}
	return m
}()

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func cat(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// signalPrefix is the attest and allow key prefix of a signal key. The
// length goes first so that a prefix scan finds exactly this key and not a
// longer key that starts with it (a URL and the same URL with a query).
func signalPrefix(sk []byte) []byte {
	b := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(sk)+logKeySize), uint64(len(sk)))
	return append(b, sk...)
}

func idOf(b []byte) (protocol.ID, bool) {
	var id protocol.ID
	if len(b) != idSize {
		return id, false
	}
	copy(id[:], b)
	return id, true
}

func authorOf(b []byte) protocol.AuthorKey {
	var k protocol.AuthorKey
	copy(k[:], b)
	return k
}

// idRow is an ids value: where an entry sits and what it is.
type idRow struct {
	Author protocol.AuthorKey
	Seq    uint64
	Kind   protocol.Kind
}

func idRowValue(e *protocol.Entry) []byte {
	return cat(e.Author[:], u64(e.Seq()), []byte{kindCodes[e.Kind()]})
}

func parseIDRow(id, v []byte) (idRow, error) {
	if len(v) != idRowSize {
		return idRow{}, fmt.Errorf("%w: ids/%x: %d bytes, want %d", ErrCorrupt, id, len(v), idRowSize)
	}
	r := idRow{Author: authorOf(v), Seq: binary.BigEndian.Uint64(v[authorSize:])}
	var ok bool
	if r.Kind, ok = codeKinds[v[idRowSize-1]]; !ok || r.Seq == 0 {
		return idRow{}, fmt.Errorf("%w: ids/%x: kind code %d, seq %d", ErrCorrupt, id, v[idRowSize-1], r.Seq)
	}
	return r, nil
}

func headValue(h protocol.Head) []byte { return cat(u64(h.Seq), h.ID[:]) }

func parseHead(author protocol.AuthorKey, v []byte) (protocol.Head, error) {
	if len(v) != headRowSize {
		return protocol.Head{}, fmt.Errorf("%w: heads/%s: %d bytes, want %d", ErrCorrupt, author, len(v), headRowSize)
	}
	h := protocol.Head{Author: author, Seq: binary.BigEndian.Uint64(v)}
	copy(h.ID[:], v[8:])
	if h.Seq == 0 {
		return protocol.Head{}, fmt.Errorf("%w: heads/%s: seq 0", ErrCorrupt, author)
	}
	return h, nil
}

func evidenceKey(author protocol.AuthorKey, seq uint64, id protocol.ID) []byte {
	return cat(author[:], u64(seq), id[:])
}

// logKey is author || seq: where an entry sits in the logs. It keys the
// additions index and ends attest keys, so that rows written by one batch
// of a log are neighbours instead of scattered over the file.
func logKey(author protocol.AuthorKey, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, logKeySize), author[:]...), seq)
}

// summary is an additions row: what Match reports of an addition without
// decoding an entry that may carry a thousand signals.
type summary struct {
	Author  protocol.AuthorKey
	Seq     uint64
	ID      protocol.ID
	TimeMs  int64
	Labels  []string
	CaseRef string
}

func summaryValue(e *protocol.Entry, a *pb.Addition) []byte {
	b := append(make([]byte, 0, idSize+8+64+len(a.CaseRef)), e.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Body.TimestampMs))
	b = binary.AppendUvarint(b, uint64(len(a.Labels)))
	for _, l := range a.Labels {
		b = appendString(b, protocol.FormatLabel(l))
	}
	return append(b, a.CaseRef...)
}

// parseSummary decodes an additions row, key author || seq.
func parseSummary(k, v []byte) (summary, error) {
	if len(k) != logKeySize {
		return summary{}, fmt.Errorf("%w: additions/%x: key is %d bytes, want %d", ErrCorrupt, k, len(k), logKeySize)
	}
	s := summary{Author: authorOf(k), Seq: binary.BigEndian.Uint64(k[authorSize:])}
	r := newReader(v)
	copy(s.ID[:], r.next(idSize))
	s.TimeMs = int64(r.uint64())
	n := r.uvarint()
	if n > protocol.MaxLabels {
		r.fail()
	}
	for i := uint64(0); i < n && r.ok; i++ {
		s.Labels = append(s.Labels, r.string())
	}
	s.CaseRef = string(r.rest())
	if !r.ok || s.Seq == 0 {
		return summary{}, fmt.Errorf("%w: additions/%x: does not decode", ErrCorrupt, k)
	}
	return s, nil
}

// allowRow is an allow value.
type allowRow struct {
	Author   protocol.AuthorKey
	Category string
	Reason   string
}

func allowValue(e *protocol.Entry, a *pb.Allow) []byte {
	b := append(make([]byte, 0, authorSize+2+len(a.Category)+len(a.Reason)), e.Author[:]...)
	b = appendString(b, a.Category)
	return append(b, a.Reason...)
}

func parseAllow(k, v []byte) (allowRow, error) {
	r := newReader(v)
	a := allowRow{Author: authorOf(r.next(authorSize)), Category: r.string(), Reason: string(r.rest())}
	if !r.ok {
		return allowRow{}, fmt.Errorf("%w: allow/%x: does not decode", ErrCorrupt, k)
	}
	return a, nil
}

// namedRow is a retractions or disputes value: who (the retraction's id,
// the dispute's author), the index keys of the signals it names (none:
// all of its target's, SPEC 6.2, 6.3) and its reason.
type namedRow struct {
	Who    []byte
	Keys   [][]byte
	Reason string
}

func namedValue(who []byte, sigs []*pb.Signal, reason string) []byte {
	keys := make([][]byte, len(sigs))
	for i, s := range sigs {
		keys[i] = protocol.SignalKey(s)
	}
	b := appendKeys(append(make([]byte, 0, len(who)+1+len(reason)), who...), keys)
	return append(b, reason...)
}

// appendKeys appends len(keys) {len(sk) sk}.
func appendKeys(b []byte, keys [][]byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = append(binary.AppendUvarint(b, uint64(len(k))), k...)
	}
	return b
}

// parseNamed decodes a namedValue whose who is whoSize bytes. index
// names the bucket for the error.
func parseNamed(index string, k, v []byte, whoSize int) (namedRow, error) {
	r := newReader(v)
	n := namedRow{Who: r.next(whoSize)}
	c := r.uvarint()
	if c > protocol.MaxSignals {
		r.fail()
	}
	for i := uint64(0); i < c && r.ok; i++ {
		n.Keys = append(n.Keys, []byte(r.string()))
	}
	n.Reason = string(r.rest())
	if !r.ok {
		return namedRow{}, fmt.Errorf("%w: %s/%x: does not decode", ErrCorrupt, index, k)
	}
	return n, nil
}

// names reports whether the row bears on the signal with index key key;
// a nil key asks whether it bears on any.
func (n namedRow) names(key []byte) bool {
	if len(n.Keys) == 0 || key == nil {
		return true
	}
	for _, k := range n.Keys {
		if bytes.Equal(k, key) {
			return true
		}
	}
	return false
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// reader decodes a value; the first short read clears ok and every later
// read returns zero values, so a parser checks ok once at the end.
type reader struct {
	b  []byte
	ok bool
}

func newReader(b []byte) *reader { return &reader{b: b, ok: true} }

func (r *reader) fail() { r.ok, r.b = false, nil }

func (r *reader) next(n int) []byte {
	if len(r.b) < n {
		r.fail()
		return make([]byte, n)
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) uint64() uint64 { return binary.BigEndian.Uint64(r.next(8)) }

// uvarint reads a varint of minimal length, as binary.AppendUvarint
// writes it: a longer one is not a value this store wrote.
func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 || n != uvarintLen(v) {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) string() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return ""
	}
	return string(r.next(int(n)))
}

func (r *reader) rest() []byte {
	p := r.b
	r.b = r.b[len(p):]
	return p
}

// sink receives the index rows derived from one entry. The live writer puts
// them into bbolt; Check compares them with what is there. One function
// (index) derives the rows for both, which is what makes "Rebuild gives the
// same bytes as live application" hold by construction.
type sink interface {
	put(idx int, key, value []byte) error
}

// index derives the rows of every index except heads (which only the last
// entry of a log sets; the callers write it). Each row depends on this entry
// alone, never on what else is stored, so the set of rows is the same
// whatever order the logs arrived in: state that depends on several logs
// (is this addition retracted, disputed, allowlisted?) is computed when it
// is read.
func index(w sink, e *protocol.Entry) error {
	if err := w.put(idxIDs, e.ID[:], idRowValue(e)); err != nil {
		return err
	}
	switch p := e.Body.GetPayload().(type) {
	case *pb.Entry_Addition:
		lk := logKey(e.Author, e.Seq())
		if err := w.put(idxAdditions, lk, summaryValue(e, p.Addition)); err != nil {
			return err
		}
		for _, s := range p.Addition.Signals {
			k := append(signalPrefix(protocol.SignalKey(s)), lk...)
			if err := w.put(idxAttest, k, nil); err != nil {
				return err
			}
			if v := s.GetVpdq(); v != nil {
				if err := w.put(idxVPDQFrames, k, v); err != nil {
					return err
				}
			}
		}
	case *pb.Entry_Retraction:
		return w.put(idxRetractions, p.Retraction.Target, namedValue(e.ID[:], p.Retraction.Signals, p.Retraction.Reason))
	case *pb.Entry_Dispute:
		return w.put(idxDisputes, cat(p.Dispute.Target, e.ID[:]), namedValue(e.Author[:], p.Dispute.Signals, p.Dispute.Reason))
	case *pb.Entry_Allow:
		v := allowValue(e, p.Allow)
		for _, s := range p.Allow.Signals {
			if err := w.put(idxAllow, append(signalPrefix(protocol.SignalKey(s)), e.ID[:]...), v); err != nil {
				return err
			}
		}
	case *pb.Entry_Notice:
		if err := w.put(idxNotices, cat(p.Notice.Addressee, e.ID[:]), e.Author[:]); err != nil {
			return err
		}
		for _, s := range p.Notice.Signals {
			if err := w.put(idxNoticeSigs, append(signalPrefix(protocol.SignalKey(s)), e.ID[:]...), nil); err != nil {
				return err
			}
		}
	case *pb.Entry_NoticeUpdate:
		return w.put(idxNoticeRefs, cat(p.NoticeUpdate.Notice, e.ID[:]), cat([]byte{kindCodes[protocol.KindNoticeUpdate]}, e.Author[:]))
	case *pb.Entry_NoticeReply:
		return w.put(idxNoticeRefs, cat(p.NoticeReply.Notice, e.ID[:]), cat([]byte{kindCodes[protocol.KindNoticeReply]}, e.Author[:]))
	case *pb.Entry_Amendment, *pb.Entry_Approval, *pb.Entry_Rotation, *pb.Entry_PeerUpdate:
		// Listed in membership by indexRows; their effect is the
		// roster's (protocol/membership), read from the logs.
	default:
		return fmt.Errorf("%w: entry %s has no payload this store knows", ErrCorrupt, e.ID)
	}
	return nil
}

// hasPrefix walks keys of a cursor that start with prefix.
func hasPrefix(k, prefix []byte) bool { return k != nil && bytes.HasPrefix(k, prefix) }
