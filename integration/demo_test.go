package integration

import (
	"bufio"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemo runs `staydown demo` as `make demo` does, waits until it has
// shown a hash and its retraction crossing the federation, then presses
// Ctrl-C (SIGINT) and requires a clean exit, and its temporary directory
// (the nodes' keys included) removed (#13 item 17: it was left behind).
func TestDemo(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	out := runDemo(t, tmp)
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("the demo left %v in its TMPDIR %s", left, tmp)
	}
	if !strings.Contains(out, "Removed the demo's directory "+tmp+"/staydown-demo-") {
		t.Errorf("the demo does not say it removed its directory:\n%s", out)
	}
}

// With --keep, the directory stays and the demo says where it is.
func TestDemoKeep(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	out := runDemo(t, tmp, "--keep")
	left, _ := filepath.Glob(filepath.Join(tmp, "staydown-demo-*", "nru-demo", "*.key"))
	if len(left) == 0 {
		t.Errorf("with --keep, no node key is left under %s", tmp)
	}
	if !strings.Contains(out, "Kept the demo's directory (node keys, stores and logs): "+tmp+"/staydown-demo-") {
		t.Errorf("the demo does not say where it kept its directory:\n%s", out)
	}
}

// runDemo runs the demo with its temporary directory under tmp until it
// has shown everything, presses Ctrl-C, and returns its whole output.
func runDemo(t *testing.T, tmp string, extra ...string) string {
	cmd := exec.Command(binary, append([]string{"demo", "--base-port", itoa(freeBase(t))}, extra...)...)
	dieWithTest(cmd)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		io.Copy(io.Discard, stdout)
	}()
	var out strings.Builder
	deadline := time.After(60 * time.Second)
wait:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("demo exited early:\n%s\nstderr: %s", out.String(), stderr.String())
			}
			out.WriteString(l + "\n")
			if strings.Contains(l, "Ctrl-C stops the federation") {
				break wait
			}
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("demo did not reach its end within 60 s:\n%s", out.String())
		}
	}
	for _, want := range []string{
		`platform-a: match says "active"`, `platform-b: match says "active"`,
		`platform-a: match says "retracted"`, `platform-b: match says "retracted"`,
		"All three nodes hold the same logs",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
	checkConsoleLinks(t, out.String())
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() {
		for l := range lines {
			out.WriteString(l + "\n")
		}
		done <- cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("demo exit after Ctrl-C: %v\nstderr: %s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		t.Fatal("demo did not stop within 15 s of Ctrl-C")
	}
	return out.String()
}

// freeBase finds a base port P with P..P+2 and P+100..P+102 free right
// now, none of them handed out before (takePort).
func freeBase(t *testing.T) int {
	t.Helper()
	return takePort(t, 0, 1, 2, 100, 101, 102)
}

// checkConsoleLinks checks that the demo printed a sign-in link to the
// console of each of its three nodes, and that one signs a browser in.
func checkConsoleLinks(t *testing.T, out string) {
	t.Helper()
	links := regexp.MustCompile(`http://127\.0\.0\.1:\d+/signin\?ticket=\S+`).FindAllString(out, -1)
	if len(links) != 3 {
		t.Errorf("demo printed %d console links, want 3:\n%s", len(links), out)
		return
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	res, err := browser.Get(links[1])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/" || !strings.Contains(string(body), "<h1>Overview</h1>") {
		t.Errorf("opening the console link %s: %s at %s\n%s", links[1], res.Status, res.Request.URL, body)
	}
}
