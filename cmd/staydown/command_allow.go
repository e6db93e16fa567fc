package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/protocol"
)

func (c *cli) allowCommand() *cobra.Command {
	var typ, category, reason string
	cmd := &cobra.Command{
		Use:   "allow --dir D --type TYPE --category CATEGORY --reason TEXT VALUE [VALUE ...]",
		Short: "Allowlist signals: counter-speech, news, research; never auto-action",
		Long: `Publish an allowlist entry: the VALUEs, all of --type, are counter-speech,
news, research or the like, and must never be auto-actioned. Additions of
the same signals then match as allowlisted, not active, on every node.
A node whose policy trusts this member turns their verdict block into
review (never into none); a node that does not trust it ignores the
entry in its verdict (README, "Verdicts"). Prints the new entry's id.`,
		Args: args("VALUE", 1, -1),
		RunE: func(cmd *cobra.Command, values []string) error {
			sigs, err := signalArgs(typ, values)
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
			req := api.AllowRequest{Signals: sigs, Category: category, Reason: reason}
			if _, err := req.Entry(); err != nil {
				return err
			}
			return c.publish(cmd.Context(), "/v1/allows", req)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&typ, "type", "t", "", "signal type of every VALUE: sha256, md5, pdq, url or account")
	f.StringVar(&category, "category", "", "counter-speech, news, research or other")
	f.StringVar(&reason, "reason", "", "why (required)")
	return cmd
}
