package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// When entries arrived: each write transaction that logs entries records
// the number of its last arrival and the time it committed (Batch.Now),
// one row per transaction, not per entry. Arrival n arrived at the time of
// the first row whose number is n or more. Times never go back: a row
// takes the later of its time and the row before's, so that the arrivals
// are in time order too and "arrived after T" is a position in them
// (ArrivalsBy). Like arrivals, it is this node's own record, not derived
// from the logs: a local bucket, which Rebuild keeps.
var (
	bucketClock  = []byte("clock")
	clockArrived = []byte("arrived") // last arrival of a transaction (u64) -> its time, Unix ms (u64)
)

// stampArrivals records that arrivals up to last were logged at now (the
// later of now and the newest row's time).
func stampArrivals(tx *bolt.Tx, last uint64, now time.Time) error {
	b, err := localBucket(tx, bucketClock, clockArrived)
	if err != nil {
		return err
	}
	if now.IsZero() {
		now = time.Now()
	}
	ms := uint64(max(now.UnixMilli(), 0))
	if k, v := b.Cursor().Last(); k != nil && len(v) == 8 {
		ms = max(ms, binary.BigEndian.Uint64(v))
	}
	b.FillPercent = 1 // append-only
	return b.Put(u64(last), u64(ms))
}

// stampOlderArrivals gives a file that kept no arrival times (written
// before they were kept) one row: every arrival it holds arrived now, when
// the bucket was made.
func stampOlderArrivals(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	b, err := localBucket(tx, bucketClock, clockArrived)
	if err != nil || meta == nil {
		return err
	}
	if k, _ := b.Cursor().First(); k != nil {
		return nil
	}
	v := meta.Get(metaCount)
	if len(v) != 8 || binary.BigEndian.Uint64(v) == 0 {
		return nil
	}
	return stampArrivals(tx, binary.BigEndian.Uint64(v), time.Now())
}

// arrivalClock reads the arrival times along increasing arrival numbers.
type arrivalClock struct {
	c    *bolt.Cursor
	k, v []byte
}

func newArrivalClock(tx *bolt.Tx) (*arrivalClock, error) {
	b, err := localBucket(tx, bucketClock, clockArrived)
	if err != nil {
		return nil, err
	}
	return &arrivalClock{c: b.Cursor()}, nil
}

// at is the time arrival n was logged, Unix ms; 0 when no row covers it
// (which Check finds). Calls must not go back in n without seek.
func (a *arrivalClock) at(n uint64) (int64, error) {
	if a.k == nil || binary.BigEndian.Uint64(a.k) < n {
		a.k, a.v = a.c.Seek(u64(n))
	}
	if a.k == nil {
		return 0, nil
	}
	if len(a.k) != 8 || len(a.v) != 8 {
		return 0, fmt.Errorf("%w: clock/arrived/%x: key %d bytes, value %d, want 8 and 8", ErrCorrupt, a.k, len(a.k), len(a.v))
	}
	return int64(binary.BigEndian.Uint64(a.v)), nil
}

// seek forgets the position, for a lookup at a smaller n.
func (a *arrivalClock) seek() { a.k, a.v = nil, nil }

// ArrivalsBy is the number of arrivals logged at or before ms (Unix
// milliseconds): arrivals 1 to it were, every later one was logged after
// ms. A binary search over the arrival numbers: a few dozen seeks
// whatever the store's size.
func (s *Store) ArrivalsBy(ms int64) (uint64, error) {
	var out uint64
	err := s.view(func(b *buckets) error {
		count, err := b.count()
		if err != nil {
			return err
		}
		clock, err := newArrivalClock(b.tx)
		if err != nil {
			return err
		}
		lo, hi := uint64(0), count // arrival lo is at or before ms (0: none); hi+1 is after (count+1: none)
		for lo < hi {
			mid := lo + (hi-lo+1)/2
			clock.seek()
			t, err := clock.at(mid)
			if err != nil {
				return err
			}
			if t <= ms {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		out = lo
		return nil
	})
	return out, wrapDB("arrivals by", err)
}

// checkArrivalTimes: every row is 8 and 8 bytes, times do not go back, the
// last row covers the last arrival, and no row names an arrival past it.
func checkArrivalTimes(tx *bolt.Tx) error {
	b, err := localBucket(tx, bucketClock, clockArrived)
	if err != nil {
		return err
	}
	var count uint64
	if v := tx.Bucket(bucketMeta).Get(metaCount); len(v) == 8 {
		count = binary.BigEndian.Uint64(v)
	}
	var last, prev uint64
	err = b.ForEach(func(k, v []byte) error {
		if len(k) != 8 || len(v) != 8 {
			return fmt.Errorf("%w: clock/arrived/%x: key %d bytes, value %d, want 8 and 8", ErrCorrupt, k, len(k), len(v))
		}
		n, t := binary.BigEndian.Uint64(k), binary.BigEndian.Uint64(v)
		if t < prev {
			return fmt.Errorf("%w: clock/arrived/%d: time %d is before the row before's %d", ErrCorrupt, n, t, prev)
		}
		last, prev = n, t
		return nil
	})
	if err != nil {
		return err
	}
	if last > count {
		return fmt.Errorf("%w: clock/arrived names arrival %d, the store has %d", ErrCorrupt, last, count)
	}
	if last < count {
		return fmt.Errorf("%w: clock/arrived ends at arrival %d, the store has %d: the later ones have no time", ErrCorrupt, last, count)
	}
	return nil
}

// repairArrivalTimes keeps the arrival times if they are sound, and
// otherwise writes them anew from the rows that are: rows of the wrong
// size, past the last arrival or earlier than the row before are
// dropped, and the last arrivals, if no row covers them, take the newest
// time kept (now if none). A file without the bucket is left to Open.
func repairArrivalTimes(tx *bolt.Tx) error {
	top := tx.Bucket(bucketClock)
	if top == nil {
		return nil // an older file's: Open makes it, stampOlderArrivals fills it
	}
	if err := checkArrivalTimes(tx); err == nil || !errors.Is(err, ErrCorrupt) {
		return err
	}
	var count uint64
	if v := tx.Bucket(bucketMeta).Get(metaCount); len(v) == 8 {
		count = binary.BigEndian.Uint64(v)
	}
	var keep []kv
	var prev uint64
	if b, err := localBucket(tx, bucketClock, clockArrived); err == nil {
		b.ForEach(func(k, v []byte) error {
			if len(k) != 8 || len(v) != 8 || binary.BigEndian.Uint64(k) > count || binary.BigEndian.Uint64(v) < prev {
				return nil
			}
			prev = binary.BigEndian.Uint64(v)
			keep = append(keep, kv{bytes.Clone(k), bytes.Clone(v)})
			return nil
		})
	}
	if err := top.DeleteBucket(clockArrived); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
		return fmt.Errorf("drop %s/%s: %w", bucketClock, clockArrived, err)
	}
	b, err := top.CreateBucket(clockArrived)
	if err != nil {
		return fmt.Errorf("create %s/%s: %w", bucketClock, clockArrived, err)
	}
	for _, r := range keep {
		if err := b.Put(r.k, r.v); err != nil {
			return err
		}
	}
	if len(keep) > 0 && binary.BigEndian.Uint64(keep[len(keep)-1].k) == count || count == 0 {
		return nil
	}
	if prev == 0 {
		prev = uint64(time.Now().UnixMilli())
	}
	return b.Put(u64(count), u64(prev))
}
