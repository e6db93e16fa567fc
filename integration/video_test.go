package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/staydown/staydown/internal/ffmpegtest"
)

// referenceVideo is a video of the vPDQ reference data
// (shared/testdata/vpdq/videos, beside the module root).
func referenceVideo(t *testing.T, name string) string {
	t.Helper()
	ffmpegtest.Require(t)
	p := filepath.Join("..", "..", "shared", "testdata", "vpdq", "videos", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("vPDQ reference video: %v", err)
	}
	return p
}

// TestVideoAcrossFederation: a referral unit publishes a video with
// `add --file video.mp4`; a platform's node, started afterwards, receives
// it by sync; `hash` of the same video there gives the identical vpdq
// signal, and an exact `match vpdq:...` finds the addition. The export of
// that node holds it: the Go auditor and the Python verifier both pass
// it, and count its signals by type alike (the transparency report's
// signals_by_type). Near matching of re-encoded videos is another test's.
func TestVideoAcrossFederation(t *testing.T) {
	t.Parallel()
	py := requirePython(t)
	video := referenceVideo(t, "chair-22-sd-sepia-bar.mp4")
	c := newCluster(t, "nru=referral", "platform-a=platform")
	nru, a := c.nodes["nru"], c.nodes["platform-a"]
	c.start(nru)

	id := strings.TrimSpace(mustCLI(t, "add", "--dir", nru.dir, "--file", video, "--label", "attacker-manifesto", "--case", "IRU-V1"))
	mustCLI(t, "add", "--dir", nru.dir, "--type", "url", "--label", "attacker-manifesto", "https://video.example/watch?v=1")
	mustCLI(t, "add", "--dir", nru.dir, "--type", "account", "--label", "recruitment-and-instruction", "video.example:channel")

	// platform-a was not running when nru published: it gets the entries
	// by sync when it starts, not by gossip.
	c.start(a)
	waitFor(t, deliveryBound, "platform-a holds nru's 3 entries", func() bool { return c.status(a).Heads["nru"] == 3 })

	hashed := mustCLI(t, "hash", video)
	lines := strings.Split(strings.TrimSpace(hashed), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "sha256:") || !strings.HasPrefix(lines[1], "md5:") || !strings.HasPrefix(lines[2], "vpdq:[") {
		t.Fatalf("hash of the video:\n%.500s", hashed)
	}
	vpdqSignal := lines[2]
	for _, sig := range lines {
		out, errs, code := cli(t, "match", "--dir", a.dir, sig, "--json")
		var r matchResult
		if err := json.Unmarshal([]byte(out), &r); err != nil || !acted(code) || !r.Matched || len(r.Attestations) != 1 || r.Attestations[0].ID != id {
			t.Errorf("match %.60s… on platform-a: exit %d, %v, stderr %q\n%.600s", sig, code, err, errs, out)
		}
	}
	// In text, the match names the vpdq signal without printing its frames.
	out, _, code := cli(t, "match", "--dir", a.dir, vpdqSignal)
	if !acted(code) || !strings.Contains(out, id) {
		t.Errorf("match (text): exit %d\n%.600s", code, out)
	}

	export := filepath.Join(t.TempDir(), "a.export")
	mustCLI(t, "log", "export", "--dir", a.dir, "--out", export)
	var goRes struct {
		OK      bool `json:"ok"`
		Entries int  `json:"entries"`
		Report  struct {
			Totals struct {
				Signals       int            `json:"signals"`
				SignalsByType map[string]int `json:"signals_by_type"`
			} `json:"totals"`
		} `json:"report"`
	}
	if code, errs := runJSON(t, &goRes, binary, "audit", export, "--genesis", c.roster, "--json"); code != 0 || !goRes.OK || goRes.Entries != 3 {
		t.Fatalf("audit: exit %d, ok %v, %d entries: %s", code, goRes.OK, goRes.Entries, errs)
	}
	want := map[string]int{"sha256": 1, "md5": 1, "pdq": 0, "url": 1, "account": 1, "vpdq": 1, "domain": 0}
	if got := goRes.Report.Totals.SignalsByType; !reflect.DeepEqual(got, want) || goRes.Report.Totals.Signals != 5 {
		t.Errorf("audit's report: signals %d by type %v, want 5: %v", goRes.Report.Totals.Signals, got, want)
	}
	var pyRes struct {
		OK            bool           `json:"ok"`
		Entries       int            `json:"entries"`
		SignalsByType map[string]int `json:"signals_by_type"`
	}
	if code, errs := runJSON(t, &pyRes, py, pyVerifier, export, "--genesis", c.roster, "--json"); code != 0 || !pyRes.OK || pyRes.Entries != 3 {
		t.Fatalf("Python verifier: exit %d, ok %v, %d entries: %s", code, pyRes.OK, pyRes.Entries, errs)
	}
	if !reflect.DeepEqual(pyRes.SignalsByType, goRes.Report.Totals.SignalsByType) {
		t.Errorf("signals by type: Python %v, Go %v", pyRes.SignalsByType, goRes.Report.Totals.SignalsByType)
	}

	// The audit in text: it holds, the report counts the vpdq signal, and
	// no line carries a video's frames.
	out, errs, code := cli(t, "audit", export, "--genesis", c.roster)
	if code != 0 || !strings.Contains(out, "Everything holds") || !strings.Contains(out, "VPDQ") {
		t.Errorf("audit: exit %d %s\n%s", code, errs, out)
	}
	for l := range strings.SplitSeq(out, "\n") {
		if len(l) > 300 {
			t.Errorf("audit prints a line of %d bytes: %.200s…", len(l), l)
		}
	}
}
