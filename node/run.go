package node

import (
	"context"
	"log/slog"

	"github.com/staydown/staydown/config"
)

// Run starts the node described by cfg on opts and blocks until ctx is
// done, then shuts it down cleanly (see Close for the order).
func Run(ctx context.Context, cfg *config.Node, log *slog.Logger, opts Options) error {
	n, err := StartWith(ctx, cfg, log, opts)
	if err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("shutting down")
	if err := n.Close(); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}
