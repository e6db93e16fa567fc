package node

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/staydown/staydown/config"
)

// Run starts the node described by cfg on opts and blocks until ctx is
// done, then shuts it down cleanly (see Close for the order). On SIGHUP
// it reads its API's TLS certificate and tokens again (Reload).
func Run(ctx context.Context, cfg *config.Node, log *slog.Logger, opts Options) error {
	n, err := StartWith(ctx, cfg, log, opts)
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			log.Info("SIGHUP: reloading the API's certificate and tokens")
			n.Reload() // logs what failed; the node serves on with what it had
			continue
		case <-ctx.Done():
		}
		break
	}
	log.Info("shutting down")
	if err := n.Close(); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}
