package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/interop"
)

// exportCommand is `staydown export`: the node's signals in the field's
// formats, read from the running node's API (GET /v1/signals/export, and
// the MISP feed under /v1/misp-feed/), which streams them from its store
// in bounded chunks. `staydown log export` (the logs themselves, SPEC.md
// section 19) is another command.
func (c *cli) exportCommand() *cobra.Command {
	var format, out, since string
	var authors, labels, statuses []string
	cmd := &cobra.Command{
		Use:   "export --dir D --format F --out FILE [--author NAME]... [--label L]... [--status S]... [--since T]",
		Short: "Write the attested signals in pytx, pytx-csv, tat, stix, misp or csv",
		Long: `Write the signals the running node's store attests in one of the field's
formats (README "Exporting hash lists" says what each carries):
  pytx      python-threatexchange's lines: SIGNAL_TYPE SIGNAL
  pytx-csv  its CSV: signal_type,signal_str,tags
  tat       Tech Against Terrorism's hash-list JSON
  stix      a STIX 2.1 bundle (identities, indicators, opinions for disputes,
            benign indicators for allowlist entries)
  misp      a MISP feed: --out is a directory, given manifest.json, one
            UUID.json per event and hashes.csv
  csv       our own TYPE:VALUE,label,...
Filters: --author NAME, --label L (repeatable: any of them), --status
(active by default; retracted, disputed, allowlisted or all; repeatable),
--since (RFC 3339 time or YYYY-MM-DD). A file is written to FILE.tmp and
renamed when complete.`,
		Args: args("", 0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format == "" {
				return needFlag("format", "one of pytx, pytx-csv, tat, stix, misp, csv")
			}
			f, err := interop.ParseFormat(format)
			if err != nil {
				return usagef("--format: %v", err)
			}
			if out == "" {
				return needFlag("out", "the file (for misp, the directory) to write")
			}
			q := url.Values{}
			for _, a := range authors {
				q.Add("author", a)
			}
			if _, err := interop.ParseLabels(labels); err != nil {
				return usagef("--label: %v", err)
			}
			for _, l := range labels {
				q.Add("label", l)
			}
			for _, s := range statuses {
				if _, err := interop.ParseStatus(s); err != nil {
					return usagef("--status: %v", err)
				}
				q.Add("status", s)
			}
			if since != "" {
				if _, err := interop.ParseSince(since); err != nil {
					return usagef("--since: %v", err)
				}
				q.Set("since", since)
			}
			if f == interop.MISP {
				return c.exportMISP(cmd.Context(), out, q)
			}
			// Make sure FILE can be written before asking the node.
			tmp := out + ".tmp"
			file, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return usagef("--out %q: cannot write: %v", out, errUnwrapPath(err))
			}
			cl, err := c.client()
			if err == nil {
				q.Set("format", string(f))
				var n int64
				n, err = c.fetchTo(cmd.Context(), cl, "/v1/signals/export?"+q.Encode(), file)
				if err == nil {
					err = os.Rename(tmp, out)
				}
				if err == nil {
					return c.wrote(out, n)
				}
			}
			file.Close()
			os.Remove(tmp)
			return err
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "pytx, pytx-csv, tat, stix, misp or csv (required)")
	cmd.Flags().StringVar(&out, "out", "", "the file to write; for misp, the directory (required)")
	cmd.Flags().StringArrayVar(&authors, "author", nil, "only this member's attestations (repeatable)")
	cmd.Flags().StringArrayVar(&labels, "label", nil, "only attestations carrying this label (repeatable: any of them)")
	cmd.Flags().StringArrayVar(&statuses, "status", nil, "active (default), retracted, disputed, allowlisted or all (repeatable)")
	cmd.Flags().StringVar(&since, "since", "", "only entries timestamped at or after this time (RFC 3339 or YYYY-MM-DD)")
	return cmd
}

// errUnwrapPath is the reason of a *PathError without the path, which the
// message quotes itself.
func errUnwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// fetchTo copies the answer to GET path into file and closes file; an
// answer cut short (the node aborts a failed export) is an error.
func (c *cli) fetchTo(ctx context.Context, cl *client, path string, file *os.File) (int64, error) {
	body, err := cl.stream(ctx, "GET", path)
	if err != nil {
		file.Close()
		return 0, err
	}
	defer body.Close()
	n, err := io.Copy(file, body)
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("writing %s: %w", display(file.Name()), err)
	}
	return n, nil
}

func (c *cli) wrote(out string, n int64) error {
	if c.json {
		return c.printJSON(struct {
			File  string `json:"file"`
			Bytes int64  `json:"bytes"`
		}{out, n})
	}
	_, err := fmt.Fprintf(c.stdout, "wrote %s (%d bytes)\n", out, n)
	return err
}

var feedUUID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// exportMISP fetches the node's MISP feed as a MISP instance would
// (manifest.json, each event, hashes.csv) into the directory dir, with
// the filters of q applied to the events and hashes. manifest.json is
// written last, so that a directory without one is an unfinished export.
func (c *cli) exportMISP(ctx context.Context, dir string, q url.Values) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return usagef("--out %q: cannot make the directory: %v", dir, errUnwrapPath(err))
	}
	probe, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return usagef("--out %q: cannot write in the directory: %v", dir, errUnwrapPath(err))
	}
	probe.Close()
	os.Remove(probe.Name())
	cl, err := c.client()
	if err != nil {
		return err
	}
	var manifest map[string]json.RawMessage
	if err := cl.call(ctx, "GET", "/v1/misp-feed/manifest.json", nil, &manifest); err != nil {
		return err
	}
	uuids := make([]string, 0, len(manifest))
	for u := range manifest {
		if !feedUUID.MatchString(u) {
			return fmt.Errorf("the node's MISP manifest names an event %q that is not a uuid", u)
		}
		uuids = append(uuids, u)
	}
	slices.Sort(uuids)
	suffix := ""
	if len(q) > 0 {
		suffix = "?" + q.Encode()
	}
	var total int64
	get := func(path, name string) error {
		tmp := filepath.Join(dir, name+".tmp")
		file, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		n, err := c.fetchTo(ctx, cl, path, file)
		if err == nil {
			err = os.Rename(tmp, filepath.Join(dir, name))
		}
		if err != nil {
			os.Remove(tmp)
		}
		total += n
		return err
	}
	for _, u := range uuids {
		if err := get("/v1/misp-feed/"+u+".json"+suffix, u+".json"); err != nil {
			return err
		}
	}
	if err := get("/v1/misp-feed/hashes.csv"+suffix, "hashes.csv"); err != nil {
		return err
	}
	data, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), data, 0o644); err != nil {
		return err
	}
	total += int64(len(data))
	if c.json {
		return c.printJSON(struct {
			Dir    string `json:"dir"`
			Events int    `json:"events"`
			Bytes  int64  `json:"bytes"`
		}{dir, len(uuids), total})
	}
	_, err = fmt.Fprintf(c.stdout, "wrote %s: MISP feed of %d %s (%d bytes)\n", dir, len(uuids), plural(len(uuids), "event", "events"), total)
	return err
}
