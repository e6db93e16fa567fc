package vpdq

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/staydown/staydown/internal/ffmpegtest"
)

// TestMP4HeaderMatchesFFprobe checks that the stream information read from
// an MP4's header (readMP4, which spares ffprobe's process) is ffprobe's,
// on every sample video and on generated files that vary what it reads:
// rotation, a non-integer rate, a variable frame rate, the index at the
// end and at the start, and H.265; and that it declines (HashFile then
// asks ffprobe) a variable frame rate and another container.
func TestMP4HeaderMatchesFFprobe(t *testing.T) {
	ffmpegtest.Require(t)
	paths, err := filepath.Glob(filepath.Join(referenceDir(t), "videos", "*.mp4"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no sample videos: %v", err)
	}
	dir := t.TempDir()
	src := []string{"-f", "lavfi", "-i", "testsrc2=size=176x144:rate=30:duration=3"}
	gen := map[string][]string{
		"rot90.mp4":        append(src, "-c:v", "libx264", "-metadata:s:v", "rotate=90"),
		"rot180.mov":       append(src, "-c:v", "libx264", "-metadata:s:v", "rotate=180"),
		"rot270.mp4":       append(src, "-c:v", "libx264", "-metadata:s:v", "rotate=270", "-movflags", "+faststart"),
		"ntsc.mp4":         {"-f", "lavfi", "-i", "testsrc2=size=160x90:rate=30000/1001:duration=4", "-c:v", "libx264", "-bf", "0"},
		"declined-vfr.mp4": append(src, "-vf", "setpts='if(lt(N,30),N/30,1+(N-30)/10)/TB'", "-fps_mode", "vfr", "-c:v", "libx264"),
		"hevc.mp4":         append(src, "-c:v", "libx265", "-x265-params", "log-level=error", "-tag:v", "hvc1"),
		"odd.mp4":          {"-f", "lavfi", "-i", "testsrc2=size=175x143:rate=25:duration=2", "-c:v", "libx264", "-pix_fmt", "yuv444p"},
		"declined.webm":    append(src, "-c:v", "libvpx", "-deadline", "realtime"),
	}
	for name, args := range gen {
		p := filepath.Join(dir, name)
		generate(t, p, args...)
		paths = append(paths, p)
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := readMP4(f, st.Size())
			if strings.HasPrefix(filepath.Base(p), "declined") {
				if !errors.Is(err, errNotPlainMP4) {
					t.Fatalf("readMP4: %+v, %v; want errNotPlainMP4", got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("readMP4: %v", err)
			}
			want, err := probe(context.Background(), "ffprobe", p)
			if err != nil {
				t.Fatal(err)
			}
			if got.width != want.width || got.height != want.height || got.rotation != want.rotation ||
				math.Abs(got.rate-want.rate) > 1e-9*want.rate || math.Abs(got.duration-want.duration) > 1e-6 {
				t.Errorf("readMP4 %+v, ffprobe %+v", got, want)
			}
		})
	}
}

// TestMP4HeaderDeclines checks that readMP4 declines, rather than guesses,
// on files it does not fully understand, and never reads past the file.
func TestMP4HeaderDeclines(t *testing.T) {
	valid, err := os.ReadFile(filepath.Join(referenceDir(t), "videos", "doorknob-hd-no-bar.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":        nil,
		"text":         []byte("hello, this is not a video at all"),
		"box too long": {0, 0, 0, 100, 'f', 't', 'y', 'p', 0, 0},
		"moov cut":     valid[:1000], // this file's index is at its start
	}
	for name, b := range cases {
		if info, err := readMP4(bytes.NewReader(b), int64(len(b))); !errors.Is(err, errNotPlainMP4) {
			t.Errorf("%s: readMP4 = %+v, %v; want errNotPlainMP4", name, info, err)
		}
	}
}

// FuzzMP4Header feeds readMP4 arbitrary files: it must never panic, and
// anything it accepts must be a usable stream description.
func FuzzMP4Header(f *testing.F) {
	for _, name := range []string{"doorknob-hd-no-bar.mp4", "pattern-sd-grey-bar.mp4"} {
		b, err := os.ReadFile(filepath.Join(referenceDir(f), "videos", name))
		if err != nil {
			f.Fatal(err)
		}
		// The moov box is what readMP4 reads: seed with the file's head and
		// tail (the index is at either end) to keep seeds small.
		f.Add(b[:min(len(b), 4096)])
		f.Add(b[max(0, len(b)-16384):])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := readMP4(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if !errors.Is(err, errNotPlainMP4) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if info.width <= 0 || info.height <= 0 || !(info.rate >= 0.01 && info.rate <= 1000) ||
			info.duration < 0 || math.IsNaN(info.duration) || math.IsInf(info.duration, 0) {
			t.Fatalf("accepted an unusable description: %+v", info)
		}
	})
}

// TestMP4HeaderRefusesLargeFrame checks that a frame size over the limits
// declared in an MP4's sample entry is refused from the header, before
// any ffmpeg or ffprobe process is started.
func TestMP4HeaderRefusesLargeFrame(t *testing.T) {
	opts, pids := tracedTools(t)
	b, err := os.ReadFile(sampleVideo(t, "doorknob-hd-no-bar.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	// The first avc1 after stsd (ftyp names avc1 as a brand too).
	s := bytes.Index(b, []byte("stsd"))
	i := bytes.Index(b[max(s, 0):], []byte("avc1")) + s
	if s < 0 || i < s {
		t.Fatal("no avc1 sample entry in the sample video")
	}
	// The visual sample entry's width and height, 28 bytes after its type.
	binary.BigEndian.PutUint16(b[i+28:], 10000)
	binary.BigEndian.PutUint16(b[i+30:], 10000)
	p := filepath.Join(t.TempDir(), "large.mp4")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = HashFile(context.Background(), p, opts)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "frame size 10000x10000") {
		t.Fatalf("HashFile = %v; want ErrTooLarge naming 10000x10000", err)
	}
	if started := pids(); len(started) != 0 {
		t.Errorf("processes started before the refusal: %v", started)
	}
}
