package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/replica"
)

// walkLogs decodes every log, authors in key order, seqs ascending,
// checking that each log is contiguous from seq 1 and chained by prev. It
// calls each for every entry and done with every log's last entry.
func walkLogs(logs *bolt.Bucket, each func(*protocol.Entry) error, done func(last *protocol.Entry) error) error {
	c := logs.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		log := logs.Bucket(k)
		if log == nil || len(k) != authorSize {
			return fmt.Errorf("%w: logs/%x: want only buckets named by %d-byte author keys", ErrCorrupt, k, authorSize)
		}
		author := authorOf(k)
		last, err := walkLog(author, log, each)
		if err != nil {
			return err
		}
		if last == nil {
			return fmt.Errorf("%w: logs/%s: empty log bucket", ErrCorrupt, author)
		}
		if err := done(last); err != nil {
			return err
		}
	}
	return nil
}

func walkLog(author protocol.AuthorKey, log *bolt.Bucket, each func(*protocol.Entry) error) (*protocol.Entry, error) {
	head := protocol.Head{Author: author}
	var last *protocol.Entry
	c := log.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		want := head.Seq + 1
		if v == nil || len(k) != 8 || binary.BigEndian.Uint64(k) != want {
			return nil, fmt.Errorf("%w: logs/%s: key %x where seq %d belongs", ErrCorrupt, author, k, want)
		}
		e, err := decodeStored(author, want, v)
		if err != nil {
			return nil, err
		}
		if err := protocol.CheckNext(head, e); err != nil {
			return nil, fmt.Errorf("%w: logs/%s/%d: %v", ErrCorrupt, author, want, err)
		}
		if err := each(e); err != nil {
			return nil, err
		}
		head = protocol.Head{Author: author, Seq: want, ID: e.ID}
		last = e
	}
	return last, nil
}

// rebuildChunk is how many entries' deferred rows Rebuild holds before it
// puts them.
const rebuildChunk = 1 << 16

// Rebuild drops every index and derives it again from the logs, in one
// write transaction: on any error nothing changes. Logs, evidence,
// arrivals and the node's own buckets (checkpoints, watchlist, arrival
// times: damaged rows of those dropped) are kept. It is the repair for an index that Check finds wrong. Like any
// bbolt transaction it holds every page it writes in memory until it
// commits: on the order of the index's size.
//
// Rebuild refuses (ErrCorrupt) when a log ends before the head recorded
// for it: the newest entries are lost, and a head moved back would let this
// node sign a second entry for a seq it already published, forking its own
// log. Fetch the logs from peers into a fresh store instead.
func (s *Store) Rebuild() error {
	m := s.judge()
	return wrapDB("rebuild", s.update(func(tx *bolt.Tx) error { return rebuild(tx, m) }))
}

// rebuild is Rebuild's transaction, judging entries under members.
func rebuild(tx *bolt.Tx, members replica.Members) error {
	old := recordedHeads(tx)
	// A file of an older schema may have no arrivals bucket yet;
	// repairArrivals fills it.
	if _, err := tx.CreateBucketIfNotExists(bucketArrivals); err != nil {
		return fmt.Errorf("create arrivals: %w", err)
	}
	for _, name := range indexBuckets() {
		if err := tx.DeleteBucket(name); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return fmt.Errorf("drop %s: %w", name, err)
		}
		if _, err := tx.CreateBucket(name); err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
	}
	w, err := newWriter(tx, members)
	if err != nil {
		return err
	}
	err = walkLogs(w.logs, func(e *protocol.Entry) error {
		w.added++
		if _, err := indexEntry(w, w.ids, w.idx[idxRetractions], w.members, e); err != nil {
			return err
		}
		// The deferred rows are put in sorted chunks, so that memory
		// holds the pages, not the pages and every row besides.
		if w.added%rebuildChunk == 0 {
			return w.flush()
		}
		return nil
	}, func(last *protocol.Entry) error {
		// Through the chain, the newest signature vouches for the
		// whole log; a damaged one must not become the head.
		if err := last.Verify(); err != nil {
			return fmt.Errorf("%w: logs/%s/%d (the head): %v", ErrCorrupt, last.Author, last.Seq(), err)
		}
		// Only a head row naming an entry the log does not have is
		// proof of loss; a damaged row (its seq flipped) still names
		// the last entry.
		if h, ok := old[last.Author]; ok && h.Seq > last.Seq() && h.ID != last.ID {
			return fmt.Errorf("%w: logs/%s ends at seq %d, but its head was seq %d (%s): the newest entries are lost", ErrCorrupt, last.Author, last.Seq(), h.Seq, h.ID)
		}
		delete(old, last.Author)
		return w.put(idxHeads, last.Author[:], headValue(protocol.Head{Author: last.Author, Seq: last.Seq(), ID: last.ID}))
	})
	if err != nil {
		return err
	}
	if len(old) > 0 {
		h := slices.MinFunc(slices.Collect(maps.Values(old)), func(x, y protocol.Head) int { return bytes.Compare(x.Author[:], y.Author[:]) })
		return fmt.Errorf("%w: logs/%s is gone, but its head was seq %d (%s)", ErrCorrupt, h.Author, h.Seq, h.ID)
	}
	if err := w.flush(); err != nil {
		return err
	}
	if err := w.meta.Put(metaCount, u64(w.added)); err != nil {
		return err
	}
	if err := repairArrivals(tx, w); err != nil {
		return err
	}
	return repairArrivalTimes(tx)
}

