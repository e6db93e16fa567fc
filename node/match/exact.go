package match

import (
	"slices"
	"sync"
)

// ExactIndex maps a signal key (protocol.SignalKey, as a string) to the refs
// stored under it. Like PDQIndex it holds a multiset of (key, ref) pairs,
// and any number of goroutines may call Lookup and Len while others write.
type ExactIndex struct {
	mu   sync.RWMutex        // guards refs and n; Lookup and Len hold it for reading
	refs map[string][]uint64 // key -> refs in the order added; no empty lists
	n    int                 // pairs stored
}

// NewExactIndex returns an empty index.
func NewExactIndex() *ExactIndex {
	return &ExactIndex{refs: make(map[string][]uint64)}
}

// Add stores the pair (key, ref).
func (x *ExactIndex) Add(key string, ref uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.refs[key] = append(x.refs[key], ref)
	x.n++
}

// Remove takes out one copy of the pair (key, ref) and reports whether there
// was one.
func (x *ExactIndex) Remove(key string, ref uint64) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	refs := x.refs[key]
	i := slices.Index(refs, ref)
	if i < 0 {
		return false
	}
	if len(refs) == 1 {
		delete(x.refs, key)
	} else {
		x.refs[key] = slices.Delete(refs, i, i+1)
	}
	x.n--
	return true
}

// Lookup returns the refs stored under key, in the order they were added,
// or nil. The slice is a copy the caller owns.
func (x *ExactIndex) Lookup(key string) []uint64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return slices.Clone(x.refs[key])
}

// Len returns the number of pairs stored.
func (x *ExactIndex) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.n
}
