package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// The two indexes with random keys, ids (keyed by entry id, a hash) and
// attest (keyed by signal, mostly hashes), are kept as sorted runs: a
// small log-structured merge tree inside the bbolt file.
//
// Why: a B-tree takes a random key by rewriting the page it lands on.
// Once an index is much larger than a transaction's batch, every row of
// a batch lands on a page of its own, and a catching-up node rewrites a
// 4 KiB page per row per index (7 KB written per entry at a million
// entries, 85% of the apply time). A run is written once, in key order,
// with full pages; runs of one size are merged into one run of the next
// size, sequentially again. Each row is rewritten about once per tier
// (log4 of the index size over 8192), and a write costs its own bytes,
// not a page.
//
// Layout: the index's top-level bucket holds only nested buckets, the
// live runs, named by an 8-byte big-endian run number (increasing with
// age). Each run's bucket sequence is its row count. No key is in two
// runs (an id or a log position is logged once), so the index is the
// union of its runs and a read looks in each. A merge too large for one
// transaction goes in steps: its state sits in the top-level bucket
// "<index>.merge" (keys "inputs", the input run numbers; "output", the
// number of the run being written, which readers skip; "last", the last
// key copied); the step that copies the last row deletes the inputs and
// the state, in one transaction, which makes the output live. Readers
// never see it before then, and a crash between steps resumes the merge
// where the last committed step left it.
// The merge policy's settings (variables, not constants, so that tests
// can make every kind of merge happen with a few rows).
var (
	// runTier0 is the row count at which a run stops taking small
	// flushes and counts as tier 1; a run of n rows is tier
	// floor(log_runFanIn(n / runTier0)) + 1 from there.
	runTier0 uint64 = 8192
	// runFanIn runs of one tier are merged into one run of the next.
	runFanIn = 4
	// mergeInline is the most rows a merge copies in the transaction
	// that plans it; a larger merge goes in steps, one per write
	// transaction, of mergeStep rows or twice the rows the transaction
	// added if that is more (so that it keeps ahead of the runs piling
	// up), and no transaction holds more than a few tens of MB of new
	// pages.
	mergeInline uint64 = 1 << 17
	mergeStep          = 1 << 16
)

// isRunIndex says which indexes are kept as runs.
var isRunIndex = [numIndexes]bool{idxIDs: true, idxAttest: true}

var (
	mergeInputs = []byte("inputs")
	mergeOutput = []byte("output")
	mergeLast   = []byte("last")
)

func mergeBucketName(idx int) []byte {
	return append(slices.Clone(indexNames[idx]), ".merge"...)
}

// runSet is one transaction's view of a run index.
type runSet struct {
	idx    int
	parent *bolt.Bucket
	merge  *bolt.Bucket // <index>.merge
	runs   []run        // live, oldest first
	// bySize is runs, largest first: the order a lookup tries them in,
	// since a key is likelier in a larger run. Nil after runs changed.
	bySize []run
}

type run struct {
	num uint64
	b   *bolt.Bucket
}

func openRunSet(tx *bolt.Tx, idx int) (*runSet, error) {
	name := indexNames[idx]
	parent := tx.Bucket(name)
	if parent == nil {
		return nil, fmt.Errorf("%w: index bucket %s is missing (Rebuild recreates it)", ErrCorrupt, name)
	}
	mb := tx.Bucket(mergeBucketName(idx))
	if mb == nil {
		return nil, fmt.Errorf("%w: bucket %s is missing (Rebuild recreates it)", ErrCorrupt, mergeBucketName(idx))
	}
	rs := &runSet{idx: idx, parent: parent, merge: mb}
	output := mb.Get(mergeOutput)
	c := parent.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		b := parent.Bucket(k)
		if v != nil || len(k) != 8 || b == nil {
			return nil, fmt.Errorf("%w: %s/%x: want only runs, buckets named by 8-byte numbers", ErrCorrupt, name, k)
		}
		if !bytes.Equal(k, output) { // a merge's output is not live yet
			rs.runs = append(rs.runs, run{binary.BigEndian.Uint64(k), b})
		}
	}
	return rs, nil
}

