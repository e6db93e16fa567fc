// Package integration holds tests that build the real staydown binary,
// start several nodes as separate processes on loopback and drive them
// with the CLI, as a user would. Every wait is bounded; no test assumes that
// gossip delivers a message it did not see delivered.
package integration
