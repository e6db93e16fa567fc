package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/protocol"
)

func (c *cli) initCommand() *cobra.Command {
	o := config.InitOptions{}
	var role string
	cmd := &cobra.Command{
		Use:   "init --dir D --name NAME --role ROLE [--listen MULTIADDR ...] [--announce MULTIADDR ...] [--api HOST:PORT] [--roster FILE | --genesis FILE --bootstrap MULTIADDR ...] [--federation NAME]",
		Short: "Create a node directory and print its roster block",
		Long: `Create a node directory: its author key (signs its log), its libp2p key,
its API token and config.toml. Nothing is ever overwritten.

Prints the node's [[member]] roster block, and nothing else, on stdout, so
that

    staydown init --dir nodes/nru --name nru --role referral >> roster.toml

builds the genesis roster of a new federation: every founding member
needs every block.

A node that joins a running federation is given the federation's genesis
file (--genesis: copied into D as genesis.toml, which config.toml names)
and the address of at least one member's node (--bootstrap, ending in
/p2p/PEER_ID, as "staydown status" on that member lists it). Its block
goes to a voting member, who proposes its admission with
"staydown member propose admit --block FILE"; once enough members approve,
the new node is a member.

The block's addrs are where peers dial this node: --announce (repeat for
several), or by default the --listen addresses. A node that listens on
every interface (--listen /ip4/0.0.0.0/tcp/4001) must announce the address
peers reach it at (its public IP or DNS name: /ip4/203.0.113.5/tcp/4001,
/dns4/node.example.org/tcp/4001); behind NAT, the forwarded port; the
firewall must let that TCP port in.

Defaults: --listen ` + config.DefaultListen + `, --api ` + config.DefaultAPI + `,
--roster ` + config.DefaultRoster + ` (relative to --dir unless absolute),
--federation ` + config.DefaultFederation + `. The API must be on loopback (edit
config.toml to expose it).`,
		Args: args("", 0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case c.dir == "":
				return needFlag("dir", "the directory to create the node in")
			case o.Name == "":
				return needFlag("name", "the member name, e.g. nru-demo")
			case role == "":
				return needFlag("role", "referral, platform, auditor or access")
			}
			if err := config.CheckName(o.Name); err != nil {
				return fmt.Errorf("--name: %w", err)
			}
			r, err := protocol.ParseRole(role)
			if err != nil {
				return usagef("--role: %s is not a role: use referral, platform, auditor or access", short(role))
			}
			o.Dir, o.Role = c.dir, r
			if o.Genesis != "" {
				if cmd.Flags().Changed("roster") {
					return usagef("--roster and --genesis: give one (--genesis copies the federation's genesis into the node's directory and names it as the roster)")
				}
				o.Roster = ""
			}
			_, block, err := config.Init(o)
			if err != nil {
				return err
			}
			fmt.Fprint(c.stdout, block)
			roster := o.Roster
			if cfg, err := config.Load(c.dir); err == nil {
				roster = cfg.RosterPath
			}
			fmt.Fprintf(c.stderr, "created node %s (%s) in %s\n", o.Name, r, display(c.dir))
			if o.Genesis == "" {
				fmt.Fprintf(c.stderr, "append the block above to the roster (%s) of every member, this one included; then start the node with: staydown run --dir %s\n", display(roster), display(c.dir))
				return nil
			}
			fmt.Fprintf(c.stderr, "it joins federation %s from the genesis copied to %s\n", o.Federation, display(roster))
			fmt.Fprintf(c.stderr, "next: send the block above to a voting member of the federation, who proposes this node's admission with\n")
			fmt.Fprintf(c.stderr, "    staydown member propose admit --dir THEIR_DIR --block FILE    (FILE: the block above)\n")
			fmt.Fprintf(c.stderr, "start this node with: staydown run --dir %s; once enough voting members approve its admission (staydown member approve), the federation lets it in and it catches up\n", display(c.dir))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Name, "name", "", "member name: 1 to 64 of a-z, 0-9, '-', '_', '.'")
	f.StringVar(&role, "role", "", "referral, platform, auditor or access")
	f.StringSliceVar(&o.Listen, "listen", []string{config.DefaultListen}, "libp2p multiaddr to listen on (repeat, or separate with commas)")
	f.StringSliceVar(&o.Announce, "announce", nil, "multiaddr peers dial this node at, for the roster block (repeat; default: the --listen addresses)")
	f.StringVar(&o.API, "api", config.DefaultAPI, "HOST:PORT of the HTTP API (loopback)")
	f.StringVar(&o.Roster, "roster", config.DefaultRoster, "roster file, relative to --dir unless absolute")
	f.StringVar(&o.Federation, "federation", config.DefaultFederation, "federation name, the same on every node")
	f.StringVar(&o.Genesis, "genesis", "", "the genesis file of the federation to join, copied into the directory (instead of --roster)")
	f.StringSliceVar(&o.Bootstrap, "bootstrap", nil, "a member's node to dial first: MULTIADDR/p2p/PEER_ID (repeat, or separate with commas)")
	return cmd
}
