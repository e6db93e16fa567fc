package store

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// noSpaceErrnos are the errors of a write that failed for lack of room.
var noSpaceErrnos = []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT, syscall.EFBIG}

// noSpace reports whether err is a write that failed for lack of room.
// bbolt returns a page write's or an fsync's error as the os package
// gave it (errors.Is finds the errno), but formats the errors of growing
// the file (ftruncate and its fsync) with %s: "file resize error: file
// too large". For those the errno's text is all that is left, so it is
// matched too.
func noSpace(err error) bool {
	for _, errno := range noSpaceErrnos {
		if errors.Is(err, errno) || strings.Contains(err.Error(), errno.Error()) {
			return true
		}
	}
	return false
}

// update runs fn in a write transaction, as bolt's Update does, and keeps
// the store's writability up to date: a commit that failed for lack of
// room makes the store not writable and the error wrap ErrNoSpace; any
// transaction that commits makes it writable again. fn's own errors
// (a rule broken, a bucket missing) say nothing of the disk.
func (s *Store) update(fn func(tx *bolt.Tx) error) error {
	var fnErr error
	err := s.db.Update(func(tx *bolt.Tx) error {
		fnErr = fn(tx)
		return fnErr
	})
	switch {
	case err == nil:
		s.wrote(nil)
	case fnErr == nil && noSpace(err):
		err = fmt.Errorf("%w: %w", ErrNoSpace, err)
		s.wrote(err)
	}
	return err
}

// wrote records the outcome of a commit: nil, or an error wrapping
// ErrNoSpace.
func (s *Store) wrote(err error) {
	if err == nil {
		if !s.writable.Swap(true) {
			if w := s.watch.Load(); w != nil {
				(*w)(nil)
			}
		}
		return
	}
	s.writable.Store(false)
	s.noSpace.Add(1)
	if w := s.watch.Load(); w != nil {
		(*w)(err)
	}
}

// Writable reports whether the last write transaction committed (true
// before the first): false after one failed for lack of room (ErrNoSpace)
// until one commits again.
func (s *Store) Writable() bool { return s.writable.Load() }

// NoSpaceFailures counts the write transactions that failed for lack of
// room since Open.
func (s *Store) NoSpaceFailures() uint64 { return s.noSpace.Load() }

// WatchWrites has fn told of every write that fails for lack of room
// (with its error) and of the first that commits after one (with nil).
// fn runs in the writing goroutine, after the transaction: it must be
// quick and must not write the store. Call it before the first write.
func (s *Store) WatchWrites(fn func(err error)) { s.watch.Store(&fn) }

// metaProbe is the row Probe writes.
var metaProbe = []byte("probe")

// Probe writes a small row (meta/probe: the time, in ms) to find out
// whether the store can write again when nothing else writes. It needs a
// free page or a page more of the file, as the smallest real write does.
func (s *Store) Probe(now time.Time) error {
	return wrapDB("probe", s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(metaProbe, u64(uint64(now.UnixMilli())))
	}))
}
