//go:build race

package match

// raceEnabled is true under the race detector, which makes the brute
// force the index tests check against several times slower.
const raceEnabled = true
