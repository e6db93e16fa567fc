package store

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/replica"
)

// Outcome is what Apply did with one entry: the replica state machine's
// decision (replica.Decide), acted on.
type Outcome = replica.Outcome

const (
	Applied      = replica.Applied
	Duplicate    = replica.Duplicate
	Equivocation = replica.Equivocation
	Gap          = replica.Gap
	Rejected     = replica.Rejected
	Void         = replica.Void
	Held         = replica.Held
	Refused      = replica.Refused
)

// Result is the outcome of one entry of a batch.
type Result struct {
	Outcome Outcome
	// Err says why, with the evidence an operator or auditor acts on:
	// for Equivocation a *replica.EquivocationError (both signed entries), for
	// Void a *replica.RuleError (wraps ErrRule), for Rejected a *replica.ChainError
	// (wraps protocol.ErrChain: the entry and the head it should have
	// followed; an entry without a payload wraps protocol.ErrMalformed),
	// for Gap an error wrapping protocol.ErrGap; nil for Applied and
	// Duplicate.
	Err error
	// Effect is what the entry changed (replica.Step.Effect), for the
	// readers that keep derived state.
	Effect replica.Effect
}

// Apply stores a batch of entries in one write transaction: one fsync for
// the lot, which is what makes catching up on a long log affordable.
// Entries must have passed protocol.Decode, Roster.Check and Entry.Verify;
// Apply decides each with the replica state machine (replica.Decide) and
// acts on the decision. Entries of one author may follow each other
// within the batch (seq n, n+1, ...), each seeing the ones before it.
//
// There is one Result per entry, in order. The error is for I/O failure and
// corruption only; then nothing of the batch is stored.
//
// Each after hook given is called once, at the end of a non-empty batch,
// inside the same write transaction (before the commit), with the
// results: the node raises its watchlist alerts there (Writes). An error
// it returns fails the whole batch, and Apply returns it wrapped.
func (s *Store) Apply(entries []*protocol.Entry, after ...func(w *Writes, results []Result) error) ([]Result, error) {
	return s.Commit(Batch{Entries: entries, After: after})
}

// Batch is what one write transaction stores.
type Batch struct {
	// Entries to apply, in order.
	Entries []*protocol.Entry
	// Own is how many of the first Entries are the node's own new
	// entries, signed for this batch. Each must be Applied (an author's
	// node never publishes a void entry, SPEC 9.2): if one is not, nothing
	// of the batch is stored and Commit returns an *OwnError naming it.
	Own int
	// After are called as Apply's after hooks are.
	After []func(w *Writes, results []Result) error
	// Now is when the batch is stored, the time its arrivals are
	// recorded at (ArrivalTimes); zero: the system clock's.
	Now time.Time
}

// OwnError says which of a batch's own entries could not be applied, and
// why; it wraps the reason (protocol.ErrChain, ErrRule).
type OwnError struct {
	Index  int
	Result Result
}

func (e *OwnError) Error() string {
	if e.Result.Err != nil {
		return e.Result.Err.Error()
	}
	return fmt.Sprintf("own entry %d of the batch is %s", e.Index, e.Result.Outcome)
}

func (e *OwnError) Unwrap() error { return e.Result.Err }

// Commit stores a batch in one write transaction, as Apply does, with
// the batch's own entries held to the stricter rule above.
func (s *Store) Commit(b Batch) ([]Result, error) {
	entries := b.Entries
	if len(entries) == 0 {
		return nil, nil
	}
	results := make([]Result, len(entries))
	err := s.update(func(tx *bolt.Tx) error {
		w, err := newWriter(tx, s.judge())
		if err != nil {
			return err
		}
		w.now = b.Now
		for i, e := range entries {
			if results[i], err = w.apply(e); err != nil {
				return err
			}
			if i < b.Own && results[i].Outcome != Applied {
				return &OwnError{Index: i, Result: results[i]}
			}
		}
		if err := w.finish(); err != nil {
			return err
		}
		return afterApply(w.buckets, results, b.After)
	})
	if oe := (*OwnError)(nil); errors.As(err, &oe) {
		return nil, oe
	}
	if err != nil {
		return nil, wrapDB("apply", err)
	}
	// A long catch-up reads runs to merge them and the top of every
	// index: hand those mapped pages back now and then, so that the
	// process's resident set stays its own memory, not the file's.
	if s.applied.Add(uint64(len(entries))) >= applyReleaseEvery {
		s.applied.Store(0)
		// Advice only: the batch is committed whatever madvise says, and
		// the next release tries again.
		_ = s.ReleaseMapped()
	}
	return results, nil
}

