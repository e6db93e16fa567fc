package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/node"
	"github.com/staydown/staydown/store"
)

func (c *cli) storeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store check|restore",
		Short: "Check a stopped node's store file, or rebuild it from the federation",
		Args:  args("", 0, 0),
	}
	cmd.AddCommand(c.storeCheckCommand(), c.storeRestoreCommand())
	return cmd
}

func (c *cli) storeCheckCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "check --dir D",
		Short: "Check every invariant of a stopped node's store",
		Long: `Check the store of the node of --dir, which must be stopped (a running
node holds its store locked): every log contiguous and chained to its
newest entry, whose signature is checked; every index row matching the
logs; the evidence, the arrivals and the node's own rows. A damaged file
(a page that does not hold what it should, a file cut short) is reported,
not a crash.

Exit 0 when everything holds; 1 when the store is damaged or does not
hold what the node wrote (the message says what); 2 when it cannot be
read at all.`,
		Args: args("", 0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.config()
			if err != nil {
				return err
			}
			start := time.Now()
			st, err := store.Open(cfg.StorePath)
			if err != nil {
				return c.storeDamage(err, "(stop the node first: a running node holds its store locked)")
			}
			defer st.Close()
			if err := st.Check(); err != nil {
				return c.storeDamage(err, "")
			}
			if r, ok, err := st.Restored(); err != nil {
				return c.storeDamage(err, "")
			} else if ok && !r.Confirmed {
				fmt.Fprintf(c.stdout, "Restored from %d of the %d members' nodes needed: the node's own head is not confirmed yet (it publishes once enough have served it).\n", len(r.From), r.Needed)
			}
			n, err := st.Count()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(c.stdout, "Store of %s holds: %d entries, every invariant checked in %v.\n",
				filepath.Base(cfg.Dir), n, time.Since(start).Round(time.Millisecond))
			return err
		},
	}
}

// storeDamage reports a store that does not hold what it should: exit 1
// when it is damaged, else the error (exit 2) with hint.
func (c *cli) storeDamage(err error, hint string) error {
	if errors.Is(err, store.ErrCorrupt) {
		fmt.Fprintf(c.stdout, "Store damaged: %s\nRebuild it from the federation's peers (the damaged file is kept): staydown store restore --dir %s\n", printable(err.Error()), display(c.dir))
		c.code = exitNoMatch
		return nil
	}
	if hint != "" {
		return fmt.Errorf("%w %s", err, hint)
	}
	return err
}

func (c *cli) storeRestoreCommand() *cobra.Command {
	var ro node.RestoreOptions
	cmd := &cobra.Command{
		Use:   "restore --dir D",
		Short: "Rebuild a stopped node's store, its own log included, from its peers",
		Long: `Rebuild the store of the node of --dir, which must be stopped, from the
other members' nodes: every peer holds a full replica, this node's own log
included. The node's keys (node.key) get it admitted; every entry is
checked as sync checks it (SPEC 16.3). The genesis comes from the node's
directory, the rest of the membership from the membership entries synced.

It waits up to --timeout for every member's node it can reach, and needs
--min-peers of them (default: a majority of the other members) to have
served their whole replica: an entry this node signed just before the
damage may have reached only some peers, and signing again at its seq
would be an equivocation every peer flags (SPEC 5.3, 16.7). With fewer,
it changes nothing and says how many answered; --unconfirmed installs
what it got anyway, and the node then serves matches but refuses to
publish until enough peers have served it.

The damaged file is moved aside to store.db.damaged-<UTC time>, never
deleted. A store that opens and checks clean is refused unless --force.`,
		Args: args("", 0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.config()
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			rep, err := restoreStore(cmd.Context(), cfg, log, ro)
			if err != nil {
				return err
			}
			if c.json {
				return c.printJSON(node.StatusOf(rep.Restored))
			}
			fmt.Fprintf(c.stdout, "Restored %d entries from %s (%d needed); this node's own log ends at seq %d.\n", rep.Entries, orNone(rep.From), rep.Needed, rep.OwnSeq)
			if rep.Damaged != "" {
				fmt.Fprintf(c.stdout, "The damaged store is kept as %s.\n", filepath.Join(filepath.Dir(cfg.StorePath), rep.Damaged))
			}
			if len(rep.Unreachable) > 0 {
				fmt.Fprintf(c.stdout, "Not reached: %s.\n", orNone(rep.Unreachable))
			}
			if !rep.Confirmed {
				fmt.Fprintf(c.stdout, "Own head NOT confirmed: the node will serve matches and refuse to publish until %d members' nodes have served it.\n", rep.Needed)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&ro.MinPeers, "min-peers", -1, "other members' nodes that must serve their replica (-1: a majority of the other members)")
	f.DurationVar(&ro.Timeout, "timeout", node.DefaultRestoreTimeout, "how long to wait for every member's node")
	f.BoolVar(&ro.Unconfirmed, "unconfirmed", false, "install what was gathered even with too few peers: the node refuses to publish until enough have served it")
	f.BoolVar(&ro.Force, "force", false, "rebuild a store that opens and checks clean (it is moved aside too)")
	return cmd
}

// restoreStore is node.Restore on a TCP host; tests replace it.
var restoreStore = func(ctx context.Context, cfg *config.Node, log *slog.Logger, ro node.RestoreOptions) (node.RestoreReport, error) {
	return node.Restore(ctx, cfg, log, node.Options{}, ro)
}
