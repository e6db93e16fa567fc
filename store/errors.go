package store

import (
	"errors"

	"github.com/staydown/staydown/protocol/replica"
)

// Sentinel errors. Errors returned by this package wrap one of them, or one
// of protocol's (ErrGap, ErrChain in a Result), or an I/O error from bbolt;
// test with errors.Is. The wrapping text names the entry, author or row.
var (
	// ErrNotFound: no stored entry has the id asked for. The caller may
	// fetch it from a peer; nothing is wrong with the store.
	ErrNotFound = errors.New("not found")

	// ErrRule: the entry breaks a stateful rule of its author's own log
	// (a retraction of something that is not the author's earlier,
	// unretracted addition or allowlist entry; an update of something that
	// is not the author's earlier notice). The author signed it, so a peer
	// relaying it is not at fault, but it must never be stored or relayed.
	ErrRule = replica.ErrRule

	// ErrCorrupt: the file does not hold what this package wrote: a row
	// that does not decode, a log with a hole, an index that disagrees with
	// the logs. Indexes can be repaired with Rebuild; a damaged log cannot,
	// fetch it again from a peer into a fresh store.
	ErrCorrupt = errors.New("store corrupt")

	// ErrSchema: the file was written by a version of this package with a
	// different schema. Nothing was changed; run the matching binary.
	ErrSchema = errors.New("unsupported store schema")

	// ErrImport: ImportLegacy refused a side file: it holds a bucket the
	// store does not know or rows that fail Check, or the store already
	// holds other rows where the file's would go. Nothing was imported;
	// the operator decides which to keep (the file is left in place).
	ErrImport = errors.New("side file not imported")

	// ErrNoSpace: a write failed because the file could not grow or be
	// written: the disk is full (ENOSPC), a quota is reached (EDQUOT) or
	// the process's file-size limit (EFBIG). The transaction rolled back:
	// nothing of it is stored, nothing stored before is changed. The
	// error wraps the cause. Writes work again once space is freed
	// (Writable says whether the last write did).
	ErrNoSpace = errors.New("store cannot write: no space")

	// ErrWatchRef: a ref given with a watched signal was refused: not
	// CheckWatchRef's form, or one more than a signal may have
	// (MaxWatchRefs). Nothing was written.
	ErrWatchRef = errors.New("bad watch ref")
)
