//go:build !race

package vpdq

const raceEnabled = false
