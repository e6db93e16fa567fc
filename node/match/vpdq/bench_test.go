package vpdq

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/staydown/staydown/internal/ffmpegtest"
)

// cpuTime is the CPU time used so far by this process and its reaped
// children (the ffmpeg subprocesses).
func cpuTime() time.Duration {
	var total time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if err := syscall.Getrusage(who, &ru); err == nil {
			total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return total
}

// benchVideos hashes every video in paths b.N times with opts and reports
// the video frames covered a second of wall time and a second of CPU time
// (ffmpeg's included): frames/cpu-s is the throughput of one core.
func benchVideos(b *testing.B, paths []string, opts Options) {
	frames := 0
	cpu0 := cpuTime()
	start := time.Now()
	for b.Loop() {
		for _, p := range paths {
			v, err := HashFile(context.Background(), p, opts)
			if err != nil {
				b.Fatal(err)
			}
			// Frames of video covered, sampled or not: what a throughput
			// comparison with the reference counts.
			frames += int(v.Duration*v.FrameRate + 0.5)
		}
	}
	wall, cpu := time.Since(start), cpuTime()-cpu0
	b.ReportMetric(float64(frames)/wall.Seconds(), "frames/s")
	b.ReportMetric(float64(frames)/cpu.Seconds(), "frames/cpu-s")
	b.ReportMetric(wall.Seconds()/float64(b.N), "s/pass")
}

// BenchmarkSamples hashes the 14 sample videos, every frame and one a
// second.
func BenchmarkSamples(b *testing.B) {
	ffmpegtest.Require(b)
	paths, err := filepath.Glob(filepath.Join(referenceDir(b), "videos", "*.mp4"))
	if err != nil || len(paths) == 0 {
		b.Fatalf("no sample videos: %v", err)
	}
	b.Run("every-frame", func(b *testing.B) { benchVideos(b, paths, Options{EveryFrame: true}) })
	b.Run("1fps", func(b *testing.B) { benchVideos(b, paths, Options{}) })
	b.Run("every-frame-128", func(b *testing.B) { benchVideos(b, paths, Options{EveryFrame: true, Size: 128}) })
}

// BenchmarkTenMinutes720p hashes a 10-minute 1280x720 30 fps video
// generated with ffmpeg's testsrc2 (into the benchmark's temporary
// directory; generating it takes a minute or two and is not timed), one
// frame a second.
func BenchmarkTenMinutes720p(b *testing.B) {
	ffmpegtest.Require(b)
	path := filepath.Join(b.TempDir(), "ten-minutes-720p.mp4")
	generate(b, path, "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=600",
		"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p")
	b.ResetTimer()
	b.Run("1fps", func(b *testing.B) { benchVideos(b, []string{path}, Options{}) })
}
