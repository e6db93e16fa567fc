package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/interop"
	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/protocol"
)

// importBatchSignals and importBatchBytes bound one POST /v1/import: the
// API's limits (api.MaxImportSignals, api.MaxBodySize) with room to spare.
const (
	importBatchSignals = api.MaxImportSignals
	importBatchBytes   = api.MaxBodySize * 3 / 4
	importInFlight     = 4
)

func (c *cli) importCommand() *cobra.Command {
	var format, caseRef string
	var labels []string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "import --dir D [--format F] [--label L ...] [--case REF] [--dry-run] FILE",
		Short: "Import a hash list in the field's formats (pytx, pytx-csv, tat, stix, misp, csv)",
		Long: `Import a hash list: every signal of FILE ("-" for standard input) that
this member does not attest yet is published, in additions of up to 1,000
signals; rows the source marks deleted (TAT's deleted, a revoked STIX
indicator, a deleted MISP attribute) retract this member's attestation of
that signal. The whole file is checked first: every row that cannot be
imported is reported by line (or object id) with the reason, and the
others are imported. A re-run after an interruption skips what was
published and finishes the job, with no duplicates.

Formats (--format; detected from the file's start when left out):
  pytx      python-threatexchange's line format: SIGNAL_TYPE SIGNAL
  pytx-csv  python-threatexchange's CSV: signal_type,signal_str,... header
  tat       Tech Against Terrorism's hash list JSON: {"results": [...]}
  stix      a STIX 2.1 bundle of indicators (file hashes, URLs)
  misp      a MISP event: attributes md5, sha256, url, pdq
  csv       ours: TYPE:VALUE,label,label...
README's "Importing hash lists" says which field maps to what.

--label applies to every row, beside the row's own labels (a row with
none needs one). --dry-run reports what would be done and publishes
nothing. Exit codes: 0 everything imported; 1 some rows were rejected
(the others were imported); 2 nothing importable, or an error.`,
		Args: args("FILE", 1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.runImport(cmd.Context(), args[0], format, labels, caseRef, dryRun)
		},
	}
	f := cmd.Flags()
	f.StringVar(&format, "format", "", "the file's format: "+strings.Join(formatNames(), ", ")+" (default: detected)")
	f.StringArrayVarP(&labels, "label", "l", nil, "label of every row, from the vocabulary or other:TEXT (repeat for several)")
	f.StringVar(&caseRef, "case", "", "a case reference, PUBLIC: signed into every entry")
	f.BoolVar(&dryRun, "dry-run", false, "check the file and report what would be done; publish nothing")
	return cmd
}

func formatNames() []string {
	out := make([]string, len(interop.Formats))
	for i, f := range interop.Formats {
		out[i] = string(f)
	}
	return out
}

// importSummary is what `import --json` prints.
type importSummary struct {
	File        string   `json:"file"`
	Format      string   `json:"format"`
	Rows        int      `json:"rows"`
	Rejected    int      `json:"rejected"`
	Added       int      `json:"added"`
	Skipped     int      `json:"skipped"`
	Retracted   int      `json:"retracted"`
	NotAttested int      `json:"not_attested"`
	Entries     int      `json:"entries"`
	DryRun      bool     `json:"dry_run,omitempty"`
	Problems    []string `json:"problems,omitempty"`
}