// applyReleaseEvery is how many entries Apply logs between releases of
// the store's mapped pages (ReleaseMapped).
const applyReleaseEvery = 1 << 17

// Append adds an entry to a log this node writes. In one write
// transaction it reads author's head (Seq 0 for an empty log), calls build
// to make the signed entry that follows it, checks the entry as Apply does
// and stores it. Because the head is read and the entry stored under the
// one write lock, two concurrent Appends cannot both build on the same
// head: that is what stops a node from forking its own log.
//
// If build fails, or the entry is not Applied, nothing is written and the
// error is returned (wrapping build's error, protocol.ErrChain or ErrRule).
// build runs while the store's write lock is held: it must be quick
// (sign, no network) and must not call the Store.
func (s *Store) Append(author protocol.AuthorKey, build func(head protocol.Head) (*protocol.Entry, error)) (*protocol.Entry, error) {
	var out *protocol.Entry
	err := s.update(func(tx *bolt.Tx) error {
		w, err := newWriter(tx, s.judge())
		if err != nil {
			return err
		}
		head, err := w.head(author)
		if err != nil {
			return err
		}
		e, err := build(head)
		if err != nil {
			return fmt.Errorf("build entry %d: %w", head.Seq+1, err)
		}
		if e == nil || e.Body == nil {
			return fmt.Errorf("build entry %d: %w", head.Seq+1, errNilEntry)
		}
		if e.Author != author {
			return fmt.Errorf("%w: entry %s is by %s, not by %s", ErrRule, e.ID, e.Author, author)
		}
		r, err := w.apply(e)
		switch {
		case err != nil:
			return err
		case r.Outcome == Applied:
			out = e
			return w.finish()
		case r.Err != nil && r.Outcome != Equivocation: // Void, Rejected, Gap: the transaction rolls back
			return r.Err
		default:
			return fmt.Errorf("%w: entry %s seq %d is %s, head is %d", protocol.ErrChain, e.ID, e.Seq(), r.Outcome, head.Seq)
		}
	})
	if err != nil {
		return nil, wrapDB("append", err)
	}
	return out, nil
}

// writer applies entries within one write transaction.
type writer struct {
	*buckets
	added uint64 // entries logged by this transaction
	// heads holds this transaction's new heads (author -> head row) until
	// finish: a batch of one log moves its head thousands of times, and
	// only the last counts.
	heads map[protocol.AuthorKey][]byte
	// deferred holds the rows of indexes that nothing reads inside a write
	// transaction, until finish puts them in key order. bbolt splits nodes
	// only at commit, so random inserts into one node cost a memmove each,
	// quadratic in the batch; put in key order they append, and each page
	// is visited once.
	deferred [numIndexes][]kv
	// before is meta/count when the transaction began, read on the first
	// arrival.
	before *uint64
	// ids reads the ids index as this transaction leaves it: the rows
	// written so far (pendingIDs, put into a run at flush) over the runs.
	ids        idsView
	pendingIDs map[string][]byte
	// now is the time finish records the transaction's arrivals at
	// (zero: time.Now()).
	now time.Time
}

// getter is what the stateful rules read the ids and retractions indexes
// through.
type getter interface{ Get(key []byte) []byte }

// idsView is the ids index inside a write transaction.
type idsView struct{ w *writer }

func (v idsView) Get(key []byte) []byte {
	if r, ok := v.w.pendingIDs[string(key)]; ok {
		return r
	}
	return v.w.runs[idxIDs].Get(key) // newWriter opened it
}

type kv struct{ k, v []byte }

// readInTx are the plain indexes a write transaction reads (the stateful
// rules look up retractions), so their rows go in at once. (The rules
// also read ids, through idsView.)
var readInTx = [numIndexes]bool{idxRetractions: true}

