package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/interop"
	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/api/apitest"
	"github.com/staydown/staydown/node/tokens"
	"github.com/staydown/staydown/protocol"
)

// Bad command lines are refused with one line quoting what was given,
// exit 2, before the node is asked and before anything is written.
func TestExportErrors(t *testing.T) {
	n := startNode(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.csv")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no format", []string{"--out", out}, "--format: required"},
		{"unknown format", []string{"--format", "xml", "--out", out}, `--format: unknown format "xml"`},
		{"no out", []string{"--format", "csv"}, "--out: required"},
		{"unwritable out", []string{"--format", "csv", "--out", filepath.Join(dir, "no", "such", "dir", "x.csv")}, `--out "` + filepath.Join(dir, "no", "such", "dir", "x.csv") + `": cannot write`},
		{"unwritable misp dir", []string{"--format", "misp", "--out", "/proc/version/feed"}, `--out "/proc/version/feed": cannot make the directory`},
		{"bad status", []string{"--format", "csv", "--out", out, "--status", "gone"}, `--status: unknown status "gone"`},
		{"bad since", []string{"--format", "csv", "--out", out, "--since", "yesterday"}, `--since: since "yesterday" is not a time`},
		{"bad label", []string{"--format", "csv", "--out", out, "--label", "nope"}, `--label: label "nope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := staydown(append([]string{"export", "--dir", n.dir}, tc.args...)...)
			wantFailure(t, r, tc.want)
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("bad command lines left files: %v", entries)
	}
}

// exporter is the test node's fake with a store of records to export: two
// active attestations, a retracted one, each a log of its own.
type exporter struct {
	*apitest.Backend
	recs []interop.Record
}

func (e exporter) ExportSignals(ctx context.Context, f interop.Filter, fn func(interop.Record) error) error {
	return e.ExportSignalsRange(ctx, protocol.AuthorKey{}, 1, uint64(len(e.recs)), f, fn)
}

func (e exporter) ExportSignalsRange(_ context.Context, _ protocol.AuthorKey, from, to uint64, f interop.Filter, fn func(interop.Record) error) error {
	for _, r := range e.recs[from-1 : to] {
		if f.Match(r) {
			if err := fn(r); err != nil {
				return err
			}
		}
	}
	return nil
}

func (e exporter) MISPFeed(context.Context) ([]interop.MISPFeedEvent, error) {
	var out []interop.MISPFeedEvent
	for i := range e.recs {
		out = append(out, interop.MISPFeedEvent{From: uint64(i + 1), To: uint64(i + 1), Meta: interop.MISPEventMeta{
			UUID: interop.MISPEventUUID("f", strconv.Itoa(i)), Info: "event", Date: "2026-05-01", Timestamp: 1, OrgName: "bka"}})
	}
	return out, nil
}

func (e exporter) Federation() string { return apitest.Federation }

// `staydown export` writes each format from the node's API, with the
// filters passed on; misp is a feed directory as MISP's generator lays
// it out.
func TestExportFormats(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &testNode{dir: initDir(t, ln.Addr().String()), addr: ln.Addr().String()}
	cfg, err := config.Load(n.dir)
	if err != nil {
		t.Fatal(err)
	}
	token, err := cfg.Token()
	if err != nil {
		t.Fatal(err)
	}
	rec := func(typed, status string, labels ...string) interop.Record {
		typ, val, _ := strings.Cut(typed, ":")
		s, err := protocol.ParseSignal(typ, val)
		if err != nil {
			t.Fatal(err)
		}
		return interop.Record{Signal: s, Author: "bka", EntryID: typed, TimeMs: 1_777_000_000_000, Labels: labels, Status: status}
	}
	md5 := "md5:" + strings.Repeat("1", 32)
	pdq := "pdq:" + strings.Repeat("2", 64)
	gone := "md5:" + strings.Repeat("3", 32)
	be := exporter{apitest.New(cfg.Name, cfg.Role, other), []interop.Record{
		rec(md5, interop.StatusActive, "graphic-violence"),
		rec(pdq, interop.StatusActive, "attacker-manifesto"),
		rec(gone, interop.StatusRetracted, "graphic-violence"),
	}}
	srv := &http.Server{Handler: api.NewServer(be, tokens.Static(token), slog.New(slog.DiscardHandler))}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	dir := t.TempDir()
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	out := filepath.Join(dir, "all.csv")
	r := staydown("export", "--dir", n.dir, "--format", "csv", "--out", out)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "wrote "+out) {
		t.Fatalf("exit %d: %q %q", r.code, r.stdout, r.stderr)
	}
	if got, want := read(out), md5+",graphic-violence\n"+pdq+",attacker-manifesto\n"; got != want {
		t.Errorf("csv:\n%s\nwant\n%s", got, want)
	}
	if _, err := os.Stat(out + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("the temporary file is left: %v", err)
	}
	out = filepath.Join(dir, "gone.txt")
	if r := staydown("export", "--dir", n.dir, "--format", "pytx", "--status", "retracted", "--out", out); r.code != 0 {
		t.Fatalf("exit %d: %q", r.code, r.stderr)
	}
	if got, want := read(out), "video_md5 "+strings.Repeat("3", 32)+"\n"; got != want {
		t.Errorf("pytx, retracted: %q, want %q", got, want)
	}
	out = filepath.Join(dir, "labelled.json")
	if r := staydown("export", "--dir", n.dir, "--format", "stix", "--label", "attacker-manifesto", "--out", out); r.code != 0 {
		t.Fatalf("exit %d: %q", r.code, r.stderr)
	}
	if got := read(out); strings.Count(got, `"type":"indicator"`) != 1 || !strings.Contains(got, strings.Repeat("2", 64)) {
		t.Errorf("stix, labelled attacker-manifesto:\n%s", got)
	}

	feed := filepath.Join(dir, "feed")
	r = staydown("export", "--dir", n.dir, "--format", "misp", "--out", feed)
	if r.code != 0 || !strings.Contains(r.stdout, "MISP feed of 3 events") {
		t.Fatalf("exit %d: %q %q", r.code, r.stdout, r.stderr)
	}
	var manifest map[string]json.RawMessage
	if err := json.Unmarshal([]byte(read(filepath.Join(feed, "manifest.json"))), &manifest); err != nil || len(manifest) != 3 {
		t.Fatalf("manifest: %v %d", err, len(manifest))
	}
	var rows int
	for u := range manifest {
		if err := interop.Read(interop.MISP, strings.NewReader(read(filepath.Join(feed, u+".json"))), interop.Sink{
			Row:    func(interop.Row) error { rows++; return nil },
			Reject: func(p interop.Problem) { t.Error(p) },
		}); err != nil {
			t.Fatal(err)
		}
	}
	if rows != 2 {
		t.Errorf("the events hold %d attributes, want the 2 active", rows)
	}
	if lines := strings.Count(read(filepath.Join(feed, "hashes.csv")), "\n"); lines != 2 {
		t.Errorf("hashes.csv: %d lines, want 2", lines)
	}
}
