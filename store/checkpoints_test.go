package store

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/staydown/staydown/protocol"
)

// checkpointNote is a checkpoint of a's log at size, signed by a, with a
// root of 32 copies of root.
func checkpointNote(tb testing.TB, a *author, size uint64, root byte) []byte {
	tb.Helper()
	signer, err := protocol.NoteSigner("member", a.priv)
	if err != nil {
		tb.Fatal(err)
	}
	c := protocol.Checkpoint{Origin: protocol.CheckpointOrigin(federation, a.key), Size: size, Root: bytes.Repeat([]byte{root}, 32)}
	msg, err := protocol.SignCheckpoint(c, signer)
	if err != nil {
		tb.Fatal(err)
	}
	return msg
}

// TestCheckpointsKept: the latest checkpoint of each log replaces the one
// before, conflicts are kept in order, both outlive a reopen and a
// Rebuild, and a note that is not a checkpoint of the log it is kept
// under is refused with nothing written.
func TestCheckpointsKept(t *testing.T) {
	w := newWorld(t)
	a5, a7, b2 := checkpointNote(t, w.A, 5, 1), checkpointNote(t, w.A, 7, 2), checkpointNote(t, w.B, 2, 3)
	bad := checkpointNote(t, w.A, 5, 9)
	type save struct {
		author    *author // nil: a conflict
		note      []byte
		wantError bool
	}
	tests := []struct {
		name          string
		saves         []save
		wantLatest    [][]byte // by author key
		wantConflicts [][]byte
	}{
		{"none", nil, nil, nil},
		{"one per log", []save{{w.A, a5, false}, {w.B, b2, false}}, sortedByAuthor(w, a5, b2), nil},
		{"a newer one replaces", []save{{w.A, a5, false}, {w.A, a7, false}}, [][]byte{a7}, nil},
		{"conflicts in order, twice the same kept twice", []save{{nil, bad, false}, {nil, a5, false}, {nil, bad, false}}, nil, [][]byte{bad, a5, bad}},
		{"another log's checkpoint refused", []save{{w.A, a5, false}, {w.B, a7, true}}, [][]byte{a5}, nil},
		{"not a note refused", []save{{w.A, []byte("staydown/test/x\n1\nAAAA\n"), true}, {nil, []byte("hello"), true}}, nil, nil},
		{"extension line refused", []save{{nil, append([]byte("x\n1\n"), a5...), true}}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustOpen(t)
			for i, sv := range tt.saves {
				var err error
				if sv.author == nil {
					err = s.SaveCheckpointConflict(sv.note)
				} else {
					err = s.SaveCheckpoint(sv.author.key, sv.note)
				}
				switch {
				case sv.wantError && !errors.Is(err, protocol.ErrCheckpoint):
					t.Fatalf("save %d: %v, want ErrCheckpoint", i, err)
				case !sv.wantError && err != nil:
					t.Fatalf("save %d: %v", i, err)
				}
			}
			check := func(when string) {
				t.Helper()
				latest, err := s.LatestCheckpoints()
				if err != nil || !equalNotes(latest, tt.wantLatest) {
					t.Errorf("%s: latest %q (%v), want %q", when, latest, err, tt.wantLatest)
				}
				conflicts, err := s.CheckpointConflicts()
				if err != nil || !equalNotes(conflicts, tt.wantConflicts) {
					t.Errorf("%s: conflicts %q (%v), want %q", when, conflicts, err, tt.wantConflicts)
				}
			}
			check("saved")
			s.mustReopen()
			check("reopened")
			if err := s.Rebuild(); err != nil {
				t.Fatal(err)
			}
			check("rebuilt")
		})
	}
}

func sortedByAuthor(w *world, a, b []byte) [][]byte {
	if bytes.Compare(w.A.key[:], w.B.key[:]) < 0 {
		return [][]byte{a, b}
	}
	return [][]byte{b, a}
}

func equalNotes(a, b [][]byte) bool { return slices.EqualFunc(a, b, bytes.Equal) }
