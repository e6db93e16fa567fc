package integration

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/staydown/staydown/config"
)

// A federation's logs exported by one node audit clean offline; a tampered
// copy does not; the same logs imported into a node that lost its store
// give it the same heads as the others.
func TestExportAuditImport(t *testing.T) {
	t.Parallel()
	c, nru, a, b := threeNodes(t)
	hash := randomSHA256(t)
	add := strings.TrimSpace(mustCLI(t, "add", "--dir", nru.dir, "--type", "sha256", "--label", "attacker-manifesto", hash))
	dispute(t, b, add, "news footage")
	n1 := strings.TrimSpace(mustCLI(t, "notice", "--dir", nru.dir, "--to", "platform-a", "--url", "https://v.example/1",
		"--category", "attacker-manifesto", "--basis", "TCO art. 3"))
	waitNotice(t, a, n1, "open")
	mustCLI(t, "reply", "--dir", a.dir, n1, "--status", "removed")
	waitFor(t, deliveryBound, "identical heads digests", func() bool {
		d := c.status(nru).HeadsDigest
		return c.status(a).HeadsDigest == d && c.status(b).HeadsDigest == d
	})

	file := filepath.Join(t.TempDir(), "fed.export")
	if out := mustCLI(t, "log", "export", "--dir", a.dir, "--out", file, "--json"); !strings.Contains(out, `"bytes": `) {
		t.Errorf("log export --json printed %q (#13 item 8: it printed nothing)", out)
	}
	out, errs, code := cli(t, "audit", file, "--roster", c.roster, "--json")
	if code != 0 {
		t.Fatalf("audit of a clean export: exit %d: %s%s", code, out, errs)
	}
	var res struct {
		OK         bool              `json:"ok"`
		Entries    int               `json:"entries"`
		Logs       int               `json:"logs"`
		Violations []json.RawMessage `json:"violations"`
		Report     struct {
			Totals struct {
				Additions int `json:"additions"`
				Disputed  int `json:"disputed"`
				Actioned  int `json:"actioned"`
			} `json:"totals"`
		} `json:"report"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if !res.OK || res.Entries != 4 || res.Logs != 3 || res.Report.Totals.Additions != 1 || res.Report.Totals.Disputed != 1 || res.Report.Totals.Actioned != 1 {
		t.Errorf("audit: %s", out)
	}
	// A partial export (nru's log only) says what it lacks (#13 item 14:
	// it showed n1 open though platform-a answered it, in its own log).
	partial := filepath.Join(t.TempDir(), "nru.export")
	mustCLI(t, "log", "export", "--dir", a.dir, "--out", partial, "--author", "nru")
	out, errs, code = cli(t, "audit", partial, "--roster", c.roster, "--json")
	var part struct {
		Absent []string `json:"absent_logs"`
		State  struct {
			Open []struct {
				ID              string `json:"id"`
				AddresseeAbsent bool   `json:"addressee_absent"`
			} `json:"open_notices"`
		} `json:"state"`
	}
	if err := json.Unmarshal([]byte(out), &part); err != nil {
		t.Fatalf("audit of a partial export: exit %d: %v: %s%s", code, err, out, errs)
	}
	if strings.Join(part.Absent, ",") != "platform-a,platform-b" || len(part.State.Open) != 1 || part.State.Open[0].ID != n1 || !part.State.Open[0].AddresseeAbsent {
		t.Errorf("audit of nru's log alone: absent %v, open %+v; want platform-a and platform-b absent, n1 open with its addressee absent", part.Absent, part.State.Open)
	}
	if out, _, _ := cli(t, "audit", partial, "--roster", c.roster); !strings.Contains(out, "Partial export: the logs of platform-a, platform-b are not in it") ||
		!strings.Contains(out, "the addressee's log is not in the export") {
		t.Errorf("audit of a partial export, text:\n%s", out)
	}
	if !strings.Contains(mustCLI(t, "audit", file, "--roster", c.roster, "--json"), `"absent_logs": []`) {
		t.Error("a whole export names absent logs")
	}

	// In place, through the running node.
	if out, errs, code := cli(t, "audit", "--dir", nru.dir); code != 0 || !strings.Contains(out, "Everything holds") {
		t.Errorf("audit --dir: exit %d: %s%s", code, out, errs)
	}

	// One flipped bit in the addition's sha256: caught, with the entry.
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	raw := mustHex(t, hash)
	i := bytes.Index(data, raw)
	if i < 0 {
		t.Fatal("the hash is not in the export")
	}
	data[i] ^= 1
	tampered := filepath.Join(t.TempDir(), "tampered.export")
	if err := os.WriteFile(tampered, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, code = cli(t, "audit", tampered, "--roster", c.roster)
	if code != 1 || !strings.Contains(out, "[bad-signature]") || !strings.Contains(out, "evidence: entry") || !strings.Contains(out, "[file]") {
		t.Errorf("audit of a tampered export: exit %d:\n%s", code, out)
	}
	if _, errs, code := cli(t, "audit", filepath.Join(t.TempDir(), "missing"), "--roster", c.roster); code != 2 || errs == "" {
		t.Errorf("audit of a missing file: exit %d, stderr %q", code, errs)
	}

	// platform-b loses its store; the export brings it back.
	want := c.status(nru).HeadsDigest
	c.stop(b)
	cfg, err := config.Load(b.dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(cfg.StorePath); err != nil {
		t.Fatal(err)
	}
	if out, errs, code := cli(t, "log", "import", "--dir", b.dir, file); code != 0 || !strings.Contains(out, "4 entries stored") {
		t.Fatalf("import: exit %d: %s%s", code, out, errs)
	}
	// Again, with --json (#13 item 8: it was ignored): all held now.
	if out, errs, code := cli(t, "log", "import", "--dir", b.dir, file, "--json"); code != 0 || !strings.Contains(out, `"already_held": 4`) || !strings.Contains(out, `"refused": []`) {
		t.Fatalf("import --json: exit %d: %s%s", code, out, errs)
	}
	c.start(b)
	if got := c.status(b).HeadsDigest; got != want {
		t.Errorf("after import, platform-b's digest %s, want %s", got, want)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
