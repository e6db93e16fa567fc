package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/staydown/staydown/protocol/replica"
)

// schemaVersion is written to meta/schema by Open on a new file and checked
// on every later Open. Bump it when a key or value layout changes.
//
// 3: noticesigs index and arrivals bucket; additions keyed by author ||
// seq, attest keys ending with it. Schema 2 was never released.
// 4: ids and attest kept as sorted runs (runs.go).
// 5: membership index.
// 6: url signal keys are the v2 URL normal form (SPEC 7.4, 7.5).
// 7: retractions and disputes values carry the keys of the signals they
// name (SPEC 6.2, 6.3).
// 8: vpdqframes index, the frames of every video an addition carries.
const schemaVersion = 8

// urlKeysV2 is the first schema whose url signal keys are the v2 URL
// normal form. An older file's indexes are rebuilt, and its watchlist,
// which is not derived from the logs, has its url keys re-derived
// (rekeyWatchlistURLs).
const urlKeysV2 = 6

// namedKeys is the first schema whose retractions and disputes rows carry
// the keys of the signals they name. An older file's indexes are rebuilt.
const namedKeys = 7

// vpdqFrames is the first schema with the vpdqframes index. An older
// file's indexes are rebuilt, which fills it.
const vpdqFrames = 8

// indexOnlySchemas are the older schemas that differ from this one in
// index layout only: Open rebuilds their indexes from the logs, once, and
// stamps the file with schemaVersion.
var indexOnlySchemas = map[uint64]bool{1: true, 3: true, 4: true, 5: true, 6: true, 7: true}

// Source buckets: Rebuild keeps them.
var (
	bucketMeta     = []byte("meta")
	bucketLogs     = []byte("logs")
	bucketEvidence = []byte("evidence")
	// bucketArrivals is this node's own record of the order in which
	// entries entered its logs (arrivals.go). It is local, not a function
	// of the logs, so Rebuild keeps it.
	bucketArrivals = []byte("arrivals")
)

var (
	metaSchema = []byte("schema")
	metaCount  = []byte("count")
	// metaMembers is the fingerprint of the membership the indexes were
	// derived under (SetMembers).
	metaMembers = []byte("members")
)

// Index buckets: everything in them is derived from the logs, so Rebuild
// drops and refills them. The constants index indexNames.
const (
	idxHeads = iota
	idxIDs
	idxAdditions
	idxAttest
	idxRetractions
	idxDisputes
	idxAllow
	idxNotices
	idxNoticeRefs
	idxNoticeSigs
	idxVoid
	idxMembership
	idxVPDQFrames
	numIndexes
)

var indexNames = [numIndexes][]byte{
	idxHeads:       []byte("heads"),
	idxIDs:         []byte("ids"),
	idxAdditions:   []byte("additions"),
	idxAttest:      []byte("attest"),
	idxRetractions: []byte("retractions"),
	idxDisputes:    []byte("disputes"),
	idxAllow:       []byte("allow"),
	idxNotices:     []byte("notices"),
	idxNoticeRefs:  []byte("noticerefs"),
	idxNoticeSigs:  []byte("noticesigs"),
	idxVoid:        []byte("void"),
	idxMembership:  []byte("membership"),
	// vpdqframes: the wire value (SPEC 7.6) of each vpdq signal of an
	// addition, keyed as attest is (len(sk) || sk || author || seq),
	// because its signal key is a digest and matching needs the frames
	// (VPDQVideos).
	idxVPDQFrames: []byte("vpdqframes"),
}

// Store is an open store file. Its methods are safe for concurrent use:
// bbolt lets one write transaction run at a time and any number of reads
// beside it.
type Store struct {
	db      *bolt.DB
	members atomic.Pointer[membersBox]
	// applied counts entries Apply has logged since it last handed the
	// mapped pages back (see applyReleaseEvery).
	applied atomic.Uint64
	// writable is false from a write that failed for lack of room until
	// one commits (space.go); noSpace counts those failures, and watch is
	// told of them (WatchWrites).
	writable atomic.Bool
	noSpace  atomic.Uint64
	watch    atomic.Pointer[func(error)]
}

