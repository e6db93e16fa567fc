package vpdq

import (
	"math/bits"
	"os"
	"path/filepath"
	"testing"

	"github.com/staydown/staydown/node/match/pdq"
)

// referenceDir returns the vPDQ reference data (shared/testdata/vpdq, a
// sibling of the module root). go test runs in node/match/vpdq, four levels
// below the directory holding both. A missing directory fails the test: the
// hasher is unverified without it.
func referenceDir(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(wd, "..", "..", "..", "..", "shared", "testdata", "vpdq")
	if _, err := os.Stat(filepath.Join(dir, "hashes")); err != nil {
		t.Fatalf("vPDQ reference data missing: expected %s/{videos,hashes}/ "+
			"(shared/testdata/vpdq next to the module root): %v", dir, err)
	}
	return dir
}

func distance(a, b pdq.Hash) int {
	d := 0
	for i := range a {
		d += bits.OnesCount8(a[i] ^ b[i])
	}
	return d
}

// matchShare is the reference's match percentage: the share of a's frames
// of quality at least pdq.MinQuality that are less than 31 bits from some
// frame of b of quality at least pdq.MinQuality, and how many of a's frames
// were counted.
func matchShare(a, b []Frame) (float64, int) {
	counted, matched := 0, 0
	for _, fa := range a {
		if fa.Quality < pdq.MinQuality {
			continue
		}
		counted++
		for _, fb := range b {
			if fb.Quality >= pdq.MinQuality && distance(fa.PDQ, fb.PDQ) < 31 {
				matched++
				break
			}
		}
	}
	if counted == 0 {
		return 0, 0
	}
	return float64(matched) / float64(counted), counted
}
