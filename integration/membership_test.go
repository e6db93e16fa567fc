package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/staydown/staydown/config"
)

// Membership with real processes, as operators would run it (SPEC 12):
// every change is a CLI command against a running node; no node of the
// federation restarts and no file of theirs is edited.

// memberStatus is what `status --json` says of the membership.
type memberStatus struct {
	status
	Genesis       string   `json:"genesis"`
	RosterVersion uint64   `json:"roster_version"`
	Member        bool     `json:"member"`
	Author        string   `json:"author"`
	Listen        []string `json:"listen"`
}

func (c *cluster) memberStatus(n *node) memberStatus {
	c.t.Helper()
	var s memberStatus
	if err := json.Unmarshal([]byte(mustCLI(c.t, "status", "--dir", n.dir, "--json")), &s); err != nil {
		c.t.Fatalf("status --json of %s: %v", n.name, err)
	}
	return s
}

// atVersion waits until every node given has roster version v in force.
func (c *cluster) atVersion(v uint64, nodes ...*node) {
	c.t.Helper()
	waitFor(c.t, deliveryBound, fmt.Sprintf("roster version %d on every node", v), func() bool {
		for _, n := range nodes {
			if c.memberStatus(n).RosterVersion != v {
				return false
			}
		}
		return true
	})
}

// converged waits until every node given holds the same heads.
func (c *cluster) converged(nodes ...*node) string {
	c.t.Helper()
	var digest string
	waitFor(c.t, 2*deliveryBound, "the same heads on every node", func() bool {
		digest = c.status(nodes[0]).HeadsDigest
		for _, n := range nodes[1:] {
			if c.status(n).HeadsDigest != digest {
				return false
			}
		}
		return true
	})
	return digest
}

// propose runs `staydown member propose ARGS --json` on n and returns the
// proposal's id.
func propose(t *testing.T, n *node, args ...string) string {
	t.Helper()
	out := mustCLI(t, append(append([]string{"member", "propose"}, args...), "--dir", n.dir, "--json")...)
	var p struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil || len(p.ID) != 68 {
		t.Fatalf("member propose %v: %q (%v)", args, out, err)
	}
	return p.ID
}

// approve runs `staydown member approve` on n once n holds the proposal.
func approve(t *testing.T, n *node, id string) {
	t.Helper()
	waitFor(t, deliveryBound, n.name+" to hold proposal "+id[:12], func() bool {
		out, _, code := cli(t, "member", "proposals", "--dir", n.dir, "--json")
		return code == 0 && strings.Contains(out, id)
	})
	mustCLI(t, "member", "approve", "--dir", n.dir, id)
}

func add(t *testing.T, n *node, content string) (hash, id string) {
	t.Helper()
	sum := sha256.Sum256([]byte(content))
	hash = hex.EncodeToString(sum[:])
	id = strings.TrimSpace(mustCLI(t, "add", "--dir", n.dir, "--type", "sha256", "--label", "graphic-violence", hash))
	return hash, id
}

