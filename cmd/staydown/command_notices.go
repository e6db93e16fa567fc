package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/node/api"
)

func (c *cli) noticesCommand() *cobra.Command {
	var open, overdue bool
	var box, at string
	cmd := &cobra.Command{
		Use:   "notices --dir D [--open | --overdue] [--box in|out|all] [--at TIME]",
		Short: "List takedown notices: a platform's inbox, a referral unit's outbox",
		Long: `List takedown notices with their state, computed from the signed logs
(the same on every node): open, acknowledged, clarification-requested,
actioned, not-executed, withdrawn or overdue. Sorted by deadline, soonest
first, with the time remaining; notices waiting for a clarification (clock
stopped) last.

By default a platform sees the notices addressed to it, a referral unit
those it sent, an auditor all; --box in|out|all chooses. --open keeps
those not final (overdue included), --overdue only the overdue. --at TIME
(RFC 3339) computes the states at another time than now.

With --json, an array of notices: id, from, to, state, deadline,
deadline_ms, time_remaining_s, time_to_action_s, within_deadline,
category, legal_basis, order, signals, sealed, details (the sealed URLs and
text, when this node may read them), updates and replies.`,
		Args: args("", 0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if open && overdue {
				return usagef("--open and --overdue exclude each other")
			}
			q := url.Values{}
			if box != "" {
				if box != "in" && box != "out" && box != "all" {
					return usagef("--box %s: use in, out or all", short(box))
				}
				q.Set("box", box)
			}
			if at != "" {
				if _, err := time.Parse(time.RFC3339, at); err != nil {
					return usagef("--at %s: not an RFC 3339 time (e.g. 2026-05-01T12:00:00Z)", short(at))
				}
				q.Set("at", at)
			}
			if open {
				q.Set("open", "true")
			}
			if overdue {
				q.Set("overdue", "true")
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			var list api.NoticeList
			if err := cl.call(cmd.Context(), http.MethodGet, "/v1/notices?"+q.Encode(), nil, &list); err != nil {
				return err
			}
			if c.json {
				return c.printJSON(list.Notices)
			}
			if len(list.Notices) == 0 {
				_, err := fmt.Fprintln(c.stdout, "no notices")
				return err
			}
			return printNotices(c, list.Notices)
		},
	}
	cmd.Flags().BoolVar(&open, "open", false, "only notices not final (overdue included)")
	cmd.Flags().BoolVar(&overdue, "overdue", false, "only overdue notices")
	cmd.Flags().StringVar(&box, "box", "", "in, out or all (default: the node's own)")
	cmd.Flags().StringVar(&at, "at", "", "compute states at this RFC 3339 time instead of now")
	return cmd
}

// printNotices writes one aligned line per notice, and the opened
// details, indented, under it.
func printNotices(c *cli, notices []api.NoticeView) error {
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "DEADLINE\tREMAINING\tSTATE\tFROM\tTO\tCATEGORY\tORDER\tID")
	for _, n := range notices {
		deadline, remaining := n.Deadline, "-"
		if deadline == "" {
			deadline = "(stopped)"
		}
		if n.TimeRemainingS != nil {
			remaining = (time.Duration(*n.TimeRemainingS) * time.Second).Round(time.Second).String()
		}
		if n.TimeToActionS != nil {
			remaining = "acted in " + (time.Duration(*n.TimeToActionS) * time.Second).Round(time.Second).String()
		}
		order := "referral"
		if n.Order {
			order = "order"
		}
		fmt.Fprintln(w, strings.Join([]string{deadline, remaining, n.State, n.From, n.To, printable(n.Category), order, n.ID}, "\t"))
		if d := n.Details; d != nil {
			for _, u := range d.URLs {
				fmt.Fprintf(w, "  url: %s\n", printable(u))
			}
			if d.Text != "" {
				fmt.Fprintf(w, "  text: %s\n", printable(d.Text))
			}
		}
		for _, s := range n.Signals {
			fmt.Fprintf(w, "  signal: %s\n", printable(humanSignalText(s)))
		}
	}
	return w.Flush()
}
