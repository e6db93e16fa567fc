package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/replica"
)

// Head returns the newest entry of author's log, or a Head with only
// Author set if the log is empty.
func (s *Store) Head(author protocol.AuthorKey) (protocol.Head, error) {
	h := protocol.Head{Author: author}
	err := s.view(func(b *buckets) error {
		if v := b.idx[idxHeads].Get(author[:]); v != nil {
			var err error
			h, err = parseHead(author, v)
			return err
		}
		return nil
	})
	return h, wrapDB("head", err)
}

// Heads returns the head of every non-empty log, sorted by author key (the
// order protocol.HeadsDigest wants).
func (s *Store) Heads() ([]protocol.Head, error) {
	var heads []protocol.Head
	err := s.view(func(b *buckets) error {
		return b.idx[idxHeads].ForEach(func(k, v []byte) error {
			if len(k) != authorSize {
				return fmt.Errorf("%w: heads/%x: key is %d bytes, want %d", ErrCorrupt, k, len(k), authorSize)
			}
			h, err := parseHead(authorOf(k), v)
			heads = append(heads, h)
			return err
		})
	})
	if err != nil {
		return nil, wrapDB("heads", err)
	}
	return heads, nil
}

// Count is the number of entries in all logs (evidence not included).
func (s *Store) Count() (uint64, error) {
	var n uint64
	err := s.view(func(b *buckets) (err error) {
		n, err = b.count()
		return err
	})
	return n, wrapDB("count", err)
}

// Get returns the logged entry with this id, or an error wrapping
// ErrNotFound. The entry's Raw is a copy that the caller owns. Entries held
// only as evidence are not found here; see Evidence.
func (s *Store) Get(id protocol.ID) (*protocol.Entry, error) {
	var e *protocol.Entry
	err := s.view(func(b *buckets) error {
		var err error
		e, err = b.get(id)
		return err
	})
	if err != nil {
		return nil, wrapDB("get", err)
	}
	return e, nil
}

func (b *buckets) get(id protocol.ID) (*protocol.Entry, error) {
	ids, err := b.ids()
	if err != nil {
		return nil, err
	}
	v := ids.Get(id[:])
	if v == nil {
		return nil, fmt.Errorf("entry %s: %w", id, ErrNotFound)
	}
	row, err := parseIDRow(id[:], v)
	if err != nil {
		return nil, err
	}
	e, err := b.logEntry(row.Author, row.Seq)
	if err != nil {
		return nil, err
	}
	if e.ID != id {
		return nil, fmt.Errorf("%w: ids/%s points to %s seq %d, which is %s", ErrCorrupt, id, row.Author, row.Seq, e.ID)
	}
	return e, nil
}

// logEntry decodes a copy of the entry at author/seq.
func (b *buckets) logEntry(author protocol.AuthorKey, seq uint64) (*protocol.Entry, error) {
	log := b.logs.Bucket(author[:])
	var v []byte
	if log != nil {
		v = log.Get(u64(seq))
	}
	if v == nil {
		return nil, fmt.Errorf("%w: entry %s/%d is indexed but not in the log", ErrCorrupt, author, seq)
	}
	return decodeStored(author, seq, v)
}

// decodeStored decodes a copy of v: protocol.Decode retains its input, and
// v dies with the transaction.
func decodeStored(author protocol.AuthorKey, seq uint64, v []byte) (*protocol.Entry, error) {
	return decodeOwned(author, seq, bytes.Clone(v))
}

// decodeOwned is decodeStored for bytes the caller owns (not a bbolt value).
func decodeOwned(author protocol.AuthorKey, seq uint64, v []byte) (*protocol.Entry, error) {
	e, err := protocol.Decode(v)
	if err != nil {
		return nil, fmt.Errorf("%w: logs/%s/%d: %v", ErrCorrupt, author, seq, err)
	}
	if e.Author != author || e.Seq() != seq {
		return nil, fmt.Errorf("%w: logs/%s/%d holds entry %s by %s seq %d", ErrCorrupt, author, seq, e.ID, e.Author, e.Seq())
	}
	return e, nil
}

