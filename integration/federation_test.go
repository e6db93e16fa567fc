package integration

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// deliveryBound is how long a test waits for an entry to cross the
// federation. Gossip on loopback takes milliseconds; the bound is generous
// for a loaded 2-core CI machine running with -race.
const deliveryBound = 20 * time.Second

func randomSHA256(t testing.TB) string {
	b := make([]byte, 64)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func threeNodes(t *testing.T) (*cluster, *node, *node, *node) {
	c := newCluster(t, "nru=referral", "platform-a=platform", "platform-b=platform")
	c.startAll()
	nru, a, b := c.nodes["nru"], c.nodes["platform-a"], c.nodes["platform-b"]
	c.waitMesh(nru, a, b)
	return c, nru, a, b
}

// waitStatus waits until a match on n reports want as the status of the
// attestation with the given id.
func (c *cluster) waitStatus(n *node, hash, id, want string) {
	c.t.Helper()
	waitFor(c.t, deliveryBound, n.name+" sees "+id[:12]+" as "+want, func() bool {
		r, _ := c.match(n, "sha256", hash)
		for _, a := range r.Attestations {
			if a.ID == id {
				return a.Status == want
			}
		}
		return false
	})
}

// dispute disputes the entry id from n once n holds it (a node does not
// sign a dispute of an entry it has not received yet) and returns the
// dispute's id.
func dispute(t *testing.T, n *node, id, reason string) string {
	t.Helper()
	var out string
	waitFor(t, deliveryBound, n.name+" holds "+id[:12]+" and disputes it", func() bool {
		o, errs, code := cli(t, "dispute", "--dir", n.dir, id, "--reason", reason)
		if code != 0 && !strings.Contains(errs, "not in this node's store") {
			t.Fatalf("dispute on %s: exit %d: %s", n.name, code, errs)
		}
		out = o
		return code == 0
	})
	return strings.TrimSpace(out)
}

func TestAdditionIsMatchableEverywhere(t *testing.T) {
	t.Parallel()
	c, nru, a, b := threeNodes(t)
	hash := randomSHA256(t)
	for _, n := range []*node{nru, a, b} {
		if _, code := c.match(n, "sha256", hash); code != 1 {
			t.Fatalf("%s: match before any addition exited %d, want 1", n.name, code)
		}
	}
	id := strings.TrimSpace(mustCLI(t, "add", "--dir", nru.dir, "--type", "sha256",
		"--label", "recruitment-and-instruction", hash))
	for _, n := range []*node{a, b} {
		c.waitStatus(n, hash, id, "active")
		r, code := c.match(n, "sha256", hash)
		if !acted(code) || !r.Matched {
			t.Fatalf("%s: match exit %d matched %v, want 0 or 3 and true", n.name, code, r.Matched)
		}
		got := r.Attestations[0]
		if got.Author != "nru" || len(got.Labels) != 1 || got.Labels[0] != "recruitment-and-instruction" {
			t.Errorf("%s: attestation %+v, want author nru with label recruitment-and-instruction", n.name, got)
		}
	}
	// Convergence: every node holds the same heads.
	waitFor(t, deliveryBound, "identical heads digests", func() bool {
		d := c.status(nru).HeadsDigest
		return c.status(a).HeadsDigest == d && c.status(b).HeadsDigest == d
	})
}

func TestRetractionIsSeenEverywhere(t *testing.T) {
	t.Parallel()
	c, nru, a, b := threeNodes(t)
	hash := randomSHA256(t)
	id := strings.TrimSpace(mustCLI(t, "add", "--dir", nru.dir, "--type", "sha256", "--label", "attacker-manifesto", hash))
	c.waitStatus(a, hash, id, "active")
	c.waitStatus(b, hash, id, "active")

	mustCLI(t, "retract", "--dir", nru.dir, id, "--reason", "wrong file")
	for _, n := range []*node{nru, a, b} {
		c.waitStatus(n, hash, id, "retracted")
		if r, code := c.match(n, "sha256", hash); code != 1 || r.Matched {
			t.Errorf("%s: match of a retracted hash exit %d matched %v, want 1 false", n.name, code, r.Matched)
		}
	}
	// A platform may not retract the referral unit's entry.
	if _, errs, code := cli(t, "retract", "--dir", a.dir, id); code != 2 || errs == "" {
		t.Errorf("retract of another member's entry: exit %d stderr %q, want 2 and a message", code, errs)
	}
}

func TestRestartedNodeKeepsEverything(t *testing.T) {
	t.Parallel()
	c, nru, a, b := threeNodes(t)
	var hashes, ids []string
	for i := 0; i < 5; i++ {
		h := randomSHA256(t)
		hashes = append(hashes, h)
		ids = append(ids, strings.TrimSpace(mustCLI(t, "add", "--dir", nru.dir, "--type", "sha256", "--label", "graphic-violence", h)))
	}
	for i := range hashes {
		c.waitStatus(b, hashes[i], ids[i], "active")
	}
	before := c.status(b)

	c.stop(b)
	c.start(b)
	after := c.status(b)
	if after.Entries != before.Entries || after.HeadsDigest != before.HeadsDigest {
		t.Fatalf("after restart: entries %d digest %s, before: %d %s", after.Entries, after.HeadsDigest, before.Entries, before.HeadsDigest)
	}
	for i := range hashes {
		if r, code := c.match(b, "sha256", hashes[i]); !acted(code) || r.Attestations[0].ID != ids[i] {
			t.Errorf("after restart, hash %d: exit %d %+v", i, code, r)
		}
	}
	// The restarted node rejoins the federation and receives new entries.
	c.waitMesh(nru, a, b)
	h := randomSHA256(t)
	id := strings.TrimSpace(mustCLI(t, "add", "--dir", nru.dir, "--type", "sha256", "--label", "graphic-violence", h))
	c.waitStatus(b, h, id, "active")
}

func TestWrongRosterKeyRefusesEntries(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "nru=referral", "platform-a=platform", "platform-b=platform")
	nru, a, b := c.nodes["nru"], c.nodes["platform-a"], c.nodes["platform-b"]

	// platform-b's operator made a mistake: its roster has a wrong author
	// key for nru (peer ID and addresses are right).
	roster, err := os.ReadFile(c.roster)
	if err != nil {
		t.Fatal(err)
	}
	nruKey := authorKeyOf(t, string(roster), "nru")
	wrong := make([]byte, 32)
	rand.Read(wrong)
	badRoster := filepath.Join(c.dir, "roster-b.toml")
	if err := os.WriteFile(badRoster, []byte(strings.Replace(string(roster), nruKey, hex.EncodeToString(wrong), 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(b.dir, "config.toml")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	fixed := strings.Replace(string(cfg), c.roster, badRoster, 1)
	if fixed == string(cfg) {
		t.Fatalf("config.toml of platform-b does not name the roster %s:\n%s", c.roster, cfg)
	}
	if err := os.WriteFile(cfgPath, []byte(fixed), 0o600); err != nil {
		t.Fatal(err)
	}

	c.startAll()
	c.waitMesh(nru, a) // platform-b is of another federation now: no mesh with it
	hash := randomSHA256(t)
	id := strings.TrimSpace(mustCLI(t, "add", "--dir", nru.dir, "--type", "sha256", "--label", "recruitment-and-instruction", hash))
	c.waitStatus(a, hash, id, "active") // the correct roster accepts it

	// Its genesis is not the federation's (SPEC 12.1): the sync hello
	// says so, and it is cut off as of another federation; gossip from
	// a key its roster does not know is held, never stored.
	// (Whichever side reads the other's hello first refuses it.)
	waitFor(t, deliveryBound, "platform-b and the federation to refuse each other's hello", func() bool {
		return strings.Contains(b.log(t)+nru.log(t)+a.log(t), "same name, other founders")
	})
	if r, code := c.match(b, "sha256", hash); code != 1 || len(r.Attestations) != 0 {
		t.Errorf("platform-b stored an entry its roster refuses: exit %d %+v", code, r)
	}
	if s := c.status(b); s.Entries != 0 {
		t.Errorf("platform-b stored %d entries, want 0", s.Entries)
	}
}

// authorKeyOf finds a member's author_key in roster text.
func authorKeyOf(t *testing.T, roster, name string) string {
	t.Helper()
	blocks := strings.Split(roster, "[[member]]")
	for _, b := range blocks {
		if !strings.Contains(b, `name = "`+name+`"`) {
			continue
		}
		for _, line := range strings.Split(b, "\n") {
			if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && strings.TrimSpace(k) == "author_key" {
				return strings.Trim(strings.TrimSpace(v), `"`)
			}
		}
	}
	t.Fatalf("no author_key for %s in roster:\n%s", name, roster)
	return ""
}

// A dispute and a retraction naming one signal each of a three-signal
// addition, from the CLI of real nodes: each node shows those two signals
// disputed and retracted and the third active; a signal the addition does
// not carry is refused with exit 2.
func TestNamedSignalsSeenEverywhere(t *testing.T) {
	t.Parallel()
	c, nru, a, b := threeNodes(t)
	h1, h2, h3 := randomSHA256(t), randomSHA256(t), randomSHA256(t)
	id := strings.TrimSpace(mustCLI(t, "add", "--dir", nru.dir, "--type", "sha256", "--label", "attacker-manifesto", h1, h2, h3))
	c.waitStatus(b, h1, id, "active")
	waitFor(t, deliveryBound, "b holds the addition and disputes h2", func() bool {
		_, errs, code := cli(t, "dispute", "--dir", b.dir, id, "--reason", "h2 is news", "--signal", "sha256:"+h2)
		if code != 0 && !strings.Contains(errs, "not in this node's store") {
			t.Fatalf("dispute: exit %d: %s", code, errs)
		}
		return code == 0
	})
	mustCLI(t, "retract", "--dir", nru.dir, id, "--signal", "sha256:"+h3)
	for _, n := range []*node{nru, a, b} {
		c.waitStatus(n, h1, id, "active")
		c.waitStatus(n, h2, id, "disputed")
		c.waitStatus(n, h3, id, "retracted")
	}
	other := randomSHA256(t)
	if _, errs, code := cli(t, "dispute", "--dir", a.dir, id, "--reason", "r", "--signal", "sha256:"+other); code != 2 || !strings.Contains(errs, other) {
		t.Errorf("dispute naming a signal the addition does not carry: exit %d stderr %q, want 2 naming it", code, errs)
	}
}
