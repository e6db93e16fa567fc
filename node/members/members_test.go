package members

import (
	"bytes"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/protocol"

	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/membership/membershiptest"
	"github.com/staydown/staydown/store"
	"github.com/staydown/staydown/store/storetest"
)

// BenchmarkOpen: a node's start with a 200-member roster and 1,000
// amendments in its history (101,000 membership entries in its store):
// decode the snapshot the first Open saved (the membership index's digest
// says it was made from the entries held), check the store's indexes were
// derived under it (issue target: under 100 ms). BenchmarkOpenComputed is
// the start without a snapshot that holds.
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

// logBuffer is a log whose lines a test reads.
func logBuffer() (*slog.Logger, *bytes.Buffer) {
	var b bytes.Buffer
	return slog.New(slog.NewTextHandler(&b, nil)), &b
}

// same fails t unless got is the history want is (what a node, a view
// and an audit read of it).
func same(t *testing.T, got, want *membership.History) {
	t.Helper()
	if string(got.Fingerprint()) != string(want.Fingerprint()) {
		t.Fatal("fingerprint differs from Compute's")
	}
	// Entries (and a pending amendment's body) are compared by what
	// they are, not by how they were decoded.
	pending := func(h *membership.History) []membership.Proposal {
		ps := slices.Clone(h.Pending)
		for i := range ps {
			e, ok := h.Entry(ps[i].ID)
			if !ok || !proto.Equal(e.Body.GetAmendment(), ps[i].Body) {
				t.Fatalf("pending %s: body is not its entry's", ps[i].ID)
			}
			ps[i].Body = nil
		}
		return ps
	}
	ids := func(h *membership.History) (out []string) {
		for _, c := range h.Conflicts {
			out = append(out, fmt.Sprintf("conflict %s %d %s %s", c.Member, c.Base, c.First.ID, c.Second.ID))
			if c.First.ID != protocol.IDOf(c.First.Raw) || c.Second.ID != protocol.IDOf(c.Second.Raw) {
				t.Fatal("conflict entry is not whole")
			}
		}
		for _, v := range h.Voids {
			out = append(out, fmt.Sprintf("void %s %s", v.Entry.ID, v.Why))
			if v.Entry.ID != protocol.IDOf(v.Entry.Raw) {
				t.Fatal("void entry is not whole")
			}
		}
		return out
	}
	for _, f := range []struct {
		name string
		a, b any
	}{
		{"versions", got.Versions, want.Versions}, {"pending", pending(got), pending(want)},
		{"conflicts and voids", ids(got), ids(want)},
		{"everyone", got.Everyone(), want.Everyone()}, {"roster", got.Roster(), want.Roster()},
	} {
		if !reflect.DeepEqual(f.a, f.b) {
			t.Fatalf("%s differ from Compute's:\n%+v\nwant %+v", f.name, f.a, f.b)
		}
	}
}

// TestOpenSnapshot: Open decodes the snapshot it saved only while the
// store holds the entries it was computed from; entries logged since
// (without a Refresh: another process, a restore), a damaged snapshot
// make it compute again, and save a good one. (A snapshot of another
// genesis: membership.TestSnapshotRefused.)
func TestOpenSnapshot(t *testing.T) {
	g, es, _ := membershiptest.Big(t, "snap", 9, 12)
	path := filepath.Join(t.TempDir(), "store.db")
	early := es[:len(es)-7]
	storetest.Seed(t, path, early)
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log, lines := logBuffer()

	l, err := Open(g, st, log)
	if err != nil {
		t.Fatal(err)
	}
	same(t, l.History(), membership.Compute(g, early))
	if l.entries == nil {
		t.Fatal("no snapshot in the store, yet Open read no entries")
	}
	// Saved; the next Open uses it, and reads no entries.
	l, err = Open(g, st, log)
	if err != nil {
		t.Fatal(err)
	}
	if l.entries != nil || strings.Contains(lines.String(), "computed from the logs") {
		t.Fatalf("Open computed instead of using the snapshot it saved: %s", lines)
	}
	same(t, l.History(), membership.Compute(g, early))

	// Entries logged behind Live's back: the snapshot is stale.
	if _, err := st.Apply(es[len(early):]); err != nil {
		t.Fatal(err)
	}
	l, err = Open(g, st, log)
	if err != nil {
		t.Fatal(err)
	}
	if l.entries == nil || !strings.Contains(lines.String(), "stale") {
		t.Fatalf("a stale snapshot was used: %s", lines)
	}
	same(t, l.History(), membership.Compute(g, es))
	if l2, err := Open(g, st, log); err != nil || l2.entries != nil {
		t.Fatalf("the recomputed history was not saved (%v)", err)
	}

	// Damaged anywhere: computed again.
	_, snap, err := st.MembersSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []int{0, len(snap) / 3, len(snap) - 1} {
		bad := bytes.Clone(snap)
		bad[at] ^= 1
		if err := st.SaveMembersSnapshot(bad); err != nil {
			t.Fatal(err)
		}
		lines.Reset()
		l, err = Open(g, st, log)
		if err != nil {
			t.Fatal(err)
		}
		if l.entries == nil || !strings.Contains(lines.String(), "computed from the logs") {
			t.Fatalf("a damaged snapshot (byte %d) was used: %s", at, lines)
		}
		same(t, l.History(), membership.Compute(g, es))
	}
}

