package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/store"
)

func (c *cli) storeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store check",
		Short: "Check a stopped node's store file",
		Args:  args("", 0, 0),
	}
	cmd.AddCommand(c.storeCheckCommand())
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
		fmt.Fprintf(c.stdout, "Store damaged: %s\n", printable(err.Error()))
		c.code = exitNoMatch
		return nil
	}
	if hint != "" {
		return fmt.Errorf("%w %s", err, hint)
	}
	return err
}
