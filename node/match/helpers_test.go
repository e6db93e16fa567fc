package match

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// testdataDir holds the PDQ reference data shared by the project, relative
// to this package's directory.
var testdataDir = filepath.Join("..", "..", "..", "shared", "testdata", "pdq")

// readHashes reads a file of hex hashes, one a line, from testdataDir.
func readHashes(t testing.TB, name string) []Hash {
	t.Helper()
	path := filepath.Join(testdataDir, name)
	f, err := os.Open(path)
	if err != nil {
		abs, _ := filepath.Abs(path)
		t.Fatalf("reference data missing: want %s (from facebook/ThreatExchange pdq/data): %v", abs, err)
	}
	defer f.Close()
	var hs []Hash
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		if sc.Text() == "" {
			continue
		}
		var h Hash
		if n, err := hex.Decode(h[:], sc.Bytes()); err != nil || n != len(h) || len(sc.Bytes()) != 2*len(h) {
			t.Fatalf("%s:%d: %q is not a hash of 64 hex digits", path, line, sc.Text())
		}
		hs = append(hs, h)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return hs
}

// pairs is the multiset an index should hold, kept beside it so that every
// query can be checked against BruteForce.
type pairs struct {
	hs   []Hash
	refs []uint64
}

func (p *pairs) add(h Hash, ref uint64) {
	p.hs = append(p.hs, h)
	p.refs = append(p.refs, ref)
}

// remove takes out one copy of (h, ref), as PDQIndex.Remove does.
func (p *pairs) remove(h Hash, ref uint64) bool {
	for i := range p.hs {
		if p.hs[i] == h && p.refs[i] == ref {
			p.hs = slices.Delete(p.hs, i, i+1)
			p.refs = slices.Delete(p.refs, i, i+1)
			return true
		}
	}
	return false
}

// randomHash draws 256 uniform bits.
func randomHash(rng *rand.Rand) Hash {
	var w words
	for i := range w {
		w[i] = rng.Uint64()
	}
	return w.hash()
}

// flipBits returns h with n distinct bits flipped, so Distance(h, result) == n.
func flipBits(rng *rand.Rand, h Hash, n int) Hash {
	for _, b := range rng.Perm(256)[:n] {
		h[b/8] ^= 1 << (b % 8)
	}
	return h
}

// bank makes n hashes shaped like a real hash bank: 90% uniform, 10% in
// clusters of 10 near-duplicates within 0..20 bits of a random centre.
func bank(rng *rand.Rand, n int) []Hash {
	hs := make([]Hash, 0, n)
	for len(hs) < n*9/10 {
		hs = append(hs, randomHash(rng))
	}
	for len(hs) < n {
		centre := randomHash(rng)
		for range min(10, n-len(hs)) {
			hs = append(hs, flipBits(rng, centre, rng.IntN(21)))
		}
	}
	rng.Shuffle(len(hs), func(i, j int) { hs[i], hs[j] = hs[j], hs[i] })
	return hs
}

// queries makes n queries: every other one within 0..40 bits of a hash in
// hs, the rest uniform.
func queries(rng *rand.Rand, hs []Hash, n int) []Hash {
	qs := make([]Hash, n)
	for i := range qs {
		if i%2 == 0 && len(hs) > 0 {
			qs[i] = flipBits(rng, hs[rng.IntN(len(hs))], rng.IntN(41))
		} else {
			qs[i] = randomHash(rng)
		}
	}
	return qs
}

// sequentialRefs returns refs 0..n-1 offset by base.
func sequentialRefs(base uint64, n int) []uint64 {
	refs := make([]uint64, n)
	for i := range refs {
		refs[i] = base + uint64(i)
	}
	return refs
}

// checkQuery fails t unless x answers q at threshold exactly as BruteForce
// over want does, and returns the number of matches.
func checkQuery(t testing.TB, x *PDQIndex, want *pairs, q Hash, threshold int) int {
	t.Helper()
	got := x.Query(q, threshold)
	exp := BruteForce(want.hs, want.refs, q, threshold)
	if !slices.Equal(got, exp) {
		t.Fatalf("Query(%x, %d): %s", q, threshold, diffMatches(got, exp))
	}
	return len(got)
}

// checkThresholds is checkQuery at each of ths (ascending), comparing with
// one BruteForce at the largest: as its answer is sorted nearest first, the
// answer at a lower threshold is the prefix within that threshold. It
// returns the number of matches at each.
func checkThresholds(t testing.TB, x *PDQIndex, want *pairs, q Hash, ths []int) []int {
	t.Helper()
	all := BruteForce(want.hs, want.refs, q, ths[len(ths)-1])
	counts := make([]int, len(ths))
	for k, th := range ths {
		exp := all[:0:0]
		for _, m := range all {
			if m.Distance <= th {
				exp = append(exp, m)
			}
		}
		if got := x.Query(q, th); !slices.Equal(got, exp) {
			t.Fatalf("Query(%x, %d): %s", q, th, diffMatches(got, exp))
		}
		counts[k] = len(exp)
	}
	return counts
}