// lookup returns key's value and whether the key is there (attest rows
// have empty values).
func (rs *runSet) lookup(key []byte) ([]byte, bool) {
	if rs.bySize == nil {
		rs.bySize = slices.SortedStableFunc(slices.Values(rs.runs), func(x, y run) int {
			return cmp.Compare(y.b.Sequence(), x.b.Sequence())
		})
	}
	for _, r := range rs.bySize {
		if k, v := r.b.Cursor().Seek(key); k != nil && bytes.Equal(k, key) {
			return v, true
		}
	}
	return nil, false
}

// Get is lookup for indexes whose values are never empty (ids).
func (rs *runSet) Get(key []byte) []byte {
	v, _ := rs.lookup(key)
	return v
}

func (rs *runSet) cursor() *mergedCursor {
	return mergeCursors(rs.runs)
}

// mergedCursor walks several runs as one, in key order. It assumes, as
// the runs guarantee, that no key is in two of them. The cursors that
// have a key form a binary min-heap on it, so that a step costs about
// log2(runs) comparisons: a start-up scan reads tens of millions of keys.
type mergedCursor struct {
	cs     []*bolt.Cursor
	ks, vs [][]byte
	heap   []int // indexes into cs, ks and vs; heap[0] holds the least key
}

func mergeCursors(runs []run) *mergedCursor {
	m := &mergedCursor{cs: make([]*bolt.Cursor, len(runs)), ks: make([][]byte, len(runs)), vs: make([][]byte, len(runs))}
	for i, r := range runs {
		m.cs[i] = r.b.Cursor()
	}
	return m
}

func (m *mergedCursor) First() ([]byte, []byte) {
	for i, c := range m.cs {
		m.ks[i], m.vs[i] = c.First()
	}
	return m.init()
}

func (m *mergedCursor) Seek(key []byte) ([]byte, []byte) {
	for i, c := range m.cs {
		m.ks[i], m.vs[i] = c.Seek(key)
	}
	return m.init()
}

func (m *mergedCursor) Next() ([]byte, []byte) {
	if len(m.heap) == 0 {
		return nil, nil
	}
	i := m.heap[0]
	if m.ks[i], m.vs[i] = m.cs[i].Next(); m.ks[i] == nil {
		last := len(m.heap) - 1
		m.heap[0] = m.heap[last]
		m.heap = m.heap[:last]
	}
	m.down(0)
	return m.top()
}

func (m *mergedCursor) init() ([]byte, []byte) {
	m.heap = m.heap[:0]
	for i, k := range m.ks {
		if k != nil {
			m.heap = append(m.heap, i)
		}
	}
	for j := len(m.heap)/2 - 1; j >= 0; j-- {
		m.down(j)
	}
	return m.top()
}

func (m *mergedCursor) top() ([]byte, []byte) {
	if len(m.heap) == 0 {
		return nil, nil
	}
	return m.ks[m.heap[0]], m.vs[m.heap[0]]
}

// down restores the heap below position j.
func (m *mergedCursor) down(j int) {
	h := m.heap
	for {
		least := j
		for _, c := range []int{2*j + 1, 2*j + 2} {
			if c < len(h) && bytes.Compare(m.ks[h[c]], m.ks[h[least]]) < 0 {
				least = c
			}
		}
		if least == j {
			return
		}
		h[j], h[least] = h[least], h[j]
		j = least
	}
}

