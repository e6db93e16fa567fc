package main

import (
	"os"
	"path/filepath"
	"testing"
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
