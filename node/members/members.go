// Package members keeps a node's membership as it stands: the history
// protocol/membership computes from the federation's genesis and the
// membership entries of the node's store (SPEC 12), recomputed after every
// commit that logged one. Readers take the current snapshot without
// waiting; only the writer refreshes it.
package members

import (
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
	// entries is every membership entry of the store: read once at
	// Open, then told by the writer (Refresh), so a refresh computes
	// from memory instead of reading them all again.
	entries []*protocol.Entry
}

// Open computes the membership from g and st's membership entries, and
// has st judge entries under it (store.SetMembers: a store whose indexes
// were derived under another membership, or none, derives them again).
func Open(g *membership.Genesis, st *store.Store, log *slog.Logger) (*Live, error) {
	l := &Live{genesis: g, store: st, log: log}
	es, err := st.MembershipEntries()
	if err != nil {
		return nil, fmt.Errorf("membership: %w", err)
	}
	l.entries = es
	h := membership.Compute(g, es)
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
	if changed {
		for _, fn := range l.watches {
			fn(old, h)
		}
	}
	return changed, nil
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