// add puts rows, sorted by key with no key twice, into the index, in a
// write transaction (as do the methods below it): into the newest run if
// it is still tier 0 and not being merged (so a trickle of gossip does
// not make a run per entry), else as a new run. It then merges what the
// policy says is due.
func (w *runSet) add(rows []kv) error {
	if len(rows) == 0 {
		return nil
	}
	inputs, _, _ := w.mergeState()
	var b *bolt.Bucket
	if n := len(w.runs); n > 0 && w.runs[n-1].b.Sequence() < runTier0 && uint64(len(rows)) < runTier0 && !slices.Contains(inputs, w.runs[n-1].num) {
		b = w.runs[n-1].b
		b.FillPercent = bolt.DefaultFillPercent
		var added uint64
		c := b.Cursor() // Seek starts from the root: valid after a Put
		for _, r := range rows {
			if k, _ := c.Seek(r.k); k == nil || !bytes.Equal(k, r.k) {
				added++
			}
			if err := b.Put(r.k, r.v); err != nil {
				return err
			}
		}
		if err := b.SetSequence(b.Sequence() + added); err != nil {
			return err
		}
		w.bySize = nil
	} else {
		num, nb, err := w.newRun()
		if err != nil {
			return err
		}
		b = nb
		for _, r := range rows {
			if err := b.Put(r.k, r.v); err != nil {
				return err
			}
		}
		if err := b.SetSequence(uint64(len(rows))); err != nil {
			return err
		}
		w.runs = append(w.runs, run{num, b})
		w.bySize = nil
	}
	// A stepped merge copies at least twice what came in, so that it
	// finishes before the runs it waits on pile up.
	return w.compact(max(mergeStep, 2*len(rows)))
}

// tier is a run's size class: 0 below runTier0 rows, then one more for
// every factor of runFanIn.
func tier(rows uint64) int {
	t := 0
	for ; rows >= runTier0; rows /= uint64(runFanIn) {
		t++
	}
	return t
}

// mergeState reads the stepped merge in progress, if any: its input run
// numbers, the last key copied, and the output run.
func (rs *runSet) mergeState() (inputs []uint64, last []byte, out *bolt.Bucket) {
	v := rs.merge.Get(mergeInputs)
	for ; len(v) >= 8; v = v[8:] {
		inputs = append(inputs, binary.BigEndian.Uint64(v))
	}
	if o := rs.merge.Get(mergeOutput); o != nil {
		out = rs.parent.Bucket(o)
	}
	return inputs, rs.merge.Get(mergeLast), out
}

// compact advances a stepped merge in progress by up to step rows, then
// merges every tier that holds runFanIn runs or more (not counting runs a
// stepped merge is reading), smallest tier first: inline when the merge
// is at most mergeInline rows, else by starting a stepped merge if none
// is in progress.
func (w *runSet) compact(step int) error {
	if inputs, _, _ := w.mergeState(); len(inputs) > 0 {
		if _, err := w.step(step); err != nil {
			return err
		}
	}
	for {
		inputs, _, _ := w.mergeState()
		byTier := map[int][]run{}
		low := -1
		for _, r := range w.runs {
			if slices.Contains(inputs, r.num) {
				continue
			}
			t := tier(r.b.Sequence())
			byTier[t] = append(byTier[t], r)
			if len(byTier[t]) >= runFanIn && (low < 0 || t < low) {
				low = t
			}
		}
		if low < 0 {
			return nil
		}
		var total uint64
		for _, r := range byTier[low] {
			total += r.b.Sequence()
		}
		if total <= mergeInline {
			if err := w.mergeNow(byTier[low]); err != nil {
				return err
			}
			continue
		}
		if len(inputs) > 0 {
			return nil // one stepped merge at a time
		}
		if err := w.startMerge(byTier[low]); err != nil {
			return err
		}
		_, err := w.step(step)
		return err
	}
}

// newRun creates an empty run; it is live unless it is named as a
// merge's output.
func (w *runSet) newRun() (uint64, *bolt.Bucket, error) {
	num, err := w.parent.NextSequence()
	if err != nil {
		return 0, nil, err
	}
	b, err := w.parent.CreateBucket(u64(num))
	if err != nil {
		return 0, nil, err
	}
	b.FillPercent = 1 // written once, in key order
	return num, b, nil
}