// A federation of five admits a sixth member. The sixth starts from the
// genesis file and one member's address, waits, is admitted by a proposal
// and two approvals, catches up on the whole history, and its next
// addition is matchable on all six.
func TestMembershipAdmitsASixth(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "nru-1=referral", "nru-2=referral", "pa=platform", "pb=platform", "pc=platform")
	c.startAll()
	five := c.order
	c.waitMesh(five...)
	genesis, err := os.ReadFile(c.roster)
	if err != nil {
		t.Fatal(err)
	}
	pids := map[string]int{}
	for _, n := range five {
		pids[n.name] = n.cmd.Process.Pid
	}
	nru := c.nodes["nru-1"]
	for i := range 10 {
		add(t, nru, fmt.Sprintf("history %d", i))
	}
	before := c.memberStatus(nru)

	// The sixth node: the genesis file and one member's address.
	ports := freePorts(t, 2)
	pd := &node{name: "pd", role: "platform", dir: filepath.Join(c.dir, "pd")}
	boot := before.Listen[0]
	block := mustCLI(t, "init", "--dir", pd.dir, "--name", "pd", "--role", "platform",
		"--listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", ports[0]), "--api", fmt.Sprintf("127.0.0.1:%d", ports[1]),
		"--genesis", c.roster, "--bootstrap", boot, "--federation", "itest")
	blockFile := filepath.Join(c.dir, "pd-block.toml")
	if err := os.WriteFile(blockFile, []byte(block), 0o644); err != nil {
		t.Fatal(err)
	}
	c.nodes["pd"], c.order = pd, append(c.order, pd)
	c.start(pd)
	if st := c.memberStatus(pd); st.Member || st.Genesis != before.Genesis {
		t.Fatalf("pd before its admission: member %v, genesis %s (the federation's is %s)", st.Member, st.Genesis, before.Genesis)
	}

	id := propose(t, nru, "admit", "--block", blockFile)
	approve(t, c.nodes["pa"], id)
	approve(t, c.nodes["pb"], id)
	c.atVersion(1, c.order...)
	waitFor(t, deliveryBound, "pd to be a member", func() bool { return c.memberStatus(pd).Member })
	c.converged(c.order...)
	if st := c.status(pd); st.Entries != before.Entries+3 {
		t.Errorf("pd holds %d entries, want the %d of the history and the 3 of its admission", st.Entries, before.Entries)
	}

	hash, pdID := add(t, pd, "pd's first")
	start := time.Now()
	for _, n := range c.order {
		c.waitStatus(n, hash, pdID, "active")
	}
	t.Logf("pd's first addition was matchable on all six %v after it was added", time.Since(start).Round(time.Millisecond))

	// None of the five restarted; nobody edited the genesis.
	for _, n := range five {
		if n.cmd.Process.Pid != pids[n.name] {
			t.Errorf("%s was restarted", n.name)
		}
	}
	if now, _ := os.ReadFile(c.roster); string(now) != string(genesis) {
		t.Error("the genesis file changed")
	}
}

// A member's key is stolen: the thief (the member's own running node)
// keeps publishing while the members revoke the key after its last
// honest entry. Every node converges to the same heads, the thief's
// entries match nowhere, and the member, on the new key the revocation
// named, publishes again.
func TestMembershipStolenKey(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "nru=referral", "pa=platform", "pb=platform", "pc=platform")
	c.startAll()
	c.waitMesh(c.order...)
	nru, pa, pb, pc := c.nodes["nru"], c.nodes["pa"], c.nodes["pb"], c.nodes["pc"]
	for i := range 3 {
		add(t, pc, fmt.Sprintf("pc honest %d", i))
	}
	c.converged(c.order...)
	fresh := strings.TrimSpace(mustCLI(t, "member", "new-key", "--dir", pc.dir))
	id := propose(t, nru, "revoke", "pc", "--after-seq", "3", "--new-key", fresh)
	var thief []string
	for i := range 3 {
		h, _ := add(t, pc, fmt.Sprintf("the thief's %d", i))
		thief = append(thief, h)
	}
	approve(t, pa, id)
	approve(t, pb, id)
	c.atVersion(1, nru, pa, pb)
	c.converged(c.order...)
	for _, n := range []*node{nru, pa, pb} {
		for _, h := range thief {
			if r, code := c.match(n, "sha256", h); code != 1 {
				t.Errorf("%s matches the thief's %s: exit %d %+v", n.name, h[:12], code, r)
			}
		}
	}

	// An auditor's offline audit of pa's export lists the thief's three
	// entries, and nothing else, as past the end of the revoked key.
	file := filepath.Join(c.dir, "pa.export")
	mustCLI(t, "log", "export", "--dir", pa.dir, "--out", file)
	out, _, code := cli(t, "audit", file, "--genesis", c.roster, "--json")
	var audit struct {
		Violations []struct {
			Kind    string `json:"kind"`
			Message string `json:"message"`
		} `json:"violations"`
	}
	if err := json.Unmarshal([]byte(out), &audit); err != nil || code != 1 {
		t.Fatalf("audit: exit %d, %v:\n%s", code, err, out)
	}
	outside := 0
	for _, v := range audit.Violations {
		if v.Kind == "outside" {
			outside++
		} else {
			t.Errorf("audit finding %s: %s", v.Kind, v.Message)
		}
	}
	if outside != len(thief) {
		t.Errorf("audit lists %d entries past the revoked key's end, want the thief's %d", outside, len(thief))
	}

	// pb loses its store; pa's export brings every log back: the
	// membership entries, pc's entries under its rotated key, the thief's
	// (void). Import judged entries against the genesis roster alone and
	// refused those of keys it does not list.
	c.stop(pb)
	cfg, err := config.Load(pb.dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(cfg.StorePath); err != nil {
		t.Fatal(err)
	}
	if out, errs, code := cli(t, "log", "import", "--dir", pb.dir, file); code != 0 || !strings.Contains(out, ", 0 refused") {
		t.Fatalf("import of pa's export into pb: exit %d:\n%s%s", code, out, errs)
	}
	c.start(pb)

	// The owner has its machine back: at its start the node takes the
	// new key the roster names, and goes on under it.
	c.stop(pc)
	c.start(pc)
	if st := c.memberStatus(pc); st.Author != fresh || !st.Member {
		t.Fatalf("pc after restart: author %s member %v, want %s", st.Author, st.Member, fresh)
	}
	hash, pcID := add(t, pc, "pc on its new key")
	c.waitStatus(nru, hash, pcID, "active")
}