// diffMatches describes how got differs from want.
func diffMatches(got, want []PDQMatch) string {
	s := fmt.Sprintf("got %d matches, want %d", len(got), len(want))
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = fmt.Sprintf("%x/%d/d%d", got[i].Hash, got[i].Ref, got[i].Distance)
		}
		if i < len(want) {
			w = fmt.Sprintf("%x/%d/d%d", want[i].Hash, want[i].Ref, want[i].Distance)
		}
		if g != w {
			return s + fmt.Sprintf("; first difference at %d: got %q, want %q", i, g, w)
		}
	}
	return s
}

// checkIndex fails t unless x's tables are consistent and x holds exactly
// the pairs in want. Every test that changes an index ends with it.
func checkIndex(t testing.TB, x *PDQIndex, want *pairs) {
	t.Helper()
	x.wmu.Lock()
	defer x.wmu.Unlock()
	if err := x.check(want); err != nil {
		t.Fatal(err)
	}
}

// check verifies every invariant of the segments. The caller holds wmu.
func (x *PDQIndex) check(want *pairs) error {
	b, d := x.base, x.delta
	if got := x.Len(); got != len(want.hs) {
		return fmt.Errorf("Len() = %d, want %d", got, len(want.hs))
	}
	type pair struct {
		w   words
		ref uint64
	}
	count := make(map[pair]int)
	for i := range want.hs {
		count[pair{load(&want.hs[i]), want.refs[i]}]++
	}
	for _, i := range b.livePositions() {
		count[pair{b.hashes[i], b.refs[i]}]--
	}
	for _, i := range d.livePositions() {
		count[pair{d.hashes[i], d.refs[i]}]--
	}
	if f := x.frozen; f != nil {
		for _, i := range f.livePositions() {
			count[pair{f.hashes[i], f.refs[i]}]--
		}
		if n := popcount(f.dead); n != f.ndead {
			return fmt.Errorf("frozen delta: %d dead bits, ndead %d", n, f.ndead)
		}
	}
	for p, n := range count {
		if n != 0 {
			return fmt.Errorf("pair %x/%d stored %d times too few", p.w.hash(), p.ref, n)
		}
	}
	if n := popcount(b.dead); n != b.ndead {
		return fmt.Errorf("base: %d dead bits, ndead %d", n, b.ndead)
	}
	if n := popcount(d.dead); n != d.ndead {
		return fmt.Errorf("delta: %d dead bits, ndead %d", n, d.ndead)
	}
	if len(b.refs) != len(b.hashes) || len(d.refs) != len(d.hashes) {
		return fmt.Errorf("hashes and refs differ in length")
	}
	if len(b.hashes) > 0 {
		g := &b.geo
		if g.offset[g.chunks-1]+g.width[g.chunks-1] != 256 {
			return fmt.Errorf("base: chunks do not cover 256 bits: %+v", *g)
		}
		for c := range g.chunks {
			start, buckets := b.start[c], g.buckets(c)
			if len(start) != buckets+1 || start[0] != 0 || int(start[buckets]) != len(b.hashes) {
				return fmt.Errorf("base chunk %d: bad offsets table", c)
			}
			seen := make([]bool, len(b.hashes))
			for v := range buckets {
				if start[v] > start[v+1] {
					return fmt.Errorf("base chunk %d: offsets decrease at %d", c, v)
				}
				prev := -1
				for k := start[v]; k < start[v+1]; k++ {
					i := int(k)
					if c > 0 {
						i = int(b.pos[c][k])
					}
					if i <= prev || seen[i] || g.chunk(&b.hashes[i], c) != uint32(v) {
						return fmt.Errorf("base chunk %d bucket %d: entry %d misplaced", c, v, i)
					}
					prev, seen[i] = i, true
				}
			}
		}
	}
	for c := range deltaGeometry.chunks {
		n := 0
		for v, is := range d.bucket[c] {
			for k, i := range is {
				if int(i) >= len(d.hashes) || deltaGeometry.chunk(&d.hashes[i], c) != v || (k > 0 && i <= is[k-1]) {
					return fmt.Errorf("delta chunk %d bucket %d: entry %d misplaced", c, v, i)
				}
			}
			n += len(is)
		}
		if n != len(d.hashes) {
			return fmt.Errorf("delta chunk %d: %d positions for %d entries", c, n, len(d.hashes))
		}
	}
	return nil
}

func popcount(b bitset) int {
	n := 0
	for i := range len(b) * 64 {
		if b.has(uint32(i)) {
			n++
		}
	}
	return n
}

// newProbingIndex returns an index that probes the tables at every
// threshold and merges its delta once it has merge entries, so that small
// test data exercises what large data would.
func newProbingIndex(merge int) *PDQIndex {
	x := NewPDQIndex()
	x.probeOnly = true
	x.mergeMin = merge
	return x
}

// withChunks makes x give every sorted segment the given number of chunks,
// whatever its size: the geometries of 10 million entries on test data.
func withChunks(x *PDQIndex, chunks int) *PDQIndex {
	x.geometry = func(int) geometry { return makeGeometry(chunks) }
	return x
}
