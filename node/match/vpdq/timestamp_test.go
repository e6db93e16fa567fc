package vpdq

import (
	"context"
	"math"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/staydown/staydown/internal/ffmpegtest"

	"github.com/staydown/staydown/protocol"
)

// TestOneFPSMatchesReference checks that the default sampling (one frame a
// second, by timestamp, non-reference frames skipped) still does its job:
// for every sample video with a reference hash, our one-a-second hash
// matches the reference's every-frame hash at the default query threshold
// (at least 80% of our frames of quality >= 50 within distance 31 of a
// reference frame), and every sampled frame lies within a few frames after
// its whole second.
func TestOneFPSMatchesReference(t *testing.T) {
	ffmpegtest.Require(t)
	dir := referenceDir(t)
	videos, err := filepath.Glob(filepath.Join(dir, "videos", "*.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, video := range videos {
		name := strings.TrimSuffix(filepath.Base(video), ".mp4")
		want := readReference(t, filepath.Join(dir, "hashes", name+".txt"))
		if want == nil {
			continue
		}
		checked++
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := HashFile(context.Background(), video, Options{KeepDuplicates: true})
			if err != nil {
				t.Fatal(err)
			}
			seconds := int(math.Ceil(got.Duration))
			if got.Decoded < seconds-1 || got.Decoded > seconds {
				t.Errorf("%d frames sampled from %.3f s, want one a second", got.Decoded, got.Duration)
			}
			for i, f := range got.Frames {
				if f.Timestamp < float64(i) || f.Timestamp > float64(i)+0.2 {
					t.Errorf("sampled frame %d at %.3f s, want within 0.2 s after %d s", i, f.Timestamp, i)
				}
			}
			share, n := matchShare(got.Frames, want)
			t.Logf("%d frames sampled, %.1f%% of %d (quality >= 50) match the reference's %d frames", got.Decoded, 100*share, n, len(want))
			if n == 0 || share < 0.8 {
				t.Errorf("one a second: %.1f%% of %d frames match the reference's every-frame hash, want >= 80%%", 100*share, n)
			}
		})
	}
	if checked != 12 {
		t.Fatalf("%d videos with a reference hash, want 12", checked)
	}
}

// TestOneFPSReencoded checks that a re-encoded copy (another size, quality
// and keyframe spacing, so other frames are skipped and keyframes fall
// elsewhere) hashed one frame a second matches the original's one-a-second
// hash at the default query threshold, both ways.
func TestOneFPSReencoded(t *testing.T) {
	ffmpegtest.Require(t)
	for _, name := range []string{"chair-orig-22-sd-bar", "pattern-hd-no-bar"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			orig := sampleVideo(t, name+".mp4")
			copy := filepath.Join(t.TempDir(), "copy.mp4")
			generate(t, copy, "-i", orig, "-vf", "scale=trunc(iw*2/3/2)*2:-2", "-c:v", "libx264", "-crf", "30",
				"-g", "45", "-bf", "2", "-an")
			a, err := HashFile(context.Background(), orig, Options{})
			if err != nil {
				t.Fatal(err)
			}
			b, err := HashFile(context.Background(), copy, Options{})
			if err != nil {
				t.Fatal(err)
			}
			there, n1 := matchShare(b.Frames, a.Frames)
			back, n2 := matchShare(a.Frames, b.Frames)
			t.Logf("copy in original %.1f%% of %d, original in copy %.1f%% of %d", 100*there, n1, 100*back, n2)
			if n1 == 0 || n2 == 0 || there < 0.8 || back < 0.8 {
				t.Errorf("re-encoded copy: %.1f%% of %d frames match the original, %.1f%% of %d the other way; want both >= 80%%",
					100*there, n1, 100*back, n2)
			}
		})
	}
}

// TestSampleByTimestamp checks that frames are sampled by their
// timestamps, not their numbers: a variable-frame-rate video (3 s at 30 fps,
// then 9 s at 10 fps) is sampled at the first frame at or after each whole
// second, with that frame's own timestamp and hash.
func TestSampleByTimestamp(t *testing.T) {
	ffmpegtest.Require(t)
	path := filepath.Join(t.TempDir(), "vfr.mp4")
	generate(t, path, "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30:duration=6",
		"-vf", "setpts='if(lt(N,90),N/30,3+(N-90)/10)/TB'", "-fps_mode", "vfr",
		"-c:v", "libx264", "-bf", "0", "-qp", "0")
	pts := framePTS(t, path)
	if len(pts) != 180 {
		t.Fatalf("test video has %d frames, want 180", len(pts))
	}
	all, err := HashFile(context.Background(), path, Options{EveryFrame: true, KeepDuplicates: true, Size: 128})
	if err != nil {
		t.Fatal(err)
	}
	got, err := HashFile(context.Background(), path, Options{KeepDuplicates: true, Size: 128})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Frames) != 12 {
		t.Fatalf("%d frames sampled from 12 s, want 12", len(got.Frames))
	}
	for k, f := range got.Frames {
		i := 0
		for i < len(pts) && pts[i] < float64(k)-1e-6 {
			i++
		}
		if math.Abs(f.Timestamp-pts[i]) > 1e-3 || f.PDQ != all.Frames[i].PDQ {
			t.Errorf("second %d: sampled %.3f s (frame %d), want frame %d at %.3f s with its hash", k, f.Timestamp, f.Frame, i, pts[i])
		}
	}
}

