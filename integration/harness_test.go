package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the staydown binary built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	// A binary built with -race sleeps 1 s at exit to let reports flush;
	// every CLI call would pay it. Races are still detected and reported.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	dir, err := os.MkdirTemp("", "staydown-itest-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	binary = filepath.Join(dir, "staydown")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "../cmd/staydown")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building staydown:", err)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// The ports the harness hands out come from a block below the kernel's
// ephemeral range (net.ipv4.ip_local_port_range), from a random start,
// each handed out once per test process. Tests run in parallel, and a
// port taken from the ephemeral range and released before a node binds it
// could meanwhile become the source port of any test's outgoing
// connection; a port below the range is only ever taken by an explicit
// bind, and none of ours takes one twice. A port some other process holds
// is passed over.
var ports struct {
	sync.Mutex
	next, lo, hi int
}

// portRange is where the harness's ports come from: [lo, hi).
func portRange() (lo, hi int) {
	lo, hi = 10000, 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var eLo, eHi int
		if _, err := fmt.Sscan(string(b), &eLo, &eHi); err == nil && eLo > lo+2000 {
			hi = eLo
		}
	}
	return lo, hi
}

// takePort returns a port p such that p+o is free for every o in
// offsets, and hands out none of p .. p+max(offsets) again.
func takePort(t testing.TB, offsets ...int) int {
	t.Helper()
	ports.Lock()
	defer ports.Unlock()
	if ports.next == 0 {
		ports.lo, ports.hi = portRange()
		ports.next = ports.lo + rand.IntN(ports.hi-ports.lo)
	}
	span := slices.Max(offsets) + 1
	for tries := 0; tries < ports.hi-ports.lo; tries++ {
		p := ports.next
		if p+span > ports.hi {
			p = ports.lo
		}
		ports.next = p + 1
		if !slices.ContainsFunc(offsets, func(o int) bool { return !portFree(p + o) }) {
			ports.next = p + span
			return p
		}
	}
	t.Fatalf("no free loopback ports in [%d, %d)", ports.lo, ports.hi)
	return 0
}

// freePorts hands out n distinct loopback TCP ports free right now (see
// takePort). Another process may still take one before a node binds it;
// the node then fails to start and says so, and the test fails loudly.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	out := make([]int, n)
	for i := range out {
		out[i] = takePort(t, 0)
	}
	return out
}

func freePort(t testing.TB) int { return takePort(t, 0) }

