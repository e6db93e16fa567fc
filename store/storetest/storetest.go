// Package storetest helps tests set up stores.
package storetest

import (
	"testing"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/store"
)

// Seed writes entries straight into the store file at path, which no
// node holds open, in transactions of 4,096; every entry must apply.
func Seed(tb testing.TB, path string, entries []*protocol.Entry) {
	tb.Helper()
	st, err := store.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer st.Close()
	for lo := 0; lo < len(entries); lo += 4096 {
		res, err := st.Apply(entries[lo:min(lo+4096, len(entries))])
		if err != nil {
			tb.Fatal(err)
		}
		for _, r := range res {
			if r.Outcome != store.Applied {
				tb.Fatalf("seeding: %s %v", r.Outcome, r.Err)
			}
		}
	}
}
