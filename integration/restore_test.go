package integration

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/staydown/staydown/node/api"
)

// fullStatus is the part of `status --json` the restore tests read.
type fullStatus struct {
	Heads            map[string]uint64 `json:"heads"`
	HeadsDigest      string            `json:"heads_digest"`
	Flagged          []string          `json:"flagged"`
	OwnHeadConfirmed bool              `json:"own_head_confirmed"`
	Restored         *struct {
		Damaged string   `json:"damaged"`
		From    []string `json:"from"`
		Needed  int      `json:"needed"`
		OwnSeq  uint64   `json:"own_seq"`
	} `json:"restored"`
}

func (c *cluster) fullStatus(n *node) fullStatus {
	c.t.Helper()
	var s fullStatus
	if err := json.Unmarshal([]byte(mustCLI(c.t, "status", "--dir", n.dir, "--json")), &s); err != nil {
		c.t.Fatalf("status --json of %s: %v", n.name, err)
	}
	return s
}

// publishN has n add N hashes and waits until every other running node
// holds them; it returns the hashes.
func (c *cluster) publishN(n *node, count int, others ...*node) []string {
	c.t.Helper()
	var hashes []string
	for range count {
		h := randomSHA256(c.t)
		mustCLI(c.t, "add", "--dir", n.dir, "--type", "sha256", "--label", "graphic-violence", h)
		hashes = append(hashes, h)
	}
	for _, o := range others {
		waitFor(c.t, deliveryBound, o.name+" holds "+n.name+"'s entries", func() bool {
			return c.fullStatus(o).Heads[n.name] == uint64(len(hashes))
		})
	}
	return hashes
}