// A member rotates its own key (its node stopped); started again, it
// publishes under the new key, and the others take it.
func TestMembershipRotateKey(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "nru=referral", "pa=platform", "pb=platform")
	c.startAll()
	c.waitMesh(c.order...)
	nru, pb := c.nodes["nru"], c.nodes["pb"]
	add(t, pb, "pb before its rotation")
	old := c.memberStatus(pb).Author
	c.stop(pb)
	out := mustCLI(t, "member", "rotate-key", "--dir", pb.dir)
	c.start(pb)
	st := c.memberStatus(pb)
	if st.Author == old || !strings.Contains(out, st.Author) || !st.Member {
		t.Fatalf("pb after rotate-key: author %s (was %s), member %v; rotate-key said:\n%s", st.Author, old, st.Member, out)
	}
	hash, id := add(t, pb, "pb after its rotation")
	c.waitStatus(nru, hash, id, "active")
	var list struct {
		Members []struct {
			Name      string `json:"name"`
			AuthorKey string `json:"author_key"`
		} `json:"members"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, "member", "list", "--dir", nru.dir, "--json")), &list); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(list.Members, func(m struct {
		Name      string `json:"name"`
		AuthorKey string `json:"author_key"`
	}) bool {
		return m.Name == "pb" && m.AuthorKey == st.Author
	}) {
		t.Errorf("nru's member list does not give pb its new key: %+v", list.Members)
	}
}

// A removed member's node is disconnected and refused; what it wrote
// before stays matchable.
func TestMembershipRemoval(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "nru=referral", "pa=platform", "pb=platform", "pc=platform")
	c.startAll()
	c.waitMesh(c.order...)
	nru, pa, pb, pc := c.nodes["nru"], c.nodes["pa"], c.nodes["pb"], c.nodes["pc"]
	hash, id := add(t, pc, "pc before its removal")
	c.waitStatus(nru, hash, id, "active")
	pid := propose(t, nru, "remove", "pc")
	approve(t, pa, pid)
	approve(t, pb, pid)
	c.atVersion(1, nru, pa, pb)
	waitFor(t, deliveryBound, "every node to close its connection to pc", func() bool {
		for _, n := range []*node{nru, pa, pb} {
			if c.status(n).Peers != 2 {
				return false
			}
		}
		return true
	})
	c.waitStatus(nru, hash, id, "active") // its earlier entries stay
	// pc refuses to publish if it learned of its removal before it was
	// cut off; if not, what it publishes reaches nobody: no node lets it
	// connect, and an entry past its key's end would count for nothing.
	late := sha256.Sum256([]byte("pc after its removal"))
	lateHash := hex.EncodeToString(late[:])
	if _, _, code := cli(t, "add", "--dir", pc.dir, "--type", "sha256", "--label", "graphic-violence", lateHash); code == 0 {
		time.Sleep(15 * time.Second) // a sync period and its jitter: a bound on a negative, not synchronisation
		if _, code := c.match(nru, "sha256", lateHash); code != 1 {
			t.Errorf("pc's entry after its removal matches on nru: exit %d", code)
		}
	}
}
