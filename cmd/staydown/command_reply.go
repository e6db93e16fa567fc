package main

import (
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/protocol"
)

func (c *cli) replyCommand() *cobra.Command {
	var req api.ReplyRequest
	cmd := &cobra.Command{
		Use:   "reply --dir D NOTICE_ID --status STATUS [--reason R] [--text T] [--action-time T]",
		Short: "Answer a takedown notice or a blocking order addressed to this node (platforms, access providers)",
		Long: `Answer NOTICE_ID, a notice addressed to this platform, and print the reply's
entry id. --status is one of received, removed, disabled (blocked in some
regions), clarification-requested (stops the deadline clock until the
referral unit clarifies), not-executed (then --reason is one of
force-majeure, manifest-error, insufficient-information, not-hosted) or
not-found. An access provider answers a blocking order with received,
blocked (the order is in effect at its resolvers), not-executed (with a
--reason) and, once the order was lifted or ended, unblocked. Several
replies may follow each other (received, then removed).
--action-time (RFC 3339) says when the content was acted on, default now.
Replies and their --text are public.`,
		Args: args("NOTICE_ID", 1, 1),
		RunE: func(cmd *cobra.Command, ids []string) error {
			if _, err := protocol.ParseID(ids[0]); err != nil {
				return err
			}
			if req.Status == "" {
				return needFlag("status", "received, removed, disabled, clarification-requested, not-executed, not-found, blocked or unblocked")
			}
			var statuses, reasons []string
			for _, s := range protocol.ReplyStatuses {
				statuses = append(statuses, s)
			}
			for _, r := range protocol.NotExecutedReasons {
				reasons = append(reasons, r)
			}
			slices.Sort(statuses)
			slices.Sort(reasons)
			switch {
			case !slices.Contains(statuses, req.Status):
				return usagef("--status %s: use one of %s", short(req.Status), strings.Join(statuses, ", "))
			case req.Status == "not-executed" && req.Reason == "":
				return needFlag("reason", "not-executed needs one of "+strings.Join(reasons, ", "))
			case req.Reason != "" && req.Status != "not-executed":
				return usagef("--reason is for --status not-executed only")
			case req.Reason != "" && !slices.Contains(reasons, req.Reason):
				return usagef("--reason %s: use one of %s", short(req.Reason), strings.Join(reasons, ", "))
			}
			if req.ActionTime != "" {
				if _, err := time.Parse(time.RFC3339, req.ActionTime); err != nil {
					return usagef("--action-time %s: not an RFC 3339 time (e.g. 2026-05-01T12:00:00Z)", short(req.ActionTime))
				}
			}
			req.Notice = ids[0]
			return c.publish(cmd.Context(), "/v1/replies", req)
		},
	}
	cmd.Flags().StringVar(&req.Status, "status", "", "the answer (required)")
	cmd.Flags().StringVar(&req.Reason, "reason", "", "why not executed")
	cmd.Flags().StringVar(&req.Text, "text", "", "free text (public)")
	cmd.Flags().StringVar(&req.ActionTime, "action-time", "", "when the content was acted on, RFC 3339 (default now)")
	return cmd
}