func (c *cli) runImport(ctx context.Context, name, format string, labels []string, caseRef string, dryRun bool) error {
	for _, l := range labels {
		if _, err := protocol.ParseLabel(l); err != nil {
			return fmt.Errorf("--label %s: %w", short(l), err)
		}
	}
	if len(caseRef) > protocol.MaxCaseRefLen {
		return fmt.Errorf("--case: %d bytes, limit %d", len(caseRef), protocol.MaxCaseRefLen)
	}
	if format != "" {
		if _, err := interop.ParseFormat(format); err != nil {
			return usageError{fmt.Errorf("--format: %w", err)}
		}
	}
	path, cleanup, err := c.importFile(name)
	if err != nil {
		return err
	}
	defer cleanup()
	where := display(name)
	if name == "-" {
		where = "standard input"
	}
	f, err := c.importFormat(path, format)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	sum := importSummary{File: where, Format: string(f), DryRun: dryRun}

	// Pass 1: check every row; report each bad one.
	if err := readImport(path, f, interop.Sink{
		Row: func(r interop.Row) error {
			if !r.Deleted && len(r.Labels) == 0 && len(labels) == 0 {
				sum.Problems = append(sum.Problems, interop.Problem{Where: r.Where, Value: protocol.FormatSignal(r.Signal), Reason: "no label: give --label (the row names none of our vocabulary)"}.Error())
				return nil
			}
			sum.Rows++
			return nil
		},
		Reject: func(p interop.Problem) { sum.Problems = append(sum.Problems, p.Error()) },
	}); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	sum.Rejected = len(sum.Problems)
	if !c.json {
		for _, p := range sum.Problems {
			fmt.Fprintf(c.stderr, "%s: %s\n", where, p)
		}
	}
	if sum.Rows == 0 {
		return fmt.Errorf("%s: nothing to import: %d %s rejected", where, sum.Rejected, plural(sum.Rejected, "row", "rows"))
	}

	// Pass 2: send the good rows in batches.
	cl, err := c.client()
	if err != nil {
		return err
	}
	prog := newProgress(c.stderr, sum.Rows, c.json)
	batch := api.ImportRequest{Labels: labels, CaseRef: caseRef, DryRun: dryRun}
	size := 0
	// Batches go out importInFlight at a time, so that the node checks
	// some while it signs and stores another, and its writer stores the
	// entries of those that wait in one transaction (one fsync): 4 made
	// 40% fewer commits on each node than 2 (BenchmarkImportMillion).
	// mu guards sum, sent and sendErr.
	var mu sync.Mutex
	sent := 0
	var sendErr error
	send := func(req api.ImportRequest) error {
		var out api.ImportOutcome
		err := cl.call(ctx, http.MethodPost, "/v1/import", req, &out)
		if err != nil && ctx.Err() == nil {
			// A batch in flight beside this one may have published a
			// signal this one also lists (409): sent again, the node
			// skips it. A batch that is wrong fails twice.
			err = cl.call(ctx, http.MethodPost, "/v1/import", req, &out)
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if sendErr == nil {
				sendErr = fmt.Errorf("%w (sent before this error: %d of %d signals, of which %d added and %d skipped; run the same import again to finish)", err, sent, sum.Rows, sum.Added, sum.Skipped)
			}
			return sendErr
		}
		sent += len(req.Signals)
		sum.Added += out.Added
		sum.Skipped += out.Skipped
		sum.Retracted += out.Retracted
		sum.NotAttested += out.NotAttested
		sum.Entries += len(out.Entries)
		prog.update(sent)
		return nil
	}
	jobs := make(chan api.ImportRequest)
	var wg sync.WaitGroup
	for range importInFlight {
		wg.Go(func() {
			for req := range jobs {
				send(req)
			}
		})
	}
	failed := func() error {
		mu.Lock()
		defer mu.Unlock()
		return sendErr
	}
	flush := func() error {
		if len(batch.Signals) == 0 {
			return nil
		}
		if err := failed(); err != nil {
			return err
		}
		req := batch
		req.Signals = slices.Clone(batch.Signals)
		jobs <- req
		batch.Signals, size = batch.Signals[:0], 0
		return nil
	}
	var deleted []api.ImportSignal
	err = readImport(path, f, interop.Sink{
		Row: func(r interop.Row) error {
			if !r.Deleted && len(r.Labels) == 0 && len(labels) == 0 {
				return nil // reported in pass 1
			}
			t, v := protocol.SignalValue(r.Signal)
			s := api.ImportSignal{Type: string(t), Value: v, Labels: r.Labels, Deleted: r.Deleted}
			if r.Deleted {
				// Sent together at the end: the node retracts an entry
				// once (SPEC 9.2), so the deleted signals of one entry
				// must reach it in one batch, not spread over several.
				deleted = append(deleted, s)
				return nil
			}
			n := importSize(s)
			if len(batch.Signals) == importBatchSignals || size+n > importBatchBytes {
				if err := flush(); err != nil {
					return err
				}
			}
			batch.Signals = append(batch.Signals, s)
			size += n
			return nil
		},
		Reject: func(interop.Problem) {},
	})
	if err == nil {
		err = flush()
	}
	close(jobs)
	wg.Wait()
	if err == nil {
		err = failed()
	}
	for len(deleted) > 0 && err == nil {
		n, bytes := 0, 0
		for n < len(deleted) && n < importBatchSignals && bytes+importSize(deleted[n]) <= importBatchBytes {
			bytes += importSize(deleted[n])
			n++
		}
		req := batch
		req.Signals = deleted[:max(n, 1)]
		deleted = deleted[max(n, 1):]
		err = send(req)
	}
	prog.done()
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if sum.Rejected > 0 {
		c.code = exitNoMatch
	}
	if c.json {
		return c.printJSON(sum)
	}
	verb := "imported"
	if dryRun {
		verb = "dry run, nothing published:"
	}
	_, err = fmt.Fprintf(c.stdout, "%s %s (%s): %d added, %d skipped (attested already), %d retracted, %d rejected; %d %s\n",
		verb, where, f, sum.Added, sum.Skipped, sum.Retracted, sum.Rejected, sum.Entries, plural(sum.Entries, "entry", "entries"))
	if err == nil && sum.NotAttested > 0 {
		_, err = fmt.Fprintf(c.stdout, "%d deleted %s not attested by this member: nothing to retract\n", sum.NotAttested, plural(sum.NotAttested, "row", "rows"))
	}
	return err
}