// TestRefreshAfterSnapshot: a Live opened from a snapshot reads the
// entries at its first Refresh, and computes what Compute gives of all.
func TestRefreshAfterSnapshot(t *testing.T) {
	g, es, _ := membershiptest.Big(t, "snap", 7, 10)
	path := filepath.Join(t.TempDir(), "store.db")
	early := es[:len(es)-5]
	storetest.Seed(t, path, early)
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log := slog.New(slog.DiscardHandler)
	if _, err := Open(g, st, log); err != nil {
		t.Fatal(err)
	}
	l, err := Open(g, st, log)
	if err != nil {
		t.Fatal(err)
	}
	if l.entries != nil {
		t.Fatal("the second Open did not use the snapshot")
	}
	late := es[len(early):]
	if _, err := st.Apply(late); err != nil {
		t.Fatal(err)
	}
	changed, err := l.Refresh(late)
	if err != nil {
		t.Fatal(err)
	}
	if !changed {
		t.Fatal("the refresh that passed amendments reports no change")
	}
	same(t, l.History(), membership.Compute(g, es))
	// The version changed: saved, and the next start uses it.
	l, err = Open(g, st, log)
	if err != nil {
		t.Fatal(err)
	}
	if l.entries != nil {
		t.Fatal("Refresh did not save the snapshot of the new version")
	}
	same(t, l.History(), membership.Compute(g, es))
}

// BenchmarkOpenComputed: the same start with no snapshot that holds
// (the first start after membership entries came in without a refresh
// that saved one): read, compute, save the snapshot.
func BenchmarkOpenComputed(b *testing.B) {
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
	for b.Loop() {
		b.StopTimer()
		if err := st.SaveMembersSnapshot([]byte("stale")); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		l, err := Open(g, st, log)
		if err != nil {
			b.Fatal(err)
		}
		if l.entries == nil {
			b.Fatal("a damaged snapshot was used")
		}
	}
}

// Refresh saves a snapshot at most once a minute, however many versions
// pass (a node catching up a long membership history would otherwise
// write megabytes at each), and Close saves the last one.
func TestSnapshotSavesSpaced(t *testing.T) {
	g, es, _ := membershiptest.Big(t, "spaced", 7, 10)
	path := filepath.Join(t.TempDir(), "store.db")
	early := es[:len(es)-5]
	storetest.Seed(t, path, early)
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log := slog.New(slog.DiscardHandler)
	l, err := Open(g, st, log) // computes and saves
	if err != nil {
		t.Fatal(err)
	}
	_, before, err := st.MembersSnapshot()
	if err != nil || before == nil {
		t.Fatalf("no snapshot after the first Open: %v", err)
	}
	late := es[len(early):]
	if _, err := st.Apply(late); err != nil {
		t.Fatal(err)
	}
	if changed, err := l.Refresh(late); err != nil || !changed {
		t.Fatalf("Refresh = %v, %v", changed, err)
	}
	if _, now, _ := st.MembersSnapshot(); !bytes.Equal(now, before) {
		t.Fatal("Refresh saved a snapshot within a minute of the last")
	}
	l.Close()
	l, err = Open(g, st, log)
	if err != nil {
		t.Fatal(err)
	}
	if l.entries != nil {
		t.Fatal("Close did not save the snapshot of the new version")
	}
	same(t, l.History(), membership.Compute(g, es))
}
