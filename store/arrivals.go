package store

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/staydown/staydown/protocol"
)

// Arrival is one entry as it entered this store's logs: the n-th entry
// logged here. Arrival order is local: two nodes receive the logs in
// different orders. It is what a live feed resumes from (the node's
// /v1/events).
type Arrival struct {
	N     uint64
	Entry *protocol.Entry
	// AddedMs is when this store logged it (Unix ms; see arrivaltimes.go):
	// it never decreases along N.
	AddedMs int64
}

func parseArrival(k, v []byte) (n uint64, id protocol.ID, err error) {
	if len(k) != 8 || len(v) != idSize {
		return 0, id, fmt.Errorf("%w: arrivals/%x: key %d bytes, value %d, want 8 and %d", ErrCorrupt, k, len(k), len(v), idSize)
	}
	copy(id[:], v)
	return binary.BigEndian.Uint64(k), id, nil
}

// LastArrival is the number of the newest arrival, 0 for an empty store.
// It equals Count.
func (s *Store) LastArrival() (uint64, error) { return s.Count() }

// Arrivals calls fn with up to limit arrivals numbered after after, in
// order (limit <= 0: no limit). Entries are copies fn may keep. fn runs in
// a read transaction and must not call the Store; an error it returns is
// returned as is.
func (s *Store) Arrivals(after uint64, limit int, fn func(Arrival) error) error {
	if after == math.MaxUint64 {
		return nil // nothing comes after the last position there can be
	}
	return s.viewCalling("arrivals", func(b *buckets, call func(error) error) error {
		c := b.arrivals.Cursor()
		clock, err := newArrivalClock(b.tx)
		if err != nil {
			return err
		}
		n := 0
		for k, v := c.Seek(u64(after + 1)); k != nil && (limit <= 0 || n < limit); k, v = c.Next() {
			num, id, err := parseArrival(k, v)
			if err != nil {
				return err
			}
			e, err := b.get(id)
			if err != nil {
				return fmt.Errorf("%w: arrivals/%d names %s: %v", ErrCorrupt, num, id, err)
			}
			at, err := clock.at(num)
			if err != nil {
				return err
			}
			if err := call(fn(Arrival{N: num, Entry: e, AddedMs: at})); err != nil {
				return err
			}
			n++
		}
		return nil
	})
}

// checkArrivals: arrivals are numbered 1..count without a hole, and each
// names a logged entry. (That no entry arrived twice is not checked: it
// would hold every id in memory.)
func checkArrivals(b *buckets, count uint64) error {
	var want uint64 = 1
	ids, err := b.ids()
	if err != nil {
		return err
	}
	err = b.arrivals.ForEach(func(k, v []byte) error {
		n, id, err := parseArrival(k, v)
		if err != nil {
			return err
		}
		if n != want {
			return fmt.Errorf("%w: arrivals: number %d where %d was due", ErrCorrupt, n, want)
		}
		want++
		if ids.Get(id[:]) == nil {
			return fmt.Errorf("%w: arrivals/%d: %s is not a logged entry", ErrCorrupt, n, id)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if want-1 != count {
		return fmt.Errorf("%w: arrivals holds %d rows, the logs hold %d entries", ErrCorrupt, want-1, count)
	}
	return nil
}
