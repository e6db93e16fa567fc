package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

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
	watchSignals    = []byte("signals") // signal key -> its refs (watchedValue)
	watchAlerts     = []byte("alerts")  // seq -> alert record (JSON, alertRecord); seq from the bucket's sequence
	watchAlerted    = []byte("alerted") // entry id || watched signal key -> seq of the alert it raised
	// watchVideos holds the value of each watched vpdq signal, whose key
	// is a digest: matching needs its frames.
	watchVideos = []byte("videos") // vpdq signal key -> its wire value (SPEC 7.6)
)

// A watched key's value is its refs (watchedValue): the version byte
// watchedV1, then each ref as a uvarint length and its bytes, in the
// order they were added. A key watched with no ref has the value
// {watchedV1} alone, as every build before refs wrote it (a nil or empty
// value would read back as nil, as if absent).
const watchedV1 = 1

// MaxWatchRefBytes bounds a ref, in bytes of UTF-8; MaxWatchRefs bounds
// the refs of one watched signal.
const (
	MaxWatchRefBytes = 512
	MaxWatchRefs     = 32
)

// CheckWatchRef checks a ref given with a watched signal: the caller's
// own reference to the content it hosts (an upload id, a URL). It is 1 to
// MaxWatchRefBytes bytes of UTF-8, every character printable (a space
// included, but not at either end; no tab, no line break, no control
// character). Errors wrap ErrWatchRef and quote the ref.
func CheckWatchRef(ref string) error {
	switch {
	case ref == "":
		return fmt.Errorf("%w: empty", ErrWatchRef)
	case len(ref) > MaxWatchRefBytes:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrWatchRef, len(ref), MaxWatchRefBytes)
	case !utf8.ValidString(ref):
		return fmt.Errorf("%w: %q is not UTF-8", ErrWatchRef, ref)
	case strings.TrimSpace(ref) != ref:
		return fmt.Errorf("%w: %q begins or ends with white space", ErrWatchRef, ref)
	}
	for _, r := range ref {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%w: %q holds the unprintable character %U", ErrWatchRef, ref, r)
		}
	}
	return nil
}

// watchedValue encodes refs as the value of a watched key.
func watchedValue(refs []string) []byte {
	v := []byte{watchedV1}
	for _, r := range refs {
		v = binary.AppendUvarint(v, uint64(len(r)))
		v = append(v, r...)
	}
	return v
}

// parseWatched decodes the value of a watched key: refs that each pass
// CheckWatchRef, none twice, at most MaxWatchRefs. Errors do not wrap
// ErrCorrupt: the caller says where.
func parseWatched(v []byte) ([]string, error) {
	if len(v) == 0 || v[0] != watchedV1 {
		return nil, fmt.Errorf("value %x: want version byte %d", v, watchedV1)
	}
	var refs []string
	for rest := v[1:]; len(rest) > 0; {
		n, size := binary.Uvarint(rest)
		if size <= 0 || n > uint64(len(rest)-size) {
			return nil, fmt.Errorf("ref %d: bad length", len(refs)+1)
		}
		ref := string(rest[size : size+int(n)])
		rest = rest[size+int(n):]
		if err := CheckWatchRef(ref); err != nil {
			return nil, fmt.Errorf("ref %d: %w", len(refs)+1, err)
		}
		if slices.Contains(refs, ref) {
			return nil, fmt.Errorf("ref %d: %q twice", len(refs)+1, ref)
		}
		if refs = append(refs, ref); len(refs) > MaxWatchRefs {
			return nil, fmt.Errorf("more than %d refs", MaxWatchRefs)
		}
	}
	return refs, nil
}

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
	// Refs are the refs Watched had on the watchlist when the alert was
	// raised (Raise sets them): which hosted items to take down.
	Refs []string
}

// alertRecord is an alert as the alerts bucket keeps it. Signals are in
// user form (protocol.FormatSignal).
type alertRecord struct {
	RaisedMs int64  `json:"raised_ms"`
	Watched  string `json:"watched"`
	Signal   string `json:"signal"`
	Distance int    `json:"distance,omitempty"`
	Entry    string `json:"entry"` // entry id, hex
	// Refs: absent in alerts of builds before refs, and when Watched had
	// none.
	Refs []string `json:"refs,omitempty"`
}

