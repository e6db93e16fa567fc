package store

import (
	"bufio"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Prefetch asks the kernel to read the store file at path into the
// page cache, in file order, before a node builds its match indexes from the signal index.
// The index was written in random key order, so its pages lie scattered
// over the file and a cold scan reads them one at a time: at 10 million
// signals (a 2.3 GB store) the scans took 26 to 30 s after the file left
// the page cache, against 6 s to read the whole file in order
// (BenchmarkStartupPDQ with STAYDOWN_BENCH_STARTUP_COLD=1). It reads the
// file unless a sample of its pages shows it cached already, and not when
// it exceeds half of the memory available, where it would evict its own
// pages. Nothing it does can fail the start.
func Prefetch(path string, log *slog.Logger) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return
	}
	if avail := memAvailable(); avail > 0 && fi.Size() > avail/2 {
		log.Info("store larger than half the available memory: not prefetched", "bytes", fi.Size(), "available", avail)
		return
	}
	if resident(f, fi.Size()) {
		return
	}
	start := time.Now()
	buf := make([]byte, 8<<20)
	var n int64
	for {
		k, err := f.Read(buf)
		n += int64(k)
		if err != nil {
			break
		}
	}
	log.Info("store prefetched", "bytes", n, "took", time.Since(start).Round(time.Millisecond))
}

// resident reports whether nearly all of a sample of 256 pages of the
// file is in the page cache already.
func resident(f *os.File, size int64) bool {
	if int64(int(size)) != size {
		return false // a 32-bit platform and a file over 2 GiB: cannot map it whole
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return false
	}
	defer unix.Munmap(data)
	page := int64(os.Getpagesize())
	pages := (size + page - 1) / page
	vec := make([]byte, pages)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&data[0])), uintptr(len(data)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		return false
	}
	const sample = 256
	in := 0
	for i := range int64(sample) {
		if vec[i*pages/sample]&1 != 0 {
			in++
		}
	}
	return in >= sample*9/10
}

// memAvailable is MemAvailable of /proc/meminfo in bytes, 0 if unknown.
func memAvailable() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
