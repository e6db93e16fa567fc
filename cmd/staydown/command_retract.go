package main

import (
	"github.com/spf13/cobra"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/protocol"
)

func (c *cli) retractCommand() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "retract --dir D ENTRY_ID [--reason TEXT]",
		Short: "Retract one of this node's own additions, allowlist entries or disputes",
		Long: `Retract ENTRY_ID, an addition, allowlist entry or dispute of this node's
own log: matching stops treating the addition as active, the allowlist
entry or the dispute stops bearing on what it names. Prints the
retraction's entry id.`,
		Args: args("ENTRY_ID", 1, 1),
		RunE: func(cmd *cobra.Command, ids []string) error {
			if _, err := protocol.ParseID(ids[0]); err != nil {
				return err
			}
			req := api.RetractionRequest{Target: ids[0], Reason: reason}
			if _, err := req.Entry(); err != nil {
				return err
			}
			return c.publish(cmd.Context(), "/v1/retractions", req)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (optional)")
	return cmd
}
