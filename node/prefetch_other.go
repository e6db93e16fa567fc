//go:build !linux

package node

import "log/slog"

// prefetchStore is a Linux-only hint (prefetch_linux.go).
func prefetchStore(path string, log *slog.Logger) {}
