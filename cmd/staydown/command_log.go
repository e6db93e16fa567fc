package main

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/audit"
	"github.com/staydown/staydown/protocol/export"
	"github.com/staydown/staydown/store"
)

func (c *cli) logCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "log (export | import)",
		Short: "Export the logs to a file, or import one",
		Long: `Export every log a node holds to one self-contained file (SPEC.md section
19), for an auditor ("staydown audit FILE") or another node ("staydown log
import").`,
		Args: args("", 0, 0),
	}
	cmd.AddCommand(c.logExportCommand(), c.logImportCommand())
	return cmd
}

func (c *cli) logExportCommand() *cobra.Command {
	var out string
	var authors []string
	cmd := &cobra.Command{
		Use:   "export --dir D --out FILE [--author NAME]...",
		Short: "Write every log the running node holds to FILE",
		Long: `Write every log the running node holds, the evidence of equivocation it
kept, and the roster it checked them against, to FILE (SPEC.md section 19).
--author NAME (repeatable) exports only those members' logs. The file is
written to FILE.tmp and renamed when complete.`,
		Args: args("", 0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return needFlag("out", "the file to write")
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			q := url.Values{}
			for _, a := range authors {
				q.Add("author", a)
			}
			body, err := cl.stream(cmd.Context(), "GET", "/v1/export?"+q.Encode())
			if err != nil {
				return err
			}
			defer body.Close()
			tmp := out + ".tmp"
			f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			n, err := io.Copy(f, body)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				os.Remove(tmp)
				return fmt.Errorf("writing %s: %w", display(out), err)
			}
			// Check the file reads back whole before naming it: a stream cut
			// short has no valid trailer.
			if err := checkExport(tmp); err != nil {
				os.Remove(tmp)
				return fmt.Errorf("the node's export did not arrive whole: %w", err)
			}
			if err := os.Rename(tmp, out); err != nil {
				return err
			}
			if c.json {
				return c.printJSON(struct {
					File  string `json:"file"`
					Bytes int64  `json:"bytes"`
				}{out, n})
			}
			_, err = fmt.Fprintf(c.stdout, "wrote %s (%d bytes)\n", out, n)
			return err
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "the file to write (required)")
	cmd.Flags().StringArrayVar(&authors, "author", nil, "export only this member's log (repeatable)")
	return cmd
}

// checkExport reads a file through to its trailer.
func checkExport(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := export.NewReader(f)
	if err != nil {
		return err
	}
	for {
		if _, err := r.Next(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}

func (c *cli) logImportCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "import --dir D FILE",
		Short: "Import an export file into a stopped node's store",
		Long: `Import the logs of FILE into the store of the node of --dir, which must be
stopped (the store is locked while it runs). Every entry is checked as the
node checks what peers send (roster, role, signature, chain) and as an
auditor does, under the membership the node's genesis and the file's
membership entries make (admissions, rotated and revoked keys); what
fails is refused and listed, the rest is stored. The
node then serves the imported logs to its peers like any other. The file's
checkpoints are checked against the roster and counted, not kept: a node
gathers its own by witnessing the logs it holds.

Exit 0 when everything was imported (or already held); 1 when something
was refused; 2 when the file or the store cannot be read.`,
		Args: args("FILE", 1, 1),
		RunE: func(cmd *cobra.Command, files []string) error {
			cfg, err := c.config()
			if err != nil {
				return err
			}
			// A first pass works out the membership the file makes from
			// the node's genesis, as an audit does, so that entries are
			// judged as the node judges them: of members admitted by vote,
			// under rotated keys, past a revoked key's end.
			first, err := auditFile(files[0], cfg.RosterPath)
			if err != nil {
				return err
			}
			f, err := os.Open(files[0])
			if err != nil {
				return err
			}
			defer f.Close()
			r, err := export.NewReader(f)
			if err != nil {
				return fmt.Errorf("%s: %w", display(files[0]), err)
			}
			if r.Header.Federation != cfg.Federation {
				return fmt.Errorf("%s is an export of federation %q; this node is in %q", display(files[0]), r.Header.Federation, cfg.Federation)
			}
			st, err := store.Open(cfg.StorePath)
			if err != nil {
				return fmt.Errorf("%w (stop the node first: `staydown log import` writes its store directly)", err)
			}
			defer st.Close()
			start := time.Now()
			if _, err := st.SetMembers(first.Membership, nil); err != nil {
				return err
			}
			res, err := importFile(r, first.Everyone, cfg.Federation, st)
			if err != nil {
				return err
			}
			if len(res.refused) > 0 {
				c.code = exitNoMatch
			}
			if c.json {
				return c.printJSON(struct {
					File        string   `json:"file"`
					Stored      int      `json:"stored"`
					AlreadyHeld int      `json:"already_held"`
					Evidence    int      `json:"evidence"`
					Checkpoints int      `json:"checkpoints"`
					Refused     []string `json:"refused"`
				}{files[0], res.applied, res.duplicate, res.evidence, res.checkpoints, append([]string{}, res.refused...)})
			}
			w := c.stdout
			fmt.Fprintf(w, "Imported %s into %s in %v: %d entries stored, %d already held, %d evidence kept, %d refused; %d checkpoints checked (not kept: the node witnesses its own).\n",
				files[0], filepath.Base(cfg.Dir), time.Since(start).Round(time.Millisecond), res.applied, res.duplicate, res.evidence, len(res.refused), res.checkpoints)
			for _, why := range res.refused {
				fmt.Fprintf(w, "  refused: %s\n", printable(why))
			}
			return nil
		},
	}
}

type importResult struct {
	applied, duplicate, evidence, checkpoints int
	refused                                   []string
}

// importFile checks and applies every record, in batches, into st,
// which judges each entry under the membership it was given
// (store.SetMembers); checkpoints are checked against everyone, every
// key the membership knows.
func importFile(r *export.Reader, everyone *protocol.Roster, federation string, st *store.Store) (importResult, error) {
	var res importResult
	var batch []*protocol.Entry
	flush := func() error {
		results, err := st.Apply(batch)
		if err != nil {
			return err
		}
		for i, out := range results {
			switch out.Outcome {
			case store.Applied, store.Void:
				res.applied++
			case store.Duplicate:
				res.duplicate++
			case store.Equivocation:
				res.evidence++
			default:
				res.refused = append(res.refused, fmt.Sprintf("%s seq %d (%s): %s: %v", batch[i].Author, batch[i].Seq(), batch[i].ID, out.Outcome, out.Err))
			}
		}
		batch = batch[:0]
		return nil
	}
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// What came before is checked and may be kept; say what is wrong.
			res.refused = append(res.refused, err.Error())
			break
		}
		if rec.Kind == export.KindCheckpoint {
			// A node gathers its own checkpoints by witnessing the logs
			// it holds (SPEC 20); those of the file are checked, not kept.
			if _, err := protocol.OpenCheckpoint(rec.Raw, everyone); err != nil {
				res.refused = append(res.refused, fmt.Sprintf("record %d: %v", rec.Index, err))
			} else {
				res.checkpoints++
			}
			continue
		}
		e, err := audit.Decode(rec)
		if err == nil {
			err = protocol.CheckFederationOf(federation, e)
		}
		if err != nil {
			res.refused = append(res.refused, fmt.Sprintf("record %d: %v", rec.Index, err))
			continue
		}
		batch = append(batch, e)
		if len(batch) == 4096 {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	return res, flush()
}
