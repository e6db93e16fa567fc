package node

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/match"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// WatchlistFile is the watchlist's file in the node's directory. It is
// this node's alone: nothing in it is gossiped or exported.
const WatchlistFile = "watchlist.db"

// watchlist is the platform's private list of the signals of content it
// already hosts (legacy content). The node checks every addition it stores
// against it and raises an alert when one matches: exactly, or for PDQ
// within the policy's threshold. A platform can then review and remove its
// copy within the hour, as it would block a new upload.
//
// The signals live in WatchlistFile (bbolt): bucket "signals" maps each
// signal key to the byte 1; "alerts" maps a seq (big-endian) to an alert
// record (JSON); "alerted" maps entry id || watched key to the seq of the
// alert it raised, so that an attestation alerts once per watched signal.
// The file is opened for each read or write and closed again (dbMu
// serialises them): writes are rare (bulk loads, alerts), and a node that
// holds no handle has nothing to close on shutdown. Checks run in memory:
// a fingerprint set of the exact keys and a near-match index of the PDQ
// hashes, loaded at start-up.
type watchlist struct {
	path    string
	log     *slog.Logger
	alerted prometheus.Counter

	exact *keySet         // exact watched keys (fingerprints: a hit is confirmed in the file)
	pdq   *match.PDQIndex // watched PDQ hashes, ref 0

	dbMu sync.Mutex // serialises opening the file: bbolt locks it per open
}

// watchedValue is the value of a key in "signals" (a nil or empty value
// would read back as nil, as if absent).
var watchedValue = []byte{1}

var (
	bucketWatched = []byte("signals")
	bucketAlerts  = []byte("alerts")
	bucketAlerted = []byte("alerted")
)

// openWatchlist loads the watchlist at path (none yet: an empty one).
func openWatchlist(path string, reg prometheus.Registerer, log *slog.Logger) (*watchlist, error) {
	w := &watchlist{path: path, log: log, exact: newKeySet(), pdq: match.NewPDQIndex()}
	var hashes []match.Hash
	err := w.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWatched)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			if isPDQKey(k) {
				hashes = append(hashes, match.Hash(k[1:]))
			} else {
				w.exact.add(k)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	w.pdq.Build(hashes, make([]uint64, len(hashes)))
	w.alerted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "staydown_watchlist_alerts_total", Help: "Alerts raised: an active attestation matched a signal of the watchlist.",
	})
	reg.MustRegister(w.alerted, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "staydown_watchlist_signals", Help: "Signals on the legacy-content watchlist.",
	}, func() float64 { return float64(w.len()) }))
	if n := w.len(); n > 0 {
		log.Info("watchlist loaded", "signals", n, "pdq", len(hashes))
	}
	return w, nil
}

func isPDQKey(k []byte) bool { return len(k) == 1+protocol.PDQSize && k[0] == pdqTag }

func (w *watchlist) len() int { return w.exact.len() + w.pdq.Len() }

// view runs fn in a read transaction of the file, if there is one.
func (w *watchlist) view(fn func(tx *bolt.Tx) error) error {
	w.dbMu.Lock()
	defer w.dbMu.Unlock()
	if _, err := os.Stat(w.path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	db, err := bolt.Open(w.path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("watchlist %s: %w", w.path, err)
	}
	defer db.Close()
	if err := db.View(fn); err != nil {
		return fmt.Errorf("watchlist %s: %w", w.path, err)
	}
	return nil
}

// update runs fn in a write transaction of the file, creating it.
func (w *watchlist) update(fn func(tx *bolt.Tx) error) error {
	w.dbMu.Lock()
	defer w.dbMu.Unlock()
	db, err := bolt.Open(w.path, 0o600, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return fmt.Errorf("watchlist %s: %w", w.path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketWatched, bucketAlerts, bucketAlerted} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return fn(tx)
	}); err != nil {
		db.Close()
		return fmt.Errorf("watchlist %s: %w", w.path, err)
	}
	return db.Close()
}

// watchHit is an attestation that matches a watched signal.
type watchHit struct {
	watched  []byte // the watched signal's key
	signal   []byte // the attested signal's key
	distance int    // pdq only
	att      store.Attestation
}

