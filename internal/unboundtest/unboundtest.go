// Package unboundtest holds what the tests that run Debian's unbound (a
// DNS resolver that loads response-policy zones) share.
package unboundtest

import (
	"os"
	"os/exec"
	"testing"
)

// Require returns the path of unbound, looked up on PATH and in /usr/sbin
// (where Debian puts it, often off an ordinary user's PATH). It skips the
// test when unbound is missing, except in CI (the CI variable set, as
// .ci/run sets it after installing Debian's unbound), where a missing
// unbound fails the test: there the resolver test must run.
func Require(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("unbound"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/unbound"); err == nil {
		return "/usr/sbin/unbound"
	}
	if os.Getenv("CI") != "" {
		t.Fatal("unbound is not installed but CI is set: install it (apt-get install unbound); .ci/run does")
	}
	t.Skip("unbound is not installed (apt-get install unbound); skipped outside CI, where it fails instead")
	return ""
}
