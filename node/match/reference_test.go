package match

import "fmt"

// Distance returns the Hamming distance between a and b: the number of bits
// in which they differ, 0..256.
func Distance(a, b Hash) int {
	wa, wb := load(&a), load(&b)
	return distance(&wa, &wb)
}

// BruteForce is the reference the index is held to: it compares q with
// every hs[i] and returns each (hs[i], refs[i]) within threshold, sorted
// like PDQIndex.Query. A negative threshold matches nothing. It panics if hs
// and refs differ in length.
func BruteForce(hs []Hash, refs []uint64, q Hash, threshold int) []PDQMatch {
	if len(hs) != len(refs) {
		panic(fmt.Sprintf("match: BruteForce: %d hashes but %d refs", len(hs), len(refs)))
	}
	qw := load(&q)
	var out []PDQMatch
	for i := range hs {
		w := load(&hs[i])
		if d := distance(&w, &qw); d <= threshold {
			out = append(out, PDQMatch{Hash: hs[i], Ref: refs[i], Distance: d})
		}
	}
	sortMatches(out)
	return out
}
