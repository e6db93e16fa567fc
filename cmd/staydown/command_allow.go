package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/protocol"
)

func (c *cli) allowCommand() *cobra.Command {
	var typ, category, reason, file string
	cmd := &cobra.Command{
		Use:   "allow --dir D --category CATEGORY --reason TEXT [--type TYPE] (VALUE ... | --file LIST)",
		Short: "Allowlist signals: counter-speech, news, research; never auto-action",
		Long: `Publish an allowlist entry: the signals are counter-speech, news,
research or the like, and must never be auto-actioned. Additions of the
same signals then match as allowlisted, not active, on every node. A
node whose policy trusts this member turns their verdict block into
review (never into none); a node that does not trust it ignores the
entry in its verdict (README, "Verdicts"). Prints the new entry's id.

Signals are given as by "add": TYPE:VALUE or, with --type, bare VALUEs
(up to 1,000), or --file LIST ("-" for standard input), one a line; a
list of more than 1,000 is published as several entries, each id printed.`,
		Args: args("", 0, -1),
		RunE: func(cmd *cobra.Command, values []string) error {
			sigs, err := c.signalsOf(typ, values, file)
			if err != nil {
				return err
			}
			if category == "" {
				return needFlag("category", "one of "+strings.Join(protocol.AllowCategories, ", "))
			}
			if err := api.CheckCategory(category); err != nil {
				return fmt.Errorf("--category: %w", err)
			}
			if reason == "" {
				return needFlag("reason", "say why these signals must not be actioned")
			}
			var reqs []any
			for _, chunk := range chunkSignals(sigs) {
				req := api.AllowRequest{Signals: chunk, Category: category, Reason: reason}
				if _, err := req.Entry(); err != nil {
					return err
				}
				reqs = append(reqs, req)
			}
			return c.publishAll(cmd.Context(), "/v1/allows", reqs, len(sigs))
		},
	}
	f := cmd.Flags()
	f.StringVarP(&typ, "type", "t", "", "signal type of every bare VALUE: sha256, md5, pdq, url or account")
	f.StringVarP(&file, "file", "f", "", "a list of signals, one a line (- for standard input)")
	f.StringVar(&category, "category", "", "counter-speech, news, research or other")
	f.StringVar(&reason, "reason", "", "why (required)")
	return cmd
}