// damage zeroes every page of n's store but the two meta pages, as a
// failing disk would, and returns the damaged bytes.
func damage(t *testing.T, n *node) (string, []byte) {
	t.Helper()
	path := filepath.Join(n.dir, "store.db")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	clear(data[2*os.Getpagesize():])
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

func damagedFiles(t *testing.T, n *node) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(n.dir, "store.db.damaged-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestStoreRestoreFromPeers: a node whose store file is damaged is
// rebuilt from its two peers, its own log included; it continues its log
// at the next seq, and no peer flags it (#12 item 8).
func TestStoreRestoreFromPeers(t *testing.T) {
	t.Parallel()
	c, nru, a, b := threeNodes(t)
	const n = 5
	hashes := c.publishN(nru, n, a, b)
	before := c.fullStatus(a)
	c.stop(nru)
	_, bad := damage(t, nru)

	// The damage is reported, with what to do, by check and by a start.
	out, _, code := cli(t, "store", "check", "--dir", nru.dir)
	if code != 1 || !strings.Contains(out, "staydown store restore --dir") {
		t.Fatalf("store check of a damaged store: exit %d:\n%s", code, out)
	}
	if _, errs, code := cli(t, "run", "--dir", nru.dir); code == 0 || !strings.Contains(errs, "staydown store restore --dir") {
		t.Fatalf("run on a damaged store: exit %d:\n%s", code, errs)
	}

	out = mustCLI(t, "store", "restore", "--dir", nru.dir, "--timeout", "30s")
	if !strings.Contains(out, "own log ends at seq 5") || !strings.Contains(out, "platform-a, platform-b") {
		t.Fatalf("store restore said:\n%s", out)
	}
	kept := damagedFiles(t, nru)
	if len(kept) != 1 {
		t.Fatalf("damaged files kept: %v, want one", kept)
	}
	if got, err := os.ReadFile(kept[0]); err != nil || !bytes.Equal(got, bad) {
		t.Fatalf("the damaged file was not kept as it was (%v)", err)
	}
	mustCLI(t, "store", "check", "--dir", nru.dir)

	c.start(nru)
	st := c.fullStatus(nru)
	if st.Heads["nru"] != n || !st.OwnHeadConfirmed || st.Restored == nil || st.Restored.OwnSeq != n || len(st.Restored.From) != 2 ||
		st.Restored.Damaged != filepath.Base(kept[0]) || st.HeadsDigest != before.HeadsDigest {
		t.Fatalf("restored node's status: %+v (restored %+v), want own head %d confirmed by both, digest %s", st, st.Restored, n, before.HeadsDigest)
	}
	for _, h := range hashes {
		if r, code := c.match(nru, "sha256", h); !acted(code) || !r.Matched {
			t.Errorf("restored node: match of an own hash exit %d", code)
		}
	}
	c.waitMesh(nru, a, b)
	h := randomSHA256(t)
	mustCLI(t, "add", "--dir", nru.dir, "--type", "sha256", "--label", "graphic-violence", h)
	for _, o := range []*node{nru, a, b} {
		waitFor(t, deliveryBound, o.name+" holds seq 6", func() bool { return c.fullStatus(o).Heads["nru"] == n+1 })
	}
	for _, o := range []*node{nru, a, b} {
		if f := c.fullStatus(o).Flagged; len(f) != 0 {
			t.Errorf("%s flags %v", o.name, f)
		}
		if strings.Contains(o.log(t), "equivocation") {
			t.Errorf("%s logged an equivocation", o.name)
		}
	}
}

// TestStoreRestoreTooFewPeers: with one of the two peers down, a restore
// refuses and changes nothing; with --unconfirmed it installs what it got,
// and the node serves matches and refuses to publish (503) until the
// second peer is back and has served it (#12 item 8).
func TestStoreRestoreTooFewPeers(t *testing.T) {
	t.Parallel()
	c, nru, a, b := threeNodes(t)
	hashes := c.publishN(nru, 3, a, b)
	c.stop(nru)
	c.stop(b)
	path, bad := damage(t, nru)

	out, errs, code := cli(t, "store", "restore", "--dir", nru.dir, "--timeout", "3s")
	if code != 2 || !strings.Contains(errs, "1 of the 2 members' nodes needed") || !strings.Contains(errs, "not: platform-b") ||
		strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Fatalf("restore with one peer of two: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, bad) {
		t.Fatalf("a refused restore changed the damaged store (%v)", err)
	}
	if kept := damagedFiles(t, nru); len(kept) != 0 {
		t.Fatalf("a refused restore moved files: %v", kept)
	}
	if _, err := os.Stat(path + ".restoring"); !os.IsNotExist(err) {
		t.Fatalf("a refused restore left its work file: %v", err)
	}

	out = mustCLI(t, "store", "restore", "--dir", nru.dir, "--timeout", "3s", "--unconfirmed")
	if !strings.Contains(out, "NOT confirmed") || !strings.Contains(out, "own log ends at seq 3") {
		t.Fatalf("restore --unconfirmed said:\n%s", out)
	}
	c.start(nru)
	if st := c.fullStatus(nru); st.OwnHeadConfirmed || st.Heads["nru"] != 3 {
		t.Fatalf("status after an unconfirmed restore: %+v", st)
	}
	// Matches are served from what the node holds.
	if r, code := c.match(nru, "sha256", hashes[0]); !acted(code) || !r.Matched {
		t.Fatalf("unconfirmed node: match exit %d", code)
	}
	// Publications are refused: by the CLI in one line, by the API with 503.
	_, errs, code = cli(t, "add", "--dir", nru.dir, "--type", "sha256", "--label", "graphic-violence", randomSHA256(t))
	if code != 2 || !strings.Contains(errs, "own log is not confirmed yet") || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Fatalf("add on an unconfirmed node: exit %d: %s", code, errs)
	}
	if code := postAddition(t, nru); code != http.StatusServiceUnavailable {
		t.Fatalf("POST /v1/additions on an unconfirmed node: %d, want 503", code)
	}

	c.start(b)
	waitFor(t, deliveryBound, "nru's own head confirmed", func() bool { return c.fullStatus(nru).OwnHeadConfirmed })
	if code := postAddition(t, nru); code != http.StatusCreated {
		t.Fatalf("POST /v1/additions once confirmed: %d, want 201", code)
	}
	for _, o := range []*node{nru, a, b} {
		waitFor(t, deliveryBound, o.name+" holds seq 4", func() bool { return c.fullStatus(o).Heads["nru"] == 4 })
		if f := c.fullStatus(o).Flagged; len(f) != 0 {
			t.Errorf("%s flags %v", o.name, f)
		}
	}
}

// postAddition posts an addition to n's API and returns the status code.
func postAddition(t *testing.T, n *node) int {
	t.Helper()
	code, _, err := apiOf(t, n).send(http.MethodPost, "/v1/additions", api.AdditionRequest{
		Signals: []api.Signal{{Type: "sha256", Value: randomSHA256(t)}}, Labels: []string{"graphic-violence"}})
	if err != nil {
		t.Fatal(err)
	}
	return code
}