// repairArrivals keeps the arrivals bucket if it is sound, and otherwise
// writes it anew in log order (author by author): the local order is
// lost, but every entry has its number.
func repairArrivals(tx *bolt.Tx, w *writer) error {
	if err := checkArrivals(w.buckets, w.added); err == nil || !errors.Is(err, ErrCorrupt) {
		return err
	}
	if err := tx.DeleteBucket(bucketArrivals); err != nil {
		return fmt.Errorf("drop arrivals: %w", err)
	}
	b, err := tx.CreateBucket(bucketArrivals)
	if err != nil {
		return fmt.Errorf("create arrivals: %w", err)
	}
	b.FillPercent = 1
	var n uint64
	return walkLogs(w.logs, func(e *protocol.Entry) error {
		n++
		return b.Put(u64(n), e.ID[:])
	}, func(*protocol.Entry) error { return nil })
}

// recordedHeads reads the heads bucket as it is, skipping rows that do not
// decode: Rebuild is also the repair for a damaged heads bucket.
func recordedHeads(tx *bolt.Tx) map[protocol.AuthorKey]protocol.Head {
	heads := map[protocol.AuthorKey]protocol.Head{}
	b := tx.Bucket(indexNames[idxHeads])
	if b == nil {
		return heads
	}
	b.ForEach(func(k, v []byte) error {
		if len(k) != authorSize {
			return nil
		}
		if h, err := parseHead(authorOf(k), v); err == nil {
			heads[h.Author] = h
		}
		return nil
	})
	return heads
}

