package matching

import (
	"bytes"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// processCPU is the CPU time (user and system) of the whole process, all
// threads: start-up builds on every core.
func processCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rss returns the process's resident set size and its anonymous part
// (VmRSS and RssAnon of /proc/self/status) in bytes: the anonymous part
// is the index's own memory, the rest mostly the store's mapped pages,
// which the kernel may drop.
func rss() (total, anon int64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	field := func(name string) int64 {
		_, v, ok := bytes.Cut(b, []byte("\n"+name+":"))
		if !ok {
			return 0
		}
		v, _, _ = bytes.Cut(v, []byte("\n"))
		kb, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(v), []byte("kB")))), 10, 64)
		if err != nil {
			return 0
		}
		return kb << 10
	}
	return field("VmRSS"), field("RssAnon")
}
