package matching

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// matchCache keeps, per signal key, what the store said of it (its
// attestations, each with its status, as store.Match returns them) and
// the verdict the policy makes of them, so that a repeated lookup of a
// stored signal is answered from memory instead of a read transaction
// that decodes every attestation and what bears on its status (5 µs).
//
// # Never stale
//
// A result depends on the additions that carry the signal, on the
// retractions, disputes and allow entries that bear on them, and on
// whether their authors are flagged for equivocation (and, as the
// protocol grows, possibly on other kinds). matching tells the cache of
// every entry the store has applied before the apply is reported (see
// Matching.Stored, called by the node's writer), by a rule that needs no knowledge
// of the store's indexes: an addition invalidates the keys of its
// signals, since it changes the results of those keys only; any other
// entry, and any equivocation, invalidates everything. So once an apply
// is reported, no lookup returns a result from before it. This holds as
// long as a result is a function of the stored entries alone (with the
// node's fixed policy and roster): a part that depends on the clock (say,
// whether a takedown notice's deadline has passed) must be worked out
// after the lookup, not cached.
//
// A lookup that misses reads the store and then inserts what it read. If
// an entry that changes that result was committed and its invalidation
// made in between, inserting would bring the old result back for good.
// Each shard therefore has a generation, bumped under its lock by every
// invalidation of one of its keys, and the cache a global generation,
// bumped by every invalidation of everything: a lookup takes both before
// it reads the store (miss returns them as a ticket), and put inserts
// only when both are unchanged, checked under the shard's lock. The store
// read that began after the ticket was taken cannot have seen a state
// older than the last invalidation the ticket knows of; a commit after
// it is followed by an invalidation that changes a generation, and the
// insert is dropped (the next lookup reads the store again).
//
// # Bounded
//
// The cache holds at most maxBytes of results, counted by an estimate of
// each result's memory (its key, its attestations with their labels and
// reasons, and a fixed overhead per entry; it errs high: 553 bytes for a
// result of one attestation whose heap cost was measured at 445), split
// evenly across shards.
// A shard that is full evicts by CLOCK, an approximation of least
// recently used: a hit marks its entry, and the hand sweeping the shard's
// entries spares a marked one once (clearing the mark) and evicts the
// first unmarked one. A result larger than an eighth of a shard is not
// cached. Metrics: staydown_match_cache_bytes, _entries, and the
// counters _hits_total, _misses_total and _evictions_total.
type matchCache struct {
	seed     maphash.Seed
	all      atomic.Uint64 // global generation: bumped by invalidateAll
	maxShard int           // bytes per shard
	shards   [cacheShards]cacheShard
}

const cacheShards = 64

// defaultMatchCacheBytes bounds the match cache: at about 600 bytes for a
// signal with one attestation, some 100,000 signals.
const defaultMatchCacheBytes = 64 << 20

type cacheShard struct {
	mu    sync.RWMutex
	gen   atomic.Uint64 // bumped, under mu, by each invalidation of a key of this shard
	m     map[string]*cacheEntry
	ring  []*cacheEntry // CLOCK: entries in slots, nil where one was removed
	free  []int         // nil slots of ring
	hand  int
	bytes int
	// Counters, read by the metrics. hits is written under the read lock,
	// hence atomic; the others under the write lock.
	hits, misses, evictions atomic.Uint64
	_                       [64]byte // keep shards' hot words on separate cache lines
}

type cacheEntry struct {
	key   string
	found Found
	size  int
	slot  int
	used  atomic.Bool // CLOCK's mark
}

// cacheTicket is the state of the generations when a lookup missed.
type cacheTicket struct {
	shard *cacheShard
	gen   uint64
	all   uint64
}

func newMatchCache(maxBytes int) *matchCache {
	c := &matchCache{seed: maphash.MakeSeed(), maxShard: maxBytes / cacheShards}
	for i := range c.shards {
		c.shards[i].m = map[string]*cacheEntry{}
	}
	return c
}

func (c *matchCache) shard(k []byte) *cacheShard {
	return &c.shards[maphash.Bytes(c.seed, k)%cacheShards]
}

// get returns the cached result of key k or, on a miss, a ticket for put.
// The result is shared: callers must not change it.
func (c *matchCache) get(k []byte) (Found, bool, cacheTicket) {
	s := c.shard(k)
	// The ticket is taken before the shard is looked at, hence before the
	// caller reads the store.
	t := cacheTicket{shard: s, all: c.all.Load(), gen: s.gen.Load()}
	s.mu.RLock()
	e, ok := s.m[string(k)]
	if ok {
		if !e.used.Load() {
			e.used.Store(true)
		}
		f := e.found
		s.mu.RUnlock()
		s.hits.Add(1)
		return f, true, t
	}
	s.mu.RUnlock()
	s.misses.Add(1)
	return Found{}, false, t
}

