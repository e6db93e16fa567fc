//go:build linux

package store

import (
	"os"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// ReleaseMapped tells the kernel that the pages of the store file mapped
// into this process are not needed now (madvise MADV_DONTNEED). bbolt maps
// the whole file read-only and shared: after a scan of a large index the
// pages read stay counted in the process's resident set although they are
// only a copy of the file, which the kernel can drop and read again. The
// mapping stays valid; pages come back on the next access. It runs inside
// a read transaction, so bbolt cannot remap the file meanwhile.
func (s *Store) ReleaseMapped() error {
	return s.db.View(func(*bolt.Tx) error { return s.dontNeed() })
}

// dontNeed is ReleaseMapped's madvise. The caller holds a read
// transaction: while one is open bbolt cannot remap the file, so the
// mapping's address and size stay what they are.
func (s *Store) dontNeed() error {
	fi, err := os.Stat(s.db.Path())
	if err != nil {
		return err
	}
	info := s.db.Info()
	size := uintptr(fi.Size()) &^ uintptr(os.Getpagesize()-1)
	if size == 0 {
		return nil
	}
	if _, _, errno := unix.Syscall(unix.SYS_MADVISE, info.Data, size, unix.MADV_DONTNEED); errno != 0 {
		return errno
	}
	return nil
}
