package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/staydown/staydown/protocol"
)

// The node's checkpoints (node/checkpoints, SPEC.md section 20): the
// latest checkpoint it holds of every log, with every cosignature it has
// seen, and every checkpoint that contradicted a log. They are this
// node's own record, gathered from gossip, not derived from the logs: a
// source bucket, which Rebuild keeps. The store has no roster, so it
// does not verify signatures: the node opens every note against the
// roster before it keeps it, and again when it loads it.
var (
	bucketCheckpoints = []byte("checkpoints")
	ckptLatest        = []byte("latest")    // author -> the newest checkpoint note, with its cosignatures
	ckptConflicts     = []byte("conflicts") // n -> a contradicting checkpoint note; n from the bucket's sequence
)

// SaveCheckpoint keeps note as the latest checkpoint of author's log,
// replacing the one kept. The note's text must be a checkpoint
// (protocol.ParseCheckpoint) whose origin names author's log; otherwise
// the error wraps protocol.ErrCheckpoint and nothing is written.
func (s *Store) SaveCheckpoint(author protocol.AuthorKey, note []byte) error {
	if err := checkLatestCheckpoint(author[:], note); err != nil {
		return fmt.Errorf("store: save checkpoint: %w", err)
	}
	err := s.update(func(tx *bolt.Tx) error {
		b, err := localBucket(tx, bucketCheckpoints, ckptLatest)
		if err != nil {
			return err
		}
		return b.Put(author[:], note)
	})
	return wrapDB("save checkpoint", err)
}

// SaveCheckpointConflict keeps note, a checkpoint that contradicts a log
// (or another checkpoint), after the ones kept. The same note may be
// kept twice. A note whose text is not a checkpoint is refused (wrapping
// protocol.ErrCheckpoint).
func (s *Store) SaveCheckpointConflict(note []byte) error {
	if _, err := checkpointOf(note); err != nil {
		return fmt.Errorf("store: save checkpoint conflict: %w", err)
	}
	err := s.update(func(tx *bolt.Tx) error {
		b, err := localBucket(tx, bucketCheckpoints, ckptConflicts)
		if err != nil {
			return err
		}
		n, err := b.NextSequence()
		if err != nil {
			return err
		}
		return b.Put(u64(n), note)
	})
	return wrapDB("save checkpoint conflict", err)
}

// LatestCheckpoints returns the latest checkpoint note kept of every log,
// by author key. The notes are copies the caller owns.
func (s *Store) LatestCheckpoints() ([][]byte, error) {
	out, err := s.localRows(bucketCheckpoints, ckptLatest)
	return out, wrapDB("latest checkpoints", err)
}

// CheckpointConflicts returns the contradicting checkpoint notes kept,
// in the order they were kept. The notes are copies the caller owns.
func (s *Store) CheckpointConflicts() ([][]byte, error) {
	out, err := s.localRows(bucketCheckpoints, ckptConflicts)
	return out, wrapDB("checkpoint conflicts", err)
}

// localRows returns a copy of every value of a nested local bucket, in
// key order.
func (s *Store) localRows(parent, name []byte) ([][]byte, error) {
	var out [][]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		b, err := localBucket(tx, parent, name)
		if err != nil {
			return err
		}
		return b.ForEach(func(_, v []byte) error {
			out = append(out, bytes.Clone(v))
			return nil
		})
	})
	return out, err
}

// checkpointOf reads the checkpoint a signed note states, without
// verifying a signature: text, a blank line, at least one signature line.
func checkpointOf(note []byte) (protocol.Checkpoint, error) {
	i := bytes.Index(note, []byte("\n\n"))
	if i < 0 || i+2 == len(note) {
		return protocol.Checkpoint{}, fmt.Errorf("%w: not a signed note (no signature lines after the text)", protocol.ErrCheckpoint)
	}
	return protocol.ParseCheckpoint(string(note[:i+1]))
}

// checkLatestCheckpoint checks a checkpoints/latest row: the key is an
// author key and the note a checkpoint of that author's log.
func checkLatestCheckpoint(k, note []byte) error {
	if len(k) != authorSize {
		return fmt.Errorf("checkpoints/latest/%x: key is %d bytes, want %d", k, len(k), authorSize)
	}
	c, err := checkpointOf(note)
	if err != nil {
		return fmt.Errorf("checkpoints/latest/%x: %w", k, err)
	}
	if author := authorOf(k); !strings.HasSuffix(c.Origin, "/"+author.String()) {
		return fmt.Errorf("checkpoints/latest/%x: %w: origin %q is not this author's log", k, protocol.ErrCheckpoint, c.Origin)
	}
	return nil
}

// checkCheckpoints checks the checkpoints bucket: every latest row as
// checkLatestCheckpoint says, every conflict a checkpoint note, the
// conflicts numbered 1 to the bucket's sequence without a gap.
func checkCheckpoints(tx *bolt.Tx) error {
	latest, err := localBucket(tx, bucketCheckpoints, ckptLatest)
	if err != nil {
		return err
	}
	if err := latest.ForEach(func(k, v []byte) error {
		if err := checkLatestCheckpoint(k, v); err != nil {
			return fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return nil
	}); err != nil {
		return err
	}
	conflicts, err := localBucket(tx, bucketCheckpoints, ckptConflicts)
	if err != nil {
		return err
	}
	return checkNumbered(conflicts, "checkpoints/conflicts", func(_ uint64, v []byte) error {
		_, err := checkpointOf(v)
		return err
	})
}

// checkNumbered checks a bucket whose keys are 1, 2, ... up to its
// sequence, each 8 bytes big-endian, with no gap: rows numbered by
// NextSequence and never deleted. each checks a row's value.
func checkNumbered(b *bolt.Bucket, name string, each func(n uint64, v []byte) error) error {
	var want uint64
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		want++
		if v == nil || len(k) != 8 || binary.BigEndian.Uint64(k) != want {
			return fmt.Errorf("%w: %s/%x: where row %d belongs", ErrCorrupt, name, k, want)
		}
		if err := each(want, v); errors.Is(err, ErrCorrupt) {
			return err
		} else if err != nil {
			return fmt.Errorf("%w: %s/%d: %v", ErrCorrupt, name, want, err)
		}
	}
	if seq := b.Sequence(); seq != want {
		return fmt.Errorf("%w: %s holds rows 1 to %d, its sequence is %d", ErrCorrupt, name, want, seq)
	}
	return nil
}
