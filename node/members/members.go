// Package members keeps a node's membership as it stands: the history
// protocol/membership computes from the federation's genesis and the
// membership entries of the node's store (SPEC 12), recomputed after every
// commit that logged one. Readers take the current snapshot without
// waiting; only the writer refreshes it.
package members

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/store"
)

// Live is a node's membership.
type Live struct {
	genesis *membership.Genesis
	store   *store.Store
	log     *slog.Logger
	cur     atomic.Pointer[membership.History]

	mu      sync.Mutex // serialises Refresh, and guards entries and the watchers list
	watches []func(old, now *membership.History)
	// entries is every membership entry of the store: read at Open
	// (or, when Open found a snapshot that holds, at the first Refresh),
	// then told by the writer (Refresh), so a refresh computes from
	// memory instead of reading them all again. nil: not read yet.
	entries []*protocol.Entry
	// unsaved: the roster version in force is not the one of the last
	// snapshot saved; saved: when the last one was saved. Guarded by mu.
	unsaved bool
	saved   time.Time
}

// saveEvery spaces the snapshots Refresh saves: a snapshot is megabytes
// (7 MB for 200 members and 1,000 amendments), and a node catching up a
// long membership history passes a version at many refreshes. Close
// saves the last one.
const saveEvery = time.Minute

// Open computes the membership from g and st's membership entries, and
// has st judge entries under it (store.SetMembers: a store whose indexes
// were derived under another membership, or none, derives them again).
//
// The store keeps a snapshot of the membership last computed
// (store.MembersSnapshot): when it was computed from the very
// membership entries the store holds now (their digest), for g, and is
// whole, Open decodes it instead of reading and computing; it is the
// History Compute gives. Otherwise Open computes, and saves a snapshot
// for the next start.
func Open(g *membership.Genesis, st *store.Store, log *slog.Logger) (*Live, error) {
	l := &Live{genesis: g, store: st, log: log}
	digest, snap, err := st.MembersSnapshot()
	if err != nil {
		return nil, fmt.Errorf("membership: %w", err)
	}
	var h *membership.History
	if snap != nil {
		h, err = membership.UnmarshalSnapshot(g, digest, snap, l.entry)
		if err != nil {
			log.Info("membership computed from the logs", "why", err)
		}
	}
	if h == nil {
		es, err := st.MembershipEntries()
		if err != nil {
			return nil, fmt.Errorf("membership: %w", err)
		}
		l.entries = es
		h = membership.Compute(g, es)
		// A failure to save costs the next start time, nothing else.
		if err := st.SaveMembersSnapshot(h.MarshalSnapshot(store.MembershipDigest(es))); err != nil {
			log.Warn("membership snapshot not saved", "err", err)
		} else {
			l.saved = time.Now()
		}
	}
	start := time.Now()
	rebuilt, err := st.SetMembers(h, h.Affected(nil))
	if err != nil {
		return nil, err
	}
	if rebuilt {
		log.Info("store indexes derived under the membership in force", "version", h.Version(), "took", time.Since(start).Round(time.Millisecond))
	}
	l.cur.Store(h)
	return l, nil
}

// Genesis is the federation's genesis.
func (l *Live) Genesis() *membership.Genesis { return l.genesis }

// History is the membership in force.
func (l *Live) History() *membership.History { return l.cur.Load() }

// Roster is the roster in force.
func (l *Live) Roster() *protocol.Roster { return l.cur.Load().Roster() }

// Watch calls fn, in the writer's goroutine, after every refresh that
// changed the roster in force (its version, or a member's key, peer ID or
// addresses), with the history before and after.
func (l *Live) Watch(fn func(old, now *membership.History)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.watches = append(l.watches, fn)
}

// Refresh computes the membership again, with the membership entries a
// commit logged (the writer calls it, with those). If a verdict may
// have changed, the store judges under the new membership from now on
// (deriving its indexes again if a stored entry's verdict changed). The
// watchers are told when the roster in force changed, which Refresh
// reports: held entries may apply now.
func (l *Live) Refresh(logged []*protocol.Entry) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.cur.Load()
	if l.entries == nil {
		// Open decoded a snapshot: read the entries now. They include
		// logged (committed before this call); Compute counts an entry
		// given twice once.
		es, err := l.store.MembershipEntries()
		if err != nil {
			return false, fmt.Errorf("membership: %w", err)
		}
		l.entries = es
	}
	l.entries = append(l.entries, logged...)
	h := membership.Compute(l.genesis, l.entries)
	if string(h.Fingerprint()) != string(old.Fingerprint()) {
		start := time.Now()
		rebuilt, err := l.store.SetMembers(h, h.Affected(old))
		if err != nil {
			return false, err
		}
		if rebuilt {
			l.log.Warn("membership change reaches entries already stored: indexes derived again", "version", h.Version(), "took", time.Since(start).Round(time.Millisecond))
		}
	}
	l.cur.Store(h)
	changed := h.Version() != old.Version() || !samePeers(h, old)
	if h.Version() != old.Version() {
		l.unsaved = true
	}
	if l.unsaved && time.Since(l.saved) >= saveEvery {
		l.save()
	}
	if changed {
		for _, fn := range l.watches {
			fn(old, h)
		}
	}
	return changed, nil
}

// save saves a snapshot of the membership in force, so that the next
// start decodes it instead of computing (unless votes come in after it:
// then it computes once, and saves). l.mu is held, l.entries read.
func (l *Live) save() {
	h := l.cur.Load()
	if err := l.store.SaveMembersSnapshot(h.MarshalSnapshot(store.MembershipDigest(l.entries))); err != nil {
		l.log.Warn("membership snapshot not saved", "err", err)
		return
	}
	l.unsaved, l.saved = false, time.Now()
}

// Close saves the snapshot of the membership in force if a version
// passed since the last one saved (Refresh saves at most once a
// minute). The node calls it after its writer ended, before the store
// closes.
func (l *Live) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.unsaved && l.entries != nil {
		l.save()
	}
}

// entry is a membership entry of the store, by id: what a History
// decoded from a snapshot reads entries with (membership.UnmarshalSnapshot).
// Only logged membership entries of the federation are found: the
// entries Compute would have been given.
func (l *Live) entry(id protocol.ID) (*protocol.Entry, bool) {
	e, err := l.store.Get(id)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			l.log.Warn("membership entry not read", "id", id, "err", err)
		}
		return nil, false
	}
	if !e.Kind().IsMembership() || e.Body.Federation != l.genesis.Roster.Federation {
		return nil, false
	}
	return e, true
}

func samePeers(a, b *membership.History) bool {
	ra, rb := a.Roster(), b.Roster()
	if len(ra.Members) != len(rb.Members) {
		return false
	}
	for i, m := range ra.Members {
		o := rb.Members[i]
		if m.Name != o.Name || m.PeerID != o.PeerID || !slices.Equal(m.Addrs, o.Addrs) || m.AuthorKey != o.AuthorKey {
			return false
		}
	}
	return true
}
