package vpdq

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/staydown/staydown/internal/ffmpegtest"
)

// TestOneFramePerSecond checks the default sampling: frames 0, 30, 60, ...
// of a 30 fps video, with timestamps 0, 1, 2, ... seconds, hashed exactly as
// the same frames are when every frame is hashed (the select filter drops
// the others without changing what is kept).
func TestOneFramePerSecond(t *testing.T) {
	ffmpegtest.Require(t)
	path := sampleVideo(t, "doorknob-hd-no-bar.mp4")
	// At 128x128, so that it stays quick under the race detector: the
	// sampling is the same at every size.
	all, err := HashFile(context.Background(), path, Options{EveryFrame: true, KeepDuplicates: true, Size: 128})
	if err != nil {
		t.Fatal(err)
	}
	sampled, err := HashFile(context.Background(), path, Options{KeepDuplicates: true, Size: 128})
	if err != nil {
		t.Fatal(err)
	}
	if all.FrameRate != 30 || len(all.Frames) != 120 {
		t.Fatalf("every frame: %v fps, %d frames; want 30 fps, 120 frames", all.FrameRate, len(all.Frames))
	}
	if len(sampled.Frames) != 4 {
		t.Fatalf("one a second: %d frames, want 4 (0, 30, 60, 90)", len(sampled.Frames))
	}
	for i, f := range sampled.Frames {
		want := all.Frames[30*i]
		if f != want || f.Timestamp != float64(i) {
			t.Errorf("sampled frame %d = %+v, want %+v at %d s", i, f, want, i)
		}
	}
}

// TestDedupe checks that consecutive identical hashes are kept once: a
// still image encoded as a 3 s video has one frame.
func TestDedupe(t *testing.T) {
	ffmpegtest.Require(t)
	path := filepath.Join(t.TempDir(), "still.mp4")
	generate(t, path, "-f", "lavfi", "-i", "testsrc=size=320x240:rate=10:duration=3,trim=end_frame=1,loop=loop=29:size=1",
		"-c:v", "libx264", "-qp", "0")
	v, err := HashFile(context.Background(), path, Options{EveryFrame: true})
	if err != nil {
		t.Fatal(err)
	}
	if v.Decoded != 30 || len(v.Frames) != 1 || v.Frames[0].Frame != 0 {
		t.Errorf("still video: %d decoded, kept %+v; want 30 decoded and frame 0 alone", v.Decoded, v.Frames)
	}
	kept, err := HashFile(context.Background(), path, Options{EveryFrame: true, KeepDuplicates: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(kept.Frames) != 30 {
		t.Errorf("KeepDuplicates kept %d frames, want 30", len(kept.Frames))
	}
}

// TestOddSize hashes a 321x241 video (odd on both sides, so 4:4:4 chroma).
func TestOddSize(t *testing.T) {
	ffmpegtest.Require(t)
	path := filepath.Join(t.TempDir(), "odd.mp4")
	generate(t, path, "-f", "lavfi", "-i", "testsrc=size=321x241:rate=10:duration=2",
		"-c:v", "libx264", "-pix_fmt", "yuv444p")
	v, err := HashFile(context.Background(), path, Options{EveryFrame: true, KeepDuplicates: true})
	if err != nil {
		t.Fatal(err)
	}
	if v.Width != 321 || v.Height != 241 || v.Decoded != 20 || len(v.Frames) != 20 {
		t.Errorf("odd video: %dx%d, %d decoded, %d kept; want 321x241, 20, 20", v.Width, v.Height, v.Decoded, len(v.Frames))
	}
}

// TestRotation checks that display-matrix rotation is applied as ffmpeg
// does by default: a landscape video flagged as rotated by 90 degrees is
// hashed as the portrait video a player shows, the same hashes as the
// video re-encoded upright, and far from the stored (unrotated) pixels'.
func TestRotation(t *testing.T) {
	ffmpegtest.Require(t)
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain.mp4")
	generate(t, plain, "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10:duration=1", "-c:v", "libx264", "-qp", "0")
	rotated := filepath.Join(dir, "rotated.mp4")
	generate(t, rotated, "-i", plain, "-c", "copy", "-metadata:s:v:0", "rotate=90")
	upright := filepath.Join(dir, "upright.mp4")
	generate(t, upright, "-i", rotated, "-c:v", "libx264", "-qp", "0")

	opts := Options{EveryFrame: true, KeepDuplicates: true}
	hash := func(path string) Video {
		v, err := HashFile(context.Background(), path, opts)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	p, r, u := hash(plain), hash(rotated), hash(upright)
	if r.Rotation == 0 || r.Width != 240 || r.Height != 320 {
		t.Fatalf("rotated video: rotation %d, %dx%d; want a rotation and 240x320", r.Rotation, r.Width, r.Height)
	}
	if u.Rotation != 0 || u.Width != 240 || u.Height != 320 {
		t.Fatalf("upright re-encoding: rotation %d, %dx%d; want 0 and 240x320", u.Rotation, u.Width, u.Height)
	}
	for i := range r.Frames {
		if d := distance(r.Frames[i].PDQ, u.Frames[i].PDQ); d > 8 {
			t.Errorf("frame %d: rotated and upright hashes %d bits apart", i, d)
		}
		if d := distance(r.Frames[i].PDQ, p.Frames[i].PDQ); d < 31 {
			t.Errorf("frame %d: rotated hash only %d bits from the unrotated pixels': rotation not applied", i, d)
		}
	}
}

// TestHashReader hashes from an io.Reader (spilled to a temporary file,
// removed afterwards) and gets what HashFile gets.
func TestHashReader(t *testing.T) {
	ffmpegtest.Require(t)
	path := sampleVideo(t, "pattern-sd-grey-bar.mp4")
	want, err := HashFile(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tmp := t.TempDir()
	got, err := Hash(context.Background(), f, Options{TempDir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Frames) != len(want.Frames) || len(got.Frames) == 0 {
		t.Fatalf("Hash: %d frames, HashFile: %d", len(got.Frames), len(want.Frames))
	}
	for i := range got.Frames {
		if got.Frames[i] != want.Frames[i] {
			t.Errorf("frame %d: %+v from the reader, %+v from the file", i, got.Frames[i], want.Frames[i])
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

// generate runs ffmpeg with args and the output path.
func generate(t testing.TB, out string, args ...string) {
	t.Helper()
	args = append([]string{"-nostdin", "-v", "error"}, args...)
	args = append(args, "-y", out)
	if b, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %q: %v\n%s", args, err, b)
	}
}