// framePTS returns the presentation times of a video's frames, from ffprobe.
func framePTS(t *testing.T, path string) []float64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts_time",
		"-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	var pts []float64
	for _, l := range strings.Fields(string(out)) {
		v, err := strconv.ParseFloat(strings.TrimSuffix(l, ","), 64)
		if err != nil {
			t.Fatalf("ffprobe pts %q: %v", l, err)
		}
		pts = append(pts, v)
	}
	return pts
}

// TestLongVideo checks that a video longer than 1,500 s is sampled down to
// at most protocol.MaxVPDQFrames frames spread evenly over the whole video:
// 26 minutes (1,560 s, every 2 s) of a tiny 2 fps video, so it is quick.
func TestLongVideo(t *testing.T) {
	ffmpegtest.Require(t)
	path := filepath.Join(t.TempDir(), "long.mp4")
	generate(t, path, "-f", "lavfi", "-i", "testsrc2=size=32x32:rate=2:duration=1560",
		"-c:v", "libx264", "-preset", "ultrafast")
	v, err := HashFile(context.Background(), path, Options{KeepDuplicates: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Frames) != 780 {
		t.Errorf("%d frames sampled from %.0f s, want 780 (one every 2 s)", len(v.Frames), v.Duration)
	}
	for i, f := range v.Frames {
		if lo := float64(2 * i); f.Timestamp < lo || f.Timestamp > lo+0.5 {
			t.Fatalf("frame %d at %.3f s, want within 0.5 s after %.0f s", i, f.Timestamp, lo)
		}
	}
	wire, err := v.WireFrames()
	if err != nil {
		t.Fatal(err)
	}
	if len(wire) > protocol.MaxVPDQFrames || len(wire) < 2 {
		t.Fatalf("%d wire frames, want 2 to %d", len(wire), protocol.MaxVPDQFrames)
	}
	if first, last := wire[0].Timestamp, wire[len(wire)-1].Timestamp; first != 0 || last < 1550_000 {
		t.Errorf("wire frames span %d to %d ms, want 0 to the end (about 1,558,000)", first, last)
	}
}

// TestThin checks the rule for a video whose duration was not known
// beforehand: frames are thinned after hashing to the first of each
// interval of thinInterval(last timestamp) seconds, at most
// protocol.MaxVPDQFrames.
func TestThin(t *testing.T) {
	for _, last := range []float64{0, 1499.9, 1500, 1500.5, 2999.99, 3000, 4321.7} {
		var frames []Frame
		for s := 0.0; s <= last; s++ {
			frames = append(frames, Frame{Timestamp: s + 0.04, Frame: int(s)})
		}
		frames[len(frames)-1].Timestamp = last
		k := thinInterval(last)
		got := thin(frames, k)
		if len(got) > protocol.MaxVPDQFrames {
			t.Errorf("last %.2f s: interval %d keeps %d frames, more than %d", last, k, len(got), protocol.MaxVPDQFrames)
		}
		if last < protocol.MaxVPDQFrames && k != 1 {
			t.Errorf("last %.2f s: interval %d, want 1", last, k)
		}
		for i, f := range got {
			if f.Frame != i*k {
				t.Errorf("last %.2f s: kept frame %d is second %d, want %d", last, i, f.Frame, i*k)
				break
			}
		}
	}
	if sampleInterval(0) != 1 || sampleInterval(1500) != 1 || sampleInterval(1500.5) != 2 || sampleInterval(1560) != 2 || sampleInterval(4501) != 4 {
		t.Errorf("sampleInterval: %d %d %d %d %d", sampleInterval(0), sampleInterval(1500), sampleInterval(1500.5), sampleInterval(1560), sampleInterval(4501))
	}
}

// FuzzTimestamps feeds the reader of ffmpeg's metadata output arbitrary
// bytes: it never panics, keeps only finite timestamps, one per "frame:"
// line at most, and reports a line it cannot parse.
func FuzzTimestamps(f *testing.F) {
	f.Add([]byte("frame:0    pts:0       pts_time:0\nstaydown=1\nframe:1    pts:15360   pts_time:1\nstaydown=1\n"))
	f.Add([]byte("frame:0 pts:NOPTS pts_time:NOPTS\n"))
	f.Add([]byte("frame:7 pts:-3 pts_time:-0.1\nframe:8 pts:1 pts_time:1e400\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var ts timestamps
		ts.read(strings.NewReader(string(b)))
		if lines := strings.Count(string(b), "frame:"); len(ts.t) > lines {
			t.Fatalf("%d timestamps from %d frame lines", len(ts.t), lines)
		}
		for _, v := range ts.t {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("timestamp %v kept", v)
			}
		}
		if nopts := "frame:0 pts:NOPTS pts_time:NOPTS\n"; ts.err == nil && (strings.HasPrefix(string(b), nopts) || strings.Contains(string(b), "\n"+nopts)) {
			t.Fatalf("NOPTS line accepted")
		}
	})
}
