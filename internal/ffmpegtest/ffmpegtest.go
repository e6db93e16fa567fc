// Package ffmpegtest holds what the tests that run ffmpeg share.
package ffmpegtest

import (
	"os"
	"os/exec"
	"testing"
)

// Require skips the test when ffmpeg or ffprobe is not on PATH, except in
// CI (the CI variable set, as .ci/run sets it, after installing Debian's
// ffmpeg), where a missing ffmpeg fails the test: there the video tests
// must run.
func Require(t testing.TB) {
	t.Helper()
	for _, name := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(name); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not installed but CI is set: install it (apt-get install ffmpeg); .ci/run does", name)
			}
			t.Skipf("%s is not installed (apt-get install ffmpeg); skipped outside CI, where it fails instead", name)
		}
	}
}
