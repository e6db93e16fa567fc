package pdq

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// benchmarkPhoto returns the reference set's bridge photo (a 1600x1004
// baseline JPEG with 4:2:0 chroma).
func benchmarkPhoto(b *testing.B) []byte {
	dir := referenceDir(b)
	data, err := os.ReadFile(filepath.Join(dir, "images", "bridge-mods--aaa-orig.jpg"))
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// reportCPU adds the process CPU time per operation to the benchmark's
// output. On a shared machine wall time (ns/op) includes waiting for a CPU;
// cpu-ns/op does not, and with several goroutines per hash it is the sum
// over them.
func reportCPU(b *testing.B, run func()) {
	start := processCPUTime()
	n := 0
	for b.Loop() {
		run()
		n++
	}
	if used := processCPUTime() - start; used > 0 && n > 0 {
		b.ReportMetric(float64(used/time.Nanosecond)/float64(n), "cpu-ns/op")
	}
}

func BenchmarkDecode(b *testing.B) {
	data := benchmarkPhoto(b)
	b.SetBytes(int64(len(data)))
	reportCPU(b, func() {
		if _, _, err := Decode(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkHash is FromImage on the decoded photo: the thumbnail (which
// reads every pixel) and the hash of the thumbnail; decoding excluded.
func BenchmarkHash(b *testing.B) {
	data := benchmarkPhoto(b)
	img, _, err := Decode(bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("bridge-mods--aaa-orig.jpg: %d bytes, %T %dx%d", len(data), img, img.Bounds().Dx(), img.Bounds().Dy())
	reportCPU(b, func() { FromImage(img) })
}

func BenchmarkHashDihedral(b *testing.B) {
	data := benchmarkPhoto(b)
	img, _, err := Decode(bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	reportCPU(b, func() { FromImageDihedral(img) })
}

// BenchmarkHashFullSize hashes the decoded photo without the thumbnail.
func BenchmarkHashFullSize(b *testing.B) {
	img, _, err := Decode(bytes.NewReader(benchmarkPhoto(b)))
	if err != nil {
		b.Fatal(err)
	}
	reportCPU(b, func() { FromImageFullSize(img) })
}

// BenchmarkFromReader decodes and hashes, as /v1/match/file does.
func BenchmarkFromReader(b *testing.B) {
	data := benchmarkPhoto(b)
	reportCPU(b, func() {
		if _, _, err := FromReaderDihedral(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	})
}