// Check verifies the store's invariants in one read transaction and
// returns an error wrapping ErrCorrupt that describes the first violation:
//
//   - every log is contiguous from seq 1; each entry decodes, belongs to
//     the log's author and seq, and its prev is the id of the entry before;
//     the newest entry's signature verifies (which, through the chain,
//     authenticates every earlier one);
//   - each entry obeys the stateful rules;
//   - every index bucket (heads and ids included) holds exactly the rows
//     Rebuild would write, and meta/count is the number of logged entries;
//   - every evidence row decodes, is signed by its author, and conflicts
//     with the logged entry at its seq;
//   - the node's own rows have the shapes their writers give them: each
//     kept checkpoint is a checkpoint note (of its key's log, for the
//     latest), conflicts and alerts are numbered 1 to their bucket's
//     sequence without a gap, each watched key is a signal key, each
//     alert decodes and has exactly one alerted row (its entry and
//     watched signal), and each alerted row names its alert. (The
//     entry an alert names need not be in a log: a watchlist imported
//     from a side file may name entries a new store has yet to sync.)
//
// It streams: memory does not grow with the store, except to name an
// extra row once a bucket is known to hold one.
func (s *Store) Check() (err error) {
	defer damaged(s.db.Path(), &err)()
	err = s.view(func(b *buckets) error {
		if v := b.meta.Get(metaSchema); len(v) != 8 || binary.BigEndian.Uint64(v) != schemaVersion {
			return fmt.Errorf("%w: meta/schema is %x, want %d", ErrCorrupt, v, schemaVersion)
		}
		if v := b.meta.Get(metaRestored); v != nil {
			if _, err := DecodeRestored(v); err != nil {
				return err
			}
		}
		if _, err := DecodeNoticeAlerts(b.meta.Get(metaNoticeAlerts)); err != nil {
			return err
		}
		ver := &verifier{b: b}
		ids, err := b.ids()
		if err != nil {
			return err
		}
		var total uint64
		err = walkLogs(b.logs, func(e *protocol.Entry) error {
			ver.seen = map[rowKey]bool{}
			// The target's own rows were verified when the walk passed it
			// (same author, earlier seq), so the ids and retractions
			// buckets can be trusted for the rules here.
			if _, err := indexEntry(ver, ids, b.idx[idxRetractions], b.members, e); err != nil {
				return err
			}
			total++
			return nil
		}, func(last *protocol.Entry) error {
			if err := last.Verify(); err != nil {
				return fmt.Errorf("%w: logs/%s/%d (the head): %v", ErrCorrupt, last.Author, last.Seq(), err)
			}
			if v := b.idx[idxHeads].Get(last.Author[:]); v != nil {
				if h, err := parseHead(last.Author, v); err == nil && (h.Seq != last.Seq() || h.ID != last.ID) {
					return fmt.Errorf("%w: heads/%s is seq %d (%s), but the log ends at seq %d (%s)", ErrCorrupt, last.Author, h.Seq, h.ID, last.Seq(), last.ID)
				}
			}
			ver.seen = map[rowKey]bool{}
			return ver.put(idxHeads, last.Author[:], headValue(protocol.Head{Author: last.Author, Seq: last.Seq(), ID: last.ID}))
		})
		if err != nil {
			return err
		}
		for idx := range numIndexes {
			n, err := countRows(b, idx)
			if err != nil {
				return err
			}
			if n != ver.rows[idx] {
				return extraRow(b, idx, n, ver.rows[idx])
			}
		}
		if n, err := b.count(); err != nil {
			return err
		} else if n != total {
			return fmt.Errorf("%w: meta/count is %d, the logs hold %d entries", ErrCorrupt, n, total)
		}
		if err := checkArrivals(b, total); err != nil {
			return err
		}
		if err := checkEvidence(b); err != nil {
			return err
		}
		return checkLocal(b.tx)
	})
	return wrapDB("check", err)
}

type rowKey struct {
	idx int
	key string
}

// verifier is the sink Check hands to index: instead of writing a row it
// checks that the row is there with that value, and counts distinct rows.
type verifier struct {
	b    *buckets
	rows [numIndexes]int
	// seen holds the current entry's rows: one addition may carry the same
	// signal twice, which is one row. Rows of different entries never
	// collide: every key holds the id or the log position (author || seq)
	// of the entry it comes from, or (heads, retractions) a key only one
	// valid entry can write.
	seen map[rowKey]bool
}

func (v *verifier) put(idx int, key, value []byte) error {
	rk := rowKey{idx, string(key)}
	if v.seen[rk] {
		return nil
	}
	v.seen[rk] = true
	name := indexNames[idx]
	var got []byte
	found := false
	if isRunIndex[idx] {
		rs, err := v.b.runSet(idx)
		if err != nil {
			return err
		}
		got, found = rs.lookup(key)
	} else {
		var k []byte
		k, got = v.b.idx[idx].Cursor().Seek(key)
		found = k != nil && bytes.Equal(k, key)
	}
	if !found {
		return fmt.Errorf("%w: %s/%x: row missing", ErrCorrupt, name, key)
	}
	if !bytes.Equal(got, value) {
		return fmt.Errorf("%w: %s/%x: value %x, the logs imply %x", ErrCorrupt, name, key, got, value)
	}
	v.rows[idx]++
	return nil
}

