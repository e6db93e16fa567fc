package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/protocol"
)

func (c *cli) addCommand() *cobra.Command {
	var typ, caseRef string
	var labels []string
	cmd := &cobra.Command{
		Use:   "add --dir D --type TYPE --label LABEL [--label LABEL ...] [--case REF] VALUE [VALUE ...]",
		Short: "Publish a hash addition: these signals identify terrorist content",
		Long: `Publish a hash addition to this node's log: the VALUEs, all of --type,
identify terrorist content (or an account). Prints the new entry's id.

--case REF is signed into the entry: every member holds it, and an
export or transparency report can show it. Use a reference that names no
person and no investigation detail.

Types: sha256, md5, pdq (hex), url (absolute http(s) URL), account
(SERVICE:ID). Labels (repeat --label for several):
  ` + strings.Join(labelSlugs(), "\n  ") + `
  other:FREE TEXT`,
		Args: args("VALUE", 1, -1),
		RunE: func(cmd *cobra.Command, values []string) error {
			sigs, err := signalArgs(typ, values)
			if err != nil {
				return err
			}
			if len(labels) == 0 {
				return needFlag("label", "at least one label, e.g. --label recruitment-and-instruction")
			}
			for _, l := range labels {
				if _, err := protocol.ParseLabel(l); err != nil {
					return fmt.Errorf("--label %s: %w", short(l), err)
				}
			}
			if len(caseRef) > protocol.MaxCaseRefLen {
				return fmt.Errorf("--case: %d bytes, limit %d", len(caseRef), protocol.MaxCaseRefLen)
			}
			req := api.AdditionRequest{Signals: sigs, Labels: labels, CaseRef: caseRef}
			if _, err := req.Entry(); err != nil {
				return err
			}
			return c.publish(cmd.Context(), "/v1/additions", req)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&typ, "type", "t", "", "signal type of every VALUE: sha256, md5, pdq, url or account")
	f.StringArrayVarP(&labels, "label", "l", nil, "label from the vocabulary, or other:TEXT (repeat for several)")
	f.StringVar(&caseRef, "case", "", "a case reference, PUBLIC: signed into the entry, which every member holds and exports")
	return cmd
}

// labelSlugs lists the vocabulary without "other", which needs text.
func labelSlugs() []string {
	var ls []string
	for _, l := range protocol.Labels {
		if l != "other" {
			ls = append(ls, l)
		}
	}
	return ls
}
