//go:build race

package vpdq

// raceEnabled is true under the race detector, which makes the hasher's
// Go code several times slower (ffmpeg's decoding is not affected).
const raceEnabled = true
