package match

import (
	"math"
	"math/bits"
)

// A segment cuts the 256 bits of a hash into between minChunks and
// maxChunks disjoint chunks, each with a table from the chunk's value to the
// entries holding that value there. Fewer, wider chunks mean fewer
// candidates per probe but more probes and bigger tables; geometryFor
// picks the count from the number of entries.
const (
	minChunks = 12
	maxChunks = 16
)

// geometry says where each chunk lies: chunk c is bits offset[c] up to
// offset[c]+width[c] of the hash, counting from the low bit of its first
// little-endian word. Wider chunks come first.
type geometry struct {
	chunks int
	width  [maxChunks]uint
	offset [maxChunks]uint
}

func makeGeometry(chunks int) geometry {
	g := geometry{chunks: chunks}
	w, wider := 256/uint(chunks), 256%chunks
	off := uint(0)
	for c := range chunks {
		g.width[c] = w
		if c < wider {
			g.width[c]++
		}
		g.offset[c] = off
		off += g.width[c]
	}
	return g
}

// geometryFor returns the geometry for a sorted segment of n entries: the
// fewest chunks such that no chunk has more values than there are entries.
// With fewer chunks the probes (cache misses in ever bigger tables) would
// outweigh the candidates they save. doc.go gives the figures.
func geometryFor(n int) geometry {
	for chunks := minChunks; chunks < maxChunks; chunks++ {
		if w := (256 + chunks - 1) / chunks; 1<<w <= n {
			return makeGeometry(chunks)
		}
	}
	return makeGeometry(maxChunks)
}

func (g *geometry) buckets(c int) int { return 1 << g.width[c] }

// chunk returns the value of chunk c of w.
func (g *geometry) chunk(w *words, c int) uint32 {
	off, width := g.offset[c], g.width[c]
	i, s := off>>6, off&63
	v := w[i] >> s
	if s+width > 64 {
		v |= w[i+1] << (64 - s)
	}
	return uint32(v) & (1<<width - 1)
}

// probePlan says how far from the query's value each chunk's table is
// probed for one threshold t, by the pigeonhole principle as refined by
// Norouzi et al. (2014): with m chunks, write t = s*m + a,
// 0 <= a < m. If chunks 0..a each differed from the query in more than s
// bits and every later chunk in more than s-1, the hashes would differ in
// at least (a+1)(s+1) + (m-a-1)s = t+1 bits. So a hash within t of the
// query is within s bits of it on one of chunks 0..a or within s-1 on a
// later one, and probing the values within those radii finds it.
type probePlan struct {
	radius [maxChunks]int // -1: the chunk is not probed
	probes float64        // table lookups
	cands  float64        // candidates expected if chunk values were uniform
}

func (g *geometry) plan(threshold, entries int) probePlan {
	threshold = min(threshold, 256)
	s, a := threshold/g.chunks, threshold%g.chunks
	var p probePlan
	for c := range g.chunks {
		r := s - 1
		if c <= a {
			r = s
		}
		r = min(r, int(g.width[c]))
		p.radius[c] = r
		n := 0.0
		for k := 0; k <= r; k++ {
			n += binomial(int(g.width[c]), k)
		}
		p.probes += n
		p.cands += n * float64(entries) / float64(g.buckets(c))
	}
	return p
}

func binomial(n, k int) float64 {
	lg := func(x int) float64 { v, _ := math.Lgamma(float64(x + 1)); return v }
	return math.Round(math.Exp(lg(n) - lg(k) - lg(n-k)))
}

// scanCheaper reports whether comparing the query with each of n entries
// costs less than following plan p. A probe or a candidate costs a cache
// miss, a scanned entry a sequential read of 32 bytes: measured on the
// development machine (doc.go), a miss costs about as much as scanRatio
// entries.
func (p *probePlan) scanCheaper(n int) bool {
	return float64(n) < scanRatio*(p.probes+p.cands)
}

const scanRatio = 5

// eachProbe calls probe with every value within radius r of v in a chunk of
// the given width, enumerating the flip masks of k bits in increasing order
// for k = 0..r (Gosper's hack).
func eachProbe(v uint32, width uint, r int, probe func(v uint32)) {
	probe(v)
	for k := 1; k <= r; k++ {
		for m := uint32(1)<<k - 1; m < 1<<width; {
			probe(v ^ m)
			low := m & -m
			next := m + low
			m = next | ((next^m)>>2)>>bits.TrailingZeros32(low)
		}
	}
}

// claimedBefore reports whether an earlier chunk's probe also reaches h. A
// hash may be reached through several chunks; it is reported only through
// the first. This needs no per-query visited set, and costs nothing for the
// candidates that fail the distance check, which are nearly all.
func (g *geometry) claimedBefore(p *probePlan, h, q *words, c int) bool {
	for j := range c {
		if r := p.radius[j]; r >= 0 && bits.OnesCount32(g.chunk(h, j)^g.chunk(q, j)) <= r {
			return true
		}
	}
	return false
}
