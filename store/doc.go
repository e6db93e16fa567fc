// Package store keeps every author's append-only log, and the indexes
// derived from the logs, in one bbolt file. It knows nothing of networks:
// the node decodes, checks against the roster and verifies signatures, then
// hands entries here.
//
// # Basics
//
// [Store.Apply] takes a batch of received entries and stores it in one write
// transaction, returning an [Outcome] per entry: Applied, Duplicate,
// Equivocation (the other entry is kept as [Evidence] and the author
// flagged), Gap (fetch the missing range first), Rejected (broken chain:
// nothing stored) or Void (a stateful rule is broken: the entry is stored,
// so the author's log goes on, but has no effect; [Store.VoidReason] says
// why). [Store.Append] is for the node's own log: it reads the
// head, builds the next entry and stores it under one write lock, so a node
// cannot fork its own log.
//
// Readers ask [Store.Match] for the additions carrying a signal, and the
// actioned takedown notices naming it; the status of each (active,
// retracted, disputed, allowlisted) is worked out at read time from the
// facts the indexes hold. [Store.Notices] lists notice threads;
// [Store.Arrivals] replays entries in the order this store logged them;
// [Store.Changes] pages through the signals they changed (the changes feed). [Store.Range] and [Store.Heads]
// serve the sync protocol; [Store.Check] verifies every invariant;
// [Store.Rebuild] derives the indexes again from the logs.
//
// State is a function of the logs alone. Every index row is derived from
// one entry, never from what else happens to be stored, so a store that
// received the logs in any interleaving holds the same rows as one that
// rebuilt them author by author (the rows of ids and attest may sit in
// other runs: see below). The only exception is which of two
// equivocating entries sits in the log and which is evidence: that is
// arrival order, and it is source data, not an index; so is the arrivals
// bucket, which Rebuild keeps (or, if damaged, renumbers in log order).
//
// The node keeps its own records here too, source data that no log
// implies: the checkpoints it witnessed ([Store.SaveCheckpoint],
// [Store.LatestCheckpoints]) and the platform's private watchlist with
// its alerts ([Store.Watch], [Store.Alerts]). Apply's after hook gets a
// [Writes] on its transaction, so that alerts for a batch commit with
// it. [Store.ImportLegacy] takes in the side files (checkpoints.db,
// watchlist.db) that nodes kept beside the store before.
//
// # File layout
//
// Integers are big-endian uint64 unless said otherwise; author is the
// 32-byte ed25519 key; id is the 34-byte entry id (sha2-256 multihash);
// sk is a signal key (protocol.SignalKey); len(x) is a uvarint.
//
// Source buckets (Rebuild keeps them):
//
//	meta                 "schema" -> version (5); "count" -> entries in all logs (derived, rewritten by Rebuild);
//	                     "members" -> fingerprint of the membership the indexes were derived under (SetMembers)
//	                     "feed" -> 16 random bytes: the changes feed's identity, made when the first checkpoint is issued
//	                     (changes.go); a new file gets a new one, so another file's checkpoints are refused
//	logs/<author>        seq -> raw signed entry    one nested bucket per author; appends go to the end
//	evidence             author || seq || id -> raw signed entry conflicting with the one logged at seq
//	arrivals             n -> id                   the n-th entry this store logged (local order; see Arrivals)
//
// The node's own buckets (source too; each holds nested buckets, rows
// and sequences as in the side files they replace):
//
//	checkpoints/latest     author -> the newest checkpoint note held of author's log, with every cosignature seen
//	checkpoints/conflicts  n -> a checkpoint note that contradicted a log or another checkpoint; n from 1, the bucket's sequence
//	watchlist/signals      sk -> 0x01 refs         a signal of content this platform hosts; then its refs (the platform's
//	                                               own references to its items), each a uvarint length and its bytes;
//	                                               0x01 alone: no ref, as every file before refs holds
//	watchlist/alerts       n -> alert record       JSON {raised_ms, watched, signal, distance (PDQ), entry, refs}: signals as
//	                                               TYPE:VALUE (protocol.FormatSignal), entry the id in hex, refs those of
//	                                               the watched signal when raised (absent: none); n from 1, the sequence
//	watchlist/alerted      id || sk -> n           addition id raised alert n for watched signal sk: once per pair, even if
//	                                               sk is unwatched and watched again
//	clock/arrived          n -> Unix ms            arrivals up to n (and after the row before) were logged at that time,
//	                                               one row per write transaction, never decreasing (arrivaltimes.go);
//	                                               Rebuild drops damaged rows
//
// No row of them travels as such: the node gossips and exports
// (protocol/export) checkpoints from its memory, and never the watchlist.
//
// Index buckets (Rebuild drops and refills them):
//
//	heads                author -> seq || id
//	ids (runs)           id -> author || seq || kind code (1 addition, 2 retraction, 3 dispute, 4 allow,
//	                           5 notice, 6 notice-update, 7 notice-reply, 8 amendment, 9 approval,
//	                           10 rotation, 11 peer-update)
//	additions            author || seq -> id || timestamp_ms || len(labels) {len(label) label} || case_ref
//	attest (runs)        len(sk) || sk || author || seq -> (empty)   one row per distinct signal of an addition
//	retractions          target id -> retraction id || keys || reason
//	disputes             target id || dispute id -> author || keys || reason
//	allow                len(sk) || sk || allow id -> author || len(category) category || reason
//	notices              addressee || notice id -> issuer
//	noticerefs           notice id || update or reply id -> kind code || author
//	noticesigs           len(sk) || sk || notice id -> (empty)     one row per distinct signal a notice names
//	void                 id -> why                 a logged entry without effect (SPEC 9.2, 12.5)
//	membership           author || seq -> id       every logged membership entry, void ones too (SPEC 12.2)
//	vpdqframes           len(sk) || sk || author || seq -> the vpdq value (SPEC 7.6)   one row per vpdq signal of an
//	                                               addition: its key is a digest, and matching needs the frames (VPDQVideos)
//
// keys in retractions and disputes are the index keys of the signals the
// entry names, in its order: len(keys) {len(sk) sk}; none means all of its
// target's (SPEC 6.2, 6.3).
//
// The signal key's length leads so that a prefix scan for one key cannot
// run into a longer key that starts with it.
//
// Every row costs its page a rewrite when the transaction commits, so where
// a key can be a log position (author || seq) rather than an entry id, it
// is: a batch of one log then writes its additions rows side by side, a
// few pages, instead of one random page of a large file per entry. Only
// ids (keyed by id, for Get and the duplicate check), attest (keyed by
// signal) and the rows that name other entries by id take random keys.
//
// Those two grow with every entry, so they are kept as sorted runs
// (runs.go): the bucket ids (and attest) holds nested buckets, one per
// run, named by an 8-byte run number, each run's bucket sequence its row
// count; ids.merge (and attest.merge) holds the state of a merge that
// spans transactions ("inputs", "output", "last"), whose output run is not
// read until the merge ends. A row is in exactly one live run; a read
// looks in each (a few per tier of 4x size). A catching-up node then
// writes about 1 KB per entry instead of about 7 KB at a million entries.
//
// Schema 1 keyed additions and ended attest keys by id and had no
// noticesigs or arrivals; schema 3 kept ids and attest as plain buckets;
// schema 4 had no membership index and judged no entry against a
// membership; schema 5 keyed url signals by the URL as the entry carries
// it, not by its v2 normal form (SPEC 7.4), and so did the watchlist;
// schema 6 kept no signal keys in retractions and disputes rows (SPEC
// 6.2, 6.3); schema 7 had no vpdqframes index. Open rebuilds the indexes of such a file once, in one transaction
// (numbering a schema 1 file's arrivals in log order; re-deriving a
// schema 5 file's watchlist url keys). The node's own
// buckets came later without a schema change: Open creates them, empty,
// in a file that lacks them.
//
// # Caveats
//
// Entries and byte slices returned by the store are copies the caller owns:
// bbolt's slices die with their transaction, and protocol.Decode retains its
// input.
//
// One write transaction runs at a time, store-wide: Apply and Append queue
// behind each other. Batch received entries into large Apply calls; each
// write transaction costs an fsync, and one per entry manages only tens
// per second on a large file. Reads run concurrently with the writer.
// Callbacks (Append's build, Range's fn) run inside a transaction and must
// not call the Store.
//
// The file never shrinks: bbolt reuses freed pages but does not return
// them. Rebuild frees and reallocates every index page, in one transaction
// that holds them all in memory until it commits. To reclaim space,
// compact offline (bbolt compact) while the node is stopped.
//
// A damaged index is repaired by Rebuild. A damaged log is not: Check and
// Rebuild report it (ErrCorrupt), and the cure is a fresh store filled from
// peers. Rebuild also refuses to move a head backwards, since a node that
// forgot its newest entry would sign a different one for the same seq.
//
// A file another process has open cannot be opened: Open gives up after
// one second.
package store
