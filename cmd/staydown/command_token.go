package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/node/tokens"
)

func (c *cli) tokenCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "API tokens with scopes: for an upload pipeline, a dashboard, a publisher",
		Long: `Make, list and revoke the node's further API tokens. Each has a scope:

  match    the match endpoints only (an upload pipeline)
  read     every GET but match: status, report, events, alerts, members,
           proposals, notices, export, proof (a dashboard, a read-only console)
  publish  read and match, and every POST that publishes (additions,
           retractions, disputes, allows, notices, notice updates, replies)
           or changes the watchlist
  admin    everything, membership proposals, approvals and peer
           announcements included

The tokens' hashes are kept in api.tokens in the node's directory (the
tokens themselves nowhere: add prints a token once). The node reads the
file again within a second of a change, or at once on SIGHUP: these
commands work while it runs, no restart needed. api.token, which the
staydown commands use, stays an admin token; it is not in the list.`,
		Args: args("", 0, 0),
	}
	cmd.AddCommand(c.tokenAddCommand(), c.tokenListCommand(), c.tokenRevokeCommand())
	return cmd
}

func (c *cli) tokenAddCommand() *cobra.Command {
	var scope, name string
	cmd := &cobra.Command{
		Use:   "add --dir D --scope match|read|publish|admin [--name NAME]",
		Short: "Make a token and print it (once: only its hash is kept)",
		Args:  args("", 0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if scope == "" {
				return needFlag("scope", "match, read, publish or admin")
			}
			s, err := tokens.ParseScope(scope)
			if err != nil {
				return usagef("--scope: %v", err)
			}
			cfg, err := c.config()
			if err != nil {
				return err
			}
			tok, t, err := tokens.Add(cfg.Dir, s, name, cfg.Now())
			if err != nil {
				return err
			}
			if c.json {
				return c.printJSON(tokenJSON{ID: t.ID, Name: t.Name, Scope: t.Scope.String(), Created: t.Created.Format(time.RFC3339), Token: tok})
			}
			_, err = fmt.Fprintf(c.stdout, "%s\n", tok)
			if err == nil {
				_, err = fmt.Fprintf(c.stderr, "token %s (scope %s) added; it is shown only now. Send it as \"Authorization: Bearer TOKEN\".\n", t.ID, t.Scope)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&scope, "scope", "", "what the token may do: match, read, publish or admin")
	cmd.Flags().StringVar(&name, "name", "", "a name to list and revoke it by (a-z, 0-9, '-', '_', '.')")
	return cmd
}

// tokenJSON is a token as --json prints it; Token only from add.
type tokenJSON struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Scope   string `json:"scope"`
	Created string `json:"created"`
	Token   string `json:"token,omitempty"`
}

func (c *cli) tokenListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list --dir D",
		Short: "List the tokens: id, scope, created, name (never the token)",
		Args:  args("", 0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.config()
			if err != nil {
				return err
			}
			ts, err := tokens.List(cfg.Dir)
			if err != nil {
				return err
			}
			if c.json {
				out := make([]tokenJSON, len(ts))
				for i, t := range ts {
					out[i] = tokenJSON{ID: t.ID, Name: t.Name, Scope: t.Scope.String(), Created: t.Created.Format(time.RFC3339)}
				}
				return c.printJSON(out)
			}
			if len(ts) == 0 {
				_, err := fmt.Fprintln(c.stdout, "no tokens besides api.token (admin); make one with: staydown token add --dir D --scope SCOPE")
				return err
			}
			w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tSCOPE\tCREATED\tNAME")
			for _, t := range ts {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.ID, t.Scope, t.Created.Format(time.RFC3339), t.Name)
			}
			return w.Flush()
		},
	}
}

func (c *cli) tokenRevokeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke --dir D ID|NAME",
		Short: "Revoke a token: the node refuses it within a second (at once on SIGHUP)",
		Args:  args("ID or NAME", 1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			cfg, err := c.config()
			if err != nil {
				return err
			}
			t, err := tokens.Revoke(cfg.Dir, a[0])
			if err != nil {
				return err
			}
			what := t.ID
			if t.Name != "" {
				what += " (" + t.Name + ")"
			}
			_, err = fmt.Fprintf(c.stdout, "revoked token %s of scope %s: the node refuses it within a second\n", what, t.Scope)
			return err
		},
	}
}
