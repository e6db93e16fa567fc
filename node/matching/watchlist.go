package matching

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/staydown/staydown/node/kind"
	"github.com/staydown/staydown/node/match"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// WatchlistFile is where a node kept its watchlist, in its directory,
// before it moved into its store: Start imports the file and renames it
// (sidefiles.go).
const WatchlistFile = "watchlist.db"

// watchlist is the platform's private list of the signals of content it
// already hosts (legacy content). The node checks every addition it stores
// against it and raises an alert when one matches: exactly, or for PDQ
// within the policy's threshold. A platform can then review and remove its
// copy within the hour, as it would block a new upload.
//
// The signals and the alerts live in the node's store (store.Watch,
// store.Alerts), which raises each alert once per attestation and watched
// signal; nothing of them is gossiped or exported. Checks run in memory: a
// fingerprint set of the exact keys and a near-match index of the PDQ
// hashes, loaded at start-up, and a candidate is confirmed in the store.
// An addition, received or this node's own, is checked inside the
// writer's transaction that stores it (watchHook).
type watchlist struct {
	store   *store.Store
	log     *slog.Logger
	alerted prometheus.Counter

	exact *keySet         // exact watched keys (fingerprints: a hit is confirmed in the store)
	pdq   *match.PDQIndex // watched PDQ hashes, ref 0
	// videos are the watched videos (vpdq) whose value the store keeps,
	// for near matching; their keys are in exact too.
	videos *watchedVideos

	mu sync.Mutex // guards pending
	// pending holds the alerts an apply transaction raised, by entry,
	// until stored reports them (after the commit). Set by the apply
	// loop's hook, emptied as the apply loop reports the entries.
	pending map[protocol.ID][]RaisedAlert
}

