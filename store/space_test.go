package store

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"
)

// TestNoSpaceClassified: the errors bbolt returns when the file cannot be
// written or grown for lack of room are ErrNoSpace, whichever way bbolt
// wrapped the errno; other errors are not (#12 item 11).
func TestNoSpaceClassified(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		// A page write or an fsync: the os package's error, as bbolt returns it.
		{&fs.PathError{Op: "write", Path: "staydown.db", Err: syscall.ENOSPC}, true},
		{fmt.Errorf("commit: %w", &fs.PathError{Op: "write", Path: "staydown.db", Err: syscall.EDQUOT}), true},
		{&fs.PathError{Op: "sync", Path: "staydown.db", Err: syscall.ENOSPC}, true},
		// Growing the file: bbolt formats the cause with %s.
		{fmt.Errorf("file resize error: %s", &fs.PathError{Op: "truncate", Path: "staydown.db", Err: syscall.EFBIG}), true},
		{fmt.Errorf("file sync error: %s", syscall.ENOSPC), true},
		{&fs.PathError{Op: "write", Path: "staydown.db", Err: syscall.EIO}, false},
		{errors.New("database not open"), false},
	} {
		if got := noSpace(tc.err); got != tc.want {
			t.Errorf("noSpace(%q) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
