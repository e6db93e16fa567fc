package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/node"
	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/console"
	"github.com/staydown/staydown/node/tokens"
)

// runNode runs the node with its HTTP API (node.Run); tests replace it to
// check the wiring around it.
var runNode = func(ctx context.Context, cfg *config.Node, log *slog.Logger) error {
	return node.Run(ctx, cfg, log, node.Options{API: func(n *node.Node, keys *tokens.Keeper) http.Handler {
		return api.NewServer(n, keys, log)
	}, Console: func(n *node.Node, keys *tokens.Keeper) http.Handler {
		return console.New(n, keys, log, console.Options{})
	}})
}

func (c *cli) runCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "run --dir D",
		Short: "Run the node in the foreground until SIGINT or SIGTERM",
		Long: `Run the node of directory D in the foreground. It logs to stderr at the
config's log_level (as JSON lines with --json) and shuts down cleanly on
SIGINT (Ctrl-C) or SIGTERM, exiting 0.`,
		Args: args("", 0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.config()
			if err != nil {
				return err
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
				return fmt.Errorf("log_level: %w", err)
			}
			opts := &slog.HandlerOptions{Level: level}
			var h slog.Handler = slog.NewTextHandler(c.stderr, opts)
			if c.json {
				h = slog.NewJSONHandler(c.stderr, opts)
			}
			log := slog.New(h)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runNode(ctx, cfg, log)
		},
	}
}
