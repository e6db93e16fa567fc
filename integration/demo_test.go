package integration

import (
	"bufio"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemo runs `staydown demo` as `make demo` does, waits until it has
// shown a hash and its retraction crossing the federation, then presses
// Ctrl-C (SIGINT) and requires a clean exit.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(binary, "demo", "--dir", dir, "--base-port", itoa(freeBase(t)))
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
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() {
		for range lines {
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
		t.Error("demo did not stop within 15 s of Ctrl-C")
	}
}

// freeBase finds a base port P with P..P+2 and P+100..P+102 free right now.
func freeBase(t *testing.T) int {
	t.Helper()
	for tries := 0; tries < 50; tries++ {
		p := freePort(t)
		if p > 65535-102 {
			continue
		}
		ok := true
		for _, q := range []int{p + 1, p + 2, p + 100, p + 101, p + 102} {
			if !portFree(q) {
				ok = false
				break
			}
		}
		if ok {
			return p
		}
	}
	t.Fatal("no free block of ports found")
	return 0
}
