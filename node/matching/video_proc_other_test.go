//go:build !linux

package matching

import "time"

// processCPU is 0 where the process's CPU time is not read (Linux only).
func processCPU() time.Duration { return 0 }

// rss is 0 where /proc/self/status is not read (Linux only).
func rss() (total, anon int64) { return 0, 0 }
