package matching

import (
	"time"

	"golang.org/x/sys/unix"
)

// threadCPU is the CPU time (user and system) of the calling thread.
func threadCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