// mergeNow merges runs into a new run within this transaction.
func (w *runSet) mergeNow(inputs []run) error {
	num, out, err := w.newRun()
	if err != nil {
		return err
	}
	if _, err := copyRows(out, inputs, nil, -1); err != nil {
		return err
	}
	return w.replace(inputs, run{num, out})
}

// copyRows appends to out the rows of inputs after last (from the first
// if last is nil), at most limit of them (all if limit < 0), and returns
// the last key copied, nil when no row is left.
func copyRows(out *bolt.Bucket, inputs []run, last []byte, limit int) (next []byte, err error) {
	m := mergeCursors(inputs)
	var k, v []byte
	if last == nil {
		k, v = m.First()
	} else if k, v = m.Seek(last); k != nil && bytes.Equal(k, last) {
		k, v = m.Next()
	}
	var n uint64
	var prev []byte
	for ; k != nil && (limit < 0 || n < uint64(limit)); k, v = m.Next() {
		if err := out.Put(k, v); err != nil {
			return nil, err
		}
		prev = k
		n++
	}
	if err := out.SetSequence(out.Sequence() + n); err != nil {
		return nil, err
	}
	if k == nil {
		return nil, nil
	}
	return slices.Clone(prev), nil
}

// replace swaps the output of a merge in for its inputs.
func (w *runSet) replace(inputs []run, out run) error {
	var want uint64
	for _, r := range inputs {
		want += r.b.Sequence()
		if err := w.parent.DeleteBucket(u64(r.num)); err != nil {
			return err
		}
	}
	if out.b.Sequence() != want {
		return fmt.Errorf("%w: %s: merged %d rows from runs holding %d", ErrCorrupt, indexNames[w.idx], out.b.Sequence(), want)
	}
	w.runs = slices.DeleteFunc(w.runs, func(r run) bool {
		return slices.ContainsFunc(inputs, func(in run) bool { return in.num == r.num })
	})
	w.runs = append(w.runs, out)
	slices.SortFunc(w.runs, func(x, y run) int { return cmp.Compare(x.num, y.num) })
	w.bySize = nil
	return nil
}

func (w *runSet) startMerge(inputs []run) error {
	var v []byte
	for _, r := range inputs {
		v = append(v, u64(r.num)...)
	}
	num, _, err := w.newRun()
	if err != nil {
		return err
	}
	if err := w.merge.Delete(mergeLast); err != nil {
		return err
	}
	if err := w.merge.Put(mergeOutput, u64(num)); err != nil {
		return err
	}
	return w.merge.Put(mergeInputs, v)
}

// step copies up to limit rows of the merge in progress into its output;
// when none is left, it swaps the output in for the inputs.
func (w *runSet) step(limit int) (done bool, err error) {
	nums, last, out := w.mergeState()
	if out == nil {
		return false, fmt.Errorf("%w: %s: a merge of runs %v without an output bucket", ErrCorrupt, mergeBucketName(w.idx), nums)
	}
	var inputs []run
	for _, num := range nums {
		i := slices.IndexFunc(w.runs, func(r run) bool { return r.num == num })
		if i < 0 {
			return false, fmt.Errorf("%w: %s: merge input run %d is not a live run", ErrCorrupt, mergeBucketName(w.idx), num)
		}
		inputs = append(inputs, w.runs[i])
	}
	out.FillPercent = 1
	next, err := copyRows(out, inputs, last, limit)
	if err != nil {
		return false, err
	}
	if next != nil {
		return false, w.merge.Put(mergeLast, next)
	}
	// Every row is in the output: swap it in.
	outNum := binary.BigEndian.Uint64(w.merge.Get(mergeOutput))
	for _, key := range [][]byte{mergeInputs, mergeOutput, mergeLast} {
		if err := w.merge.Delete(key); err != nil {
			return false, err
		}
	}
	if err := w.replace(inputs, run{outNum, out}); err != nil {
		return false, err
	}
	return true, nil
}