// Range calls fn with the entries of author's log from seq from to seq to,
// inclusive, in order, stopping early at the end of the log or when fn
// returns an error, which Range returns as is. Each entry's Raw is a copy
// fn may keep. fn runs inside a read transaction: it must not write to the
// store (a write waiting on a read of the same goroutine can deadlock), and
// a slow fn holds back the reuse of freed pages.
func (s *Store) Range(author protocol.AuthorKey, from, to uint64, fn func(*protocol.Entry) error) error {
	return s.RangeRaw(author, from, to, func(seq uint64, raw []byte) error {
		e, err := decodeOwned(author, seq, raw)
		if err != nil {
			return err
		}
		return fn(e)
	})
}

// RangeBatch reads a batch of author's log from from on, up to to: at
// most maxEntries entries and maxBytes bytes (the first entry always,
// whatever its size), in one short read transaction, as RangeRaw hands
// them over. more says the range holds entries beyond the batch. It is
// for callers that write the bytes to a peer or a client: they read a
// batch, then write it, so that no transaction waits on the other end.
func (s *Store) RangeBatch(author protocol.AuthorKey, from, to uint64, maxEntries, maxBytes int) (raws [][]byte, more bool, err error) {
	size := 0
	full := errors.New("batch full")
	err = s.RangeRaw(author, from, to, func(_ uint64, raw []byte) error {
		if len(raws) == maxEntries || (size > 0 && size+len(raw) > maxBytes) {
			return full
		}
		raws, size = append(raws, raw), size+len(raw)
		return nil
	})
	if errors.Is(err, full) {
		return raws, true, nil
	}
	return raws, false, err
}

