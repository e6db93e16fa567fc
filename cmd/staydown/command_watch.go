package main

import (
	"context"
	"fmt"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/node/api"
)

func (c *cli) watchCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "The legacy-content watchlist: signals of content this platform hosts",
		Long: `The watchlist holds the signals of content this platform already hosts. It
is private to the node (kept in its store file): never gossiped, never
exported. Whenever an addition arrives whose signal matches a watched
one (exactly, or for PDQ within the node's pdq_threshold) while active, the
node raises an alert at once: see "staydown alerts".`,
		Args: args("", 0, 0),
	}
	cmd.AddCommand(c.watchAddCommand(), c.watchRemoveCommand())
	return cmd
}

// watchBatchBytes bounds the JSON of one request of watch add, well
// under the node's 16 MiB limit.
const watchBatchBytes = 8 << 20

func (c *cli) watchAddCommand() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "add --dir D --file LIST",
		Short: "Add the signals listed in a file to the watchlist",
		Long: `Add the signals of LIST ("-" for standard input) to the node's watchlist:
one TYPE:VALUE per line (e.g. sha256:HEX, pdq:HEX, url:https://...,
account:SERVICE:ID, as "staydown hash" prints them; text after the value,
such as quality=N, is ignored), blank lines and lines starting with # are
skipped. The whole file is checked before anything is sent. Signals are
sent in batches of up to 100,000. The node checks the new signals against
the attestations it holds at once; the alerts that raises are printed.`,
		Args: args("", 0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			total := api.WatchResult{Alerts: []api.Alert{}}
			err := postWatchList(c, cmd.Context(), file, "/v1/watchlist", func(res api.WatchResult) {
				total.Added += res.Added
				total.Known += res.Known
				total.Total = res.Total
				total.Alerts = append(total.Alerts, res.Alerts...)
			})
			if err != nil {
				return err
			}
			if c.json {
				return c.printJSON(total)
			}
			fmt.Fprintf(c.stdout, "added %d, already watched %d, watchlist now %d signals\n", total.Added, total.Known, total.Total)
			return printAlerts(c, total.Alerts)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the list: one TYPE:VALUE per line (- for standard input)")
	return cmd
}

func (c *cli) watchRemoveCommand() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "remove --dir D --file LIST",
		Short: "Remove the signals listed in a file from the watchlist",
		Long: `Remove the signals of LIST ("-" for standard input) from the node's
watchlist, e.g. content this platform no longer hosts. LIST is read as by
"watch add": one TYPE:VALUE per line, checked whole before anything is
sent, sent in batches of up to 100,000. Signals not on the watchlist are
counted, not an error. Alerts already raised stay listed.`,
		Args: args("", 0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var total api.UnwatchResult
			err := postWatchList(c, cmd.Context(), file, "/v1/watchlist/remove", func(res api.UnwatchResult) {
				total.Removed += res.Removed
				total.Unknown += res.Unknown
				total.Total = res.Total
			})
			if err != nil {
				return err
			}
			if c.json {
				return c.printJSON(total)
			}
			fmt.Fprintf(c.stdout, "removed %d, not watched %d, watchlist now %d signals\n", total.Removed, total.Unknown, total.Total)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the list: one TYPE:VALUE per line (- for standard input)")
	return cmd
}

// postWatchList reads the list file, checks it whole, then posts its
// signals to path in batches that fit a request, handing each answer to
// add. An error after the first batch says how many signals were sent:
// those took effect.
func postWatchList[R any](c *cli, ctx context.Context, file, path string, add func(R)) error {
	if file == "" {
		return needFlag("file", "the list of signals, one TYPE:VALUE per line")
	}
	sigs, err := readSignalList(file, c.stdin, "")
	if err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	sent := 0
	for len(sigs) > 0 {
		n, size := 0, 0
		for n < len(sigs) && n < api.MaxWatchBatch && size < watchBatchBytes {
			size += len(sigs[n].Type) + len(sigs[n].Value) + 32
			n++
		}
		var res R
		if err := cl.call(ctx, http.MethodPost, path, api.WatchRequest{Signals: sigs[:n]}, &res); err != nil {
			if sent > 0 {
				return fmt.Errorf("%w (the first %d signals were sent)", err, sent)
			}
			return err
		}
		add(res)
		sent += n
		sigs = sigs[n:]
	}
	return nil
}
