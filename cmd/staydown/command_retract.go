package main

import (
	"github.com/spf13/cobra"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/protocol"
)

func (c *cli) retractCommand() *cobra.Command {
	var reason, file string
	var signals []string
	cmd := &cobra.Command{
		Use:   "retract --dir D ENTRY_ID [--reason TEXT] [--signal TYPE:VALUE ... | --file LIST]",
		Short: "Retract one of this node's own additions, allowlist entries or disputes",
		Long: `Retract ENTRY_ID, an addition, allowlist entry or dispute of this node's
own log: matching stops treating the addition as active, the allowlist
entry or the dispute stops bearing on what it names. Prints the
retraction's entry id.

By default the retraction withdraws every signal of ENTRY_ID. To withdraw
some only, name each with --signal TYPE:VALUE (repeat it), or list them
in --file LIST ("-" for standard input), one a line as "add" reads them;
at most 1,000. The node refuses a signal ENTRY_ID does not carry.

An entry is retracted once: the first retraction of it counts and the
node refuses a second, so name every signal to withdraw in one retraction.`,
		Args: args("ENTRY_ID", 1, 1),
		RunE: func(cmd *cobra.Command, ids []string) error {
			if _, err := protocol.ParseID(ids[0]); err != nil {
				return err
			}
			sigs, err := c.namedSignals(signals, file)
			if err != nil {
				return err
			}
			req := api.RetractionRequest{Target: ids[0], Reason: reason, Signals: sigs}
			if _, err := req.Entry(); err != nil {
				return err
			}
			return c.publish(cmd.Context(), "/v1/retractions", req)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (optional)")
	cmd.Flags().StringArrayVar(&signals, "signal", nil, "a signal of ENTRY_ID to withdraw, TYPE:VALUE (repeat for several; default: all)")
	cmd.Flags().StringVarP(&file, "file", "f", "", "a list of the signals to withdraw, one a line (- for standard input)")
	return cmd
}
