package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// importSummary is the part of `import --json` the tests read.
type importSummary struct {
	Rows, Rejected, Added, Skipped, Retracted, NotAttested, Entries int
	Problems                                                        []string
}

func runImport(t *testing.T, n *node, file string, wantCode int, extra ...string) importSummary {
	t.Helper()
	out, errs, code := cli(t, append([]string{"import", "--dir", n.dir, "--json", file}, extra...)...)
	if code != wantCode {
		t.Fatalf("import %s: exit %d, want %d\nstdout: %s\nstderr: %s", file, code, wantCode, out, errs)
	}
	var s importSummary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("import --json: %v: %q", err, out)
	}
	return s
}

// TestImportAcrossNodes imports a CSV with some bad rows on a referral
// node and matches its last signal on a platform's node; a re-run adds
// nothing; a TAT list marking a signal deleted retracts it there too; a
// dry run publishes nothing.
func TestImportAcrossNodes(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "nru=referral", "platform-a=platform")
	c.startAll()
	nru, pa := c.nodes["nru"], c.nodes["platform-a"]
	c.waitMesh(nru, pa)

	dir := t.TempDir()
	var b strings.Builder
	const rows = 5000
	for i := range rows {
		if i%1000 == 500 {
			fmt.Fprintf(&b, "md5:%031x\n", i) // bad: 31 hex digits
			continue
		}
		fmt.Fprintf(&b, "md5:%032x,graphic-violence\n", i)
	}
	list := filepath.Join(dir, "list.csv")
	if err := os.WriteFile(list, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	dry := runImport(t, nru, list, 1, "--dry-run")
	if dry.Added != rows-5 || dry.Entries != 0 || dry.Rejected != 5 {
		t.Fatalf("dry run: %+v", dry)
	}
	if r, _ := c.match(nru, "md5", fmt.Sprintf("%032x", rows-1)); r.Matched {
		t.Fatal("the dry run published")
	}

	first := runImport(t, nru, list, 1)
	if first.Added != rows-5 || first.Skipped != 0 || first.Rejected != 5 || first.Entries != 5 {
		t.Fatalf("first import: %+v", first)
	}
	for i, p := range first.Problems {
		if want := fmt.Sprintf("line %d: ", 1000*i+501); !strings.HasPrefix(p, want) {
			t.Errorf("problem %d = %q, want it to start %q", i, p, want)
		}
	}
	last := fmt.Sprintf("%032x", rows-1)
	waitFor(t, 30*time.Second, "platform-a matches the last imported signal", func() bool {
		r, _ := c.match(pa, "md5", last)
		return r.Matched
	})

	again := runImport(t, nru, list, 1)
	if again.Added != 0 || again.Skipped != rows-5 || again.Entries != 0 {
		t.Fatalf("re-run: %+v", again)
	}

	tat := filepath.Join(dir, "tat.json")
	doc := fmt.Sprintf(`{"results":[{"id":1,"hash_digest":%q,"algorithm":"MD5","ideology":"islamist","file_type":"image/png","deleted":true}]}`, last)
	if err := os.WriteFile(tat, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	del := runImport(t, nru, tat, 0, "--label", "graphic-violence")
	if del.Retracted != 1 || del.Entries != 1 {
		t.Fatalf("deleted row: %+v", del)
	}
	waitFor(t, 30*time.Second, "platform-a sees the retraction", func() bool {
		r, _ := c.match(pa, "md5", last)
		return len(r.Attestations) == 1 && r.Attestations[0].Status == "retracted"
	})
	// Other signals of the same entry stay active.
	if r, _ := c.match(pa, "md5", fmt.Sprintf("%032x", rows-2)); len(r.Attestations) != 1 || r.Attestations[0].Status != "active" {
		t.Fatalf("a signal not deleted: %+v", r)
	}

	// A file of the wrong format: exit 2, nothing published.
	junk := filepath.Join(dir, "junk.json")
	os.WriteFile(junk, []byte(`{"results": [{"id": 1, "hash_digest": "ab`), 0o600)
	if _, errs, code := cli(t, "import", "--dir", nru.dir, junk); code != 2 || !strings.Contains(errs, "cut short") {
		t.Fatalf("truncated JSON: exit %d: %s", code, errs)
	}
}

// TestImportInterrupted kills `staydown import` while it publishes and
// runs it again: the re-run skips what was published, adds the rest, and
// every signal ends up attested once.
func TestImportInterrupted(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "nru=referral", "platform-a=platform")
	c.startAll()
	nru, pa := c.nodes["nru"], c.nodes["platform-a"]
	c.waitMesh(nru, pa)

	const rows = 60_000
	var b strings.Builder
	for i := range rows {
		fmt.Fprintf(&b, "md5:%032x\n", i)
	}
	list := filepath.Join(t.TempDir(), "list.csv")
	if err := os.WriteFile(list, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "import", "--dir", nru.dir, "--label", "graphic-violence", list)
	dieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the first entries of the import", func() bool {
		return c.status(nru).Heads["nru"] >= 3
	})
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	before := c.status(nru).Heads["nru"]
	if before*1000 >= rows {
		// Too fast a machine: the re-run below still checks that a
		// finished import repeated adds nothing.
		t.Logf("the import finished (%d entries) before it could be interrupted", before)
	}

	s := runImport(t, nru, list, 0, "--label", "graphic-violence")
	if s.Skipped == 0 || s.Added+s.Skipped != rows {
		t.Fatalf("re-run: %+v (after %d entries)", s, before)
	}
	for i := 0; i < rows; i += rows / 40 {
		r, _ := c.match(nru, "md5", fmt.Sprintf("%032x", i))
		if len(r.Attestations) != 1 {
			t.Fatalf("signal %d: %d attestations, want 1", i, len(r.Attestations))
		}
	}
	last := fmt.Sprintf("%032x", rows-1)
	waitFor(t, 30*time.Second, "platform-a matches the last signal", func() bool {
		r, _ := c.match(pa, "md5", last)
		return r.Matched
	})
}
