package main

import (
	"github.com/spf13/cobra"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/protocol"
)

func (c *cli) disputeCommand() *cobra.Command {
	var reason, file string
	var signals []string
	cmd := &cobra.Command{
		Use:   "dispute --dir D ENTRY_ID --reason TEXT [--signal TYPE:VALUE ... | --file LIST]",
		Short: "Dispute an addition, by any member, as a false positive",
		Long: `Dispute ENTRY_ID, an addition (or notice) by another member, as a false
positive. Matching reports the signals disputed instead of active. Prints
the dispute's entry id; "staydown retract DISPUTE_ID" withdraws the
dispute.

By default the dispute bears on every signal of ENTRY_ID. To dispute some
of them only, name each with --signal TYPE:VALUE (repeat it), or list
them in --file LIST ("-" for standard input), one a line as "add" reads
them; at most 1,000. The node refuses a signal ENTRY_ID does not carry.

The node must hold ENTRY_ID (one just added elsewhere arrives within
seconds), and refuses a second dispute of it by the same member that
bears on a signal the first names.`,
		Args: args("ENTRY_ID", 1, 1),
		RunE: func(cmd *cobra.Command, ids []string) error {
			if _, err := protocol.ParseID(ids[0]); err != nil {
				return err
			}
			if reason == "" {
				return needFlag("reason", "say why the addition is a false positive")
			}
			sigs, err := c.namedSignals(signals, file)
			if err != nil {
				return err
			}
			req := api.DisputeRequest{Target: ids[0], Reason: reason, Signals: sigs}
			if _, err := req.Entry(); err != nil {
				return err
			}
			return c.publish(cmd.Context(), "/v1/disputes", req)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the addition is a false positive (required)")
	cmd.Flags().StringArrayVar(&signals, "signal", nil, "a signal of ENTRY_ID to dispute, TYPE:VALUE (repeat for several; default: all)")
	cmd.Flags().StringVarP(&file, "file", "f", "", "a list of the signals to dispute, one a line (- for standard input)")
	return cmd
}
