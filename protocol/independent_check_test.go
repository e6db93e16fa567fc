package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// independentCheck is an encoder written from SPEC.md alone, in Python,
// that re-derives every golden vector's entry, signature, signed entry and
// id from its field listing.
const independentCheck = "testdata/independent_check.py"

// requirePython3 returns the path of a python3 that has the cryptography
// module, and fails the test without one: .ci/run installs both, and a
// developer installs them as the message says.
func requirePython3(t *testing.T) string {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		t.Fatal(fmt.Sprintf(format, args...) + "; install python3 and python3-cryptography (apt-get install python3 python3-cryptography), as .ci/run does")
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		missing("python3 is not installed: %v", err)
	}
	if out, err := exec.Command(py, "-c", "from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey").CombinedOutput(); err != nil {
		missing("python3 lacks the cryptography module: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return py
}

// runIndependentCheck runs the checker on a vectors file and returns its
// output and exit code.
func runIndependentCheck(t *testing.T, py, vectors string) (string, int) {
	t.Helper()
	cmd := exec.Command(py, independentCheck, vectors)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	}
	t.Fatalf("running %s: %v", independentCheck, err)
	return "", 0
}

// TestIndependentCheck requires the independent encoder to agree with
// every golden vector, and to fail, naming the vector and the field, when
// a vector is changed in any of the bytes it re-derives.
func TestIndependentCheck(t *testing.T) {
	py := requirePython3(t)
	f := readVectors(t)

	out, code := runIndependentCheck(t, py, vectorsPath)
	if code != 0 {
		t.Fatalf("%s disagrees with %s (exit %d):\n%s", independentCheck, vectorsPath, code, out)
	}
	for _, v := range f.Vectors {
		if !strings.Contains(out, "ok "+v.Name+"\n") {
			t.Errorf("%s did not check vector %s:\n%s", independentCheck, v.Name, out)
		}
	}

	for _, tc := range []struct {
		field  string
		change func(v *vector)
		want   string
	}{
		{"entry", func(v *vector) { v.Entry = flipHexDigit(v.Entry) }, "entry re-encoding differs"},
		{"signature", func(v *vector) { v.Signature = flipHexDigit(v.Signature) }, "signature differs"},
		{"signed_entry", func(v *vector) { v.SignedEntry = flipHexDigit(v.SignedEntry) }, "signed entry differs"},
		{"id", func(v *vector) { v.ID = flipHexDigit(v.ID) }, "id differs"},
	} {
		t.Run(tc.field, func(t *testing.T) {
			bad := readVectors(t)
			v := &bad.Vectors[len(bad.Vectors)-1]
			tc.change(v)
			b, err := json.Marshal(bad)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "vectors.json")
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			out, code := runIndependentCheck(t, py, path)
			if want := "FAIL " + v.Name + ": " + tc.want; code != 1 || !strings.Contains(out, want) {
				t.Errorf("with %s changed: exit %d, want 1 and %q:\n%s", tc.field, code, want, out)
			}
		})
	}
}

// flipHexDigit changes the last hex digit of s.
func flipHexDigit(s string) string {
	last := s[len(s)-1]
	if last == '0' {
		return s[:len(s)-1] + "1"
	}
	return s[:len(s)-1] + "0"
}
