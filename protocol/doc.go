// Package protocol is the Staydown log format: entries, payloads, signals,
// labels, roles, the roster and the chain rules. SPEC.md is normative; this
// package is its reference implementation.
//
// The package is pure: no I/O, no clocks, no randomness, no goroutines.
// Time and keys come in as arguments. The node does the I/O.
//
// # Basics
//
// An author appends to its log with [Sign], which returns an [Entry] whose
// Raw bytes are what is stored and gossiped, forever, byte for byte. A
// receiver calls [Decode] (structure, canonical encoding, payload shape),
// [Roster.Check] (author known, role may write the payload), [Entry.Verify]
// (signature) and, against its head for that author, [CheckNext] (chain).
//
// # Caveats
//
// [Decode] retains the slice it is given: pass bytes you own (a value read
// from bbolt must be copied first, it dies with its transaction).
package protocol
