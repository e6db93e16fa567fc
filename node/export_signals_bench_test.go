package node

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/staydown/staydown/interop"
)

// BenchmarkExportSignals streams a store of 100,000 sha256 attestations
// (100 additions of 1,000) through each format's writer to io.Discard:
// records/s, and bytes allocated per record (which stays flat as the
// store grows: the logs are read in chunks).
func BenchmarkExportSignals(b *testing.B) {
	n, stored := exactBench(b)
	for _, f := range []interop.Format{interop.CSV, interop.TAT, interop.STIX} {
		b.Run(string(f), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				w, err := interop.NewWriter(f, io.Discard, interop.Meta{Federation: "test", Exporter: "nru"})
				if err != nil {
					b.Fatal(err)
				}
				count := 0
				if err := n.ExportSignals(context.Background(), interop.Filter{}, func(r interop.Record) error {
					count++
					if err := w.Write(r); err != nil && !errors.Is(err, interop.ErrSkip) {
						return err
					}
					return nil
				}); err != nil {
					b.Fatal(err)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
				if count != len(stored) {
					b.Fatalf("exported %d records, want %d", count, len(stored))
				}
			}
			b.ReportMetric(float64(b.N*len(stored))/b.Elapsed().Seconds(), "records/s")
		})
	}
}
