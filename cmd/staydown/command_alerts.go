package main

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/node/api"
)

func (c *cli) alertsCommand() *cobra.Command {
	var since uint64
	cmd := &cobra.Command{
		Use:   "alerts --dir D [--since SEQ]",
		Short: "List the watchlist alerts: hosted content that members have attested",
		Long: `List the alerts the node raised because an active attestation matched a
signal of its watchlist (see "staydown watch"), oldest first: seq, when,
the watched signal, and the attestation with its status now (and for PDQ
the distance), then the refs the watched signal had when the alert was
raised ("watch add --ref"): your items to take down. --since SEQ lists only later alerts, for polling. With
--json, {"alerts": [...]}.`,
		Args: args("", 0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			var list api.AlertList
			if err := cl.call(cmd.Context(), http.MethodGet, fmt.Sprintf("/v1/alerts?since=%d", since), nil, &list); err != nil {
				return err
			}
			if c.json {
				return c.printJSON(list)
			}
			if len(list.Alerts) == 0 {
				_, err := fmt.Fprintln(c.stdout, "no alerts")
				return err
			}
			return printAlerts(c, list.Alerts)
		},
	}
	cmd.Flags().Uint64Var(&since, "since", 0, "list only alerts with a greater seq")
	return cmd
}

// printAlerts writes one aligned line per alert.
func printAlerts(c *cli, alerts []api.Alert) error {
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	for _, a := range alerts {
		watched := printable(humanSignal(a.Watched.Type, a.Watched.Value))
		if a.Distance != nil {
			watched += fmt.Sprintf(" distance=%d", *a.Distance)
		}
		at := a.Attestation
		cols := []string{fmt.Sprintf("alert %d", a.Seq), a.Raised, watched,
			at.Status, at.Author, strings.Join(printables(at.Labels), ","), at.ID}
		if len(a.Refs) > 0 {
			// Quoted: a ref may hold spaces and commas.
			refs := make([]string, len(a.Refs))
			for i, r := range a.Refs {
				refs[i] = strconv.Quote(r)
			}
			cols = append(cols, "refs "+strings.Join(refs, " "))
		}
		fmt.Fprintln(w, strings.Join(cols, "\t"))
	}
	return w.Flush()
}
