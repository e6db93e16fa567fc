package protocol

import (
	"errors"
	"fmt"
)

// Sync limits (SPEC.md, "Sync"). A peer that exceeds them is cut off.
const (
	// SyncProtocol is the libp2p protocol id of the sync stream.
	SyncProtocol = "/staydown/sync/1.0.0"
	// MaxSyncMessage bounds one length-delimited sync message in bytes.
	MaxSyncMessage = 4 << 20
	// MaxSyncRange bounds the entries one SyncRequest may ask for.
	MaxSyncRange = 4096
	// MaxSyncBatch bounds the entries in one SyncBatch.
	MaxSyncBatch = 1024
	// MaxSyncBatchBytes is what a server puts in one SyncBatch at most
	// (entries' bytes), so a batch always fits in MaxSyncMessage.
	MaxSyncBatchBytes = 1 << 20
	// MaxSyncHeads bounds the heads in one SyncHello; so many heads
	// (about 83 bytes each) fit in MaxSyncMessage.
	MaxSyncHeads = 40_000
)

// ErrForged: a peer served entries that are not a consecutive, well-formed
// piece of the log it was asked for, or that nothing authenticates. The
// peer, not the author, is at fault.
var ErrForged = errors.New("forged or malformed range")

// CheckRange checks entries served for author's log from seq from on,
// without state: each decodes, is of the federation, is by author at the
// expected seq, and links to the one before (entry i's prev is the id of
// entry i-1; the first entry's prev is for the store to check against its
// head). It then authenticates the range by signatures from the newest
// entry backwards: an entry whose own signature verifies vouches, through
// the prev links it signs, for every entry before it, signatures included.
// It returns the decoded entries and how many of them, from the first, are
// authenticated; entries after that are not to be stored (fetch them again
// later). raws are retained.
//
// In the common case that is one signature check for the whole range,
// plus one sha2-256 per entry (the ids), which is what makes catching up
// on a long log affordable.
func CheckRange(federation string, author AuthorKey, from uint64, raws [][]byte) ([]*Entry, int, error) {
	entries := make([]*Entry, len(raws))
	for i, raw := range raws {
		e, err := Decode(raw)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: entry %d of the range: %v", ErrForged, i, err)
		}
		if err := CheckFederationOf(federation, e); err != nil {
			return nil, 0, fmt.Errorf("%w: entry %d of the range: %v", ErrForged, i, err)
		}
		if e.Author != author || e.Seq() != from+uint64(i) {
			return nil, 0, fmt.Errorf("%w: entry %d of the range is %s seq %d, want %s seq %d", ErrForged, i, e.Author, e.Seq(), author, from+uint64(i))
		}
		if i > 0 && e.Prev() != entries[i-1].ID {
			return nil, 0, fmt.Errorf("%w: entry seq %d does not link to seq %d", ErrForged, e.Seq(), e.Seq()-1)
		}
		entries[i] = e
	}
	for n := len(entries); n > 0; n-- {
		if entries[n-1].Verify() == nil {
			return entries, n, nil
		}
	}
	if len(entries) == 0 {
		return entries, 0, nil
	}
	return nil, 0, fmt.Errorf("%w: no entry of the range (seq %d to %d) has a valid signature", ErrForged, from, from+uint64(len(entries))-1)
}