func newWriter(tx *bolt.Tx, members replica.Members) (*writer, error) {
	b, err := openBuckets(tx)
	if err != nil {
		return nil, err
	}
	b.members = members
	// A log's additions rows only ever go after its earlier ones: full
	// pages waste nothing, as in the logs.
	b.idx[idxAdditions].FillPercent = 1
	// The run indexes are opened now, so that damage to them fails the
	// transaction before any rule reads them.
	for idx := range numIndexes {
		if isRunIndex[idx] {
			if _, err := b.runSet(idx); err != nil {
				return nil, err
			}
		}
	}
	w := &writer{buckets: b, heads: map[protocol.AuthorKey][]byte{}, pendingIDs: map[string][]byte{}}
	w.ids = idsView{w}
	return w, nil
}

func (w *writer) put(idx int, k, v []byte) error {
	switch {
	case idx == idxHeads:
		w.heads[authorOf(k)] = v
		return nil
	case readInTx[idx]:
		return w.idx[idx].Put(k, v)
	case idx == idxIDs:
		w.pendingIDs[string(k)] = v
	}
	w.deferred[idx] = append(w.deferred[idx], kv{k, v})
	return nil
}

func (w *writer) head(author protocol.AuthorKey) (protocol.Head, error) {
	v, ok := w.heads[author]
	if !ok {
		v = w.idx[idxHeads].Get(author[:])
	}
	if v == nil {
		return protocol.Head{Author: author}, nil
	}
	return parseHead(author, v)
}

// flush puts the deferred rows and heads.
func (w *writer) flush() error {
	for idx, rows := range w.deferred {
		slices.SortStableFunc(rows, func(x, y kv) int { return bytes.Compare(x.k, y.k) })
		if isRunIndex[idx] {
			rs, err := w.runSet(idx)
			if err != nil {
				return err
			}
			if err := rs.add(lastOfEachKey(rows)); err != nil {
				return fmt.Errorf("%s: %w", indexNames[idx], err)
			}
			w.deferred[idx] = nil
			continue
		}
		for _, r := range rows {
			if err := w.idx[idx].Put(r.k, r.v); err != nil {
				return err
			}
		}
		w.deferred[idx] = nil
	}
	authors := slices.SortedFunc(maps.Keys(w.heads), func(x, y protocol.AuthorKey) int { return bytes.Compare(x[:], y[:]) })
	for _, a := range authors {
		if err := w.idx[idxHeads].Put(a[:], w.heads[a]); err != nil {
			return err
		}
	}
	clear(w.heads)
	clear(w.pendingIDs)
	return nil
}