// alertRecord is an alert as the file keeps it. Signals are in user form
// (protocol.FormatSignal); the attestation is read from the store when
// the alert is listed, with its status then.
type alertRecord struct {
	RaisedMs int64  `json:"raised_ms"`
	Watched  string `json:"watched"`
	Signal   string `json:"signal"`
	Distance int    `json:"distance,omitempty"`
	Entry    string `json:"entry"` // entry id, hex
}

// Watch implements api.Backend: it adds signals to the watchlist, then
// raises an alert for each active attestation already stored that matches
// one of the signals added.
func (n *Node) Watch(ctx context.Context, sigs []*pb.Signal) (api.WatchOutcome, error) {
	return n.matching.watch(sigs)
}

// Unwatch implements api.Backend: it removes signals from the watchlist.
func (n *Node) Unwatch(ctx context.Context, sigs []*pb.Signal) (api.UnwatchOutcome, error) {
	return n.matching.unwatch(sigs)
}

// Alerts implements api.Backend.
func (n *Node) Alerts(ctx context.Context, since uint64) ([]api.RaisedAlert, error) {
	return n.matching.alerts(since)
}

// checkedKeys checks a request's signals and returns their keys.
func checkedKeys(sigs []*pb.Signal) ([][]byte, error) {
	keys := make([][]byte, len(sigs))
	for i, s := range sigs {
		if err := protocol.CheckSignal(s); err != nil {
			return nil, fmt.Errorf("%w: signals[%d]: %v", api.ErrInvalid, i, err)
		}
		keys[i] = protocol.SignalKey(s)
	}
	return keys, nil
}

func (m *matching) watch(sigs []*pb.Signal) (api.WatchOutcome, error) {
	w := m.watchlist
	keys, err := checkedKeys(sigs)
	if err != nil {
		return api.WatchOutcome{}, err
	}
	var added [][]byte
	var out api.WatchOutcome
	err = w.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWatched)
		for _, k := range keys {
			if b.Get(k) != nil {
				out.Known++
				continue
			}
			if err := b.Put(k, watchedValue); err != nil {
				return err
			}
			added = append(added, k)
		}
		return nil
	})
	if err != nil {
		return api.WatchOutcome{}, err
	}
	for _, k := range added {
		if isPDQKey(k) {
			w.pdq.Add(match.Hash(k[1:]), 0)
		} else {
			w.exact.add(k)
		}
	}
	out.Added = len(added)
	m.log.Info("watchlist: signals added", "added", out.Added, "known", out.Known, "total", w.len())

	// Content hosted before the federation's attestations arrived: check
	// the new signals against what is stored.
	var hits []watchHit
	for _, k := range added {
		found, err := m.storedHits(k)
		if err != nil {
			return out, err
		}
		hits = append(hits, found...)
	}
	raised, err := m.raise(hits)
	if err != nil {
		return out, err
	}
	out.Alerts, out.Total = raised, w.len()
	return out, nil
}

// unwatch takes signals off the watchlist: the file first, then the
// in-memory indexes. A check running meanwhile confirms every candidate in
// the file, so it raises no alert for a signal removed from the file.
// Alerts raised already stay, and so do their "alerted" marks: a signal
// watched again does not alert again for an attestation that alerted
// before.
func (m *matching) unwatch(sigs []*pb.Signal) (api.UnwatchOutcome, error) {
	w := m.watchlist
	keys, err := checkedKeys(sigs)
	if err != nil {
		return api.UnwatchOutcome{}, err
	}
	var removed [][]byte
	var out api.UnwatchOutcome
	err = w.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWatched)
		for _, k := range keys {
			if b.Get(k) == nil {
				out.Unknown++
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
		return api.UnwatchOutcome{}, err
	}
	for _, k := range removed {
		if isPDQKey(k) {
			w.pdq.Remove(match.Hash(k[1:]), 0)
		} else {
			w.exact.remove(k)
		}
	}
	out.Removed, out.Total = len(removed), w.len()
	m.log.Info("watchlist: signals removed", "removed", out.Removed, "unknown", out.Unknown, "total", out.Total)
	return out, nil
}