// WatchItem is a signal key (protocol.SignalKey) to watch or unwatch,
// with the caller's ref to the content it hosts ("" for none).
type WatchItem struct {
	Key []byte
	Ref string
	// Value is, for a vpdq key, the signal's wire value, kept while the
	// key is watched (WatchedVideos); nil for other keys.
	Value []byte
}

// RefLimitError is WatchRefs' error for a ref that would be one more
// than MaxWatchRefs on its key. It wraps ErrWatchRef.
type RefLimitError struct {
	Index int    // of the item in the call, from 0
	Ref   string // the ref refused
}

func (e *RefLimitError) Error() string {
	return fmt.Sprintf("store: watch: %v: item %d: the signal has %d refs already, the most it may have: %q is one too many",
		ErrWatchRef, e.Index, MaxWatchRefs, e.Ref)
}

func (e *RefLimitError) Unwrap() error { return ErrWatchRef }

// Watched is a signal key on the watchlist and its refs.
type Watched struct {
	Key   []byte
	Refs  []string // in the order added
	Value []byte   // a vpdq key's value (WatchItem.Value)
}

// WatchOutcome is what WatchRefs did.
type WatchOutcome struct {
	Added int // keys new on the watchlist
	Known int // items whose key was on it already (a key given twice counts once as added)
	Refs  int // refs attached that the key did not have
}

// UnwatchOutcome is what UnwatchRefs did.
type UnwatchOutcome struct {
	// Removed are the keys taken off the watchlist, in the order given.
	Removed [][]byte
	Refs    int // refs detached from a key that stays watched
	Unknown int // items that matched nothing: key not watched, or ref not on it
}

// Watch is WatchRefs of keys without refs.
func (s *Store) Watch(keys [][]byte, added func(key []byte)) error {
	items := make([]WatchItem, len(keys))
	for i, k := range keys {
		items[i] = WatchItem{Key: k}
	}
	_, err := s.WatchRefs(items, added)
	return err
}

// WatchRefs puts signal keys on the watchlist, each with its ref if it
// has one, in one write transaction, and calls added (if not nil) with
// each key that was not on it yet, in the order given (a key given twice
// is added once; its refs are kept together, each once). A key watched
// already gets the item's ref if it lacks it.
//
// added runs inside the transaction, under the store's write lock, and
// must not call the Store: a node puts the key into its in-memory index
// of the list there, so that no Apply's after hook runs between the
// commit and that (and misses the key in memory while no later check of
// what is stored sees the addition it applied). If WatchRefs fails,
// nothing was written, whatever added was told. A key that is not a
// signal key is refused (wrapping protocol.ErrSignal), and a ref that
// fails CheckWatchRef or would give a key more than MaxWatchRefs refs
// (wrapping ErrWatchRef), before anything is written.
func (s *Store) WatchRefs(items []WatchItem, added func(key []byte)) (WatchOutcome, error) {
	for _, it := range items {
		if err := checkSignalKey(it.Key); err != nil {
			return WatchOutcome{}, fmt.Errorf("store: watch: %w", err)
		}
		if it.Ref != "" {
			if err := CheckWatchRef(it.Ref); err != nil {
				return WatchOutcome{}, fmt.Errorf("store: watch: %w", err)
			}
		}
	}
	var out WatchOutcome
	err := s.update(func(tx *bolt.Tx) error {
		out = WatchOutcome{}
		b, err := localBucket(tx, bucketWatchlist, watchSignals)
		if err != nil {
			return err
		}
		vb, err := localBucket(tx, bucketWatchlist, watchVideos)
		if err != nil {
			return err
		}
		for i, it := range items {
			v := b.Get(it.Key)
			var refs []string
			if it.Value != nil && vb.Get(it.Key) == nil {
				if err := vb.Put(it.Key, it.Value); err != nil {
					return err
				}
			}
			if v == nil {
				out.Added++
			} else {
				out.Known++
				if refs, err = parseWatched(v); err != nil {
					return fmt.Errorf("%w: watchlist/signals/%x: %v", ErrCorrupt, it.Key, err)
				}
				if it.Ref == "" || slices.Contains(refs, it.Ref) {
					continue
				}
			}
			if it.Ref != "" {
				if len(refs) == MaxWatchRefs {
					return &RefLimitError{Index: i, Ref: it.Ref}
				}
				refs = append(refs, it.Ref)
				out.Refs++
			}
			if err := b.Put(it.Key, watchedValue(refs)); err != nil {
				return err
			}
			if v == nil && added != nil {
				added(it.Key)
			}
		}
		return nil
	})
	if errors.Is(err, ErrWatchRef) {
		return WatchOutcome{}, err
	}
	if err != nil {
		return WatchOutcome{}, wrapDB("watch", err)
	}
	return out, nil
}

