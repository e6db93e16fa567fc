package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestDamagedFileIsAnError: a store file with any one page zeroed, or cut
// short, opens and checks with an error, or clean where bbolt can do
// without what was lost (a free page, the older meta page), and never
// crashes the process (#12 item 8: a zeroed page panicked bbolt, a
// truncated file segfaulted).
func TestDamagedFileIsAnError(t *testing.T) {
	s, w := mustOpen(t), newWorld(t)
	logs, fork := w.rich()
	if _, err := s.Apply(append(interleave(logs), fork)); err != nil {
		t.Fatal(err)
	}
	path := s.db.Path()
	s.mustClose()
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s.mustReopen()
	page := os.Getpagesize()
	try := func(t *testing.T, data []byte) error {
		t.Helper()
		p := filepath.Join(t.TempDir(), "store.db")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := Open(p)
		if err != nil {
			return err
		}
		defer st.Close()
		return st.Check()
	}
	caught := 0
	for i := 0; i < len(good)/page; i++ {
		bad := bytes.Clone(good)
		clear(bad[i*page : (i+1)*page])
		if bytes.Equal(bad, good) {
			continue
		}
		err := try(t, bad)
		switch {
		case err == nil:
		case errors.Is(err, ErrCorrupt):
			caught++
		default:
			// bbolt's own refusals (an invalid meta page, a bad checksum)
			// are errors too; any error is fine, a crash is not.
			caught++
		}
	}
	if caught == 0 {
		t.Error("no zeroed page was noticed")
	}
	// Cut short: the pages past the end read as faults under the
	// mapping, if bbolt reads them. (bbolt grows the file ahead of its
	// use, and where the live pages lie varies, so a cut may or may not
	// lose data: what must not happen is a crash.)
	for _, keep := range []int{len(good) / 4, len(good) / 2, len(good) * 3 / 4, len(good) - page} {
		try(t, good[:keep])
	}
}
