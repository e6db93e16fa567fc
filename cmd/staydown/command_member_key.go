package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/node"
	"github.com/staydown/staydown/node/api"
)

// memberRotateKeyCommand is `staydown member rotate-key`.
func (c *cli) memberRotateKeyCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-key --dir D",
		Short: "Rotate this member's author key (the node must be stopped)",
		Long: `Rotate the author key of the node of --dir, which must be stopped: sign,
with the current key, a rotation entry naming a new key as the last entry
of the current key's log, and make the new key author.key (the old one is
kept beside it, as author.key.old-<key>, so that notice details sealed to
it stay readable). No vote is needed: the old key's signature is the
member's word (SPEC 12.4). Start the node again: peers learn of the
rotation by sync, and the member's log goes on under the new key.

A stolen key cannot be rotated away by its owner alone (the thief could
rotate it too): ask the members to revoke it instead, with a new key made
by "staydown member new-key".`,
		Args: args("", 0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.config()
			if err != nil {
				return err
			}
			r, err := node.RotateKey(cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(c.stdout, "Rotated: the log of %s (seq %d, entry %s) ends with a rotation to\n  %s\nwhich is author.key now (the old key is kept as author.key.old-%s).\nStart the node (staydown run --dir %s): peers learn of the rotation when it syncs.\n",
				r.Old, r.Entry.Seq(), r.Entry.ID, r.New, r.Old.String()[:16], c.dir)
			return err
		},
	}
}

// memberNewKeyCommand is `staydown member new-key`.
func (c *cli) memberNewKeyCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "new-key --dir D",
		Short: "Make a new author key for a revocation to name (author.key.next)",
		Long: `Make a fresh author key in author.key.next of the node of --dir and print
its public key. When this member's key is stolen, give that public key
to a voting member, who proposes:

    staydown member propose revoke NAME --after-seq N --new-key KEY

Once the revocation passes, the node takes author.key.next as its author
key at its next start. Nothing is overwritten: an existing
author.key.next is reported, not replaced.`,
		Args: args("", 0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.config()
			if err != nil {
				return err
			}
			k, err := node.NewKey(cfg)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(c.stdout, k)
			return err
		},
	}
}

// memberAnnounceCommand is `staydown member announce`.
func (c *cli) memberAnnounceCommand() *cobra.Command {
	var addrs []string
	cmd := &cobra.Command{
		Use:   "announce --dir D [--addr MULTIADDR]...",
		Short: "Announce this node's peer ID and addresses to the federation",
		Long: `Publish a peer update (SPEC 12.4): this member's node is now the one of
--dir (its peer ID, from node.key) at the addresses given, or, with none,
at the addresses it listens on. No vote is needed. Run it after giving
the node a new node.key, or when it moves: the other nodes dial the new
addresses, and let the new peer ID in, once they hold the update.`,
		Args: args("", 0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := api.PeerRequest{Addrs: addrs}
			if err := req.Check(); err != nil {
				return err
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			var p api.PeerAnnounced
			if err := cl.call(cmd.Context(), http.MethodPost, "/v1/members/peer", req, &p); err != nil {
				return err
			}
			if c.json {
				return c.printJSON(p)
			}
			_, err = fmt.Fprintf(c.stdout, "announced  peer %s\n           addresses %s\n           entry %s\n", p.PeerID, strings.Join(p.Addrs, ", "), p.ID)
			return err
		},
	}
	cmd.Flags().StringSliceVar(&addrs, "addr", nil, "a multiaddr to be dialled at (repeat; none: the node's listen addresses)")
	return cmd
}