// lastOfEachKey keeps, of rows sorted stably by key, the last row of each
// key: a key put twice (one signal twice in an addition) is one row, and
// the later value wins, as with Put.
func lastOfEachKey(rows []kv) []kv {
	out := rows[:0]
	for i, r := range rows {
		if i+1 < len(rows) && bytes.Equal(r.k, rows[i+1].k) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// finish ends a transaction that appended to the logs.
func (w *writer) finish() error {
	if err := w.flush(); err != nil {
		return err
	}
	if w.added == 0 {
		return nil
	}
	n, err := w.count()
	if err != nil {
		return err
	}
	if err := w.meta.Put(metaCount, u64(n+w.added)); err != nil {
		return err
	}
	return stampArrivals(w.tx, n+w.added, w.now)
}

// arrived records that an entry entered a log: arrival number meta/count
// + added (1-based, so arrival n is the n-th entry this store logged).
func (w *writer) arrived(id protocol.ID) error {
	if w.before == nil {
		n, err := w.count()
		if err != nil {
			return err
		}
		w.before = &n
	}
	w.arrivals.FillPercent = 1 // append-only
	return w.arrivals.Put(u64(*w.before+w.added), id[:])
}

func (w *writer) apply(e *protocol.Entry) (Result, error) {
	step, err := replica.Decide(w, w.members, e)
	if err != nil {
		if errors.Is(err, replica.ErrView) {
			err = fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return Result{}, err
	}
	r := Result{Outcome: step.Outcome, Err: step.Err, Effect: step.Effect}
	switch step.Outcome {
	case Equivocation:
		// Keep the stored entry (replacing it would rewrite history under
		// everyone who built on it) and this one as proof.
		return r, w.evidence.Put(evidenceKey(e.Author, e.Seq(), e.ID), e.Raw)
	case Applied, Void:
		return r, w.log(e, step.Outcome == Void, step.Err)
	}
	return r, nil
}

// log stores an entry that continues its log, its head and its index
// rows: for a void entry only its ids row and a void row saying why.
func (w *writer) log(e *protocol.Entry, void bool, why error) error {
	log := w.logs.Bucket(e.Author[:])
	if log == nil {
		var err error
		if log, err = w.logs.CreateBucket(e.Author[:]); err != nil {
			return err
		}
	}
	// Logs only grow at the end: full pages waste nothing and split less.
	log.FillPercent = 1
	if err := log.Put(u64(e.Seq()), e.Raw); err != nil {
		return err
	}
	if err := w.put(idxHeads, e.Author[:], headValue(protocol.Head{Author: e.Author, Seq: e.Seq(), ID: e.ID})); err != nil {
		return err
	}
	if err := indexRows(w, e, void, why); err != nil {
		return err
	}
	w.added++
	return w.arrived(e.ID)
}

// The writer is the replica.View of a write transaction: the logs, heads
// and indexes as this transaction leaves them.

func (w *writer) Head(author protocol.AuthorKey) (protocol.Head, error) { return w.head(author) }

func (w *writer) Logged(author protocol.AuthorKey, seq uint64) ([]byte, error) {
	if log := w.logs.Bucket(author[:]); log != nil {
		return log.Get(u64(seq)), nil
	}
	return nil, nil
}

func (w *writer) HasEvidence(author protocol.AuthorKey, seq uint64, id protocol.ID) (bool, error) {
	return exists(w.evidence, evidenceKey(author, seq, id)), nil
}

func (w *writer) Ref(id protocol.ID) (replica.Ref, bool, error) {
	return rules{w.ids, w.idx[idxRetractions]}.Ref(id)
}

func (w *writer) RetractedBy(target protocol.ID) (protocol.ID, bool, error) {
	return rules{w.ids, w.idx[idxRetractions]}.RetractedBy(target)
}

// rules is the replica.Rules of an ids and a retractions index, read
// through getters: the write transaction's, a rebuild's, a check's.
type rules struct{ ids, retractions getter }

func (r rules) Ref(id protocol.ID) (replica.Ref, bool, error) {
	v := r.ids.Get(id[:])
	if v == nil {
		return replica.Ref{}, false, nil
	}
	row, err := parseIDRow(id[:], v)
	if err != nil {
		return replica.Ref{}, false, err
	}
	return replica.Ref(row), true, nil
}

func (r rules) RetractedBy(target protocol.ID) (protocol.ID, bool, error) {
	v := r.retractions.Get(target[:])
	if v == nil {
		return protocol.ID{}, false, nil
	}
	by, ok := idOf(v[:min(len(v), idSize)])
	if !ok {
		return protocol.ID{}, false, fmt.Errorf("%w: retractions/%x: value does not start with an entry id", ErrCorrupt, target[:])
	}
	return by, true, nil
}

// indexEntry writes e's index rows, deciding with the stateful rules
// (replica.CheckRules) whether it is void. Rebuild and Check index through
// here, and Apply through indexRows with the decision replica.Decide
// made, so they agree on what is void. It returns the rule error for a
// void entry.
func indexEntry(w sink, ids, retractions getter, members replica.Members, e *protocol.Entry) (void, err error) {
	if rerr := replica.CheckRules(rules{ids, retractions}, members, e); rerr != nil {
		if !errors.Is(rerr, ErrRule) {
			return nil, rerr
		}
		return rerr, indexRows(w, e, true, rerr)
	}
	return nil, indexRows(w, e, false, nil)
}

// indexRows writes the rows of a logged entry. An entry that breaks a
// stateful rule gets only its ids row and a void row saying why: it stays
// in the log (the author's later entries still chain to it) but has no
// effect.
func indexRows(w sink, e *protocol.Entry, void bool, why error) error {
	// Every logged membership entry is listed, void or not: a vote past
	// its key's end may have counted before that end (SPEC 12.5).
	if e.Kind().IsMembership() {
		if err := w.put(idxMembership, logKey(e.Author, e.Seq()), e.ID[:]); err != nil {
			return err
		}
	}
	if !void {
		return index(w, e)
	}
	if err := w.put(idxIDs, e.ID[:], idRowValue(e)); err != nil {
		return err
	}
	return w.put(idxVoid, e.ID[:], []byte(why.Error()))
}

// exists reports whether key is in b. Unlike Get it tells an empty value
// (attest rows) from a missing row.
func exists(b *bolt.Bucket, key []byte) bool {
	k, _ := b.Cursor().Seek(key)
	return k != nil && bytes.Equal(k, key)
}