// Open opens or creates the store at path. A second Open of the same file,
// from this process or another, fails after one second: bbolt holds an
// exclusive file lock. A file of an older schema that differs only in its
// indexes (schema 1) has them rebuilt from the logs first, in one
// transaction that holds them all in memory (see Rebuild); any other
// schema is ErrSchema. A file without the local buckets (checkpoints,
// watchlist: written before they were kept here) gets them, empty.
func Open(path string) (s *Store, err error) {
	var db *bolt.DB
	defer func() {
		if err != nil && db != nil {
			db.Close() // after damaged has turned a panic into err
		}
	}()
	defer damaged(path, &err)()
	db, err = bolt.Open(path, 0o600, &bolt.Options{
		// The map freelist keeps allocation cheap on files of many GB,
		// where the array freelist's linear scans dominate writes.
		FreelistType: bolt.FreelistMapType,
		Timeout:      time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	// A store that is already set up needs no write transaction (and no
	// fsync) to open; a new or older one gets its buckets created.
	err = db.View(func(tx *bolt.Tx) error {
		// The schema first: an older file lacks buckets this one has.
		if meta := tx.Bucket(bucketMeta); meta != nil {
			if err := checkSchema(meta); err != nil {
				return err
			}
		}
		if _, err := openBuckets(tx); err != nil {
			return err
		}
		if err := checkSchema(tx.Bucket(bucketMeta)); err != nil {
			return err
		}
		return localBucketsPresent(tx)
	})
	switch {
	case errors.Is(err, ErrSchema):
		err = db.Update(upgrade)
	case err != nil:
		err = db.Update(initBuckets)
	}
	if err != nil && noSpace(err) {
		err = fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s = &Store{db: db}
	s.writable.Store(true)
	return s, nil
}

func checkSchema(meta *bolt.Bucket) error {
	v := meta.Get(metaSchema)
	if len(v) != 8 {
		return fmt.Errorf("%w: meta/schema is %d bytes, want 8", ErrCorrupt, len(v))
	}
	if got := binary.BigEndian.Uint64(v); got != schemaVersion {
		return fmt.Errorf("%w: file has schema %d, this build reads %d", ErrSchema, got, schemaVersion)
	}
	return nil
}

// upgrade brings a file of an older schema whose logs this build reads up
// to schemaVersion by rebuilding its indexes (one transaction: a crash
// leaves the old file as it was). Any other schema is ErrSchema.
func upgrade(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	v := meta.Get(metaSchema)
	if len(v) != 8 || !indexOnlySchemas[binary.BigEndian.Uint64(v)] {
		return checkSchema(meta)
	}
	if err := meta.Put(metaSchema, u64(schemaVersion)); err != nil {
		return err
	}
	// Without a membership yet: the node's SetMembers derives the
	// indexes again under its own (the fingerprint is missing).
	from := binary.BigEndian.Uint64(v)
	if err := rebuild(tx, nil); err != nil {
		return fmt.Errorf("upgrade from schema %d: %w", from, err)
	}
	if err := createLocalBuckets(tx); err != nil {
		return err
	}
	if from < urlKeysV2 {
		if err := rekeyWatchlistURLs(tx); err != nil {
			return fmt.Errorf("upgrade from schema %d: %w", from, err)
		}
	}
	return nil
}

func initBuckets(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		// Only a new, empty file may be claimed: anything else was written
		// by someone else and would be misread.
		if err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			return fmt.Errorf("%w: no schema version, but a bucket %q: not a staydown store", ErrCorrupt, name)
		}); err != nil {
			return err
		}
		var err error
		if meta, err = tx.CreateBucket(bucketMeta); err != nil {
			return err
		}
		if err := meta.Put(metaSchema, u64(schemaVersion)); err != nil {
			return err
		}
		if err := meta.Put(metaCount, u64(0)); err != nil {
			return err
		}
	}
	if err := checkSchema(meta); err != nil {
		return err
	}
	for _, name := range append([][]byte{bucketLogs, bucketEvidence, bucketArrivals}, indexBuckets()...) {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("bucket %s: %w", name, err)
		}
	}
	return createLocalBuckets(tx)
}

