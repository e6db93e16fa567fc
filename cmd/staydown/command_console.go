package main

import (
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/node/console"
)

func (c *cli) consoleCommand() *cobra.Command {
	var tokenFile string
	cmd := &cobra.Command{
		Use:   "console --dir D [--token-file F]",
		Short: "Print a one-time sign-in link to the running node's web console",
		Long: `Ask the running node of directory D for a sign-in ticket and print the
link to its web console (served at / on the API's address). Open the link
once, within five minutes: it signs the browser in with a session cookie
(HttpOnly, SameSite=Strict, twelve hours) and takes it to the overview;
the API token never reaches the browser.

The session may do what the token may: by default the node's own
api.token (everything); with --token-file F, the token in F, for example a
read-scope token from "staydown token add --scope read", whose session
sees no write controls.`,
		Args: args("", 0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			if tokenFile != "" {
				data, err := os.ReadFile(tokenFile)
				if err != nil {
					return fmt.Errorf("--token-file: %w", err)
				}
				tok := strings.TrimSpace(string(data))
				if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
					return usagef("--token-file %q: want one token on one line", tokenFile)
				}
				cl.token = tok
			}
			var t console.Ticket
			if err := cl.call(cmd.Context(), http.MethodPost, "/console/tickets", nil, &t); err != nil {
				return err
			}
			if c.json {
				return c.printJSON(map[string]string{"url": cl.base + t.Path, "expires": t.Expires, "scope": t.Scope})
			}
			fmt.Fprintf(c.stdout, "Open this link once, before %s (session scope: %s):\n\n    %s\n", t.Expires, t.Scope, cl.base+t.Path)
			return nil
		},
	}
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "sign in with the token in this file instead of the node's api.token")
	return cmd
}
