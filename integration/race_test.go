//go:build race

package integration

// raceEnabled makes the harness build the binary under test with -race too.
const raceEnabled = true
