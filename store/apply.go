package store

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// Outcome is what Apply did with one entry.
type Outcome int

const (
	// Applied: the entry continued its author's log and is stored and
	// indexed. The node relays it.
	Applied Outcome = iota
	// Duplicate: an entry with this id is already stored, in a log or as
	// evidence. Nothing changed; do not relay it again.
	Duplicate
	// Equivocation: another entry with the same author and seq is in the
	// log. This one is kept as evidence and the author is flagged; the log
	// is unchanged. The node gossips the evidence.
	Equivocation
	// Gap: the entry is ahead of the author's head. Nothing is stored;
	// fetch the missing range and apply it again.
	Gap
	// Rejected: the entry does not continue the log (wrong prev at
	// head+1). Nothing is stored; never relay it.
	Rejected
	// Void: the entry continues its log but breaks a stateful rule (a
	// retraction of something not retractable, say). It is stored, so the
	// author's log can go on, but has no effect; the void index records
	// why. Append never writes one.
	Void
)

var outcomeNames = [...]string{Applied: "applied", Duplicate: "duplicate", Equivocation: "equivocation", Gap: "gap", Rejected: "rejected", Void: "void"}

func (o Outcome) String() string {
	if o >= 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Result is the outcome of one entry of a batch.
type Result struct {
	Outcome Outcome
	// Err says why, for Gap (wraps protocol.ErrGap), Rejected (wraps
	// protocol.ErrChain) and Void (wraps ErrRule); nil otherwise.
	Err error
}

// Apply stores a batch of entries in one write transaction: one fsync for
// the lot, which is what makes catching up on a long log affordable.
// Entries must have passed protocol.Decode, Roster.Check and Entry.Verify;
// Apply enforces the chain and the stateful rules. Entries of one author
// may follow each other within the batch (seq n, n+1, ...), each seeing the
// ones before it.
//
// There is one Result per entry, in order. The error is for I/O failure and
// corruption only; then nothing of the batch is stored.
//
// Each after hook given is called once, at the end of a non-empty batch,
// inside the same write transaction (before the commit), with the
// results: the node raises its watchlist alerts there (Writes). An error
// it returns fails the whole batch, and Apply returns it wrapped.
func (s *Store) Apply(entries []*protocol.Entry, after ...func(w *Writes, results []Result) error) ([]Result, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	results := make([]Result, len(entries))
	err := s.db.Update(func(tx *bolt.Tx) error {
		w, err := newWriter(tx)
		if err != nil {
			return err
		}
		for i, e := range entries {
			if results[i], err = w.apply(e); err != nil {
				return err
			}
		}
		if err := w.finish(); err != nil {
			return err
		}
		return afterApply(w.buckets, results, after)
	})
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
	err := s.db.Update(func(tx *bolt.Tx) error {
		w, err := newWriter(tx)
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
		case r.Err != nil: // Void and Rejected: the transaction rolls back
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

func newWriter(tx *bolt.Tx) (*writer, error) {
	b, err := openBuckets(tx)
	if err != nil {
		return nil, err
	}
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
	return w.meta.Put(metaCount, u64(n+w.added))
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

func rejected(err error) Result { return Result{Outcome: Rejected, Err: err} }

func (w *writer) apply(e *protocol.Entry) (Result, error) {
	if e == nil || e.Body == nil || e.Kind() == "" {
		return rejected(fmt.Errorf("%w: %v", ErrRule, errNilEntry)), nil
	}
	seq := e.Seq()
	head, err := w.head(e.Author)
	if err != nil {
		return Result{}, err
	}
	log := w.logs.Bucket(e.Author[:])
	// Past the head, e can be neither logged nor evidence (both sit at or
	// below the head, which never moves back): no lookups by id, which
	// would touch a random page each. A catching-up node lives here.
	if seq <= head.Seq {
		// The id is the hash of the bytes: the same bytes at seq are the
		// same entry.
		var logged []byte
		if log != nil {
			logged = log.Get(u64(seq))
		}
		if logged == nil {
			return Result{}, fmt.Errorf("%w: head of %s is %d but entry %d is missing", ErrCorrupt, e.Author, head.Seq, seq)
		}
		if bytes.Equal(logged, e.Raw) {
			return Result{Outcome: Duplicate}, nil
		}
		ek := evidenceKey(e.Author, seq, e.ID)
		if exists(w.evidence, ek) {
			return Result{Outcome: Duplicate}, nil
		}
		// Whatever sits at seq differs: the author signed two entries for
		// one position. Keep the stored one (replacing it would rewrite
		// history under everyone who built on it) and this one as proof.
		if err := w.evidence.Put(ek, e.Raw); err != nil {
			return Result{}, err
		}
		return Result{Outcome: Equivocation}, nil
	}
	if err := protocol.CheckNext(head, e); err != nil {
		if errors.Is(err, protocol.ErrGap) {
			return Result{Outcome: Gap, Err: err}, nil
		}
		return rejected(err), nil
	}
	if log == nil {
		if log, err = w.logs.CreateBucket(e.Author[:]); err != nil {
			return Result{}, err
		}
	}
	// Logs only grow at the end: full pages waste nothing and split less.
	log.FillPercent = 1
	if err := log.Put(u64(seq), e.Raw); err != nil {
		return Result{}, err
	}
	if err := w.put(idxHeads, e.Author[:], headValue(protocol.Head{Author: e.Author, Seq: seq, ID: e.ID})); err != nil {
		return Result{}, err
	}
	void, err := indexEntry(w, w.ids, w.idx[idxRetractions], e)
	if err != nil {
		return Result{}, err
	}
	w.added++
	if err := w.arrived(e.ID); err != nil {
		return Result{}, err
	}
	if void != nil {
		return Result{Outcome: Void, Err: void}, nil
	}
	return Result{Outcome: Applied}, nil
}

// indexEntry writes e's index rows. An entry that breaks a stateful rule
// gets only its ids row and a void row saying why: it stays in the log
// (the author's later entries still chain to it) but has no effect.
// Apply, Rebuild and Check all index through here, so they agree on what
// is void. It returns the rule error for a void entry.
func indexEntry(w sink, ids, retractions getter, e *protocol.Entry) (void, err error) {
	if rerr := checkRules(ids, retractions, e); rerr != nil {
		if !errors.Is(rerr, ErrRule) {
			return nil, rerr
		}
		if err := w.put(idxIDs, e.ID[:], idRowValue(e)); err != nil {
			return nil, err
		}
		return rerr, w.put(idxVoid, e.ID[:], []byte(rerr.Error()))
	}
	return nil, index(w, e)
}

// checkRules applies the stateful rules, which look only at the author's
// own log: a rule that looked at another log would accept an entry on one
// node and reject it on another, depending on arrival order, and the logs
// would never converge. Rules about other logs (a dispute's target is an
// addition) are applied when reading.
//
// "Not already retracted": the first retraction of a target (in log
// order) is the one that counts, so a retraction is void when the
// retractions row names another. That reads the same in the state when e
// is applied and in the final state that Check sees.
func checkRules(ids, retractions getter, e *protocol.Entry) error {
	var target []byte
	var want []protocol.Kind
	switch p := e.Body.GetPayload().(type) {
	case *pb.Entry_Retraction:
		target, want = p.Retraction.Target, []protocol.Kind{protocol.KindAddition, protocol.KindAllow}
	case *pb.Entry_NoticeUpdate:
		target, want = p.NoticeUpdate.Notice, []protocol.Kind{protocol.KindNotice}
	default:
		return nil
	}
	kind := e.Kind()
	// Whether the target is missing or in another author's log must read
	// the same: which other logs have arrived differs from node to node.
	notOwn := fmt.Errorf("%w: %s %s (seq %d): target %x is not an earlier entry of the author's own log", ErrRule, kind, e.ID, e.Seq(), target)
	v := ids.Get(target)
	if v == nil {
		return notOwn
	}
	row, err := parseIDRow(target, v)
	if err != nil {
		return err
	}
	switch {
	case row.Author != e.Author || row.Seq >= e.Seq():
		return notOwn
	case row.Kind != want[0] && (len(want) == 1 || row.Kind != want[1]):
		return fmt.Errorf("%w: %s %s: target %x is a %s, want %s", ErrRule, kind, e.ID, target, row.Kind, kindList(want))
	}
	if kind == protocol.KindRetraction {
		if v := retractions.Get(target); v != nil && !bytes.Equal(v[:min(len(v), idSize)], e.ID[:]) {
			return fmt.Errorf("%w: retraction %s: target %x is already retracted by %x", ErrRule, e.ID, target, v[:min(len(v), idSize)])
		}
	}
	return nil
}

func kindList(ks []protocol.Kind) string {
	var b bytes.Buffer
	for i, k := range ks {
		if i > 0 {
			b.WriteString(" or ")
		}
		b.WriteString(string(k))
	}
	return b.String()
}

// exists reports whether key is in b. Unlike Get it tells an empty value
// (attest rows) from a missing row.
func exists(b *bolt.Bucket, key []byte) bool {
	k, _ := b.Cursor().Seek(key)
	return k != nil && bytes.Equal(k, key)
}
