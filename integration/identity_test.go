package integration

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// copyDir copies a node's directory as a backup does, keeping each
// file's permissions (keys stay 0600).
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), info.Mode().Perm())
		}
		if !info.Mode().IsRegular() {
			return nil // the API's socket, if any
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A copy of a running node's directory (a restored backup, a cloned
// machine), started as a second process, exits non-zero with one line
// naming the evidence, and the original logs the clash, shows it in its
// status and still gossips (#13 item 7).
func TestSecondProcessWithOneIdentityRefused(t *testing.T) {
	t.Parallel()
	c, nru, a, b := threeNodes(t)
	copyPath := filepath.Join(c.dir, "platform-a-copy")
	copyDir(t, a.dir, copyPath)
	cfgPath := filepath.Join(copyPath, "config.toml")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 2)
	text := string(cfg)
	// Another machine: other ports here, since the test has one host.
	for _, old := range []string{"listen", "api"} {
		var rewritten []string
		for _, line := range strings.Split(text, "\n") {
			if strings.HasPrefix(line, old+" ") || strings.HasPrefix(line, old+"=") {
				switch old {
				case "listen":
					line = `listen = ["/ip4/127.0.0.1/tcp/` + itoa(ports[0]) + `"]`
				case "api":
					line = `api = "127.0.0.1:` + itoa(ports[1]) + `"`
				}
			}
			rewritten = append(rewritten, line)
		}
		text = strings.Join(rewritten, "\n")
	}
	if text == string(cfg) {
		t.Fatalf("config.toml has no listen or api line:\n%s", cfg)
	}
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stderr strings.Builder
	cmd := exec.CommandContext(ctx, binary, "run", "--dir", copyPath)
	dieWithTest(cmd)
	cmd.Stderr = &stderr
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("the copy still ran after 60 s:\n%s", stderr.String())
	}
	if err == nil || cmd.ProcessState.ExitCode() == 0 {
		t.Fatalf("the copy exited 0:\n%s", stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "staydown: run: another process runs this node's identity: member ") ||
		!strings.Contains(last, "sees it connected from /ip4/127.0.0.1/tcp/") || !strings.Contains(last, "staydown init") {
		t.Errorf("the copy's last line does not say why:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "level=ERROR msg=\"another process runs this node's identity: refusing to start\"") {
		t.Errorf("the copy logged no ERROR with the evidence:\n%s", stderr.String())
	}
	waitFor(t, 10*time.Second, "platform-a to log the clash", func() bool {
		return strings.Contains(a.log(t), "level=ERROR msg=\"another process runs this node's identity")
	})
	st := apiOf(t, a).mustStatus(t)
	if st.Clash == nil || st.Clash.How != "liveness" || !strings.Contains(st.Clash.Remote, "/tcp/") {
		t.Errorf("platform-a's status of the clash: %+v", st.Clash)
	}

	c.waitMesh(nru, a, b)
	hash := randomSHA256(t)
	id := strings.TrimSpace(mustCLI(t, "add", "--dir", a.dir, "--type", "sha256", "--label", "attacker-manifesto", hash))
	for _, n := range []*node{nru, b} {
		c.waitStatus(n, hash, id, "active")
	}
}
