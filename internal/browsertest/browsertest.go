// Package browsertest holds what the tests that drive a real browser
// share.
package browsertest

import (
	"os"
	"os/exec"
	"testing"
)

// names are the executables of Chromium (Debian's package: chromium) and
// of Chrome, in the order they are tried.
var names = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// Require returns the path of a Chromium or Chrome on PATH. It skips the
// test when there is none, except in CI (the CI variable set, as .ci/run
// sets it after installing Debian's chromium), where a missing browser
// fails the test: there the browser tests must run.
func Require(t testing.TB) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("no chromium on PATH but CI is set: install it (apt-get install chromium); .ci/run does")
	}
	t.Skipf("no chromium on PATH (apt-get install chromium); skipped outside CI, where it fails instead")
	return ""
}
