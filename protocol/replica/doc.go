// Package replica is the replica state machine of SPEC.md sections 5, 9
// and 10: the rules that decide what an entry means, written once. It is
// pure (no I/O, no clock, no goroutines), like the rest of protocol/: a
// caller hands it an entry and a read-only [View] of its replica, and it
// hands back a [Step] saying what the entry is and what it changes. The
// caller does the writing.
//
// Who calls it: the store, to apply (store.Apply, store.Append), to preview
// for the gossip validator ([Relay]), to rebuild and to check its indexes;
// the offline audit and the transparency report, over logs held in memory;
// the Python verifier mirrors it (integration/pyverify).
//
// # The rules, each written once
//
// | SPEC  | rule                                            | where                 |
// |-------|-------------------------------------------------|-----------------------|
// | 5.2   | seq and prev continue the author's log          | [Decide] (CheckNext)  |
// | 5.3   | a second entry at a seq is equivocation          | [Decide]              |
// | 9.2   | a retraction names an earlier own addition or    | [CheckTarget],        |
// |       | allow, not already retracted                     | [Decide]              |
// | 9.2   | a notice-update names an earlier own notice      | [CheckTarget]         |
// | 10    | attestation status precedence                    | [StatusOf]            |
// | 13    | what the gossip validator relays                 | [Relay]               |
//
// Stateless checks (shape, roster, role, signature: SPEC 2 to 4, 9.1) come
// first and are protocol.Decode, Roster.Check and Entry.Verify; Decide
// assumes the entry passed them.
//
// # The caller's duties, in order
//
//  1. Check the entry without state (Decode, Roster.Check, Verify).
//  2. Call [Decide] with a view of the replica as it stands, including the
//     entries of the same write batch decided before this one.
//  3. Act on the [Step]: store an Applied or Void entry in its log and make
//     its head the author's head; keep an Equivocation as evidence and
//     flag its author; store nothing for Duplicate, Gap and Rejected.
//  4. Derive the index rows of an Applied entry from the entry alone (a
//     Void entry gets none but its id), so that state stays a function of
//     the logs whatever order they arrived in.
//  5. After the commit, tell readers what changed: [Step.Effect].
package replica
