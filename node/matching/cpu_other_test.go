//go:build !linux

package matching

import "time"

// threadCPU is 0 where the thread's CPU time is not read (Linux only).
func threadCPU() time.Duration { return 0 }