// Unwatch is UnwatchRefs of keys without refs, and returns the keys
// taken off.
func (s *Store) Unwatch(keys [][]byte) (removed [][]byte, err error) {
	items := make([]WatchItem, len(keys))
	for i, k := range keys {
		items[i] = WatchItem{Key: k}
	}
	out, err := s.UnwatchRefs(items)
	return out.Removed, err
}

// UnwatchRefs takes items off the watchlist, in one write transaction:
// an item without a ref takes its key off with all its refs; an item
// with a ref detaches that ref, and takes the key off if it was its last
// (the key was watched for the hosted items its refs name, and none is
// left). Alerts raised already stay, and so do their alerted marks: a
// signal watched again does not alert again for an addition that
// alerted before.
func (s *Store) UnwatchRefs(items []WatchItem) (UnwatchOutcome, error) {
	var out UnwatchOutcome
	err := s.update(func(tx *bolt.Tx) error {
		out = UnwatchOutcome{}
		b, err := localBucket(tx, bucketWatchlist, watchSignals)
		if err != nil {
			return err
		}
		vb, err := localBucket(tx, bucketWatchlist, watchVideos)
		if err != nil {
			return err
		}
		for _, it := range items {
			v := b.Get(it.Key)
			if v == nil {
				out.Unknown++
				continue
			}
			if it.Ref != "" {
				refs, err := parseWatched(v)
				if err != nil {
					return fmt.Errorf("%w: watchlist/signals/%x: %v", ErrCorrupt, it.Key, err)
				}
				i := slices.Index(refs, it.Ref)
				if i < 0 {
					out.Unknown++
					continue
				}
				if refs = slices.Delete(refs, i, i+1); len(refs) > 0 {
					out.Refs++
					if err := b.Put(it.Key, watchedValue(refs)); err != nil {
						return err
					}
					continue
				}
			}
			if err := b.Delete(it.Key); err != nil {
				return err
			}
			if err := vb.Delete(it.Key); err != nil {
				return err
			}
			out.Removed = append(out.Removed, it.Key)
		}
		return nil
	})
	if err != nil {
		return UnwatchOutcome{}, wrapDB("unwatch", err)
	}
	return out, nil
}

// Watchlist returns up to limit watched keys after the key after (nil:
// from the first), in key order, with their refs, and whether more
// follow. The keys returned are the caller's.
func (s *Store) Watchlist(after []byte, limit int) (page []Watched, more bool, err error) {
	if limit <= 0 {
		return nil, false, fmt.Errorf("store: watchlist: limit %d, want at least 1", limit)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		b, err := localBucket(tx, bucketWatchlist, watchSignals)
		if err != nil {
			return err
		}
		vb, err := localBucket(tx, bucketWatchlist, watchVideos)
		if err != nil {
			return err
		}
		c := b.Cursor()
		k, v := c.First()
		if after != nil {
			if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
				k, v = c.Next()
			}
		}
		for ; k != nil; k, v = c.Next() {
			if len(page) == limit {
				more = true
				break
			}
			refs, err := parseWatched(v)
			if err != nil {
				return fmt.Errorf("%w: watchlist/signals/%x: %v", ErrCorrupt, k, err)
			}
			page = append(page, Watched{Key: bytes.Clone(k), Refs: refs, Value: bytes.Clone(vb.Get(k))})
		}
		return nil
	})
	if err != nil {
		return nil, false, wrapDB("watchlist", err)
	}
	return page, more, nil
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