// importFile is the path of the file to import, read twice (check, then
// send): standard input is copied to a temporary file first.
func (c *cli) importFile(name string) (string, func(), error) {
	if name != "-" {
		if _, err := os.Stat(name); err != nil {
			return "", nil, err
		}
		return name, func() {}, nil
	}
	tmp, err := os.CreateTemp("", "staydown-import-*")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.Remove(tmp.Name()) }
	if _, err := io.Copy(tmp, c.stdin); err != nil {
		tmp.Close()
		cleanup()
		return "", nil, fmt.Errorf("reading standard input: %w", err)
	}
	if err := tmp.Close(); err != nil {
		cleanup()
		return "", nil, err
	}
	return tmp.Name(), cleanup, nil
}

func (c *cli) importFormat(path, format string) (interop.Format, error) {
	if format != "" {
		f, err := interop.ParseFormat(format)
		if err != nil {
			return "", usageError{fmt.Errorf("--format: %w", err)}
		}
		return f, nil
	}
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	head := make([]byte, interop.SniffSize)
	n, err := io.ReadFull(fh, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return "", err
	}
	return interop.Detect(head[:n])
}

// importSize estimates the bytes a signal takes in a batch's JSON body.
func importSize(s api.ImportSignal) int {
	n := len(s.Value)*5/4 + 64 // JSON escapes (a vpdq value is JSON itself)
	for _, l := range s.Labels {
		n += len(l) + 4
	}
	return n
}

func readImport(path string, f interop.Format, sink interop.Sink) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	return interop.Read(f, fh, sink)
}

// progress reports an import's progress on stderr: a bar redrawn in place
// on a terminal (count, rate, ETA), a plain line every progressEvery
// otherwise (a log file gets no carriage returns).
type progress struct {
	w           io.Writer
	tty, quiet  bool
	total       int
	start, last time.Time
}

const progressEvery = 5 * time.Second

func newProgress(w io.Writer, total int, quiet bool) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	now := time.Now()
	return &progress{w: w, tty: tty, quiet: quiet, total: total, start: now, last: now}
}

func (p *progress) update(sent int) {
	if p.quiet {
		return
	}
	now := time.Now()
	if !p.tty && now.Sub(p.last) < progressEvery {
		return
	}
	p.last = now
	elapsed := now.Sub(p.start).Seconds()
	rate := float64(sent) / max(elapsed, 1e-3)
	eta := time.Duration(float64(p.total-sent) / max(rate, 1e-3) * float64(time.Second)).Round(time.Second)
	if p.tty {
		const width = 30
		done := width * sent / max(p.total, 1)
		fmt.Fprintf(p.w, "\r[%s%s] %d/%d signals, %.0f/s, ETA %v ", strings.Repeat("#", done), strings.Repeat(".", width-done), sent, p.total, rate, eta)
		return
	}
	fmt.Fprintf(p.w, "import: %d/%d signals sent, %.0f/s, ETA %v\n", sent, p.total, rate, eta)
}

func (p *progress) done() {
	if p.tty && !p.quiet {
		fmt.Fprintln(p.w)
	}
}
