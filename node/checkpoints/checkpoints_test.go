package checkpoints

import (
	"crypto/ed25519"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/prototest"
	"github.com/staydown/staydown/store"
)

// A witness that gets a checkpoint before the entries it covers cosigns
// it at its next tick once the entries are there, without waiting for the
// author to publish anything new (pubsub drops a republication of the
// same bytes as already seen).
func TestWitnessCosignsWhatItCouldNotCheckBefore(t *testing.T) {
	const fed = "test"
	authorKey := ed25519.NewKeyFromSeed(make([]byte, 32))
	seed := make([]byte, 32)
	seed[0] = 1
	witnessKey := ed25519.NewKeyFromSeed(seed)
	roster, err := protocol.NewRoster(fed, []protocol.Member{
		{Name: "nru", Role: protocol.RoleReferral, AuthorKey: protocol.AuthorKeyOf(authorKey)},
		{Name: "pfa", Role: protocol.RolePlatform, AuthorKey: protocol.AuthorKeyOf(witnessKey)},
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	self, _ := roster.ByName("pfa")
	c, err := New(Deps{Store: st, Roster: func() *protocol.Roster { return roster }, Self: self, Author: witnessKey,
		Federation: fed, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Reg: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}

	// The author's checkpoint of its first three entries, which the
	// witness does not hold yet.
	entries := prototest.Additions(t, authorKey, fed, 3)
	tree := protocol.NewTree()
	for _, e := range entries {
		tree.Append(e.ID)
	}
	signer, err := protocol.NoteSigner("nru", authorKey)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := protocol.SignCheckpoint(protocol.Checkpoint{Origin: protocol.CheckpointOrigin(fed, protocol.AuthorKeyOf(authorKey)), Size: 3, Root: tree.Root()}, signer)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := protocol.OpenCheckpoint(msg, roster)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := c.Receive(sc, msg); err != nil || out != nil {
		t.Fatalf("a checkpoint of entries not held: cosigned %q, err %v; want neither", out, err)
	}
	if out := c.witnessKept(); len(out) != 0 {
		t.Fatalf("cosigned before the entries came: %q", out)
	}

	// The entries come (by sync); the next tick cosigns.
	if _, err := st.Apply(entries); err != nil {
		t.Fatal(err)
	}
	out := c.witnessKept()
	if len(out) != 1 {
		t.Fatalf("the tick after the entries came published %d cosigned checkpoints, want 1", len(out))
	}
	got, err := protocol.OpenCheckpoint(out[0], roster)
	if err != nil {
		t.Fatal(err)
	}
	if got.Size != 3 || !slices.Contains(got.Cosigners, self.AuthorKey) {
		t.Fatalf("published size %d cosigned by %v, want size 3 cosigned by pfa", got.Size, got.Cosigners)
	}
	// Once only.
	if out := c.witnessKept(); len(out) != 0 {
		t.Fatalf("the next tick cosigned again: %q", out)
	}
}
