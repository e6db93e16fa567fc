//go:build !race

package vmatch

const raceEnabled = false
