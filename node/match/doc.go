// Package match holds the node's in-memory PDQ match index: [PDQIndex],
// which finds the stored PDQ hashes within a Hamming distance of a query. A
// ref is the caller's handle for what carried the hash (an attestation
// number, say).
//
// # Basics
//
// At start-up the node loads every stored PDQ hash with [PDQIndex.Build];
// afterwards its apply loop calls Add for each new hash and Remove for each
// retracted one, while HTTP handlers call Query. The index holds a
// multiset of (key, ref) pairs: adding a pair twice stores it twice, and
// Remove takes out one copy.
//
// Query's answer is exactly that of BruteForce (in the tests), the scan of
// every stored pair, at every threshold: same pairs, same order (distance,
// then hash bytes, then ref). The tests hold it to that on the reference
// implementation's multi-index-hashing data, on random banks with
// near-duplicate clusters, after adds, removes and merges, under a fuzzer,
// and at 10 million hashes in the benchmark's setup.
//
// # How a query works
//
// The index uses multi-index hashing (Norouzi, Punjani and Fleet, "Fast
// exact search in Hamming space with multi-index hashing", 2014). The 256
// bits are cut into m disjoint chunks, 12 to 16 of them, and for each chunk
// a table lists the entries by that chunk's value.
//
// Write the threshold t as s*m + a with 0 <= a < m. If a stored hash h is
// within t of the query q, then h is within s bits of q on one of chunks
// 0..a, or within s-1 bits on one of chunks a+1..m-1: otherwise the chunks
// would differ in at least (a+1)(s+1) + (m-a-1)s = t+1 bits in all. (This is
// the paper's refinement of the plain pigeonhole bound floor(t/m) for every
// chunk; at m = 16 and t = 32 it probes 392 values instead of 2,192.) So a
// query probes, in each chunk's table, every value within that chunk's
// radius of q's value there, and verifies each entry found (a candidate) by
// its full distance.
//
// Why the answer is exact:
//
//  1. Nothing wrong is returned: an entry is reported only after its full
//     distance to q is computed and found within t, and only if it is live
//     (not removed).
//  2. Nothing is missed: a live entry within t is, by the bound above,
//     within its radius of q on some chunk c. Its value there is among the
//     values probed in c's table, which lists every entry by its value, so
//     the probe reaches it and verification accepts it.
//  3. Nothing is reported twice: chunk c's table lists each entry once and
//     its probe values are distinct, so c reaches an entry at most once.
//     Across chunks an entry is reported only through the first chunk whose
//     probe reaches it: on a candidate that passed the distance check, the
//     query recomputes whether an earlier chunk's value lies within that
//     chunk's radius (claimedBefore). Entries in different segments (below)
//     are different entries.
//  4. When probing would cost more than reading every entry, the query
//     reads every entry instead, which is BruteForce.
//
// The results are then sorted as BruteForce sorts them.
//
// The first-chunk rule replaces the usual per-query visited set: it costs
// nothing for the candidates that fail the distance check (nearly all),
// where an epoch-stamped visited array needs 4 bytes per entry per
// concurrent query (40 MB at 10 million) and one more cache miss per
// candidate. Measured at 10 million hashes, threshold 31, on the
// development machine: 0.40 ms per query with the rule, 0.50 ms with the
// array.
//
// # Layout
//
// The bulk of the entries sit in a sorted segment, made by Build or by a
// merge and immutable but for a bitmap of removed entries: the hashes as
// [4]uint64 (32 bytes each) and the refs (8 bytes) in two arrays, ordered by
// chunk 0's value, so that chunk 0's table is just an offsets array and
// its buckets are runs of entries. Every other chunk of width w has an
// offsets array of 2^w + 1 uint32s and an array of uint32 positions,
// grouped by value. Entries added since then sit in a delta segment whose
// tables are Go maps from a 16-bit chunk value to a position list, cheap to
// append to; once the delta and the removed entries amount to more than
// max(65,536, 1/8 of the sorted segment), the writer folds them into a new
// sorted segment.
//
// The chunk count trades candidates against probes. Wider chunks hold fewer
// entries per value, but each probe is a cache miss in a bigger offsets
// table and there are more values within a radius. A sorted segment takes
// the fewest chunks (at least 12) whose widest chunk has no more values than
// the segment has entries: 16 chunks of 16 bits below 2^18 entries, 12
// chunks (four of 22 bits, eight of 21) from 2^22 on. Measured at 10 million
// hashes and threshold 31, per query on one core:
//
//	chunks  probes  candidates  time     index heap
//	    16     272      41,504  1.50 ms  958 MiB
//	    14     954      21,820  0.80 ms  896 MiB
//	    13   1,409      14,200  0.60 ms  883 MiB
//	    12   2,032       7,267  0.39 ms  929 MiB
//
// Eleven chunks (24-bit) would need 448 MiB of offsets alone.
//
// A query spends its time waiting for memory: nearly every bucket bound,
// position and candidate hash is a cache miss. So it takes each chunk in
// three passes (bucket bounds, then positions, then hashes), each a loop of
// independent loads that the processor overlaps; probing and verifying
// bucket by bucket measured 0.60 ms instead of 0.40.
//
// Build is a counting sort per chunk, split into a pass on the high half
// of the chunk's bits and one on the low half so that its writes stay in
// cache, the chunks spread over every core: 3 s for 10 million hashes.
//
// # Concurrency
//
// Query and Len hold a read lock (sync.RWMutex) for their whole run. Add,
// Remove and Build first take a writer mutex, so there is one writer at a
// time, then the write lock only to append an entry, set a removed bit or
// swap in a new segment. The slow part of Build and of a merge, building
// the sorted segment, runs under the writer mutex alone: only writers
// change segments, so the builder reads the old ones safely, and queries go
// on against them until the swap.
//
// With MergeInBackground (as the node's match index runs), a merge runs on
// its own goroutine without the writer mutex: the full delta is frozen
// (still searched, no longer added to), writers go on with a new delta,
// and the merged segment is swapped in with the writer mutex held only to
// remove from it again what was removed meanwhile.
//
// # Costs
//
// Measured on the development machine (2 cores, 24 GB, one core reading
// memory at about 6.8 GB/s; other builds ran on it too, so figures vary by
// 10 to 20%) with 10 million hashes, 10% of them in clusters of 10
// near-duplicates, by bench_test.go:
//
//   - Query at threshold 31: 0.40 ms on one core (2,500 queries/s), about
//     5,000 queries/s on both. BruteForce: 63 ms on one core (16/s), 25/s
//     on both; it reads 320 MB a query, so memory bandwidth bounds it.
//   - Larger thresholds probe more values within bigger radii: 1.5 ms at
//     39, 4 ms at 47, 13 ms at 55, 31 ms at 63, 72 ms at 71. From 72 on a
//     query scans every entry, about 8 ns each: 80 ms at 10 million,
//     holding the read lock throughout, so delaying Add. Callers serving
//     requests should cap the threshold.
//   - Memory: 929 MiB of heap for the index (hashes 305 MiB, refs 76,
//     positions 420, offsets 128); 1.38 GiB peak RSS for the benchmark,
//     which also keeps its own 381 MiB copy of the input.
//   - Build: 3 to 4 s. Add: about 5 microseconds, nearly all of it the
//     appends to the delta's 16 maps, under the write lock; 5 to 6 with its
//     share of the merges, adding a million hashes to an empty index.
//
// # Caveats
//
// A merge builds a whole new sorted segment: at 10 million entries it
// takes about as long as a Build, and the old and new segments are both in
// memory until the swap. Merging in place, the Add or Remove that triggers
// it waits that long: 4.9 to 7.1 s (median 5.3) with 1.25 million hashes
// added to 10 million, on the shared 2-core machine; in the background
// (MergeInBackground), the slowest Add of the same run waits 20 to 75 ms
// (median 24: the merge allocates beside it), and the merge itself runs
// beside the writer (BenchmarkPDQMergeStall10M). Removed entries keep
// their memory until the next merge or Build.
//
// The costs assume chunk values spread evenly, as they do for PDQ hashes
// of varied images. A bank holding many near-identical hashes (of blank
// or near-blank frames, say) makes queries near them slower, never wrong.
//
// Query scans when its cost model (probePlan.scanCheaper) says a scan is
// cheaper; the model's constant was measured on the development machine
// and changes only the time, never the answer.
package match
