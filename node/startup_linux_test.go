package node

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// dropCached asks the kernel to drop the page cache's copy of the file at
// path (its clean pages; nothing else is touched).
func dropCached(b *testing.B, path string) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		b.Fatal(err)
	}
}
