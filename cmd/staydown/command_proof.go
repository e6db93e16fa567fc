package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/protocol"
)

func (c *cli) proofCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "proof --dir D ENTRY_ID",
		Short: "Print one entry with its inclusion proof against a signed checkpoint",
		Long: `Print, as JSON, the entry ENTRY_ID, its RFC 6962 audit path, and the latest
checkpoint the node holds of its author's log with every cosignature it
has gathered (SPEC.md section 20). Anyone with the roster can check it offline
with "staydown proof verify": hand a court or an auditor one entry and its
proof instead of the whole log.`,
		Args: args("ENTRY_ID", 1, 1),
		RunE: func(cmd *cobra.Command, ids []string) error {
			if _, err := protocol.ParseID(ids[0]); err != nil {
				return err
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			var p protocol.EntryProof
			if err := cl.call(cmd.Context(), http.MethodGet, "/v1/proof?"+url.Values{"id": {ids[0]}}.Encode(), nil, &p); err != nil {
				return err
			}
			return c.printJSON(p)
		},
	}
	cmd.AddCommand(c.proofVerifyCommand())
	return cmd
}

func (c *cli) proofVerifyCommand() *cobra.Command {
	var rosterPath, federation string
	cmd := &cobra.Command{
		Use:   "verify FILE --roster ROSTER --federation NAME",
		Short: "Check a proof offline against the roster",
		Long: `Check a proof written by "staydown proof": the entry is signed by a member
whose role may write it, the checkpoint is signed by that member (and by
the cosigners it names), and the entry is in the log the checkpoint
states. Exit 0 when it holds, 1 when it does not, 2 when FILE cannot be
read.`,
		Args: args("FILE", 1, 1),
		RunE: func(cmd *cobra.Command, files []string) error {
			if rosterPath == "" {
				return needFlag("roster", "the federation's roster file")
			}
			if federation == "" {
				return needFlag("federation", "the federation's name")
			}
			roster, err := config.LoadRoster(rosterPath, federation)
			if err != nil {
				return err
			}
			data, err := os.ReadFile(files[0])
			if err != nil {
				return err
			}
			var p protocol.EntryProof
			if err := json.Unmarshal(data, &p); err != nil {
				return fmt.Errorf("%s: not a proof: %v", display(files[0]), err)
			}
			got, err := protocol.VerifyEntryProof(p, roster)
			if err != nil {
				c.code = exitNoMatch
				if c.json {
					return c.printJSON(proofVerdict{Holds: false, Problem: err.Error()})
				}
				fmt.Fprintf(c.stdout, "does not hold: %v\n", err)
				return nil
			}
			name := func(k protocol.AuthorKey) string {
				m, _ := roster.ByKey(k)
				return m.Name
			}
			var cosigners []string
			for _, k := range got.Checkpoint.Cosigners {
				cosigners = append(cosigners, name(k))
			}
			if c.json {
				return c.printJSON(proofVerdict{Holds: true, Entry: got.Entry.ID.String(), Kind: string(got.Entry.Kind()), Seq: got.Entry.Seq(),
					Author: name(got.Entry.Author), Log: name(got.Checkpoint.Author), Size: got.Checkpoint.Size, Cosigners: cosigners})
			}
			_, err = fmt.Fprintf(c.stdout, "holds: entry %s (%s, seq %d, by %s) is in %s's log as its checkpoint of size %d states, cosigned by %v\n",
				got.Entry.ID, got.Entry.Kind(), got.Entry.Seq(), name(got.Entry.Author), name(got.Checkpoint.Author), got.Checkpoint.Size, cosigners)
			return err
		},
	}
	cmd.Flags().StringVar(&rosterPath, "roster", "", "the roster file (required)")
	cmd.Flags().StringVar(&federation, "federation", "", "the federation's name (required)")
	return cmd
}

// proofVerdict is what proof verify --json prints.
type proofVerdict struct {
	Holds     bool     `json:"holds"`
	Problem   string   `json:"problem,omitempty"` // why it does not hold
	Entry     string   `json:"entry,omitempty"`
	Kind      string   `json:"kind,omitempty"`
	Seq       uint64   `json:"seq,omitempty"`
	Author    string   `json:"author,omitempty"`
	Log       string   `json:"log,omitempty"` // whose checkpoint
	Size      uint64   `json:"size,omitempty"`
	Cosigners []string `json:"cosigners,omitempty"`
}