// countRows counts an index's rows. For a run index it also checks that
// each run's sequence is its row count, which the merge policy relies on.
func countRows(b *buckets, idx int) (int, error) {
	if !isRunIndex[idx] {
		return countKeys(b.idx[idx]), nil
	}
	rs, err := b.runSet(idx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range rs.runs {
		have := countKeys(r.b)
		if uint64(have) != r.b.Sequence() {
			return 0, fmt.Errorf("%w: %s/%d: run holds %d rows, its sequence says %d", ErrCorrupt, indexNames[idx], r.num, have, r.b.Sequence())
		}
		n += have
	}
	return n, checkMerge(rs)
}

func countKeys(b *bolt.Bucket) int {
	n := 0
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	return n
}

// checkMerge checks the state of a stepped merge in progress: its inputs
// are live runs, its output exists, holds rows in key order up to "last"
// and no more rows than the inputs.
func checkMerge(rs *runSet) error {
	name := mergeBucketName(rs.idx)
	inputs, last, out := rs.mergeState()
	if v := rs.merge.Get(mergeInputs); len(v)%8 != 0 {
		return fmt.Errorf("%w: %s/inputs is %d bytes, not a list of run numbers", ErrCorrupt, name, len(v))
	}
	if len(inputs) == 0 {
		if k, _ := rs.merge.Cursor().First(); k != nil {
			return fmt.Errorf("%w: %s holds %q but no merge is in progress", ErrCorrupt, name, k)
		}
		return nil
	}
	if out == nil {
		return fmt.Errorf("%w: %s: merge of runs %v has no output run", ErrCorrupt, name, inputs)
	}
	var in uint64
	for _, num := range inputs {
		i := slices.IndexFunc(rs.runs, func(r run) bool { return r.num == num })
		if i < 0 {
			return fmt.Errorf("%w: %s: merge input run %d is not a live run", ErrCorrupt, name, num)
		}
		in += rs.runs[i].b.Sequence()
	}
	have := countKeys(out)
	if uint64(have) != out.Sequence() || out.Sequence() > in {
		return fmt.Errorf("%w: %s: output holds %d rows, its sequence says %d, the inputs hold %d", ErrCorrupt, name, have, out.Sequence(), in)
	}
	if k, _ := out.Cursor().Last(); !bytes.Equal(k, last) {
		return fmt.Errorf("%w: %s: output ends at %x, last copied %x", ErrCorrupt, name, k, last)
	}
	return nil
}

// extraRow names the first row of an index that no logged entry implies.
// Only reached once a count is known to be off, so it may hold one
// bucket's expected keys in memory.
func extraRow(b *buckets, idx, have, want int) error {
	name := indexNames[idx]
	keys := keySet{idx: idx, keys: map[string]bool{}}
	ids, err := b.ids()
	if err != nil {
		return err
	}
	err = walkLogs(b.logs, func(e *protocol.Entry) error {
		_, err := indexEntry(&keys, ids, b.idx[idxRetractions], b.members, e)
		return err
	}, func(last *protocol.Entry) error {
		return keys.put(idxHeads, last.Author[:], nil)
	})
	if err != nil {
		return err
	}
	c, err := b.cursor(idx)
	if err != nil {
		return err
	}
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if !keys.keys[string(k)] {
			return fmt.Errorf("%w: %s/%x: row not implied by any logged entry (%d rows, the logs imply %d)", ErrCorrupt, name, k, have, want)
		}
	}
	return fmt.Errorf("%w: %s holds %d rows, the logs imply %d", ErrCorrupt, name, have, want)
}

type keySet struct {
	idx  int
	keys map[string]bool
}

func (s *keySet) put(idx int, key, _ []byte) error {
	if idx == s.idx {
		s.keys[string(key)] = true
	}
	return nil
}

func checkEvidence(b *buckets) error {
	return b.evidence.ForEach(func(k, v []byte) error {
		if len(k) != evidenceKeySize {
			return fmt.Errorf("%w: evidence/%x: key is %d bytes, want %d", ErrCorrupt, k, len(k), evidenceKeySize)
		}
		author, seq := authorOf(k), binary.BigEndian.Uint64(k[authorSize:])
		id, _ := idOf(k[authorSize+8:])
		e, err := protocol.Decode(bytes.Clone(v))
		if err != nil {
			return fmt.Errorf("%w: evidence/%x: %v", ErrCorrupt, k, err)
		}
		if e.ID != id || e.Author != author || e.Seq() != seq {
			return fmt.Errorf("%w: evidence/%x holds entry %s by %s seq %d", ErrCorrupt, k, e.ID, e.Author, e.Seq())
		}
		if err := e.Verify(); err != nil {
			return fmt.Errorf("%w: evidence/%x: %v", ErrCorrupt, k, err)
		}
		var stored []byte
		if log := b.logs.Bucket(author[:]); log != nil {
			stored = log.Get(u64(seq))
		}
		switch {
		case stored == nil:
			return fmt.Errorf("%w: evidence/%x: the log has no entry %d to conflict with", ErrCorrupt, k, seq)
		case protocol.IDOf(stored) == id:
			return fmt.Errorf("%w: evidence/%x: is the logged entry itself, not a conflicting one", ErrCorrupt, k)
		}
		return nil
	})
}
