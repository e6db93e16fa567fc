//go:build race

package vmatch

// raceEnabled is true under the race detector, which makes the vPDQ
// hasher's Go code several times slower.
const raceEnabled = true
