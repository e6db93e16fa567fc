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

// readmeChangesClient is the Python bank sync the README shows under
// "A changes feed for integrators", cut from the README so that the test
// runs what a reader copies.
func readmeChangesClient(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "<!-- changes-client -->\n```python\n")
	code, _, closed := strings.Cut(rest, "```\n")
	if !ok || !closed {
		t.Fatal("README.md has no changes-client Python block")
	}
	return code
}

type pyBank struct {
	Checkpoint string `json:"checkpoint"`
	Bank       map[string]struct {
		Labels     []string `json:"labels"`
		AttestedBy []string `json:"attested_by"`
	} `json:"bank"`
}

// TestChangesFeedPython: the README's Python client syncs a bank from a
// platform's node; a signal the referral unit adds, then retracts on its
// own node, arrives at the platform's by gossip or sync, and the next
// run of the client deletes it (a tombstone); a run with a checkpoint of
// another node's store starts over.
func TestChangesFeedPython(t *testing.T) {
	t.Parallel()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is not installed; .ci/run installs it (apt-get install python3): %v", err)
	}
	client := filepath.Join(t.TempDir(), "bank_sync.py")
	if err := os.WriteFile(client, []byte(readmeChangesClient(t)), 0o755); err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, "nru=referral", "platform-a=platform")
	c.startAll()
	nru, pa := c.nodes["nru"], c.nodes["platform-a"]
	c.waitMesh(nru, pa)
	paAPI := apiOf(t, pa)
	api, token := paAPI.base, paAPI.token
	bankFile := filepath.Join(t.TempDir(), "bank.json")
	run := func(url, tok string) pyBank {
		t.Helper()
		cmd := exec.Command(py, client, url, bankFile)
		cmd.Env = append(os.Environ(), "STAYDOWN_TOKEN="+tok)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bank_sync.py: %v\n%s", err, out)
		}
		b, err := os.ReadFile(bankFile)
		if err != nil {
			t.Fatal(err)
		}
		var bank pyBank
		if err := json.Unmarshal(b, &bank); err != nil {
			t.Fatalf("bank.json: %v", err)
		}
		return bank
	}

	var ids []string
	for i := range 3 {
		hash := fmt.Sprintf("%064x", i+1)
		ids = append(ids, strings.TrimSpace(mustCLI(t, "add", "--dir", nru.dir, "--type", "sha256", "--label", "attacker-manifesto", hash)))
	}
	last := fmt.Sprintf("%064x", 3)
	waitFor(t, 30*time.Second, "platform-a matches the referral unit's signals", func() bool {
		r, _ := c.match(pa, "sha256", last)
		return r.Matched
	})
	bank := run(api, token)
	if len(bank.Bank) != 3 || bank.Checkpoint == "" {
		t.Fatalf("first sync: %d signals, checkpoint %q; want 3", len(bank.Bank), bank.Checkpoint)
	}
	rec, ok := bank.Bank["sha256:"+last]
	if !ok || len(rec.AttestedBy) != 1 || rec.AttestedBy[0] != "nru" || len(rec.Labels) != 1 || rec.Labels[0] != "attacker-manifesto" {
		t.Fatalf("record of %s: %+v (present %v)", last, rec, ok)
	}

	mustCLI(t, "retract", "--dir", nru.dir, ids[2], "--reason", "wrong file")
	waitFor(t, 30*time.Second, "the retraction reaches platform-a", func() bool {
		r, _ := c.match(pa, "sha256", last)
		return !r.Matched
	})
	before := bank.Checkpoint
	bank = run(api, token)
	if _, ok := bank.Bank["sha256:"+last]; ok || len(bank.Bank) != 2 || bank.Checkpoint == before {
		t.Fatalf("after the retraction: %d signals (the retracted one present %v), checkpoint moved %v", len(bank.Bank), ok, bank.Checkpoint != before)
	}

	// The same bank pointed at the referral unit's node: its checkpoint is
	// platform-a's, refused; the client starts over and gets the same bank.
	nruAPI := apiOf(t, nru)
	again := run(nruAPI.base, nruAPI.token)
	if len(again.Bank) != 2 || again.Checkpoint == bank.Checkpoint {
		t.Fatalf("after starting over on another node: %d signals, checkpoint changed %v", len(again.Bank), again.Checkpoint != bank.Checkpoint)
	}
}
