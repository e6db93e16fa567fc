package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/staydown/staydown/protocol"
)

// The samples of package interop, imported through the CLI: detected,
// bad rows reported by where they are, the rest published; exit 1 since
// every sample holds bad rows on purpose.
func TestImportSamples(t *testing.T) {
	for _, tc := range []struct {
		file    string
		signals int // published in additions
		stderr  []string
	}{
		{"pytx.txt", 4, []string{"pytx.txt: line 7: \"raw_text\"", "pytx.txt: line 8: \"1234\""}},
		{"pytx.csv", 3, []string{"pytx.csv: line 5: \"url_md5\""}},
		{"tat.json", 2, []string{"tat.json: results[3] (id 1004): \"SHA512\""}},
		{"stix.json", 4, []string{"stix.json: indicator--3b5c7d9e-1f20-4b4c-9d6e-7f8091a2b3c4: "}},
		{"misp.json", 3, []string{"misp.json: attribute 6a1b2c3d-0000-4000-8000-000000000004: \"ip-dst\""}},
		{"ours.csv", 4, []string{"ours.csv: line 6: \"sha1:"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			n := startNode(t)
			r := staydown("import", "--dir", n.dir, "--label", "graphic-violence", filepath.Join("..", "..", "interop", "testdata", tc.file))
			if r.code != exitNoMatch {
				t.Fatalf("exit %d, want 1: %s %s", r.code, r.stdout, r.stderr)
			}
			for _, s := range tc.stderr {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
				}
			}
			got := 0
			for _, e := range n.fake.Published() {
				got += len(e.GetAddition().GetSignals())
			}
			if got != tc.signals {
				t.Errorf("published %d signals, want %d", got, tc.signals)
			}
			if !strings.HasPrefix(r.stdout, "imported ") {
				t.Errorf("summary: %q", r.stdout)
			}
		})
	}
}

func TestImportErrors(t *testing.T) {
	n := startNode(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	allBad := write("bad.csv", "md5:00\nsha1:"+strings.Repeat("0", 40)+"\n")
	truncated := write("cut.json", `{"results":[{"hash_digest":"`)
	utf16 := write("u16.txt", "\xff\xfep\x00d\x00q\x00")
	unlabelled := write("nolabel.csv", "md5:"+strings.Repeat("0", 32)+"\n")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"nothing importable", []string{allBad, "--label", "graphic-violence"}, "nothing to import: 2 rows rejected"},
		{"truncated JSON", []string{truncated}, "cut.json: unreadable file: the JSON document is cut short"},
		{"UTF-16", []string{utf16}, "the file is UTF-16; convert it to UTF-8"},
		{"unknown format", []string{allBad, "--format", "xml"}, `--format: unknown format "xml"`},
		{"bad label", []string{allBad, "--label", "nope"}, `--label "nope"`},
		{"no label anywhere", []string{unlabelled}, "nothing to import: 1 row rejected"},
		{"missing file", []string{filepath.Join(dir, "none.csv")}, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := staydown(append([]string{"import", "--dir", n.dir}, tc.args...)...)
			if !strings.Contains(r.stderr, "staydown: import: ") {
				wantFailure(t, r, tc.want)
				return
			}
			// The rows' problems come first, one a line, then the error.
			_, last, _ := strings.Cut(r.stderr, "staydown: import: ")
			if r.code != exitError || r.stdout != "" || !strings.Contains(last, tc.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 ending with %q", r.code, r.stdout, r.stderr, tc.want)
			}
		})
	}
	if c := len(n.fake.Published()); c != 0 {
		t.Fatalf("%d entries published on bad input", c)
	}
}

// Standard input is read (once, into a temporary file: the file is read
// twice), and --dry-run publishes nothing.
func TestImportStdinDryRun(t *testing.T) {
	n := startNode(t)
	list := "md5:" + strings.Repeat("1", 32) + "\nmd5:" + strings.Repeat("2", 32) + ",attacker-manifesto\n"
	r := staydownIn(list, "import", "--dir", n.dir, "--label", "graphic-violence", "--dry-run", "-")
	if r.code != 0 || !strings.Contains(r.stdout, "dry run, nothing published: standard input (csv): 2 added") {
		t.Fatalf("exit %d: %q %q", r.code, r.stdout, r.stderr)
	}
	if c := len(n.fake.Published()); c != 0 {
		t.Fatalf("a dry run published %d entries", c)
	}
	r = staydownIn(list, "import", "--dir", n.dir, "--label", "graphic-violence", "-")
	if r.code != 0 || len(n.fake.Published()) != 2 {
		t.Fatalf("exit %d, %d entries (two label sets): %q %q", r.code, len(n.fake.Published()), r.stdout, r.stderr)
	}
	if l := n.fake.Published()[1].GetAddition().GetLabels(); len(l) != 2 || protocol.FormatLabel(l[0]) != "attacker-manifesto" {
		t.Errorf("labels of the second: %v", l)
	}
}
