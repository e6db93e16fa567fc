package store

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// localBuckets are the node's own source buckets (checkpoints.go,
// watchlist.go), each a top-level bucket of nested ones. Nothing in them
// is derived from the logs: Rebuild keeps them, and Open creates the
// ones a file lacks (a file written before they moved into the store).
var localBuckets = []struct {
	name   []byte
	nested [][]byte
}{
	{bucketCheckpoints, [][]byte{ckptLatest, ckptConflicts}},
	{bucketWatchlist, [][]byte{watchSignals, watchAlerts, watchAlerted, watchVideos}},
	{bucketClock, [][]byte{clockArrived}},
}

// errNoLocalBuckets tells Open that a file lacks a local bucket.
var errNoLocalBuckets = errors.New("a local bucket is missing")

// localBucketsPresent returns errNoLocalBuckets if a local bucket is
// missing.
func localBucketsPresent(tx *bolt.Tx) error {
	for _, l := range localBuckets {
		for _, n := range l.nested {
			if _, err := localBucket(tx, l.name, n); err != nil {
				return errNoLocalBuckets
			}
		}
	}
	return nil
}

func createLocalBuckets(tx *bolt.Tx) error {
	for _, l := range localBuckets {
		top, err := tx.CreateBucketIfNotExists(l.name)
		if err != nil {
			return fmt.Errorf("bucket %s: %w", l.name, err)
		}
		for _, n := range l.nested {
			if _, err := top.CreateBucketIfNotExists(n); err != nil {
				return fmt.Errorf("bucket %s/%s: %w", l.name, n, err)
			}
		}
	}
	return stampOlderArrivals(tx)
}

// localBucket opens the nested local bucket parent/name.
func localBucket(tx *bolt.Tx, parent, name []byte) (*bolt.Bucket, error) {
	if top := tx.Bucket(parent); top != nil {
		if b := top.Bucket(name); b != nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%w: bucket %s/%s is missing", ErrCorrupt, parent, name)
}

// checkLocal checks the rows of the local buckets.
func checkLocal(tx *bolt.Tx) error {
	if err := checkCheckpoints(tx); err != nil {
		return err
	}
	if err := checkArrivalTimes(tx); err != nil {
		return err
	}
	return checkWatchlist(tx)
}

// legacyBuckets maps the buckets of the side files that nodes kept beside
// the store before (checkpoints.db: latest, conflicts; watchlist.db:
// signals, alerts, alerted) to the local buckets that took them over,
// rows and sequence unchanged.
var legacyBuckets = map[string][2][]byte{
	string(ckptLatest):    {bucketCheckpoints, ckptLatest},
	string(ckptConflicts): {bucketCheckpoints, ckptConflicts},
	string(watchSignals):  {bucketWatchlist, watchSignals},
	string(watchAlerts):   {bucketWatchlist, watchAlerts},
	string(watchAlerted):  {bucketWatchlist, watchAlerted},
}

// ImportLegacy copies into the store what the bbolt side files at paths
// hold: checkpoints.db and watchlist.db, which nodes kept beside the
// store before their contents moved into it. It reads the files and
// changes nothing in them (the caller moves them aside after), and
// writes every file's rows in one write transaction, which holds them
// all in memory until it commits.
//
// Each of a file's buckets goes into its local bucket with its rows and
// its sequence, when that bucket is empty. When the local bucket already
// holds exactly the same rows (an import that committed, then the node
// stopped before it moved the file aside), it is left as it is. Anything
// else is ErrImport and nothing changes: a bucket this store does not
// know, a local bucket holding other rows, rows that fail the checks
// Check makes.
func (s *Store) ImportLegacy(paths ...string) error {
	var files []*bolt.DB
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, p := range paths {
		f, err := bolt.Open(p, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
		if err != nil {
			return fmt.Errorf("store: import %s: %w", p, err)
		}
		files = append(files, f)
	}
	err := s.update(func(tx *bolt.Tx) error {
		for i, f := range files {
			if err := f.View(func(from *bolt.Tx) error { return importFile(tx, from) }); err != nil {
				return fmt.Errorf("%s: %w", paths[i], err)
			}
			// The side files predate the v2 URL form: their url keys are
			// the URLs as entries carried them.
			if err := rekeyWatchlistURLs(tx); err != nil {
				return fmt.Errorf("%s: %w", paths[i], err)
			}
			if err := checkLocal(tx); err != nil {
				return fmt.Errorf("%s: %w: its rows: %v", paths[i], ErrImport, err)
			}
		}
		return nil
	})
	return wrapDB("import", err)
}

func importFile(tx, from *bolt.Tx) error {
	return from.ForEach(func(name []byte, src *bolt.Bucket) error {
		to, ok := legacyBuckets[string(name)]
		if !ok {
			return fmt.Errorf("%w: bucket %q is not one this store imports", ErrImport, name)
		}
		dst, err := localBucket(tx, to[0], to[1])
		if err != nil {
			return err
		}
		if k, _ := dst.Cursor().First(); k == nil && dst.Sequence() == 0 {
			return copyBucket(dst, src, name)
		}
		if !sameRows(dst, src, func(k []byte) []byte { return watchKeyV2(name, k) }) {
			return fmt.Errorf("%w: bucket %s: the store's %s/%s holds other rows already", ErrImport, name, to[0], to[1])
		}
		return nil
	})
}

func copyBucket(dst, src *bolt.Bucket, name []byte) error {
	c := src.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil {
			return fmt.Errorf("%w: %s/%x is a bucket, want a value", ErrImport, name, k)
		}
		if err := dst.Put(k, v); err != nil {
			return err
		}
	}
	return dst.SetSequence(src.Sequence())
}

// sameRows reports whether two buckets of values hold the same rows and
// sequence, b's keys taken through key (the key a row of b has once
// imported).
func sameRows(a, b *bolt.Bucket, key func(k []byte) []byte) bool {
	if a.Sequence() != b.Sequence() {
		return false
	}
	rows := map[string][]byte{}
	err := b.ForEach(func(k, v []byte) error {
		if v == nil {
			return errors.New("a bucket")
		}
		rows[string(key(k))] = v
		return nil
	})
	if err != nil {
		return false
	}
	n := 0
	err = a.ForEach(func(k, v []byte) error {
		if w, ok := rows[string(k)]; !ok || v == nil || !bytes.Equal(v, w) {
			return errors.New("differs")
		}
		n++
		return nil
	})
	return err == nil && n == len(rows)
}