// RangeRaw is Range without decoding: fn gets each entry's seq and its
// stored bytes (a copy fn may keep). It is for callers that only pass the
// bytes on or hash them, such as a sync server, whose client checks every
// entry itself. An error that fn returns is returned as is.
func (s *Store) RangeRaw(author protocol.AuthorKey, from, to uint64, fn func(seq uint64, raw []byte) error) error {
	from = max(from, 1)
	if to < from {
		return nil
	}
	var fnErr error
	err := s.view(func(b *buckets) error {
		log := b.logs.Bucket(author[:])
		if log == nil {
			return nil
		}
		c := log.Cursor()
		want := from
		for k, v := c.Seek(u64(from)); k != nil; k, v = c.Next() {
			if len(k) != 8 || binary.BigEndian.Uint64(k) != want {
				return fmt.Errorf("%w: logs/%s: key %x where seq %d belongs", ErrCorrupt, author, k, want)
			}
			if fnErr = fn(want, bytes.Clone(v)); fnErr != nil {
				return fnErr
			}
			if want == to {
				return nil
			}
			want++
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	return wrapDB("range", err)
}

// Status of an attestation (replica.StatusOf has the precedence).
type Status = replica.Status

const (
	StatusActive      = replica.StatusActive
	StatusRetracted   = replica.StatusRetracted
	StatusDisputed    = replica.StatusDisputed
	StatusAllowlisted = replica.StatusAllowlisted
)

// Attestation is one addition that carries the signal asked for, or one
// actioned takedown notice that names it (Kind says which).
type Attestation struct {
	// Kind is protocol.KindAddition or protocol.KindNotice.
	Kind        protocol.Kind
	Author      protocol.AuthorKey
	EntryID     protocol.ID
	Seq         uint64
	Labels      []string // protocol.FormatLabel form
	CaseRef     string
	TimeMs      int64 // the entry's timestamp: the author's claim
	Status      Status
	Reasons     []Reason // every retraction, allow, dispute bearing on it, sorted by (Kind, EntryID)
	Equivocated bool     // the author is flagged: weigh everything it signed accordingly
	// Notice is set for a notice attestation: who actioned it and how.
	Notice *NoticeAction
}

// NoticeAction is what makes an actioned notice an attestation (SPEC.md
// section 10.2, stay down): the addressee removed or disabled what it
// named.
type NoticeAction struct {
	Addressee protocol.AuthorKey
	Binding   bool
	Reply     protocol.ID // the first action
	ActionMs  int64       // the addressee's claim, bounded (SPEC.md 10.1)
}

// Reason is one entry that bears on an attestation's status.
type Reason struct {
	Kind     protocol.Kind // retraction, allow or dispute
	Author   protocol.AuthorKey
	EntryID  protocol.ID
	Category string // allow only
	Reason   string
}

// Match returns every stored addition that carries the signal with this
// key (protocol.SignalKey), sorted by author and seq, with its status as
// of now. An allowlist entry bears on every addition of the signal, by
// anyone, unless its own author retracted it.
func (s *Store) Match(signalKey []byte) ([]Attestation, error) {
	var out []Attestation
	err := s.view(func(b *buckets) (err error) {
		out, err = b.match(signalKey)
		return err
	})
	if err != nil {
		return nil, wrapDB("match", err)
	}
	return out, nil
}

func (b *buckets) match(signalKey []byte) ([]Attestation, error) {
	var out []Attestation
	prefix := signalPrefix(signalKey)
	allows, err := b.allows(signalKey, prefix)
	if err != nil {
		return nil, err
	}
	flagged := map[protocol.AuthorKey]bool{}
	mark := func(a Attestation) Attestation {
		f, seen := flagged[a.Author]
		if !seen {
			f = b.flagged(a.Author)
			flagged[a.Author] = f
		}
		a.Equivocated = f
		return a
	}
	attest, err := b.cursor(idxAttest)
	if err != nil {
		return nil, err
	}
	for k, _ := attest.Seek(prefix); hasPrefix(k, prefix); k, _ = attest.Next() {
		lk := k[len(prefix):]
		if len(lk) != logKeySize {
			return nil, fmt.Errorf("%w: attest/%x: key does not end in author || seq", ErrCorrupt, k)
		}
		a, err := b.attestation(signalKey, lk, allows)
		if err != nil {
			return nil, err
		}
		out = append(out, mark(a))
	}
	c := b.idx[idxNoticeSigs].Cursor()
	for k, _ := c.Seek(prefix); hasPrefix(k, prefix); k, _ = c.Next() {
		id, ok := idOf(k[len(prefix):])
		if !ok {
			return nil, fmt.Errorf("%w: noticesigs/%x: key does not end in an entry id", ErrCorrupt, k)
		}
		a, ok, err := b.noticeAttestation(signalKey, id, allows)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		out = append(out, mark(a))
	}
	slices.SortFunc(out, func(x, y Attestation) int {
		if c := bytes.Compare(x.Author[:], y.Author[:]); c != 0 {
			return c
		}
		return cmp.Compare(x.Seq, y.Seq)
	})
	return out, nil
}

// allows returns the allowlist entries in force for the signal with index
// key sk (prefix is signalPrefix(sk)).
func (b *buckets) allows(sk, prefix []byte) ([]Reason, error) {
	var rs []Reason
	c := b.idx[idxAllow].Cursor()
	for k, v := c.Seek(prefix); hasPrefix(k, prefix); k, v = c.Next() {
		id, ok := idOf(k[len(prefix):])
		if !ok {
			return nil, fmt.Errorf("%w: allow/%x: key does not end in an entry id", ErrCorrupt, k)
		}
		// A retracted allow is withdrawn for the signals its retraction
		// names, not a reason any more.
		if withdrawn, err := b.retracted(id, sk); err != nil || withdrawn {
			if err != nil {
				return nil, err
			}
			continue
		}
		a, err := parseAllow(k, v)
		if err != nil {
			return nil, err
		}
		rs = append(rs, Reason{Kind: protocol.KindAllow, Author: a.Author, EntryID: id, Category: a.Category, Reason: a.Reason})
	}
	return rs, nil
}

// attestation reads the addition at lk (author || seq, an attest key's
// tail) and what bears on its signal with index key sk.
func (b *buckets) attestation(sk, lk []byte, allows []Reason) (Attestation, error) {
	v := b.idx[idxAdditions].Get(lk)
	if v == nil {
		return Attestation{}, fmt.Errorf("%w: attest row for %x, but no additions row", ErrCorrupt, lk)
	}
	sum, err := parseSummary(lk, v)
	if err != nil {
		return Attestation{}, err
	}
	id := sum.ID
	a := Attestation{Kind: protocol.KindAddition, Author: sum.Author, EntryID: id, Seq: sum.Seq, Labels: sum.Labels, CaseRef: sum.CaseRef, TimeMs: sum.TimeMs}
	a.Reasons = append(a.Reasons, allows...)
	retracted := false
	if r, ok, err := b.retraction(id); err != nil {
		return Attestation{}, err
	} else if ok && r.names(sk) {
		retracted = true
		a.Reasons = append(a.Reasons, Reason{Kind: protocol.KindRetraction, Author: sum.Author, EntryID: protocol.ID(r.Who), Reason: r.Reason})
	}
	disputed, err := b.disputes(id, sk, &a)
	if err != nil {
		return Attestation{}, err
	}
	settle(&a, retracted, len(allows) > 0, disputed)
	return a, nil
}

// Disputes returns the disputes that name target and stand (not
// withdrawn) for at least one signal, sorted by their ids.
func (s *Store) Disputes(target protocol.ID) ([]Reason, error) {
	var a Attestation
	err := s.view(func(b *buckets) error {
		_, err := b.disputes(target, nil, &a)
		return err
	})
	if err != nil {
		return nil, wrapDB("disputes", err)
	}
	return a.Reasons, nil
}

// disputes adds the disputes of id that bear on its signal with index
// key sk (nil: on any of its signals) and stand (not withdrawn by their
// authors for that signal) to a's reasons and reports whether there were
// any.
func (b *buckets) disputes(id protocol.ID, sk []byte, a *Attestation) (bool, error) {
	disputed := false
	c := b.idx[idxDisputes].Cursor()
	for k, v := c.Seek(id[:]); hasPrefix(k, id[:]); k, v = c.Next() {
		did, ok := idOf(k[idSize:])
		if !ok {
			return false, fmt.Errorf("%w: disputes/%x: does not decode", ErrCorrupt, k)
		}
		d, err := parseNamed("disputes", k, v, authorSize)
		if err != nil {
			return false, err
		}
		if !d.names(sk) {
			continue
		}
		// A dispute its author retracted is withdrawn for the signals the
		// retraction names, not a reason any more.
		if withdrawn, err := b.retracted(did, sk); err != nil {
			return false, err
		} else if withdrawn {
			continue
		}
		disputed = true
		a.Reasons = append(a.Reasons, Reason{Kind: protocol.KindDispute, Author: authorOf(d.Who), EntryID: did, Reason: d.Reason})
	}
	return disputed, nil
}

// retraction reads the retraction that counts for id, if any.
func (b *buckets) retraction(id protocol.ID) (namedRow, bool, error) {
	v := b.idx[idxRetractions].Get(id[:])
	if v == nil {
		return namedRow{}, false, nil
	}
	r, err := parseNamed("retractions", id[:], v, idSize)
	return r, err == nil, err
}

// retracted reports whether id's author withdrew it for the signal with
// index key sk. With sk nil, a retraction naming some signals leaves the
// entry standing for the others, so only one naming all counts.
func (b *buckets) retracted(id protocol.ID, sk []byte) (bool, error) {
	r, ok, err := b.retraction(id)
	if err != nil || !ok {
		return false, err
	}
	if sk == nil {
		return len(r.Keys) == 0, nil
	}
	return r.names(sk), nil
}

// settle sorts a's reasons and sets its status by precedence.
func settle(a *Attestation, retracted, allowlisted, disputed bool) {
	slices.SortFunc(a.Reasons, func(x, y Reason) int {
		if x.Kind != y.Kind {
			return cmp.Compare(string(x.Kind), string(y.Kind))
		}
		return bytes.Compare(x.EntryID[:], y.EntryID[:])
	})
	a.Status = replica.StatusOf(retracted, allowlisted, disputed)
}

// noticeAttestation makes an attestation of the notice id if it is
// actioned (SPEC.md section 10.2), and reports false if it is not. Its
// status: retracted once its issuer withdrew it (after the action: a
// notice withdrawn before it is never actioned), allowlisted, disputed
// (a dispute naming the notice), or active.
func (b *buckets) noticeAttestation(sk []byte, id protocol.ID, allows []Reason) (Attestation, bool, error) {
	t, err := b.thread(id)
	if err != nil {
		return Attestation{}, false, fmt.Errorf("%w: noticesigs names %s: %v", ErrCorrupt, id, err)
	}
	// The state of an actioned notice does not depend on the time.
	st := protocol.NoticeLifecycle(t.Notice, t.Updates, t.Replies, 0)
	if st.State != protocol.NoticeActioned {
		return Attestation{}, false, nil
	}
	n := t.Notice.Body.GetNotice()
	a := Attestation{
		Kind: protocol.KindNotice, Author: t.Notice.Author, EntryID: id, Seq: t.Notice.Seq(),
		Labels: []string{protocol.FormatLabel(n.Category)}, TimeMs: t.Notice.Body.TimestampMs,
		Notice: &NoticeAction{Addressee: authorOf(n.Addressee), Binding: n.Binding, Reply: st.ActionID, ActionMs: st.ActionMs},
	}
	a.Reasons = append(a.Reasons, allows...)
	retracted := false
	for _, u := range t.Updates {
		if p := u.Body.GetNoticeUpdate(); p.Withdraw {
			retracted = true
			a.Reasons = append(a.Reasons, Reason{Kind: protocol.KindNoticeUpdate, Author: u.Author, EntryID: u.ID, Reason: "withdrawn"})
			break
		}
	}
	disputed, err := b.disputes(id, sk, &a)
	if err != nil {
		return Attestation{}, false, err
	}
	settle(&a, retracted, len(allows) > 0, disputed)
	return a, true, nil
}

func (b *buckets) flagged(author protocol.AuthorKey) bool {
	k, _ := b.evidence.Cursor().Seek(author[:])
	return hasPrefix(k, author[:])
}

// Evidence is proof that an author equivocated: two entries it signed for
// the same position of its log.
type Evidence struct {
	Author      protocol.AuthorKey
	Seq         uint64
	Stored      []byte // raw signed entry in the log
	Conflicting []byte // raw signed entry kept as evidence
}

// Evidence returns every piece of evidence, sorted by author, seq and the
// conflicting entry's id. The byte slices are copies the caller owns.
func (s *Store) Evidence() ([]Evidence, error) {
	var out []Evidence
	err := s.view(func(b *buckets) error {
		return b.evidence.ForEach(func(k, v []byte) error {
			if len(k) != evidenceKeySize {
				return fmt.Errorf("%w: evidence/%x: key is %d bytes, want %d", ErrCorrupt, k, len(k), evidenceKeySize)
			}
			author, seq := authorOf(k), binary.BigEndian.Uint64(k[authorSize:])
			var stored []byte
			if log := b.logs.Bucket(author[:]); log != nil {
				stored = log.Get(u64(seq))
			}
			if stored == nil {
				return fmt.Errorf("%w: evidence for %s/%d, but the log has no entry %d", ErrCorrupt, author, seq, seq)
			}
			out = append(out, Evidence{Author: author, Seq: seq, Stored: bytes.Clone(stored), Conflicting: bytes.Clone(v)})
			return nil
		})
	})
	if err != nil {
		return nil, wrapDB("evidence", err)
	}
	return out, nil
}

// Flagged returns the authors caught equivocating, sorted by key.
func (s *Store) Flagged() ([]protocol.AuthorKey, error) {
	var out []protocol.AuthorKey
	err := s.view(func(b *buckets) error {
		c := b.evidence.Cursor()
		for k, _ := c.First(); k != nil; {
			if len(k) != evidenceKeySize {
				return fmt.Errorf("%w: evidence/%x: key is %d bytes, want %d", ErrCorrupt, k, len(k), evidenceKeySize)
			}
			a := authorOf(k)
			out = append(out, a)
			// Skip the author's other rows: seek past every key it prefixes.
			next, ok := successor(a[:])
			if !ok {
				break
			}
			k, _ = c.Seek(next)
		}
		return nil
	})
	if err != nil {
		return nil, wrapDB("flagged", err)
	}
	return out, nil
}

// successor returns the smallest key greater than every key with prefix p,
// and false if there is none (p is all 0xff).
func successor(p []byte) ([]byte, bool) {
	s := bytes.Clone(p)
	for i := len(s) - 1; i >= 0; i-- {
		if s[i]++; s[i] != 0 {
			return s[:i+1], true
		}
	}
	return nil, false
}

// NoticeThread is a takedown notice and what refers to it.
type NoticeThread struct {
	Notice *protocol.Entry
	// Updates by the notice's issuer, in log order.
	Updates []*protocol.Entry
	// Replies by the notice's addressee, in log order. Replies by anyone
	// else are stored (they are signed facts) but not listed: only the
	// addressee answers a notice.
	Replies []*protocol.Entry
}

// Notice returns the notice with this id and its updates and replies, or
// an error wrapping ErrNotFound if the notice is not stored (its replies
// may have arrived first: they show once it does). Entries are copies.
func (s *Store) Notice(id protocol.ID) (NoticeThread, error) {
	var t NoticeThread
	err := s.view(func(b *buckets) error {
		var err error
		t, err = b.thread(id)
		return err
	})
	if err != nil {
		return NoticeThread{}, wrapDB("notice", err)
	}
	return t, nil
}

func (b *buckets) thread(id protocol.ID) (NoticeThread, error) {
	var t NoticeThread
	n, err := b.get(id)
	if err != nil {
		return t, err
	}
	notice := n.Body.GetNotice()
	if notice == nil {
		return t, fmt.Errorf("entry %s is a %s, not a notice: %w", id, n.Kind(), ErrNotFound)
	}
	t.Notice = n
	addressee := authorOf(notice.Addressee)
	c := b.idx[idxNoticeRefs].Cursor()
	for k, v := c.Seek(id[:]); hasPrefix(k, id[:]); k, v = c.Next() {
		rid, ok := idOf(k[idSize:])
		if !ok || len(v) != 1+authorSize {
			return t, fmt.Errorf("%w: noticerefs/%x: does not decode", ErrCorrupt, k)
		}
		kind, by := codeKinds[v[0]], authorOf(v[1:])
		switch {
		case kind == protocol.KindNoticeUpdate && by == n.Author:
		case kind == protocol.KindNoticeReply && by == addressee:
		default:
			continue
		}
		// A void update (not of its author's own notice) is no update.
		if kind == protocol.KindNoticeUpdate && b.idx[idxVoid].Get(rid[:]) != nil {
			continue
		}
		e, err := b.get(rid)
		if err != nil {
			return t, fmt.Errorf("%w: noticerefs/%x: %v", ErrCorrupt, k, err)
		}
		if kind == protocol.KindNoticeUpdate {
			t.Updates = append(t.Updates, e)
		} else {
			t.Replies = append(t.Replies, e)
		}
	}
	bySeq := func(x, y *protocol.Entry) int { return cmp.Compare(x.Seq(), y.Seq()) }
	slices.SortFunc(t.Updates, bySeq)
	slices.SortFunc(t.Replies, bySeq)
	return t, nil
}

// NoticesTo returns the ids of the notices addressed to a platform, in id
// order (not time order: read each with Notice).
func (s *Store) NoticesTo(addressee protocol.AuthorKey) ([]protocol.ID, error) {
	var ids []protocol.ID
	err := s.view(func(b *buckets) error {
		c := b.idx[idxNotices].Cursor()
		for k, _ := c.Seek(addressee[:]); hasPrefix(k, addressee[:]); k, _ = c.Next() {
			id, ok := idOf(k[authorSize:])
			if !ok {
				return fmt.Errorf("%w: notices/%x: key does not end in an entry id", ErrCorrupt, k)
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, wrapDB("notices", err)
	}
	return ids, nil
}

// VoidReason says why the logged entry id has no effect: it broke a
// stateful rule when applied (see Void). ErrNotFound when id is not a void
// entry of a log.
func (s *Store) VoidReason(id protocol.ID) (string, error) {
	var reason string
	err := s.view(func(b *buckets) error {
		v := b.idx[idxVoid].Get(id[:])
		if v == nil {
			return fmt.Errorf("%w: no void entry %s", ErrNotFound, id)
		}
		reason = string(v)
		return nil
	})
	return reason, err
}

// Preview says what Apply would decide for e now (replica.Decide), without
// writing, and whether gossip relays it (replica.Relay), for the gossip
// validator; Apply decides again under the write lock. One difference: an
// entry conflicting with one whose conflict is already kept as evidence is
// Duplicate here, since it is not relayed, though Apply would keep it too.
func (s *Store) Preview(e *protocol.Entry) (out Outcome, relay bool, err error) {
	err = s.view(func(b *buckets) error {
		ids, err := b.ids()
		if err != nil {
			return err
		}
		step, err := replica.Decide(readView{b, ids}, b.members, e)
		if err != nil {
			return err
		}
		out = step.Outcome
		anyEvidence := false
		if out == Equivocation {
			// Any evidence row at this seq, this entry or another, means
			// the conflict is known already.
			prefix := evidenceKey(e.Author, e.Seq(), protocol.ID{})[:authorSize+8]
			k, _ := b.evidence.Cursor().Seek(prefix)
			anyEvidence = k != nil && bytes.HasPrefix(k, prefix)
		}
		relay = replica.Relay(step, anyEvidence)
		if out == Equivocation && !relay {
			out = Duplicate
		}
		return nil
	})
	return out, relay, wrapDB("preview", err)
}

// readView is the replica.View of a read transaction.
type readView struct {
	b   *buckets
	ids *runSet
}

func (v readView) Head(author protocol.AuthorKey) (protocol.Head, error) {
	if h := v.b.idx[idxHeads].Get(author[:]); h != nil {
		return parseHead(author, h)
	}
	return protocol.Head{Author: author}, nil
}

func (v readView) Logged(author protocol.AuthorKey, seq uint64) ([]byte, error) {
	if log := v.b.logs.Bucket(author[:]); log != nil {
		return log.Get(u64(seq)), nil
	}
	return nil, nil
}

func (v readView) HasEvidence(author protocol.AuthorKey, seq uint64, id protocol.ID) (bool, error) {
	return exists(v.b.evidence, evidenceKey(author, seq, id)), nil
}

func (v readView) Ref(id protocol.ID) (replica.Ref, bool, error) {
	return rules{v.ids, v.b.idx[idxRetractions]}.Ref(id)
}

func (v readView) RetractedBy(target protocol.ID) (protocol.ID, bool, error) {
	return rules{v.ids, v.b.idx[idxRetractions]}.RetractedBy(target)
}

// Notices calls fn with every stored notice's thread, in the order of
// (addressee, notice id), in one read transaction. Entries are copies fn
// may keep; fn must not call the Store. An error fn returns is returned
// as is.
func (s *Store) Notices(fn func(NoticeThread) error) error {
	return s.viewCalling("notices", func(b *buckets, call func(error) error) error {
		c := b.idx[idxNotices].Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			id, ok := idOf(k[min(len(k), authorSize):])
			if !ok {
				return fmt.Errorf("%w: notices/%x: key does not end in an entry id", ErrCorrupt, k)
			}
			t, err := b.thread(id)
			if err != nil {
				return fmt.Errorf("%w: notices/%x: %v", ErrCorrupt, k, err)
			}
			if err := call(fn(t)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Threads calls fn with the thread of each notice in ids, in order, in one
// read transaction (ErrNotFound if one is not a stored notice). Entries
// are copies fn may keep; fn must not call the Store. An error fn returns
// is returned as is.
func (s *Store) Threads(ids []protocol.ID, fn func(NoticeThread) error) error {
	return s.viewCalling("threads", func(b *buckets, call func(error) error) error {
		for _, id := range ids {
			t, err := b.thread(id)
			if err != nil {
				return err
			}
			if err := call(fn(t)); err != nil {
				return err
			}
		}
		return nil
	})
}

// viewCalling runs body in a read transaction. body passes what the
// caller's callback returns through call, so that the callback's error
// comes back as it was, while the store's own errors are wrapped.
func (s *Store) viewCalling(op string, body func(b *buckets, call func(error) error) error) error {
	var fnErr error
	err := s.view(func(b *buckets) error {
		return body(b, func(err error) error { fnErr = err; return err })
	})
	if fnErr != nil {
		return fnErr
	}
	return wrapDB(op, err)
}