// storedHits returns the active attestations already stored that match
// the watched key k.
func (m *matching) storedHits(k []byte) ([]watchHit, error) {
	var hits []watchHit
	addHits := func(signal []byte, distance int) error {
		atts, err := m.store.Match(signal)
		if err != nil {
			return err
		}
		for _, a := range atts {
			if a.Status == store.StatusActive {
				hits = append(hits, watchHit{watched: k, signal: signal, distance: distance, att: a})
			}
		}
		return nil
	}
	if !isPDQKey(k) {
		if !m.exact.has(k) {
			return nil, nil
		}
		return hits, addHits(k, 0)
	}
	for _, r := range m.pdq.Query(match.Hash(k[1:]), m.policy.PDQThreshold) {
		if err := addHits(append([]byte{pdqTag}, r.Hash[:]...), r.Distance); err != nil {
			return nil, err
		}
	}
	return hits, nil
}

// checkWatchlist checks a newly stored addition against the watchlist and
// raises an alert for each watched signal it matches while active. It
// runs on the writer's goroutine (apply loop or Publish), in memory but
// for a hit: an exact check costs a fingerprint lookup, a PDQ check a
// near-match query (BenchmarkWatchlistCheck).
func (m *matching) checkWatchlist(e *protocol.Entry) {
	w := m.watchlist
	a := e.Body.GetAddition()
	if a == nil || w.len() == 0 {
		return
	}
	type candidate struct {
		watched, signal []byte
		distance        int
	}
	var cands []candidate
	for _, s := range a.Signals {
		k := protocol.SignalKey(s)
		if !isPDQKey(k) {
			if w.exact.has(k) {
				cands = append(cands, candidate{k, k, 0})
			}
			continue
		}
		for _, r := range w.pdq.Query(match.Hash(k[1:]), m.policy.PDQThreshold) {
			cands = append(cands, candidate{append([]byte{pdqTag}, r.Hash[:]...), k, r.Distance})
		}
	}
	if len(cands) == 0 {
		return
	}
	// A fingerprint hit is confirmed in the file; the status of the
	// attestation (active unless, say, an allow entry came first) comes
	// from the store.
	var hits []watchHit
	err := w.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWatched)
		for _, c := range cands {
			if b == nil || b.Get(c.watched) == nil {
				continue
			}
			atts, err := m.store.Match(c.signal)
			if err != nil {
				return err
			}
			for _, att := range atts {
				if att.EntryID == e.ID && att.Status == store.StatusActive {
					hits = append(hits, watchHit{watched: c.watched, signal: c.signal, distance: c.distance, att: att})
				}
			}
		}
		return nil
	})
	if err == nil {
		_, err = m.raise(hits)
	}
	if err != nil {
		m.log.Error("watchlist: checking an addition failed; its alerts may be missing", "id", e.ID, "err", err)
	}
}

