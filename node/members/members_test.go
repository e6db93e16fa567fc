package members

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/staydown/staydown/protocol/membership/membershiptest"
	"github.com/staydown/staydown/store"
	"github.com/staydown/staydown/store/storetest"
)

// BenchmarkOpen: a node's start with a 200-member roster and 1,000
// amendments in its history (101,000 membership entries in its store):
// read them, compute the membership, check the store's indexes were
// derived under it (issue target: under 100 ms).
func BenchmarkOpen(b *testing.B) {
	g, es, _ := membershiptest.Big(b, "bench", 200, 1000)
	path := filepath.Join(b.TempDir(), "store.db")
	storetest.Seed(b, path, es)
	st, err := store.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	log := slog.New(slog.DiscardHandler)
	if _, err := Open(g, st, log); err != nil { // derives the indexes once
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		l, err := Open(g, st, log)
		if err != nil {
			b.Fatal(err)
		}
		if v := l.History().Version(); v != 1000 {
			b.Fatalf("version %d", v)
		}
	}
}
