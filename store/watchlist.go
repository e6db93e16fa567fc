package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// The platform's legacy-content watchlist (node/matching/watchlist.go): the
// signals of content it hosts, and the alerts raised when an addition
// carrying one of them was stored while active. It is this node's
// alone: never gossiped, never exported, not derived from the logs. A
// source bucket, which Rebuild keeps.
var (
	bucketWatchlist = []byte("watchlist")
	watchSignals    = []byte("signals") // signal key -> watchedValue
	watchAlerts     = []byte("alerts")  // seq -> alert record (JSON, alertRecord); seq from the bucket's sequence
	watchAlerted    = []byte("alerted") // entry id || watched signal key -> seq of the alert it raised
)

// watchedValue is the value of a watched key (a nil or empty value would
// read back as nil, as if absent).
var watchedValue = []byte{1}

// Alert is a watchlist alert: an addition carrying Signal, stored while
// active, matched the watched signal Watched (exactly, or for PDQ within
// Distance).
type Alert struct {
	Seq      uint64 // 1 for the first alert, then one more for each
	RaisedMs int64
	Watched  *pb.Signal
	Signal   *pb.Signal
	Distance int // PDQ only: Hamming distance from Watched
	EntryID  protocol.ID
}

// alertRecord is an alert as the alerts bucket keeps it. Signals are in
// user form (protocol.FormatSignal).
type alertRecord struct {
	RaisedMs int64  `json:"raised_ms"`
	Watched  string `json:"watched"`
	Signal   string `json:"signal"`
	Distance int    `json:"distance,omitempty"`
	Entry    string `json:"entry"` // entry id, hex
}

// Watch puts signal keys (protocol.SignalKey) on the watchlist, in one
// write transaction, and calls added (if not nil) with each key that was
// not on it yet, in the order given (a key given twice is added once).
// added runs inside the transaction, under the store's write lock, and
// must not call the Store: a node puts the key into its in-memory index
// of the list there, so that no Apply's after hook runs between the
// commit and that (and misses the key in memory while no later check of
// what is stored sees the addition it applied). If Watch fails, nothing
// was written, whatever added was told. A key that is not a signal key
// is refused (wrapping protocol.ErrSignal) before anything is written.
func (s *Store) Watch(keys [][]byte, added func(key []byte)) error {
	for _, k := range keys {
		if err := checkSignalKey(k); err != nil {
			return fmt.Errorf("store: watch: %w", err)
		}
	}
	err := s.update(func(tx *bolt.Tx) error {
		b, err := localBucket(tx, bucketWatchlist, watchSignals)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if b.Get(k) != nil {
				continue
			}
			if err := b.Put(k, watchedValue); err != nil {
				return err
			}
			if added != nil {
				added(k)
			}
		}
		return nil
	})
	return wrapDB("watch", err)
}

// Unwatch takes signal keys off the watchlist, in one write transaction,
// and returns those that were on it, in the order given. Alerts raised
// already stay, and so do their alerted marks: a signal watched again
// does not alert again for an addition that alerted before.
func (s *Store) Unwatch(keys [][]byte) (removed [][]byte, err error) {
	err = s.update(func(tx *bolt.Tx) error {
		b, err := localBucket(tx, bucketWatchlist, watchSignals)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if b.Get(k) == nil {
				continue
			}
			if err := b.Delete(k); err != nil {
				return err
			}
			removed = append(removed, k)
		}
		return nil
	})
	if err != nil {
		return nil, wrapDB("unwatch", err)
	}
	return removed, nil
}

