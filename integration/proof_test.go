package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Nodes witness each other's checkpoints; an entry's proof, handed over
// alone, checks out against the roster; a tampered one does not; an
// export carries the checkpoints and audits clean against them.
func TestCheckpointsAndProofs(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "nru=referral", "platform-a=platform", "platform-b=platform")
	for _, n := range c.order {
		f, err := os.OpenFile(filepath.Join(n.dir, "config.toml"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("checkpoint_interval = \"200ms\"\n")
		f.Close()
	}
	c.startAll()
	nru, a, b := c.nodes["nru"], c.nodes["platform-a"], c.nodes["platform-b"]
	c.waitMesh(nru, a, b)
	var id string
	for range 3 {
		id = strings.TrimSpace(mustCLI(t, "add", "--dir", nru.dir, "--type", "sha256", "--label", "attacker-manifesto", randomSHA256(t)))
	}
	var proof string
	waitFor(t, deliveryBound, "a proof of the entry against a checkpoint cosigned by both platforms", func() bool {
		out, _, code := cli(t, "proof", "--dir", a.dir, id)
		if code != 0 {
			return false
		}
		proof = out
		return strings.Count(out, "\\n\u2014 ") >= 3 // the author's signature and two cosignatures
	})
	file := filepath.Join(t.TempDir(), "proof.json")
	if err := os.WriteFile(file, []byte(proof), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, code := cli(t, "proof", "verify", file, "--roster", c.roster, "--federation", "itest")
	if code != 0 || !strings.Contains(out, "holds") || !strings.Contains(out, "platform-a") || !strings.Contains(out, "platform-b") {
		t.Fatalf("proof verify: exit %d: %s%s", code, out, errs)
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(proof), &p); err != nil {
		t.Fatal(err)
	}
	p["leaf_index"] = p["leaf_index"].(float64) - 1 // claim another position
	bad, _ := json.Marshal(p)
	os.WriteFile(file, bad, 0o600)
	if out, _, code := cli(t, "proof", "verify", file, "--roster", c.roster, "--federation", "itest"); code != 1 || !strings.Contains(out, "does not hold") {
		t.Errorf("a tampered proof: exit %d: %s", code, out)
	}
	// --json says the same (#13 item 8: it was ignored).
	if out, _, code := cli(t, "proof", "verify", file, "--roster", c.roster, "--federation", "itest", "--json"); code != 1 || !strings.Contains(out, `"holds": false`) || !strings.Contains(out, `"problem"`) {
		t.Errorf("a tampered proof, --json: exit %d: %s", code, out)
	}

	export := filepath.Join(t.TempDir(), "fed.export")
	mustCLI(t, "log", "export", "--dir", b.dir, "--out", export)
	out, errs, code = cli(t, "audit", export, "--roster", c.roster, "--json")
	var res struct {
		OK          bool `json:"ok"`
		Checkpoints int  `json:"checkpoints"`
		Checked     int  `json:"checkpoints_checked"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || !res.OK || res.Checked == 0 {
		t.Errorf("audit with checkpoints: exit %d, %+v: %s%s", code, res, out, errs)
	}
}
