package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/staydown/staydown/config"
)

func TestRun(t *testing.T) {
	dir := initDir(t, "127.0.0.1:7001")
	tests := []struct {
		name   string
		args   []string
		node   func(ctx context.Context, cfg *config.Node, log *slog.Logger) error
		code   int
		stderr string
	}{
		{"clean shutdown", []string{"run", "--dir", dir},
			func(ctx context.Context, cfg *config.Node, log *slog.Logger) error {
				if cfg.Name != "nru" || ctx.Err() != nil {
					return errors.New("wrong config or a dead context")
				}
				log.Info("node started", "name", cfg.Name)
				log.Debug("below the default level")
				return nil
			}, exitOK, "level=INFO msg=\"node started\" name=nru\n"},
		{"JSON log", []string{"run", "--dir", dir, "--json"},
			func(ctx context.Context, cfg *config.Node, log *slog.Logger) error {
				log.Info("node started")
				return nil
			}, exitOK, `"level":"INFO","msg":"node started"}`},
		{"node fails", []string{"run", "--dir", dir},
			func(context.Context, *config.Node, *slog.Logger) error { return errors.New("listen: address in use") },
			exitError, "staydown: run: listen: address in use\n"},
		{"no dir", []string{"run"}, nil, exitError, "staydown: run: --dir: required"},
		{"not a node", []string{"run", "--dir", t.TempDir()}, nil, exitError, "config.toml: does not exist"},
		{"argument", []string{"run", "--dir", dir, "now"}, nil, exitError, `staydown: run: unexpected argument "now"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			runNode = func(ctx context.Context, cfg *config.Node, log *slog.Logger) error {
				called = true
				return tt.node(ctx, cfg, log)
			}
			orig := runNode
			t.Cleanup(func() { runNode = orig })
			r := staydown(tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("exit %d stderr %q, want %d and %q", r.code, r.stderr, tt.code, tt.stderr)
			}
			if called != (tt.node != nil) {
				t.Errorf("node run: %v", called)
			}
			if strings.Contains(r.stderr, "below the default level") {
				t.Error("debug message logged at level info")
			}
		})
	}
}