// WatchedKeys calls fn with every watched signal key, in key order, in
// one read transaction, stopping when fn returns an error, which it
// returns as is. key is valid only during the call: fn must copy what it
// keeps. fn must not call the store.
func (s *Store) WatchedKeys(fn func(key []byte) error) error {
	return s.viewCalling("watched keys", func(b *buckets, call func(error) error) error {
		wb, err := localBucket(b.tx, bucketWatchlist, watchSignals)
		if err != nil {
			return err
		}
		c := wb.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if err := call(fn(k)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Alerts returns the alerts after seq since, in seq order.
func (s *Store) Alerts(since uint64) ([]Alert, error) {
	var out []Alert
	err := s.db.View(func(tx *bolt.Tx) error {
		b, err := localBucket(tx, bucketWatchlist, watchAlerts)
		if err != nil {
			return err
		}
		c := b.Cursor()
		for k, v := c.Seek(u64(since + 1)); k != nil; k, v = c.Next() {
			if len(k) != 8 {
				return fmt.Errorf("%w: watchlist/alerts/%x: key is %d bytes, want 8", ErrCorrupt, k, len(k))
			}
			a, err := parseAlert(binary.BigEndian.Uint64(k), v)
			if err != nil {
				return err
			}
			out = append(out, a)
		}
		return nil
	})
	if err != nil {
		return nil, wrapDB("alerts", err)
	}
	return out, nil
}

func parseAlert(seq uint64, v []byte) (Alert, error) {
	var r alertRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return Alert{}, fmt.Errorf("%w: watchlist/alerts/%d: %v", ErrCorrupt, seq, err)
	}
	watched, err1 := parseUserSignal(r.Watched)
	signal, err2 := parseUserSignal(r.Signal)
	id, err3 := protocol.ParseID(r.Entry)
	if err := errors.Join(err1, err2, err3); err != nil {
		return Alert{}, fmt.Errorf("%w: watchlist/alerts/%d: %v", ErrCorrupt, seq, err)
	}
	if r.Distance < 0 {
		return Alert{}, fmt.Errorf("%w: watchlist/alerts/%d: distance %d", ErrCorrupt, seq, r.Distance)
	}
	return Alert{Seq: seq, RaisedMs: r.RaisedMs, Watched: watched, Signal: signal, Distance: r.Distance, EntryID: id}, nil
}

// parseUserSignal parses TYPE:VALUE (protocol.FormatSignal's form).
func parseUserSignal(s string) (*pb.Signal, error) {
	typ, value, ok := strings.Cut(s, ":")
	if !ok {
		return nil, fmt.Errorf("%q is not TYPE:VALUE", s)
	}
	return protocol.ParseSignal(typ, value)
}

// RaiseAlerts runs fn in a write transaction of its own: for alerts
// raised off the apply path (an entry this node published, signals just
// watched checked against what is stored). On the apply path, pass the
// check to Apply as its after hook instead, so that the alerts commit
// with the batch. If fn returns an error, nothing it wrote is kept and
// RaiseAlerts returns it as is.
func (s *Store) RaiseAlerts(fn func(w *Writes) error) error {
	var fnErr error
	err := s.update(func(tx *bolt.Tx) error {
		b, err := openBuckets(tx)
		if err != nil {
			return err
		}
		w, err := newWrites(b)
		if err != nil {
			return err
		}
		fnErr = fn(w)
		return fnErr
	})
	if fnErr != nil {
		return fnErr
	}
	return wrapDB("raise alerts", err)
}

// Writes is the watchlist's handle on a write transaction (Apply's after
// hook, RaiseAlerts): it reads what the transaction has stored so far
// and raises alerts in it. It is valid only during the call it is
// handed to, and is not safe for concurrent use.
type Writes struct {
	b                        *buckets
	signals, alerts, alerted *bolt.Bucket
}

func newWrites(b *buckets) (*Writes, error) {
	w := &Writes{b: b}
	var err error
	if w.signals, err = localBucket(b.tx, bucketWatchlist, watchSignals); err != nil {
		return nil, err
	}
	if w.alerts, err = localBucket(b.tx, bucketWatchlist, watchAlerts); err != nil {
		return nil, err
	}
	if w.alerted, err = localBucket(b.tx, bucketWatchlist, watchAlerted); err != nil {
		return nil, err
	}
	return w, nil
}

// afterApply calls Apply's after hooks, each once, at the end of its
// write transaction (the batch's rows all put, so that they read back).
func afterApply(b *buckets, results []Result, after []func(w *Writes, results []Result) error) error {
	if len(after) == 0 {
		return nil
	}
	w, err := newWrites(b)
	if err != nil {
		return err
	}
	for _, fn := range after {
		if err := fn(w, results); err != nil {
			return err
		}
	}
	return nil
}

// Watched reports whether the signal key is on the watchlist.
func (w *Writes) Watched(key []byte) bool { return w.signals.Get(key) != nil }

// Match is Store.Match as this transaction has it: the batch's own
// additions included, with their status now.
func (w *Writes) Match(signalKey []byte) ([]Attestation, error) { return w.b.match(signalKey) }

// Raise raises an alert for a: it gets the next seq and is kept, unless
// a.EntryID alerted for a.Watched before (even if the signal was
// unwatched and watched again since), in which case nothing is written
// and ok is false. a.Seq is ignored; the alert returned has it set.
// Watched and Signal must pass protocol.CheckSignal.
func (w *Writes) Raise(a Alert) (raised Alert, ok bool, err error) {
	if err := errors.Join(protocol.CheckSignal(a.Watched), protocol.CheckSignal(a.Signal)); err != nil {
		return Alert{}, false, fmt.Errorf("store: raise alert: %w", err)
	}
	once := cat(a.EntryID[:], protocol.SignalKey(a.Watched))
	if w.alerted.Get(once) != nil {
		return Alert{}, false, nil
	}
	seq, err := w.alerts.NextSequence()
	if err != nil {
		return Alert{}, false, err
	}
	rec, err := json.Marshal(alertRecord{RaisedMs: a.RaisedMs, Watched: protocol.FormatSignal(a.Watched),
		Signal: protocol.FormatSignal(a.Signal), Distance: a.Distance, Entry: a.EntryID.String()})
	if err != nil {
		return Alert{}, false, err
	}
	// Alerts only ever go after the last one.
	w.alerts.FillPercent = 1
	if err := w.alerts.Put(u64(seq), rec); err != nil {
		return Alert{}, false, err
	}
	if err := w.alerted.Put(once, u64(seq)); err != nil {
		return Alert{}, false, err
	}
	a.Seq = seq
	return a, true, nil
}

// checkSignalKey checks the shape of a signal key: a known type tag, then
// the digest of its type's length, or (url, account) something.
func checkSignalKey(k []byte) error {
	for typ, tag := range signalTags {
		if len(k) == 0 || k[0] != tag {
			continue
		}
		if n, fixed := fixedKeyLen[typ]; fixed && len(k) != n || !fixed && len(k) < 2 {
			return fmt.Errorf("%w: %s key %x: %d bytes", protocol.ErrSignal, typ, k, len(k))
		}
		return nil
	}
	return fmt.Errorf("%w: %x is not a signal key (no known type tag)", protocol.ErrSignal, k)
}

// checkWatchlist checks the watchlist bucket: every watched key is a
// signal key marked watchedValue; the alerts are numbered 1 to the
// bucket's sequence without a gap and each decodes; every alert has
// exactly one alerted row, keyed by its entry and watched signal, and
// every alerted row names an alert.
func checkWatchlist(tx *bolt.Tx) error {
	signals, err := localBucket(tx, bucketWatchlist, watchSignals)
	if err != nil {
		return err
	}
	if err := signals.ForEach(func(k, v []byte) error {
		if err := checkSignalKey(k); err != nil {
			return fmt.Errorf("%w: watchlist/signals/%x: %v", ErrCorrupt, k, err)
		}
		if !bytes.Equal(v, watchedValue) {
			return fmt.Errorf("%w: watchlist/signals/%x: value %x, want %x", ErrCorrupt, k, v, watchedValue)
		}
		return nil
	}); err != nil {
		return err
	}
	alerts, err := localBucket(tx, bucketWatchlist, watchAlerts)
	if err != nil {
		return err
	}
	alerted, err := localBucket(tx, bucketWatchlist, watchAlerted)
	if err != nil {
		return err
	}
	if err := checkNumbered(alerts, "watchlist/alerts", func(seq uint64, v []byte) error {
		a, err := parseAlert(seq, v)
		if err != nil {
			return err
		}
		once := cat(a.EntryID[:], protocol.SignalKey(a.Watched))
		if got := alerted.Get(once); got == nil {
			return fmt.Errorf("%w: watchlist/alerts/%d has no alerted row %x", ErrCorrupt, seq, once)
		} else if !bytes.Equal(got, u64(seq)) {
			return fmt.Errorf("%w: watchlist/alerted/%x is %x, want %d (the seq of the alert it marks)", ErrCorrupt, once, got, seq)
		}
		return nil
	}); err != nil {
		return err
	}
	// Each alert has its alerted row (above); each alerted row must name
	// the alert that has it.
	return alerted.ForEach(func(k, v []byte) error {
		if len(k) <= idSize || len(v) != 8 {
			return fmt.Errorf("%w: watchlist/alerted/%x: key %d bytes, value %d bytes: want entry id || signal key, and a seq", ErrCorrupt, k, len(k), len(v))
		}
		seq := binary.BigEndian.Uint64(v)
		rec := alerts.Get(v)
		if rec == nil {
			return fmt.Errorf("%w: watchlist/alerted/%x names alert %d, which does not exist", ErrCorrupt, k, seq)
		}
		a, err := parseAlert(seq, rec)
		if err != nil {
			return err
		}
		if once := cat(a.EntryID[:], protocol.SignalKey(a.Watched)); !bytes.Equal(once, k) {
			return fmt.Errorf("%w: watchlist/alerted/%x names alert %d, which is of %x", ErrCorrupt, k, seq, once)
		}
		return nil
	})
}

// watchKeyV2 returns the key k of the watchlist bucket name (signals or
// alerted) with its url signal key in the v2 normal form (SPEC 7.4; schema
// urlKeysV2), and any other key as it is. Keys written before held the URL
// as the entry carried it.
func watchKeyV2(name, k []byte) []byte {
	prefix := 0
	switch {
	case bytes.Equal(name, watchSignals):
	case bytes.Equal(name, watchAlerted):
		prefix = idSize
	default:
		return k
	}
	urlTag := protocol.SignalKey(&pb.Signal{Value: &pb.Signal_Url{Url: "http://x/"}})[0]
	if len(k) <= prefix+1 || k[prefix] != urlTag {
		return k
	}
	return cat(k[:prefix], protocol.SignalKey(&pb.Signal{Value: &pb.Signal_Url{Url: string(k[prefix+1:])}}))
}

// rekeyWatchlistURLs re-derives the url keys of the watchlist (watched
// signals and the alerted set) after the url key changed to the v2 normal
// form (schema urlKeysV2): a URL watched before the upgrade must still
// meet the additions that carry it in either form. Run inside the
// upgrade's (or the legacy import's) transaction.
func rekeyWatchlistURLs(tx *bolt.Tx) error {
	for _, name := range [][]byte{watchSignals, watchAlerted} {
		b, err := localBucket(tx, bucketWatchlist, name)
		if err != nil {
			return err
		}
		type row struct{ old, new, v []byte }
		var rows []row
		err = b.ForEach(func(k, v []byte) error {
			if nk := watchKeyV2(name, k); !bytes.Equal(nk, k) {
				rows = append(rows, row{bytes.Clone(k), nk, bytes.Clone(v)})
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("watchlist/%s: %w", name, err)
		}
		for _, r := range rows {
			if err := b.Delete(r.old); err != nil {
				return err
			}
			if err := b.Put(r.new, r.v); err != nil {
				return err
			}
		}
	}
	return nil
}