// put caches f as the result of key k, read from the store after get
// returned t, unless an invalidation happened since.
func (c *matchCache) put(k []byte, t cacheTicket, f Found) {
	size := entrySize(k, f)
	if size > c.maxShard/8 {
		return
	}
	s := t.shard
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen.Load() != t.gen || c.all.Load() != t.all {
		return
	}
	if _, ok := s.m[string(k)]; ok {
		return // another lookup put the same result
	}
	for s.bytes+size > c.maxShard && len(s.m) > 0 {
		s.evict()
	}
	e := &cacheEntry{key: string(k), found: f, size: size}
	if n := len(s.free); n > 0 {
		e.slot = s.free[n-1]
		s.free = s.free[:n-1]
		s.ring[e.slot] = e
	} else {
		e.slot = len(s.ring)
		s.ring = append(s.ring, e)
	}
	s.m[e.key] = e
	s.bytes += size
}

// evict removes one entry by CLOCK; s.mu is held, s is not empty.
func (s *cacheShard) evict() {
	for {
		if s.hand >= len(s.ring) {
			s.hand = 0
		}
		e := s.ring[s.hand]
		s.hand++
		if e == nil {
			continue
		}
		if e.used.Load() {
			e.used.Store(false)
			continue
		}
		s.remove(e)
		s.evictions.Add(1)
		return
	}
}

func (s *cacheShard) remove(e *cacheEntry) {
	delete(s.m, e.key)
	s.ring[e.slot] = nil
	s.free = append(s.free, e.slot)
	s.bytes -= e.size
}

// invalidate drops the result of key k, and any result of k being read
// from the store now.
func (c *matchCache) invalidate(k []byte) {
	s := c.shard(k)
	s.mu.Lock()
	s.gen.Add(1)
	if e, ok := s.m[string(k)]; ok {
		s.remove(e)
	}
	s.mu.Unlock()
}

// invalidateAll drops every result, and every result being read now.
func (c *matchCache) invalidateAll() {
	// The global generation first: a put that takes a shard's lock after
	// that shard is cleared below sees it changed.
	c.all.Add(1)
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		if len(s.m) > 0 {
			s.m = map[string]*cacheEntry{}
			s.ring, s.free, s.hand, s.bytes = nil, nil, 0, 0
		}
		s.mu.Unlock()
	}
}

// entrySize estimates the memory an entry of key k with result f takes:
// the entry, its map slot and ring slot, the key, the attestations and
// the strings and reasons they hold.
func entrySize(k []byte, f Found) int {
	const entry, perAtt, perReason = 160, 320, 120
	n := entry + len(k) + len(f.Skipped)
	for _, a := range f.Attestations {
		n += perAtt + len(a.CaseRef) + len(a.Transform) + len(a.Reasons)*perReason
		for _, l := range a.Labels {
			n += 16 + len(l)
		}
		for _, r := range a.Reasons {
			n += len(r.Category) + len(r.Reason)
		}
	}
	return n
}

func (c *matchCache) stats() (bytes, entries int, hits, misses, evictions uint64) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		bytes += s.bytes
		entries += len(s.m)
		s.mu.RUnlock()
		hits += s.hits.Load()
		misses += s.misses.Load()
		evictions += s.evictions.Load()
	}
	return
}

// register registers the cache's metrics with reg.
func (c *matchCache) register(reg prometheus.Registerer) {
	stat := func(i int) func() float64 {
		return func() float64 {
			b, e, h, m, ev := c.stats()
			return []float64{float64(b), float64(e), float64(h), float64(m), float64(ev)}[i]
		}
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "staydown_match_cache_bytes",
			Help: "Estimated memory of the match result cache (bounded; see node/matching/cache.go)."}, stat(0)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "staydown_match_cache_entries",
			Help: "Signals whose match result is cached."}, stat(1)),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "staydown_match_cache_hits_total",
			Help: "Lookups of a stored signal answered from the match result cache."}, stat(2)),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "staydown_match_cache_misses_total",
			Help: "Lookups of a stored signal that read the store."}, stat(3)),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "staydown_match_cache_evictions_total",
			Help: "Results evicted from the match result cache to stay within its bound."}, stat(4)),
	)
}
