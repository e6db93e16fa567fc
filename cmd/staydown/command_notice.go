package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/protocol"
)

func (c *cli) noticeCommand() *cobra.Command {
	var req api.NoticeRequest
	var signals []string
	cmd := &cobra.Command{
		Use:   "notice --dir D --to PLATFORM (--url URL | --signal TYPE:VALUE)... --category C --basis TEXT [--text T] [--deadline 1h] [--order]",
		Short: "Send a takedown notice to a platform (referral units)",
		Long: `Send a takedown notice to PLATFORM, a platform of the roster, and print its
entry id. Its URLs (--url, repeatable) and --text are sealed: only the
platform, this node and the roster's auditors can read them. Who, whom,
--category (a content label), --basis (the legal basis), the deadline and
--signal targets (TYPE:VALUE, repeatable; sha256, md5, pdq, url, account, vpdq)
are public. Once the platform removes or disables the content, the signals
match on every node (stay down).

--deadline is a duration from now (1h, 90m) or an RFC 3339 time; default
1h. --order marks a binding removal order (default: a voluntary referral).

Subcommands clarify or withdraw a notice this node sent.`,
		Args: args("", 0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case req.To == "":
				return needFlag("to", "the member name of the platform")
			case len(req.URLs) == 0 && len(signals) == 0:
				return usagef("no target: give --url or --signal")
			case req.Category == "":
				return needFlag("category", "a content label, e.g. attacker-manifesto")
			case strings.TrimSpace(req.Basis) == "":
				return needFlag("basis", "the legal basis, e.g. \"Regulation (EU) 2021/784, art. 3\"")
			}
			if _, err := protocol.ParseLabel(req.Category); err != nil {
				return err
			}
			for i, u := range req.URLs {
				if _, err := protocol.NormalizeURL(u); err != nil {
					return usagef("--url %s: %v", short(req.URLs[i]), err)
				}
			}
			var err error
			if req.Signals, err = typedSignals(signals); err != nil {
				return err
			}
			return c.publish(cmd.Context(), "/v1/notices", req)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.To, "to", "", "the platform the notice is addressed to (member name; required)")
	f.StringArrayVar(&req.URLs, "url", nil, "URL of the content (sealed; repeatable)")
	f.StringArrayVar(&signals, "signal", nil, "public target TYPE:VALUE, e.g. sha256:HEX (repeatable)")
	f.StringVar(&req.Text, "text", "", "free text for the platform (sealed)")
	f.StringVar(&req.Category, "category", "", "content label (required)")
	f.StringVar(&req.Basis, "basis", "", "legal basis (required, public)")
	f.StringVar(&req.Deadline, "deadline", "", "duration from now or RFC 3339 time (default 1h)")
	f.BoolVar(&req.Order, "order", false, "a binding removal order")
	cmd.AddCommand(c.noticeClarifyCommand(), c.noticeWithdrawCommand())
	return cmd
}

func (c *cli) noticeClarifyCommand() *cobra.Command {
	var req api.NoticeUpdateRequest
	cmd := &cobra.Command{
		Use:   "clarify --dir D NOTICE_ID [--text T] [--url URL]... [--deadline D]",
		Short: "Clarify a notice this node sent (restarts a stopped deadline)",
		Long: `Clarify NOTICE_ID, a notice this node sent, with more text or URLs
(sealed like the notice's) and/or a new deadline. If the platform asked
for clarification, the deadline clock restarts from now with the notice's
original allowance. Prints the update's entry id.`,
		Args: args("NOTICE_ID", 1, 1),
		RunE: func(cmd *cobra.Command, ids []string) error {
			if _, err := protocol.ParseID(ids[0]); err != nil {
				return err
			}
			if req.Text == "" && len(req.URLs) == 0 && req.Deadline == "" {
				return usagef("nothing to clarify: give --text, --url or --deadline")
			}
			req.Notice = ids[0]
			return c.publish(cmd.Context(), "/v1/notice-updates", req)
		},
	}
	cmd.Flags().StringVar(&req.Text, "text", "", "clarifying text (sealed)")
	cmd.Flags().StringArrayVar(&req.URLs, "url", nil, "further URL (sealed; repeatable)")
	cmd.Flags().StringVar(&req.Deadline, "deadline", "", "new deadline: duration from now or RFC 3339 time")
	return cmd
}

func (c *cli) noticeWithdrawCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "withdraw --dir D NOTICE_ID",
		Short: "Withdraw a notice this node sent",
		Long: `Withdraw NOTICE_ID, a notice this node sent. A withdrawn notice needs no
action; one withdrawn after the platform acted no longer keeps its signals
down. Prints the update's entry id.`,
		Args: args("NOTICE_ID", 1, 1),
		RunE: func(cmd *cobra.Command, ids []string) error {
			if _, err := protocol.ParseID(ids[0]); err != nil {
				return err
			}
			return c.publish(cmd.Context(), "/v1/notice-updates", api.NoticeUpdateRequest{Notice: ids[0], Withdraw: true})
		},
	}
}

// typedSignals parses --signal TYPE:VALUE arguments, normalised for the
// request.
func typedSignals(in []string) ([]api.Signal, error) {
	var out []api.Signal
	for _, s := range in {
		sig, err := parseSignal("", s)
		if err != nil {
			return nil, fmt.Errorf("--signal %s: %w", short(s), err)
		}
		out = append(out, sig)
	}
	return out, nil
}
