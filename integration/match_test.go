package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// referenceImage is the path of a PDQ reference image
// (shared/testdata/pdq/images, beside the module root).
func referenceImage(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "shared", "testdata", "pdq", "images", name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("PDQ reference image: %v", err)
	}
	return p
}

// fileMatch is the part of `match --file --json` the tests read.
type fileMatch struct {
	Hashes []struct {
		Type    string `json:"type"`
		Value   string `json:"value"`
		Quality *int   `json:"quality"`
	} `json:"hashes"`
	Results []struct {
		Signal       struct{ Type, Value string } `json:"signal"`
		Matched      bool                         `json:"matched"`
		Verdict      string                       `json:"verdict"`
		Attestations []struct {
			Author    string `json:"author"`
			ID        string `json:"id"`
			Status    string `json:"status"`
			Hash      string `json:"hash"`
			Distance  *int   `json:"distance"`
			Transform string `json:"transform"`
		} `json:"attestations"`
	} `json:"results"`
	Matched bool   `json:"matched"`
	Verdict string `json:"verdict"`
}

// matchFile runs `staydown match --file FILE --json` and returns its
// answer and exit code.
func (c *cluster) matchFile(n *node, file string, extra ...string) (fileMatch, int) {
	c.t.Helper()
	out, errs, code := cli(c.t, append([]string{"match", "--dir", n.dir, "--file", file, "--json"}, extra...)...)
	if code == 2 {
		c.t.Fatalf("match --file on %s: exit 2: %s", n.name, errs)
	}
	var r fileMatch
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		c.t.Fatalf("match --file --json on %s: %v: %q", n.name, err, out)
	}
	return r, code
}

// pdqLine returns the pdq hash `staydown hash` prints for file.
func pdqLine(t *testing.T, file string) string {
	t.Helper()
	for _, line := range strings.Split(mustCLI(t, "hash", file), "\n") {
		if v, ok := strings.CutPrefix(line, "pdq:"); ok {
			hash, _, _ := strings.Cut(v, " ")
			return hash
		}
	}
	t.Fatalf("hash %s printed no pdq line", file)
	return ""
}

// TestPDQAcrossNodes: the referral unit publishes the PDQ hash of a photo;
// on a platform's node a blurred copy and a rotated copy match it through
// `match --file`, an unrelated photo does not, and the platform's
// watchlist, holding a shrunk copy it hosts, raises an alert.
func TestPDQAcrossNodes(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "nru=referral", "platform-a=platform")
	c.startAll()
	nru, pa := c.nodes["nru"], c.nodes["platform-a"]
	c.waitMesh(nru, pa)

	// The platform hosts a shrunk copy: it watches its hashes, the PDQ
	// hash with the platform's own reference to the upload (#13 item 12).
	list := filepath.Join(t.TempDir(), "hosted.txt")
	hashes := mustCLI(t, "hash", referenceImage(t, "bridge-mods--shrink-a-lot.jpg"))
	var pdqWatched string
	for l := range strings.SplitSeq(strings.TrimSpace(hashes), "\n") {
		if strings.HasPrefix(l, "pdq:") {
			pdqWatched, _, _ = strings.Cut(l, " ")
			hashes = strings.Replace(hashes, l, l+"\tupload-77", 1)
		}
	}
	if err := os.WriteFile(list, []byte(hashes), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := mustCLI(t, "watch", "add", "--dir", pa.dir, "--file", list); !strings.HasPrefix(out, "added 3, already watched 0, refs added 1") {
		t.Fatalf("watch add: %q", out)
	}
	if out := mustCLI(t, "watch", "list", "--dir", pa.dir); !strings.Contains(out, pdqWatched+"\tupload-77\n") || strings.Count(out, "\n") != 3 {
		t.Fatalf("watch list:\n%s", out)
	}

	blurred := referenceImage(t, "bridge-mods--blur-a-lot.jpg")
	if _, code := c.matchFile(pa, blurred); code != 1 {
		t.Fatalf("blurred copy before any addition: exit %d, want 1", code)
	}
	hash := pdqLine(t, referenceImage(t, "bridge-mods--aaa-orig.jpg"))
	id := strings.TrimSpace(mustCLI(t, "add", "--dir", nru.dir, "--type", "pdq", "--label", "graphic-violence", hash))

	var got fileMatch
	waitFor(t, deliveryBound, "platform-a matches the blurred copy", func() bool {
		var code int
		got, code = c.matchFile(pa, blurred)
		return code == 3 // verdict review: one member attests
	})
	res := got.Results[2]
	if len(got.Hashes) != 3 || got.Hashes[2].Type != "pdq" || res.Signal.Type != "pdq" || !res.Matched || res.Verdict != "review" || got.Verdict != "review" {
		t.Fatalf("blurred copy: %+v", got)
	}
	if a := res.Attestations[0]; a.ID != id || a.Author != "nru" || a.Status != "active" || a.Hash != hash || a.Distance == nil || *a.Distance > 31 || a.Transform != "" {
		t.Errorf("blurred copy: attestation %+v", a)
	}

	rotated := referenceImage(t, "dih--bridge-2-rotate-90.jpg")
	got, code := c.matchFile(pa, rotated)
	if code != 3 || len(got.Results[2].Attestations) != 1 {
		t.Fatalf("rotated copy: exit %d, %+v", code, got)
	}
	if a := got.Results[2].Attestations[0]; a.ID != id || a.Transform == "" || *a.Distance > 31 {
		t.Errorf("rotated copy: attestation %+v", a)
	}
	if _, code := c.matchFile(pa, rotated, "--no-dihedral"); code != 1 {
		t.Errorf("rotated copy with --no-dihedral: exit %d, want 1", code)
	}
	if got, code := c.matchFile(pa, referenceImage(t, "labelme-subset--q2821.jpg")); code != 1 || got.Matched || got.Verdict != "none" {
		t.Errorf("unrelated photo: exit %d, %+v", code, got)
	}

	// The shrunk copy the platform hosts: one alert, with the attestation.
	var alerts struct {
		Alerts []struct {
			Seq         uint64                       `json:"seq"`
			Watched     struct{ Type, Value string } `json:"watched"`
			Distance    *int                         `json:"distance"`
			Attestation struct{ ID, Status string }  `json:"attestation"`
			Refs        []string                     `json:"refs"`
		} `json:"alerts"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, "alerts", "--dir", pa.dir, "--json")), &alerts); err != nil {
		t.Fatal(err)
	}
	if len(alerts.Alerts) != 1 {
		t.Fatalf("alerts: %+v", alerts)
	}
	if a := alerts.Alerts[0]; a.Watched.Type != "pdq" || a.Attestation.ID != id || a.Attestation.Status != "active" || a.Distance == nil || *a.Distance > 31 ||
		len(a.Refs) != 1 || a.Refs[0] != "upload-77" {
		t.Errorf("alert %+v", a)
	}
	if !strings.Contains(pa.log(t), "watchlist alert") || !strings.Contains(pa.log(t), "upload-77") {
		t.Errorf("platform-a's log does not say watchlist alert with the ref upload-77")
	}
}
