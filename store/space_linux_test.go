package store

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/staydown/staydown/protocol"
)

// limitFileSize lowers this process's file-size limit (RLIMIT_FSIZE) to
// n bytes until the test ends: a write past it fails with EFBIG (the Go
// runtime ignores SIGXFSZ unless asked to deliver it). The limit is the
// process's: the test must not run in parallel with others.
func limitFileSize(t *testing.T, n int64) (raise func()) {
	t.Helper()
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: uint64(n), Max: old.Max}); err != nil {
		t.Fatal(err)
	}
	raised := false
	raise = func() {
		if raised {
			return
		}
		raised = true
		if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(raise)
	return raise
}

// TestFullDiskLosesNothing: a real bbolt file that cannot grow (the
// file-size limit, as a full disk) fails the commit with ErrNoSpace
// wrapping the cause, marks the store not writable and tells the
// watcher; nothing committed before is lost, and once the file can grow
// the same batch commits and the store is writable again (#12 item 11).
func TestFullDiskLosesNothing(t *testing.T) {
	s, a := mustOpen(t), newAuthor(t, 1)
	var told []error
	s.WatchWrites(func(err error) { told = append(told, err) })
	s.mustApply(Applied, a.next(addition(shaN(0))))
	fi, err := os.Stat(s.path)
	if err != nil {
		t.Fatal(err)
	}
	raise := limitFileSize(t, fi.Size())
	count := func() uint64 {
		n, err := s.Count()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	var failed []*protocol.Entry
	for i := 0; failed == nil; i++ {
		if i > 1000 {
			t.Fatalf("%d batches stored under a file-size limit of %d bytes", i, fi.Size())
		}
		batch := make([]*protocol.Entry, 50)
		for j := range batch {
			batch[j] = a.next(addition(shaN(uint64(1 + i*50 + j))))
		}
		before := count()
		if _, err := s.Apply(batch); err != nil {
			if !errors.Is(err, ErrNoSpace) {
				t.Fatalf("apply past the file-size limit: %v, want ErrNoSpace", err)
			}
			if got := count(); got != before {
				t.Fatalf("a failed commit changed the count from %d to %d", before, got)
			}
			failed = batch
		}
	}
	if s.Writable() || s.NoSpaceFailures() != 1 || len(told) != 1 || !errors.Is(told[0], ErrNoSpace) {
		t.Fatalf("after a failed commit: writable %v, failures %d, watcher told %v", s.Writable(), s.NoSpaceFailures(), told)
	}
	stored := count()
	raise()
	s.mustApply(Applied, failed...)
	if !s.Writable() || len(told) != 2 || told[1] != nil {
		t.Fatalf("after a commit with room: writable %v, watcher told %v", s.Writable(), told)
	}
	s.mustReopen()
	if got, want := count(), stored+uint64(len(failed)); got != want {
		t.Fatalf("reopened: %d entries, want %d", got, want)
	}
}

// TestProbeFindsRoom: Probe fails while the file cannot grow and
// succeeds, making the store writable, once it can.
func TestProbeFindsRoom(t *testing.T) {
	s := mustOpen(t)
	// Below the file's size: every page write fails (the os package's
	// error, not bbolt's text, this time).
	raise := limitFileSize(t, 0)
	if err := s.Probe(time.UnixMilli(t0)); !errors.Is(err, ErrNoSpace) || !errors.Is(err, syscall.EFBIG) || s.Writable() {
		t.Fatalf("probe with a file-size limit of 0: %v (writable %v), want ErrNoSpace wrapping EFBIG", err, s.Writable())
	}
	raise()
	if err := s.Probe(time.UnixMilli(t0)); err != nil || !s.Writable() {
		t.Fatalf("probe with room: %v (writable %v)", err, s.Writable())
	}
}
