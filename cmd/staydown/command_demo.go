package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/node/localfed"
)

func (c *cli) demoCommand() *cobra.Command {
	var basePort int
	cmd := &cobra.Command{
		Use:   "demo [--dir D] [--base-port P]",
		Short: "Run a local federation (a referral unit, two platforms) and show a hash crossing it",
		Long: `Create a federation of three nodes on loopback from embedded defaults (a
referral unit, nru-demo, and two platforms, platform-a and platform-b),
start them, publish a hash on the referral unit's node, show when each
platform can match it, retract it and show the retraction arrive. The
nodes keep running, with the commands to try against them printed, until
Ctrl-C.

Node directories go under --dir (default: a new temporary directory).
Node i listens on 127.0.0.1:P+i (libp2p) and 127.0.0.1:P+100+i (HTTP API).`,
		Args: args("", 0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir := c.dir
			if dir == "" {
				var err error
				if dir, err = os.MkdirTemp("", "staydown-demo-"); err != nil {
					return err
				}
			}
			if basePort < 1 || basePort > 65535-102 {
				return usagef("--base-port %d: want 1 to %d", basePort, 65535-102)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := localfed.Demo(ctx, c.stdout, dir, basePort, os.Args[0]); err != nil {
				return fmt.Errorf("%w (node logs are in %s)", err, display(dir))
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&basePort, "base-port", 4101, "first port: libp2p on P, P+1, P+2; API on P+100, P+101, P+102")
	return cmd
}