// raise records an alert for each hit not alerted before (same entry and
// watched signal), logs it and counts it, and returns the new alerts.
func (m *matching) raise(hits []watchHit) ([]api.RaisedAlert, error) {
	if len(hits) == 0 {
		return nil, nil
	}
	w := m.watchlist
	now := m.now().UnixMilli()
	var raised []api.RaisedAlert
	err := w.update(func(tx *bolt.Tx) error {
		alerts, alerted := tx.Bucket(bucketAlerts), tx.Bucket(bucketAlerted)
		for _, h := range hits {
			once := append(bytes.Clone(h.att.EntryID[:]), h.watched...)
			if alerted.Get(once) != nil {
				continue
			}
			watched, signal := keySignal(h.watched), keySignal(h.signal)
			seq, err := alerts.NextSequence()
			if err != nil {
				return err
			}
			rec, err := json.Marshal(alertRecord{RaisedMs: now, Watched: protocol.FormatSignal(watched),
				Signal: protocol.FormatSignal(signal), Distance: h.distance, Entry: h.att.EntryID.String()})
			if err != nil {
				return err
			}
			k := binary.BigEndian.AppendUint64(nil, seq)
			if err := alerts.Put(k, rec); err != nil {
				return err
			}
			if err := alerted.Put(once, k); err != nil {
				return err
			}
			raised = append(raised, api.RaisedAlert{Seq: seq, RaisedMs: now, Watched: watched, Signal: signal, Distance: h.distance, Attestation: h.att})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, a := range raised {
		w.alerted.Inc()
		m.log.Warn("watchlist alert: hosted content attested", "seq", a.Seq, "watched", protocol.FormatSignal(a.Watched),
			"signal", protocol.FormatSignal(a.Signal), "distance", a.Distance, "author", m.memberName(a.Attestation.Author),
			"labels", a.Attestation.Labels, "id", a.Attestation.EntryID)
	}
	return raised, nil
}

// alerts lists the alerts after seq since, each attestation read from the
// store now.
func (m *matching) alerts(since uint64) ([]api.RaisedAlert, error) {
	var recs []alertRecord
	var seqs []uint64
	err := m.watchlist.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAlerts)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, since+1)); k != nil; k, v = c.Next() {
			var r alertRecord
			if err := json.Unmarshal(v, &r); err != nil || len(k) != 8 {
				return fmt.Errorf("alerts/%x: does not decode: %v", k, err)
			}
			recs = append(recs, r)
			seqs = append(seqs, binary.BigEndian.Uint64(k))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]api.RaisedAlert, 0, len(recs))
	for i, r := range recs {
		watched, err1 := parseUserSignal(r.Watched)
		signal, err2 := parseUserSignal(r.Signal)
		id, err3 := protocol.ParseID(r.Entry)
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("alert %d: %w", seqs[i], err)
		}
		a := api.RaisedAlert{Seq: seqs[i], RaisedMs: r.RaisedMs, Watched: watched, Signal: signal, Distance: r.Distance}
		atts, err := m.store.Match(protocol.SignalKey(signal))
		if err != nil {
			return nil, err
		}
		for _, att := range atts {
			if att.EntryID == id {
				a.Attestation = att
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// keySignal is the signal whose key (protocol.SignalKey) is k.
func keySignal(k []byte) *pb.Signal {
	switch {
	case isPDQKey(k):
		return pdqSignal(match.Hash(k[1:]))
	case len(k) == 33 && k[0] == sha256Tag:
		return &pb.Signal{Value: &pb.Signal_Multihash{Multihash: append([]byte{0x12, 0x20}, k[1:]...)}}
	case len(k) == 17 && k[0] == md5Tag:
		return &pb.Signal{Value: &pb.Signal_Multihash{Multihash: append([]byte{0xd5, 0x01, 0x10}, k[1:]...)}}
	case len(k) > 0 && k[0] == urlTag:
		return &pb.Signal{Value: &pb.Signal_Url{Url: string(k[1:])}}
	default: // account: service, 0x00, id
		service, id, _ := bytes.Cut(k[1:], []byte{0})
		return &pb.Signal{Value: &pb.Signal_Account{Account: &pb.Account{Service: string(service), Id: string(id)}}}
	}
}

// Index tags of the exact types (SPEC.md section 7.1), taken from the
// protocol's own keys.
var (
	sha256Tag = protocol.SignalKey(&pb.Signal{Value: &pb.Signal_Multihash{Multihash: append([]byte{0x12, 0x20}, make([]byte, 32)...)}})[0]
	md5Tag    = protocol.SignalKey(&pb.Signal{Value: &pb.Signal_Multihash{Multihash: append([]byte{0xd5, 0x01, 0x10}, make([]byte, 16)...)}})[0]
	urlTag    = protocol.SignalKey(&pb.Signal{Value: &pb.Signal_Url{Url: "http://x/"}})[0]
)

// parseUserSignal parses TYPE:VALUE (protocol.FormatSignal's form).
func parseUserSignal(s string) (*pb.Signal, error) {
	typ, value, ok := bytes.Cut([]byte(s), []byte(":"))
	if !ok {
		return nil, fmt.Errorf("%q is not TYPE:VALUE", s)
	}
	return protocol.ParseSignal(string(typ), string(value))
}
