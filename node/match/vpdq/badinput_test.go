package vpdq

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/staydown/staydown/internal/ffmpegtest"
)

// tracedTools writes ffmpeg and ffprobe wrappers into a temporary directory
// that record their process IDs and exec the real binaries (keeping the
// PID), and returns Options using them and a function returning the PIDs
// recorded so far.
func tracedTools(t *testing.T) (Options, func() []int) {
	t.Helper()
	ffmpegtest.Require(t)
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	for _, name := range []string{"ffmpeg", "ffprobe"} {
		real, err := exec.LookPath(name)
		if err != nil {
			t.Fatal(err)
		}
		script := "#!/bin/sh\necho $$ >> " + pids + "\nexec " + real + " \"$@\"\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return Options{FFmpeg: filepath.Join(dir, "ffmpeg")}, func() []int {
		b, err := os.ReadFile(pids)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		var out []int
		for _, f := range strings.Fields(string(b)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, pid)
		}
		return out
	}
}

// assertReaped fails unless every recorded subprocess has exited and been
// reaped: a zombie, or a process still running, still answers signal 0.
func assertReaped(t *testing.T, pids []int) {
	t.Helper()
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("subprocess %d still exists (kill 0: %v): not reaped", pid, err)
		}
	}
}

func sampleVideo(t *testing.T, name string) string {
	return filepath.Join(referenceDir(t), "videos", name)
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	notVideo := filepath.Join(dir, "notes.mp4")
	if err := os.WriteFile(notVideo, []byte("these are meeting notes, not a video\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.mp4")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	sample, err := os.ReadFile(sampleVideo(t, "chair-19-sd-bar.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.mp4")
	if err := os.WriteFile(truncated, sample[:len(sample)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	// A YUV4MPEG2 header is plain text, so it can declare any frame size
	// without a codec: ffprobe reports 10000x10000 (over MaxDimension), and
	// refuses 100000x100000 itself (over ffmpeg's own picture size limit).
	huge := filepath.Join(dir, "huge.y4m")
	if err := os.WriteFile(huge, []byte("YUV4MPEG2 W10000 H10000 F30:1 Ip A1:1 C420jpeg\nFRAME\nxxxxxxxx"), 0o644); err != nil {
		t.Fatal(err)
	}
	absurd := filepath.Join(dir, "absurd.y4m")
	if err := os.WriteFile(absurd, []byte("YUV4MPEG2 W100000 H100000 F30:1 Ip A1:1 C420jpeg\nFRAME\nxxxxxxxx"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		want       error
		msg        string
	}{
		{"not a video", notVideo, ErrNotVideo, "Invalid data found"},
		{"empty", empty, ErrNotVideo, "is empty"},
		{"truncated mp4", truncated, ErrMalformed, "ffmpeg exited with status"},
		{"10000x10000 header", huge, ErrTooLarge, "frame size 10000x10000"},
		{"100000x100000 header", absurd, ErrTooLarge, "100000x100000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts, pids := tracedTools(t)
			_, err := HashFile(context.Background(), tc.path, opts)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("HashFile = %v, want %v containing %q", err, tc.want, tc.msg)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans several lines", err)
			}
			assertReaped(t, pids())
		})
	}
}

func TestFFmpegMissing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no", "ffmpeg")
	_, err := HashFile(context.Background(), "whatever.mp4", Options{FFmpeg: missing})
	if !errors.Is(err, ErrNoFFmpeg) || !strings.Contains(err.Error(), "apt-get install ffmpeg") || !strings.Contains(err.Error(), strconv.Quote(missing)) {
		t.Errorf("HashFile with ffmpeg %q = %v, want ErrNoFFmpeg naming the path and the install command", missing, err)
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := HashFile(context.Background(), "whatever.mp4", Options{}); !errors.Is(err, ErrNoFFmpeg) || !strings.Contains(err.Error(), "not on PATH") {
		t.Errorf("HashFile with no ffmpeg on PATH = %v, want ErrNoFFmpeg saying so", err)
	}
}

func TestFFmpegKilledMidStream(t *testing.T) {
	opts, pids := tracedTools(t)
	opts.EveryFrame = true
	opts.frameHook = func(n, pid int) {
		if n == 3 {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Errorf("kill %d: %v", pid, err)
			}
		}
	}
	_, err := HashFile(context.Background(), sampleVideo(t, "chair-19-sd-bar.mp4"), opts)
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "killed by signal killed") {
		t.Errorf("HashFile with ffmpeg killed = %v, want ErrMalformed saying it was killed", err)
	}
	assertReaped(t, pids())
}

func TestCancelKillsFFmpeg(t *testing.T) {
	opts, pids := tracedTools(t)
	opts.EveryFrame = true
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts.frameHook = func(n, pid int) {
		if n == 2 {
			cancel()
		}
	}
	_, err := HashFile(ctx, sampleVideo(t, "chair-19-sd-bar.mp4"), opts)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("HashFile cancelled = %v, want context.Canceled", err)
	}
	assertReaped(t, pids())
}

func TestTimeout(t *testing.T) {
	opts, pids := tracedTools(t)
	opts.Timeout = time.Nanosecond
	_, err := HashFile(context.Background(), sampleVideo(t, "doorknob-hd-no-bar.mp4"), opts)
	if !errors.Is(err, ErrTimeout) {
		t.Errorf("HashFile with a 1ns limit = %v, want ErrTimeout", err)
	}
	assertReaped(t, pids())
}

func TestTimeLimit(t *testing.T) {
	for _, tc := range []struct {
		duration float64
		limit    time.Duration
		want     time.Duration
	}{
		{0, 0, DefaultTimeout},
		{10, 0, 2*time.Minute + 200*time.Second},
		{3600, 0, DefaultTimeout},
		{10, time.Minute, time.Minute},
	} {
		if got := timeLimit(tc.duration, tc.limit); got != tc.want {
			t.Errorf("timeLimit(%v, %v) = %v, want %v", tc.duration, tc.limit, got, tc.want)
		}
	}
}

func TestHashReaderLimit(t *testing.T) {
	opts, pids := tracedTools(t)
	opts.MaxBytes = 1000
	opts.TempDir = t.TempDir()
	_, err := Hash(context.Background(), bytes.NewReader(make([]byte, 1001)), opts)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "more than 1000 bytes") {
		t.Errorf("Hash of 1001 bytes with limit 1000 = %v, want ErrTooLarge", err)
	}
	if len(pids()) != 0 {
		t.Errorf("ffmpeg ran on an input over the limit")
	}
	left, _ := os.ReadDir(opts.TempDir)
	if len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}