// openWatchlist loads the watchlist kept in st.
func openWatchlist(st *store.Store, minQuality int, reg prometheus.Registerer, log *slog.Logger) (*watchlist, error) {
	w := &watchlist{store: st, log: log, exact: newKeySet(), pdq: match.NewPDQIndex(), pending: map[protocol.ID][]RaisedAlert{},
		videos: newWatchedVideos(minQuality)}
	if err := st.WatchedVideos(func(k, v []byte) error { return w.videos.add(k, v) }); err != nil {
		w.videos.x.Close()
		return nil, fmt.Errorf("watchlist: %w", err)
	}
	// Watch adds to the index under the store's write lock: its merges
	// (seconds at 10 million hashes) must not hold up the apply loop.
	w.pdq.MergeInBackground()
	var hashes []match.Hash
	err := st.WatchedKeys(func(k []byte) error {
		if isPDQKey(k) {
			hashes = append(hashes, match.Hash(k[1:]))
		} else {
			w.exact.add(k)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("watchlist: %w", err)
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

func (w *watchlist) add(k []byte) {
	if isPDQKey(k) {
		w.pdq.Add(match.Hash(k[1:]), 0)
	} else {
		w.exact.add(k)
	}
}

func (w *watchlist) remove(k []byte) {
	w.videos.remove(k)
	if isPDQKey(k) {
		w.pdq.Remove(match.Hash(k[1:]), 0)
	} else {
		w.exact.remove(k)
	}
}

// watchHit is an attestation that matches a watched signal.
type watchHit struct {
	watched  []byte // the watched signal's key
	signal   []byte // the attested signal's key
	distance int    // pdq only
	att      store.Attestation
	// watchedSig and signalSig are the signals, for vpdq, whose keys
	// (digests) do not give them back (keySignal); nil otherwise.
	watchedSig, signalSig *pb.Signal
}

// checkedItems checks a request's signals and refs and returns them as
// the store takes them.
func checkedItems(items []WatchItem) ([]store.WatchItem, error) {
	out := make([]store.WatchItem, len(items))
	for i, it := range items {
		if err := protocol.CheckSignal(it.Signal); err != nil {
			return nil, fmt.Errorf("%w: signals[%d]: %w", kind.ErrInvalid, i, err)
		}
		if it.Ref != "" {
			if err := store.CheckWatchRef(it.Ref); err != nil {
				return nil, fmt.Errorf("%w: signals[%d]: ref: %w", kind.ErrInvalid, i, err)
			}
		}
		out[i] = store.WatchItem{Key: protocol.SignalKey(it.Signal), Ref: it.Ref, Value: it.Signal.GetVpdq()}
	}
	return out, nil
}

// Watch adds signals to the watchlist, each with its ref if it has one
// (a signal watched already gets the ref if it lacks it), and raises an
// alert for every active attestation already stored that matches one of
// the signals added. Errors wrap kind.ErrInvalid (a bad signal or ref,
// or a signal given more refs than store.MaxWatchRefs) or are internal.
func (m *Matching) Watch(items []WatchItem) (WatchOutcome, error) {
	w := m.watchlist
	checked, err := checkedItems(items)
	if err != nil {
		return WatchOutcome{}, err
	}
	// The in-memory indexes take each new key inside the store's
	// transaction: an apply that commits after it sees the key in both;
	// one that committed before it is in what storedHits reads below.
	var added [][]byte
	videos := map[string][]byte{}
	for _, it := range checked {
		if it.Value != nil {
			videos[string(it.Key)] = it.Value
		}
	}
	stored, err := m.store.WatchRefs(checked, func(k []byte) {
		w.add(k)
		if v := videos[string(k)]; v != nil {
			if err := w.videos.add(k, v); err != nil {
				m.log.Error("watchlist: a video not indexed for near matching", "key", fmt.Sprintf("%x", k), "err", err)
			}
		}
		added = append(added, k)
	})
	if err != nil {
		for _, k := range added {
			w.remove(k)
		}
		if e, ok := errors.AsType[*store.RefLimitError](err); ok {
			return WatchOutcome{}, fmt.Errorf("%w: signals[%d].ref: %w: %s has %d refs already, the most a signal may have: %q is one too many (remove one first)",
				kind.ErrInvalid, e.Index, store.ErrWatchRef, protocol.FormatSignal(items[e.Index].Signal), store.MaxWatchRefs, e.Ref)
		}
		return WatchOutcome{}, err
	}
	out := WatchOutcome{Added: stored.Added, Known: stored.Known, Refs: stored.Refs}
	m.log.Info("watchlist: signals added", "added", out.Added, "known", out.Known, "refs", out.Refs, "total", w.len())

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
	var raised []RaisedAlert
	if len(hits) > 0 {
		err = m.store.RaiseAlerts(func(tx *store.Writes) (err error) {
			raised, err = raise(tx, hits, m.now().UnixMilli())
			return err
		})
		if err != nil {
			return out, err
		}
	}
	m.report(raised)
	out.Alerts, out.Total = raised, w.len()
	return out, nil
}

// Unwatch takes signals off the watchlist, or one ref off a signal when
// the item has one (the signal goes with its last ref): the store first,
// then the in-memory indexes. A check running meanwhile confirms every
// candidate in the store, so it raises no alert for a signal removed
// there. Alerts raised already stay, and so do their "alerted" marks: a
// signal watched again does not alert again for an attestation that
// alerted before.
func (m *Matching) Unwatch(items []WatchItem) (UnwatchOutcome, error) {
	w := m.watchlist
	checked, err := checkedItems(items)
	if err != nil {
		return UnwatchOutcome{}, err
	}
	stored, err := m.store.UnwatchRefs(checked)
	if err != nil {
		return UnwatchOutcome{}, err
	}
	for _, k := range stored.Removed {
		w.remove(k)
	}
	out := UnwatchOutcome{Removed: len(stored.Removed), Refs: stored.Refs, Unknown: stored.Unknown, Total: w.len()}
	m.log.Info("watchlist: signals removed", "removed", out.Removed, "refs", out.Refs, "unknown", out.Unknown, "total", out.Total)
	return out, nil
}

// Watchlist returns up to limit watched signals after the signal key
// after (nil: from the first), in key order, with their refs.
func (m *Matching) Watchlist(after []byte, limit int) (WatchPage, error) {
	page, more, err := m.store.Watchlist(after, limit)
	if err != nil {
		return WatchPage{}, err
	}
	out := WatchPage{Signals: make([]WatchedSignal, len(page)), More: more, Total: m.watchlist.len()}
	for i, p := range page {
		sig := keySignal(p.Key)
		if p.Value != nil {
			sig = &pb.Signal{Value: &pb.Signal_Vpdq{Vpdq: p.Value}}
		}
		out.Signals[i] = WatchedSignal{Signal: sig, Key: p.Key, Refs: p.Refs}
	}
	return out, nil
}

// storedHits returns the active attestations already stored that match
// the watched key k.
func (m *Matching) storedHits(k []byte) ([]watchHit, error) {
	var hits []watchHit
	var watchedSig, signalSig *pb.Signal
	addHits := func(signal []byte, distance int) error {
		atts, err := m.store.Match(signal)
		if err != nil {
			return err
		}
		for _, a := range atts {
			if m.alerting(a) {
				hits = append(hits, watchHit{watched: k, signal: signal, distance: distance, att: a, watchedSig: watchedSig, signalSig: signalSig})
			}
		}
		return nil
	}
	if v, ok := m.watchlist.videos.get(k); ok {
		// A watched video: every stored video that matches it, and the
		// same value stored exactly.
		watchedSig = &pb.Signal{Value: &pb.Signal_Vpdq{Vpdq: v.value}}
		results, err := m.videos.x.Query(v.frames, m.videoParams())
		if err != nil {
			return nil, err
		}
		seen := false
		for _, r := range results {
			if !r.Match {
				break
			}
			sk := m.videos.key(r.Ref)
			seen = seen || bytes.Equal(sk, k)
			value, err := m.store.VPDQValue(sk)
			if err != nil {
				return nil, err
			}
			signalSig = &pb.Signal{Value: &pb.Signal_Vpdq{Vpdq: value}}
			if err := addHits(sk, 0); err != nil {
				return nil, err
			}
		}
		if seen || !m.exact.has(k) {
			return hits, nil
		}
		signalSig = watchedSig
		return hits, addHits(k, 0)
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

// watchCandidate is a watched signal that one of an addition's signals
// may match, by the in-memory indexes.
type watchCandidate struct {
	watched, signal []byte
	distance        int
	// vpdq: the watched signal and the addition's
	watchedSig, signalSig *pb.Signal
}

// watchCandidates checks an addition's signals against the watchlist's
// in-memory indexes: a fingerprint lookup per exact signal, a near-match
// query per PDQ hash (BenchmarkWatchlistCheck).
func (m *Matching) watchCandidates(a *pb.Addition) []watchCandidate {
	w := m.watchlist
	if w.len() == 0 {
		return nil
	}
	var cands []watchCandidate
	for _, s := range a.Signals {
		k := protocol.SignalKey(s)
		if s.GetVpdq() != nil {
			cands = append(cands, m.watchedVideoCandidates(k, s)...)
		}
		if !isPDQKey(k) {
			if w.exact.has(k) {
				c := watchCandidate{watched: k, signal: k}
				if s.GetVpdq() != nil {
					c.watchedSig, c.signalSig = s, s
				}
				cands = append(cands, c)
			}
			continue
		}
		for _, r := range w.pdq.Query(match.Hash(k[1:]), m.policy.PDQThreshold) {
			cands = append(cands, watchCandidate{watched: append([]byte{pdqTag}, r.Hash[:]...), signal: k, distance: r.Distance})
		}
	}
	return cands
}

// checkAddition checks a newly stored addition against the watchlist in
// tx, a write transaction that holds it, and raises an alert for each
// watched signal it matches while active. A candidate is confirmed in
// the store (a fingerprint may collide; a signal may have been unwatched
// since); the status of the attestation (active unless, say, an allow
// entry came first) comes from tx.
func (m *Matching) checkAddition(tx *store.Writes, e *protocol.Entry, now int64) ([]RaisedAlert, error) {
	a := e.Body.GetAddition()
	if a == nil {
		return nil, nil
	}
	cands := m.watchCandidates(a)
	if len(cands) == 0 {
		return nil, nil
	}
	var hits []watchHit
	for _, c := range cands {
		if !tx.Watched(c.watched) {
			continue
		}
		atts, err := tx.Match(c.signal)
		if err != nil {
			m.log.Error("watchlist: checking an addition failed; its alerts may be missing", "id", e.ID, "err", err)
			return nil, nil
		}
		for _, att := range atts {
			if att.EntryID == e.ID && m.alerting(att) {
				hits = append(hits, watchHit{watched: c.watched, signal: c.signal, distance: c.distance, att: att, watchedSig: c.watchedSig, signalSig: c.signalSig})
			}
		}
	}
	return raise(tx, hits, now)
}

// WatchHook is the writer's hook for the store's commit (store.Batch.After): it
// checks the applied additions of batch against the watchlist inside the
// apply transaction and raises their alerts there, so that they commit
// with the batch and no other write, no other fsync, happens on the apply
// path. stored reports them (log line, metric) once the commit is done.
func (m *Matching) WatchHook(batch []*protocol.Entry) func(*store.Writes, []store.Result) error {
	return func(tx *store.Writes, results []store.Result) error {
		w := m.watchlist
		pending := map[protocol.ID][]RaisedAlert{}
		now := m.now().UnixMilli()
		for i, r := range results {
			if r.Outcome != store.Applied {
				continue
			}
			raised, err := m.checkAddition(tx, batch[i], now)
			if err != nil {
				return err
			}
			if len(raised) > 0 {
				pending[batch[i].ID] = raised
			}
		}
		// What an earlier batch left (its commit failed) goes: the alerts
		// it raised were rolled back with it.
		w.mu.Lock()
		w.pending = pending
		w.mu.Unlock()
		return nil
	}
}

// storedAlerts reports the alerts that the transaction that stored e
// raised (watchHook), now that it has committed.
func (m *Matching) storedAlerts(e *protocol.Entry) {
	w := m.watchlist
	w.mu.Lock()
	raised := w.pending[e.ID]
	delete(w.pending, e.ID)
	w.mu.Unlock()
	m.report(raised)
}

// raise records in tx an alert for each hit not alerted before (same
// entry and watched signal), and returns the new alerts.
func raise(tx *store.Writes, hits []watchHit, now int64) ([]RaisedAlert, error) {
	var raised []RaisedAlert
	for _, h := range hits {
		watched, signal := h.watchedSig, h.signalSig
		if watched == nil {
			watched = keySignal(h.watched)
		}
		if signal == nil {
			signal = keySignal(h.signal)
		}
		a, ok, err := tx.Raise(store.Alert{RaisedMs: now, Watched: watched, Signal: signal, Distance: h.distance, EntryID: h.att.EntryID})
		if err != nil {
			return nil, err
		}
		if ok {
			raised = append(raised, RaisedAlert{Seq: a.Seq, RaisedMs: now, Watched: watched, Signal: signal, Distance: h.distance, Attestation: h.att, Refs: a.Refs})
		}
	}
	return raised, nil
}

// report logs and counts alerts that are committed.
func (m *Matching) report(raised []RaisedAlert) {
	for _, a := range raised {
		m.watchlist.alerted.Inc()
		m.log.Warn("watchlist alert: hosted content attested", "seq", a.Seq, "watched", protocol.FormatSignal(a.Watched),
			"signal", protocol.FormatSignal(a.Signal), "distance", a.Distance, "author", m.roster().NameOf(a.Attestation.Author),
			"labels", a.Attestation.Labels, "id", a.Attestation.EntryID, "refs", a.Refs)
	}
}

// Alerts lists the alerts after seq since, each attestation read from the
// store now.
func (m *Matching) Alerts(since uint64) ([]RaisedAlert, error) {
	kept, err := m.store.Alerts(since)
	if err != nil {
		return nil, err
	}
	out := make([]RaisedAlert, 0, len(kept))
	for _, k := range kept {
		a := RaisedAlert{Seq: k.Seq, RaisedMs: k.RaisedMs, Watched: k.Watched, Signal: k.Signal, Distance: k.Distance, Refs: k.Refs}
		atts, err := m.store.Match(protocol.SignalKey(k.Signal))
		if err != nil {
			return nil, err
		}
		for _, att := range atts {
			if att.EntryID == k.EntryID {
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

// alerting reports whether a stored attestation raises a watchlist alert:
// it is active for this node's policy, as the verdict reads it (not
// retracted, and no allow entry or dispute bears on it: one by a member
// the policy does not trust does not silence an alert either).
func (m *Matching) alerting(a store.Attestation) bool {
	if a.Status == store.StatusRetracted {
		return false
	}
	for _, r := range a.Reasons {
		if (r.Kind == protocol.KindAllow || r.Kind == protocol.KindDispute) && m.bears(r, a.Labels) {
			return false
		}
	}
	return true
}
