package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/node/api"
)

func (c *cli) matchCommand() *cobra.Command {
	var typ string
	cmd := &cobra.Command{
		Use:   "match --dir D --type TYPE VALUE",
		Short: "Ask what the federation says about one signal; exit 0 if active",
		Long: `Match VALUE, a signal of --type, against every log this node holds.

Prints one line per attestation (status, author, labels, entry id, time),
or "no match"; with --json, one object {"signal", "matched",
"attestations"}. Exits 0 when at least one attestation is active (act on
it), 1 when none is (nothing, or only retracted, disputed or allowlisted
ones), 2 on error.`,
		Args: args("VALUE", 1, 1),
		RunE: func(cmd *cobra.Command, values []string) error {
			sigs, err := signalArgs(typ, values)
			if err != nil {
				return err
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			q := url.Values{"type": {sigs[0].Type}, "value": {sigs[0].Value}}
			var res api.MatchResult
			if err := cl.call(cmd.Context(), http.MethodGet, "/v1/match?"+q.Encode(), nil, &res); err != nil {
				return err
			}
			if !res.Matched {
				c.code = exitNoMatch
			}
			if c.json {
				return c.printJSON(res)
			}
			return printAttestations(c, res.Attestations)
		},
	}
	cmd.Flags().StringVarP(&typ, "type", "t", "", "signal type: sha256, md5, pdq, url or account")
	return cmd
}

// printAttestations writes one aligned line per attestation, with what
// changed its status at the end.
func printAttestations(c *cli, atts []api.Attestation) error {
	if len(atts) == 0 {
		_, err := fmt.Fprintln(c.stdout, "no match")
		return err
	}
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	for _, a := range atts {
		var notes []string
		for _, r := range a.Reasons {
			n := r.Kind + " by " + r.Author
			if r.Category != "" {
				n += " (" + r.Category + ")"
			}
			if r.Reason != "" {
				n += ": " + r.Reason
			}
			notes = append(notes, n)
		}
		if a.Equivocated {
			notes = append(notes, a.Author+" is flagged for equivocation")
		}
		line := strings.Join([]string{a.Status, a.Author, strings.Join(a.Labels, ","), a.ID, a.Time}, "\t")
		if len(notes) > 0 {
			line += "\t" + strings.Join(notes, "; ")
		}
		fmt.Fprintln(w, line)
	}
	return w.Flush()
}
