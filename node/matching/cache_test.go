package matching

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestMatchCacheTicket: a result read from the store before an
// invalidation of its key, or of everything, is not inserted after it.
func TestMatchCacheTicket(t *testing.T) {
	c := newMatchCache(1 << 20)
	k := []byte("key")
	stale := Found{Verdict: VerdictBlock}
	for _, inv := range []struct {
		name string
		fn   func()
	}{{"key", func() { c.invalidate(k) }}, {"all", c.invalidateAll}} {
		_, ok, ticket := c.get(k)
		if ok {
			t.Fatal("hit in an empty cache")
		}
		inv.fn() // commit and invalidation between the store read and put
		c.put(k, ticket, stale)
		if f, ok, _ := c.get(k); ok {
			t.Errorf("invalidation of %s: the stale result %v was inserted", inv.name, f)
		}
	}
	_, _, ticket := c.get(k)
	c.put(k, ticket, stale)
	if f, ok, _ := c.get(k); !ok || f.Verdict != VerdictBlock {
		t.Errorf("no invalidation: got %v, %v", f, ok)
	}
	c.invalidate(k)
	if _, ok, _ := c.get(k); ok {
		t.Error("invalidated key still cached")
	}
}

// TestMatchCacheBound: the cache stays within its bytes, evicts by CLOCK
// (an entry used since the hand last passed survives), and counts.
func TestMatchCacheBound(t *testing.T) {
	const max = cacheShards * 4096
	c := newMatchCache(max)
	f := Found{Attestations: make([]FoundAttestation, 1), Verdict: VerdictReview}
	rng := rand.New(rand.NewPCG(1, 1))
	hot := []byte("hot")
	for i := range 20_000 {
		k := fmt.Appendf(nil, "key-%d-%d", i, rng.Uint64())
		_, _, ticket := c.get(k)
		c.put(k, ticket, f)
		if _, ok, t2 := c.get(hot); !ok {
			c.put(hot, t2, f)
		}
	}
	bytes, entries, hits, misses, evictions := c.stats()
	if bytes > max || entries == 0 || evictions == 0 {
		t.Errorf("bytes %d (max %d), entries %d, evictions %d", bytes, max, entries, evictions)
	}
	if hits < 19_000 {
		t.Errorf("the entry used on every round was evicted: %d hits of 20,000 lookups", hits)
	}
	if misses < 20_000 {
		t.Errorf("%d misses", misses)
	}
	c.invalidateAll()
	if bytes, entries, _, _, _ := c.stats(); bytes != 0 || entries != 0 {
		t.Errorf("after invalidateAll: %d bytes, %d entries", bytes, entries)
	}
}

// TestMatchCacheConcurrent runs lookups, inserts and invalidations at once
// (for the race detector) and checks the bound afterwards.
func TestMatchCacheConcurrent(t *testing.T) {
	const max = cacheShards * 2048
	c := newMatchCache(max)
	f := Found{Attestations: make([]FoundAttestation, 1)}
	done := make(chan struct{})
	for w := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range 20_000 {
				k := fmt.Appendf(nil, "k%d", rng.IntN(2000))
				switch r := rng.IntN(100); {
				case r == 0:
					c.invalidateAll()
				case r < 10:
					c.invalidate(k)
				default:
					if _, ok, ticket := c.get(k); !ok {
						c.put(k, ticket, f)
					}
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
	if bytes, _, _, _, _ := c.stats(); bytes > max {
		t.Errorf("%d bytes, max %d", bytes, max)
	}
}