// WatchedVideos calls fn with the key and value of every watched vpdq
// signal (WatchItem.Value), in key order, in one read transaction,
// stopping when fn returns an error, which it returns as is. key and
// value are valid only during the call. fn must not call the store.
func (s *Store) WatchedVideos(fn func(key, value []byte) error) error {
	return s.viewCalling("watched videos", func(b *buckets, call func(error) error) error {
		vb, err := localBucket(b.tx, bucketWatchlist, watchVideos)
		if err != nil {
			return err
		}
		c := vb.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if err := call(fn(k, v)); err != nil {
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
	if len(r.Refs) > 0 {
		// The same rules as a watched key's refs.
		if _, err := parseWatched(watchedValue(r.Refs)); err != nil {
			return Alert{}, fmt.Errorf("%w: watchlist/alerts/%d: %v", ErrCorrupt, seq, err)
		}
	}
	return Alert{Seq: seq, RaisedMs: r.RaisedMs, Watched: watched, Signal: signal, Distance: r.Distance, EntryID: id, Refs: r.Refs}, nil
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
	watchedKey := protocol.SignalKey(a.Watched)
	once := cat(a.EntryID[:], watchedKey)
	if w.alerted.Get(once) != nil {
		return Alert{}, false, nil
	}
	// The refs as they are now: the alert says which hosted items to take
	// down, even once they are unwatched. A signal unwatched since has
	// none.
	a.Refs = nil
	if v := w.signals.Get(watchedKey); v != nil {
		refs, err := parseWatched(v)
		if err != nil {
			return Alert{}, false, fmt.Errorf("%w: watchlist/signals/%x: %v", ErrCorrupt, watchedKey, err)
		}
		a.Refs = refs
	}
	seq, err := w.alerts.NextSequence()
	if err != nil {
		return Alert{}, false, err
	}
	rec, err := json.Marshal(alertRecord{RaisedMs: a.RaisedMs, Watched: protocol.FormatSignal(a.Watched),
		Signal: protocol.FormatSignal(a.Signal), Distance: a.Distance, Entry: a.EntryID.String(), Refs: a.Refs})
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
// signal key whose value holds its refs (parseWatched); the alerts are numbered 1 to the
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
		if _, err := parseWatched(v); err != nil {
			return fmt.Errorf("%w: watchlist/signals/%x: %v", ErrCorrupt, k, err)
		}
		return nil
	}); err != nil {
		return err
	}
	videos, err := localBucket(tx, bucketWatchlist, watchVideos)
	if err != nil {
		return err
	}
	if err := videos.ForEach(func(k, v []byte) error {
		sig := &pb.Signal{Value: &pb.Signal_Vpdq{Vpdq: v}}
		if err := protocol.CheckSignal(sig); err != nil {
			return fmt.Errorf("%w: watchlist/videos/%x: %v", ErrCorrupt, k, err)
		}
		if !bytes.Equal(protocol.SignalKey(sig), k) || signals.Get(k) == nil {
			return fmt.Errorf("%w: watchlist/videos/%x: not the value of a watched vpdq signal with this key", ErrCorrupt, k)
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
			if old := b.Get(r.new); old != nil && bytes.Equal(name, watchSignals) {
				// Two spellings of one URL watched: one signal now, with
				// the refs of both (files this old have none, but a
				// ref must never be lost).
				if r.v, err = mergeWatched(old, r.v); err != nil {
					return fmt.Errorf("%w: watchlist/signals/%x: %v", ErrCorrupt, r.new, err)
				}
			}
			if err := b.Put(r.new, r.v); err != nil {
				return err
			}
		}
	}
	return nil
}

// mergeWatched is the value of a watched key that has the refs of the
// values a and b: a's, then b's that a lacks, up to MaxWatchRefs.
func mergeWatched(a, b []byte) ([]byte, error) {
	ra, err := parseWatched(a)
	if err != nil {
		return nil, err
	}
	rb, err := parseWatched(b)
	if err != nil {
		return nil, err
	}
	for _, r := range rb {
		if len(ra) < MaxWatchRefs && !slices.Contains(ra, r) {
			ra = append(ra, r)
		}
	}
	return watchedValue(ra), nil
}