func portFree(p int) bool {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func itoa(i int) string { return fmt.Sprint(i) }

// cli runs the binary and returns stdout, stderr and the exit code.
func cli(t testing.TB, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("staydown %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// mustCLI runs the binary and fails the test unless it exits 0.
func mustCLI(t testing.TB, args ...string) string {
	t.Helper()
	out, errs, code := cli(t, args...)
	if code != 0 {
		t.Fatalf("staydown %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// waitFor polls cond every 50 ms until it holds or the bound passes.
func waitFor(t testing.TB, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", bound, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type node struct {
	name, role string
	dir        string
	env        []string // added to the test's environment for `run` (e.g. TMPDIR, PATH)
	cmd        *exec.Cmd
	exited     chan error
}

func (n *node) logPath() string { return filepath.Join(n.dir, "node.log") }

func (n *node) log(t testing.TB) string {
	b, err := os.ReadFile(n.logPath())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type cluster struct {
	t      testing.TB
	dir    string
	roster string
	nodes  map[string]*node
	order  []*node
}

// newCluster initialises one node directory per name=role pair with the
// CLI, building the roster from what `init` prints, as an operator would.
func newCluster(t testing.TB, members ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir(), nodes: map[string]*node{}}
	c.roster = filepath.Join(c.dir, "roster.toml")
	var roster bytes.Buffer
	ports := freePorts(t, 2*len(members))
	for i, m := range members {
		name, role, _ := strings.Cut(m, "=")
		n := &node{name: name, role: role, dir: filepath.Join(c.dir, name)}
		block := mustCLI(t, "init", "--dir", n.dir, "--name", name, "--role", role,
			"--listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", ports[2*i]),
			"--api", fmt.Sprintf("127.0.0.1:%d", ports[2*i+1]),
			"--roster", c.roster, "--federation", "itest")
		roster.WriteString(block + "\n")
		c.nodes[name] = n
		c.order = append(c.order, n)
	}
	if err := os.WriteFile(c.roster, roster.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.stopAll)
	return c
}

// start runs `staydown run` for the node and waits until its API answers.
func (c *cluster) start(n *node) {
	c.t.Helper()
	logf, err := os.OpenFile(n.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	n.cmd = exec.Command(binary, "run", "--dir", n.dir)
	dieWithTest(n.cmd)
	if n.env != nil {
		n.cmd.Env = append(os.Environ(), n.env...)
	}
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	if err := n.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	n.exited = make(chan error, 1)
	go func() { n.exited <- n.cmd.Wait(); logf.Close() }()
	waitFor(c.t, 30*time.Second, n.name+" API up", func() bool {
		select {
		case err := <-n.exited:
			c.t.Fatalf("%s exited during start-up: %v\n%s", n.name, err, n.log(c.t))
		default:
		}
		_, _, code := cli(c.t, "status", "--dir", n.dir)
		return code == 0
	})
}

func (c *cluster) startAll() {
	for _, n := range c.order {
		c.start(n)
	}
}

// stop sends SIGTERM and requires a clean exit (status 0) within 15 s.
func (c *cluster) stop(n *node) {
	c.t.Helper()
	if n.cmd == nil {
		return
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-n.exited:
		if err != nil {
			c.t.Errorf("%s did not shut down cleanly: %v\n%s", n.name, err, n.log(c.t))
		}
	case <-time.After(15 * time.Second):
		n.cmd.Process.Kill()
		c.t.Errorf("%s did not stop within 15 s of SIGTERM", n.name)
	}
	n.cmd = nil
}

func (c *cluster) stopAll() {
	for _, n := range c.order {
		c.stop(n)
	}
	if c.t.Failed() {
		for _, n := range c.order {
			if b, err := os.ReadFile(n.logPath()); err == nil {
				c.t.Logf("--- log of %s ---\n%s", n.name, b)
			}
		}
	}
}

type status struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Peers       int               `json:"peers"`
	TopicPeers  int               `json:"topic_peers"`
	Entries     uint64            `json:"entries"`
	Heads       map[string]uint64 `json:"heads"`
	HeadsDigest string            `json:"heads_digest"`
}

func (c *cluster) status(n *node) status {
	c.t.Helper()
	var s status
	if err := json.Unmarshal([]byte(mustCLI(c.t, "status", "--dir", n.dir, "--json")), &s); err != nil {
		c.t.Fatalf("status --json of %s: %v", n.name, err)
	}
	return s
}

// waitMesh waits until every running node sees all the others in the
// gossip topic, so a publication after it has a mesh to travel. Gossip may
// still lose it: tests bound every wait for delivery.
func (c *cluster) waitMesh(nodes ...*node) {
	c.t.Helper()
	waitFor(c.t, 30*time.Second, "gossip mesh", func() bool {
		for _, n := range nodes {
			if s := c.status(n); s.TopicPeers < len(nodes)-1 {
				return false
			}
		}
		return true
	})
}

type attestation struct {
	Author string   `json:"author"`
	ID     string   `json:"id"`
	Labels []string `json:"labels"`
	Status string   `json:"status"`
}

type matchResult struct {
	Matched      bool          `json:"matched"`
	Attestations []attestation `json:"attestations"`
}

// match runs `staydown match --json` and returns its result and exit code.
func (c *cluster) match(n *node, typ, value string) (matchResult, int) {
	c.t.Helper()
	out, errs, code := cli(c.t, "match", "--dir", n.dir, "--type", typ, value, "--json")
	if code == 2 {
		c.t.Fatalf("match on %s: exit 2: %s", n.name, errs)
	}
	var r matchResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		c.t.Fatalf("match --json on %s: %v: %q", n.name, err, out)
	}
	return r, code
}

// acted says whether match's exit code is a verdict to act on: 0 block or
// 3 review (1 is none; which of the two depends on the node's policy).
func acted(code int) bool { return code == 0 || code == 3 }

// kill sends SIGKILL, as a power cut or the kernel's OOM killer would: no
// shutdown code runs. It waits until the process is gone.
func (c *cluster) kill(n *node) {
	c.t.Helper()
	if n.cmd == nil {
		return
	}
	n.cmd.Process.Kill()
	select {
	case <-n.exited:
	case <-time.After(15 * time.Second):
		c.t.Fatalf("%s still running 15 s after SIGKILL", n.name)
	}
	n.cmd = nil
}

// peakRSS is the running node process's peak resident set size (VmHWM in
// /proc/PID/status), or "unknown".
func (n *node) peakRSS() string {
	if n.cmd == nil || n.cmd.Process == nil {
		return "unknown"
	}
	if v := procStatus(n.cmd.Process.Pid, "VmHWM"); v != "" {
		return v
	}
	return "unknown"
}

// procStatus is field key of /proc/PID/status ("123 kB"), or "".
func procStatus(pid int, key string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
