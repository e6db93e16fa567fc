//go:build !linux

package node

import "testing"

func dropCached(b *testing.B, path string) { b.Skip("STAYDOWN_BENCH_STARTUP_COLD needs Linux") }
