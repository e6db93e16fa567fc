package interop

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/staydown/staydown/protocol"
)

// fuzzFormat checks that a reader never panics on any input, that every
// row it hands out is a signal the protocol accepts, and that every
// problem names where it is.
func fuzzFormat(f *testing.F, format Format, seeds ...string) {
	for _, s := range seeds {
		data, err := os.ReadFile(filepath.Join("testdata", s))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = Read(format, bytes.NewReader(data), Sink{
			Row: func(r Row) error {
				if err := protocol.CheckSignal(r.Signal); err != nil {
					t.Fatalf("%s: row %s carries a bad signal: %v", format, r.Where, err)
				}
				for _, l := range r.Labels {
					if _, err := protocol.ParseLabel(l); err != nil {
						t.Fatalf("%s: row %s carries a bad label %q", format, r.Where, l)
					}
				}
				return nil
			},
			Reject: func(p Problem) {
				if p.Where == "" || strings.TrimSpace(p.Reason) == "" {
					t.Fatalf("%s: problem without a place or a reason: %+v", format, p)
				}
			},
		})
		_, _ = Detect(data)
	})
}

func FuzzPyTX(f *testing.F)    { fuzzFormat(f, PyTX, "pytx.txt") }
func FuzzPyTXCSV(f *testing.F) { fuzzFormat(f, PyTXCSV, "pytx.csv") }
func FuzzTAT(f *testing.F)     { fuzzFormat(f, TAT, "tat.json") }
func FuzzSTIX(f *testing.F)    { fuzzFormat(f, STIX, "stix.json") }
func FuzzMISP(f *testing.F)    { fuzzFormat(f, MISP, "misp.json") }
func FuzzCSV(f *testing.F)     { fuzzFormat(f, CSV, "ours.csv") }

// FuzzSTIXPattern fuzzes the pattern subset reader on its own.
func FuzzSTIXPattern(f *testing.F) {
	f.Add("[file:hashes.'SHA-256' = 'ab'] OR [url:value = 'https://x.example/\\'']")
	f.Add("[file:hashes.MD5 = 'a' AND file:size = 1]")
	f.Fuzz(func(t *testing.T, p string) {
		comps, why := parseSTIXPattern(p)
		if (why == "") == (len(comps) == 0) {
			t.Fatalf("pattern %q: %d comparisons and reason %q", p, len(comps), why)
		}
	})
}
