package vpdq

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/staydown/staydown/internal/ffmpegtest"
)

// TestReference hashes every frame of every sample video that has a
// reference hash and compares with the reference's frames, at full size and
// at 128x128: at least 95% of our frames (quality >= 50) must be less than
// 31 bits from a reference frame, and at least 95% of the reference's frames
// from one of ours. Decoders differ (the reference was made with ffmpeg
// 4.1), so identical bits are not expected.
//
// Under the race detector (make test) hashing full-size frames is slow
// (the whole check took 324 s under -race on the shared 2-core machine,
// against 30 s of CPU without it), so there the full-size pass covers
// raceSubset, one video of each kind of frame size, and the 128x128 pass
// covers every video; the subtests run in parallel (about 70 s under -race
// there). Without -race every video is checked at both sizes.
func TestReference(t *testing.T) {
	ffmpegtest.Require(t)
	dir := referenceDir(t)
	videos, err := filepath.Glob(filepath.Join(dir, "videos", "*.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, video := range videos {
		name := strings.TrimSuffix(filepath.Base(video), ".mp4")
		for _, size := range []int{0, 128} {
			if size == 0 && raceEnabled && !raceSubset[name] {
				continue
			}
			ref := filepath.Join(dir, "hashes", name+".txt")
			if size > 0 {
				ref = filepath.Join(dir, "hashes", name+"-128x128.txt")
			}
			want := readReference(t, ref)
			if want == nil {
				continue
			}
			checked++
			t.Run(filepath.Base(ref), func(t *testing.T) {
				t.Parallel()
				got, err := HashFile(context.Background(), video, Options{EveryFrame: true, Size: size})
				if err != nil {
					t.Fatal(err)
				}
				ours, n1 := matchShare(got.Frames, want)
				theirs, n2 := matchShare(want, got.Frames)
				t.Logf("%d frames hashed (%d kept), %d reference frames; ours in reference %.1f%% of %d, reference in ours %.1f%% of %d",
					got.Decoded, len(got.Frames), len(want), 100*ours, n1, 100*theirs, n2)
				if got.Decoded != len(want) {
					t.Errorf("decoded %d frames, the reference hashed %d", got.Decoded, len(want))
				}
				if ours < 0.95 || theirs < 0.95 {
					t.Errorf("match shares %.1f%% (ours in reference) and %.1f%% (reference in ours), want both >= 95%%", 100*ours, 100*theirs)
				}
			})
		}
	}
	// 12 videos have a full-size reference hash, 11 of them a 128x128 one.
	want := 23
	if raceEnabled {
		want = 11 + len(raceSubset)
	}
	if checked != want {
		t.Fatalf("%d reference hashes checked in %s, want %d", checked, dir, want)
	}
}

// readReference parses a reference hash file; nil if it does not exist.
func readReference(t *testing.T, path string) []Frame {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	frames, err := ParseText(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return frames
}

// raceSubset is the full-size pass under the race detector: an HD video,
// an SD one and the odd-sized one.
var raceSubset = map[string]bool{
	"doorknob-hd-no-bar":     true,
	"pattern-sd-grey-bar":    true,
	"test-padded-dimensions": true,
}
