package main

import (
	"github.com/spf13/cobra"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/protocol"
)

func (c *cli) disputeCommand() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "dispute --dir D ENTRY_ID --reason TEXT",
		Short: "Dispute an addition, by any member, as a false positive",
		Long: `Dispute ENTRY_ID, an addition (or notice) by another member, as a false
positive. Matching reports it as disputed instead of active. Prints the
dispute's entry id; "staydown retract DISPUTE_ID" withdraws the dispute.

The node must hold ENTRY_ID (one just added elsewhere arrives within
seconds), and refuses a second dispute of it by the same member.`,
		Args: args("ENTRY_ID", 1, 1),
		RunE: func(cmd *cobra.Command, ids []string) error {
			if _, err := protocol.ParseID(ids[0]); err != nil {
				return err
			}
			if reason == "" {
				return needFlag("reason", "say why the addition is a false positive")
			}
			req := api.DisputeRequest{Target: ids[0], Reason: reason}
			if _, err := req.Entry(); err != nil {
				return err
			}
			return c.publish(cmd.Context(), "/v1/disputes", req)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the addition is a false positive (required)")
	return cmd
}
