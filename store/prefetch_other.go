//go:build !linux

package store

import "log/slog"

// Prefetch is a Linux-only hint (prefetch_linux.go).
func Prefetch(path string, log *slog.Logger) {}
