package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/report"
)

func (c *cli) reportCommand() *cobra.Command {
	var since, at string
	cmd := &cobra.Command{
		Use:   "report --dir D [--since TIME] [--at TIME]",
		Short: "The transparency report, computed from the signed logs",
		Long: `Print the federation's transparency report as this node's logs give it:
per member, hashes (signals) contributed, in all and by signal type (sha256,
md5, pdq, url, account, vpdq), additions retracted and disputed;
notices issued; notices received, answered within the deadline, late,
overdue, still open; median and p90 time to first action (nearest rank).
Computed only from signed entries (SPEC.md section 18), so any auditor
with the same logs gets the same figures. Times to action are the
platforms' claims, bounded as SPEC.md 10.1 says.

--since TIME (RFC 3339) counts only entries, and notices, from then on.
--at TIME computes notice states (overdue or not) at another time than now.
With --json, the whole report.`,
		Args: args("", 0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			for name, v := range map[string]string{"since": since, "at": at} {
				if v == "" {
					continue
				}
				if _, err := time.Parse(time.RFC3339, v); err != nil {
					return usagef("--%s %s: not an RFC 3339 time (e.g. 2026-05-01T12:00:00Z)", name, short(v))
				}
				q.Set(name, v)
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			var rep report.Report
			if err := cl.call(cmd.Context(), http.MethodGet, "/v1/report?"+q.Encode(), nil, &rep); err != nil {
				return err
			}
			if c.json {
				return c.printJSON(rep)
			}
			return printReport(c, rep)
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "start of the period, RFC 3339 (default: everything)")
	cmd.Flags().StringVar(&at, "at", "", "compute notice states at this RFC 3339 time instead of now")
	return cmd
}

func seconds(s *float64) string {
	if s == nil {
		return "-"
	}
	return (time.Duration(*s * float64(time.Second))).Round(time.Second).String()
}

func printReport(c *cli, rep report.Report) error {
	period := "all time"
	if rep.SinceMs != 0 {
		period = "since " + time.UnixMilli(rep.SinceMs).UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(c.stdout, "Transparency report of federation %s, %s, states at %s\n\n", rep.Federation, period, time.UnixMilli(rep.NowMs).UTC().Format(time.RFC3339))
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "MEMBER\tROLE\tSIGNALS\tRETRACTED\tDISPUTED\tNOTICES SENT\tRECEIVED\tIN TIME\tLATE\tOVERDUE\tOPEN\tMEDIAN\tP90\t")
	row := func(name, role string, f report.Figures) {
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t\n", name, role, f.Signals, f.Retracted, f.Disputed,
			f.NoticesIssued, f.NoticesReceived, f.AnsweredWithinDeadline, f.AnsweredLate, f.Overdue, f.Open,
			seconds(f.MedianTimeToActionS), seconds(f.P90TimeToActionS))
	}
	for _, m := range rep.Members {
		row(m.Name, string(m.Role), m.Figures)
	}
	row("(federation)", "", rep.Totals.Figures)
	if err := w.Flush(); err != nil {
		return err
	}
	// Signals by type: a second table, one column a type.
	fmt.Fprintln(c.stdout)
	w = tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	head := []string{"SIGNALS BY TYPE"}
	for _, t := range protocol.SignalTypes {
		head = append(head, strings.ToUpper(string(t)))
	}
	fmt.Fprintln(w, strings.Join(head, "\t")+"\t")
	byType := func(name string, f report.Figures) {
		cols := []string{name}
		for _, t := range protocol.SignalTypes {
			cols = append(cols, strconv.Itoa(f.SignalsByType[t]))
		}
		fmt.Fprintln(w, strings.Join(cols, "\t")+"\t")
	}
	for _, m := range rep.Members {
		byType(m.Name, m.Figures)
	}
	byType("(federation)", rep.Totals.Figures)
	if err := w.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(c.stdout, "\nentries: "+strconv.Itoa(rep.Totals.Entries)+"; MEDIAN and P90: time to first action (nearest rank)")
	return err
}
