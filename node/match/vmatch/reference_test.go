package vmatch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/staydown/staydown/internal/ffmpegtest"

	"github.com/staydown/staydown/node/match/vpdq"
)

// The cross-video verdicts on the vPDQ reference data
// (shared/testdata/vpdq), at DefaultParams: which query video matches which
// stored video ("query>stored"), directed, as measured and checked against
// the statement (issue 14, item 5). Every pair not listed, other than
// a video with itself, must not match.
//
// Query match percentages on the reference's own hash files (every frame),
// row the query: the SD chair takes and variants (chair-19, chair-20,
// chair-22 grey, sepia and small logo, chair-orig-22-sd) match each other
// both ways, the lowest 83% (small logo as query, chair-19 stored);
// the large-logo chair variant (no reference file; our hashes) meets about
// 11% of any other chair; pattern-sd-grey and pattern-sd-with-small-logo
// match each other (100%), the large-logo pattern meets 1%; chair, pattern,
// doorknob and the padded test video meet 0% of each other. Two things
// differ from the wording: the full-HD and HD "no bar" chair
// originals (hash files only) match each other but 0% of the SD chair
// family, whose frames carry a letterbox bar; and pattern-hd-no-bar
// matches 0% of the SD pattern videos (bar, and another frame shape),
// matching only pattern-longer-no-bar (no reference file; our hashes: 88%
// one way, 100% the other).
func chairSD() []string {
	return []string{"chair-19-sd-bar", "chair-20-sd-bar", "chair-22-sd-grey-bar", "chair-22-sd-sepia-bar",
		"chair-22-with-small-logo-bar", "chair-orig-22-sd-bar"}
}

// both returns every directed pair within names.
func both(names ...string) []string {
	var out []string
	for _, a := range names {
		for _, b := range names {
			if a != b {
				out = append(out, a+">"+b)
			}
		}
	}
	return out
}

var (
	// wantReference: the reference's hash files (every frame).
	wantReference = slices.Concat(both(chairSD()...),
		both("chair-orig-22-fhd-no-bar", "chair-orig-22-hd-no-bar"),
		both("pattern-sd-grey-bar", "pattern-sd-with-small-logo-bar"))
	// wantEveryFrame: our every-frame hashes of the videos (no hash for the
	// fhd/hd originals, which have no video; the large-logo chair and
	// pattern-longer have no reference file).
	wantEveryFrame = slices.Concat(both(chairSD()...),
		both("pattern-hd-no-bar", "pattern-longer-no-bar"),
		both("pattern-sd-grey-bar", "pattern-sd-with-small-logo-bar"))
	// wantOneFPS: our default one-frame-a-second hashes on both sides. At
	// one frame a second two takes of a scene meet only where their samples
	// fall on near-identical moments: chair-19 meets 4-16% of the others and
	// pattern-hd/pattern-longer 38-43% of each other (88-100% at every
	// frame). Re-encodings of one take, sampled at the same moments, keep
	// matching: chair-20 and the chair-22 family meet 87-100% of each other.
	wantOneFPS = slices.Concat(
		both("chair-20-sd-bar", "chair-22-sd-grey-bar", "chair-22-sd-sepia-bar", "chair-22-with-small-logo-bar", "chair-orig-22-sd-bar"),
		both("pattern-sd-grey-bar", "pattern-sd-with-small-logo-bar"))
)

// TestReferenceVerdicts compares every pair of videos with Compare at
// DefaultParams and checks the verdicts against the matrices above: on the
// reference's hash files, on our every-frame hashes and on our default
// one-a-second hashes.
func TestReferenceVerdicts(t *testing.T) {
	dir := referenceData(t)
	t.Run("reference-files", func(t *testing.T) {
		checkVerdicts(t, referenceHashes(t, dir), wantReference)
	})
	t.Run("ours-every-frame", func(t *testing.T) {
		if raceEnabled {
			t.Skip("hashing every frame of the 14 videos at full size takes minutes under the race detector; runs in go test without -race")
		}
		checkVerdicts(t, ourHashes(t, dir, vpdq.Options{EveryFrame: true}), wantEveryFrame)
	})
	t.Run("ours-1fps", func(t *testing.T) {
		checkVerdicts(t, ourHashes(t, dir, vpdq.Options{}), wantOneFPS)
	})
}

// checkVerdicts compares every ordered pair of videos (query, stored).
func checkVerdicts(t *testing.T, videos map[string][]Frame, want []string) {
	t.Helper()
	names := make([]string, 0, len(videos))
	for n := range videos {
		names = append(names, n)
	}
	slices.Sort(names)
	var table strings.Builder
	for _, q := range names {
		fmt.Fprintf(&table, "%-30s", q)
		for _, s := range names {
			r := Compare(videos[q], videos[s], 0, DefaultParams())
			fmt.Fprintf(&table, " %3.0f", r.QueryPercent)
			wantMatch := q == s || slices.Contains(want, q+">"+s)
			if r.Match != wantMatch {
				t.Errorf("query %s, stored %s: match %v (query %.1f%%, compared %.1f%%), want %v",
					q, s, r.Match, r.QueryPercent, r.ComparedPercent, wantMatch)
			}
		}
		table.WriteByte('\n')
	}
	for _, pair := range want {
		q, s, _ := strings.Cut(pair, ">")
		if videos[q] == nil || videos[s] == nil {
			t.Errorf("expected pair %s names a video not hashed", pair)
		}
	}
	t.Logf("query match %% (row query, column stored, in the order of the rows):\n%s", table.String())
}

// referenceData returns shared/testdata/vpdq, beside the module root; its
// absence fails the test.
func referenceData(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "..", "shared", "testdata", "vpdq")
	if _, err := os.Stat(filepath.Join(dir, "hashes")); err != nil {
		t.Fatalf("vPDQ reference data missing (shared/testdata/vpdq next to the module root): %v", err)
	}
	return dir
}

// referenceHashes parses the reference's full-size hash files.
func referenceHashes(t *testing.T, dir string) map[string][]Frame {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "hashes", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]Frame{}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".txt")
		if strings.HasSuffix(name, "-128x128") {
			continue
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		frames, err := vpdq.ParseText(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out[name] = wire(t, name, vpdq.Video{Frames: frames})
	}
	if len(out) != 14 {
		t.Fatalf("%d reference hash files, want 14", len(out))
	}
	return out
}

// ourHashes hashes every sample video with opts.
func ourHashes(t *testing.T, dir string, opts vpdq.Options) map[string][]Frame {
	t.Helper()
	ffmpegtest.Require(t)
	paths, err := filepath.Glob(filepath.Join(dir, "videos", "*.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]Frame{}
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".mp4")
		v, err := vpdq.HashFile(context.Background(), path, opts)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out[name] = wire(t, name, v)
	}
	if len(out) != 14 {
		t.Fatalf("%d sample videos, want 14", len(out))
	}
	return out
}

func wire(t *testing.T, name string, v vpdq.Video) []Frame {
	t.Helper()
	frames, err := v.WireFrames()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return frames
}
