package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/node/localfed"
)

func (c *cli) demoCommand() *cobra.Command {
	var basePort int
	var keep bool
	cmd := &cobra.Command{
		Use:   "demo [--dir D] [--base-port P] [--keep]",
		Short: "Run a local federation (a referral unit, two platforms) and show a hash crossing it",
		Long: `Create a federation of three nodes on loopback from embedded defaults (a
referral unit, nru-demo, and two platforms, platform-a and platform-b),
start them, publish a hash on the referral unit's node, show when each
platform can match it, retract it and show the retraction arrive. The
nodes keep running, with the commands to try against them printed, until
Ctrl-C.

Node directories (keys, stores, logs) go in a new temporary directory,
removed when the demo ends unless --keep (or the demo fails: then it is
kept for its node logs) and the directory's name is printed; or under
--dir D, which is left as it is.

Node i listens on 127.0.0.1:P+i (libp2p) and 127.0.0.1:P+100+i (HTTP API),
P being --base-port (default 4101; "make demo BASE_PORT=P" sets it). The
demo checks that these six ports are free before it starts.`,
		Args: args("", 0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if basePort < 1 || basePort > 65535-102 {
				return usagef("--base-port %d: want 1 to %d", basePort, 65535-102)
			}
			if err := localfed.CheckPorts(basePort, len(localfed.Default)); err != nil {
				if busy, ok := errors.AsType[*localfed.PortBusyError](err); ok {
					return fmt.Errorf("port %d on 127.0.0.1 is in use: pick another first port P with `make demo BASE_PORT=P` or `staydown demo --base-port P` (the demo uses P, P+1, P+2 and P+100 to P+102; now P is %d)", busy.Port, basePort)
				}
				return err
			}
			dir, temp := c.dir, c.dir == ""
			if temp {
				var err error
				if dir, err = os.MkdirTemp("", "staydown-demo-"); err != nil {
					return err
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			err := localfed.Demo(ctx, c.stdout, dir, basePort, os.Args[0])
			if errors.Is(err, context.Canceled) && ctx.Err() != nil {
				err = nil // Ctrl-C before the demo had shown all: an end like any other
			}
			if err != nil {
				return fmt.Errorf("%w (node logs are in %s)", err, display(dir))
			}
			switch {
			case !temp:
			case keep:
				fmt.Fprintf(c.stdout, "Kept the demo's directory (node keys, stores and logs): %s\n", display(dir))
			default:
				if err := os.RemoveAll(dir); err != nil {
					return fmt.Errorf("removing the demo's directory: %w", err)
				}
				fmt.Fprintf(c.stdout, "Removed the demo's directory %s (--keep keeps it).\n", display(dir))
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&basePort, "base-port", 4101, "first port: libp2p on P, P+1, P+2; API on P+100, P+101, P+102")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the temporary directory of the nodes (keys, stores, logs) when the demo ends")
	return cmd
}