// Close closes the file. It waits for running transactions to end; the
// Store must not be used afterwards.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// indexBuckets names every top-level bucket that Rebuild drops and
// refills: the indexes, and the merge state of the run indexes.
func indexBuckets() [][]byte {
	names := slices.Clone(indexNames[:])
	for idx := range numIndexes {
		if isRunIndex[idx] {
			names = append(names, mergeBucketName(idx))
		}
	}
	return names
}

// buckets are the top-level buckets of one transaction.
type buckets struct {
	tx                             *bolt.Tx
	meta, logs, evidence, arrivals *bolt.Bucket
	// idx holds the plain index buckets; it is nil for the run indexes
	// (isRunIndex), which are read through runSet.
	idx  [numIndexes]*bolt.Bucket
	runs [numIndexes]*runSet // opened on first use
	// members judges entries (SPEC 12.5); nil judges all in.
	members replica.Members
}

func openBuckets(tx *bolt.Tx) (*buckets, error) {
	b := &buckets{tx: tx, meta: tx.Bucket(bucketMeta), logs: tx.Bucket(bucketLogs), evidence: tx.Bucket(bucketEvidence), arrivals: tx.Bucket(bucketArrivals)}
	if b.meta == nil || b.logs == nil || b.evidence == nil || b.arrivals == nil {
		return nil, fmt.Errorf("%w: a source bucket (meta, logs, evidence, arrivals) is missing", ErrCorrupt)
	}
	for i, name := range indexNames {
		if isRunIndex[i] {
			continue
		}
		if b.idx[i] = tx.Bucket(name); b.idx[i] == nil {
			return nil, fmt.Errorf("%w: index bucket %s is missing (Rebuild recreates it)", ErrCorrupt, name)
		}
	}
	return b, nil
}

// runSet opens a run index (ids or attest) for this transaction.
func (b *buckets) runSet(idx int) (*runSet, error) {
	if b.runs[idx] == nil {
		rs, err := openRunSet(b.tx, idx)
		if err != nil {
			return nil, err
		}
		b.runs[idx] = rs
	}
	return b.runs[idx], nil
}

// ids is the ids index of this transaction.
func (b *buckets) ids() (*runSet, error) { return b.runSet(idxIDs) }

// cursor is what reading an index in key order needs, from a bbolt
// bucket or from a run index.
type cursor interface {
	First() ([]byte, []byte)
	Seek(key []byte) ([]byte, []byte)
	Next() ([]byte, []byte)
}

// cursor opens a cursor on any index.
func (b *buckets) cursor(idx int) (cursor, error) {
	if !isRunIndex[idx] {
		return b.idx[idx].Cursor(), nil
	}
	rs, err := b.runSet(idx)
	if err != nil {
		return nil, err
	}
	return rs.cursor(), nil
}

func (b *buckets) count() (uint64, error) {
	v := b.meta.Get(metaCount)
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: meta/count is %d bytes, want 8", ErrCorrupt, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// view runs fn in a read transaction with the buckets opened.
func (s *Store) view(fn func(b *buckets) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		b, err := openBuckets(tx)
		if err != nil {
			return err
		}
		b.members = s.judge()
		return fn(b)
	})
}

// wrapDB names the operation that failed, so that bbolt's terse errors
// ("database not open", "timeout") read in context.
func wrapDB(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

var errNilEntry = errors.New("nil entry")

// OpenReads is the number of read transactions open now.
func (s *Store) OpenReads() int { return s.db.Stats().OpenTxN }

// damaged makes memory faults in this goroutine recoverable and returns
// the function to defer: it turns a panic of bbolt on a damaged file
// ("page expected to be...") or a fault reading it (a truncated file
// under the mapping) into an error wrapping ErrCorrupt in *err, naming
// path and what to do. Open and Check run under it, so that a damaged
// store is a clear error and not a crash of the node or the CLI.
//
//	defer damaged(path, &err)()
func damaged(path string, err *error) func() {
	old := debug.SetPanicOnFault(true)
	return func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			*err = fmt.Errorf("%w: %s is damaged (%v): stop the node and rebuild its store from the federation: staydown store restore --dir <the node's directory>", ErrCorrupt, path, r)
		}
	}
}
