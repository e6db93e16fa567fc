package ownhead

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/staydown/staydown/protocol"
)

func roster(t *testing.T, names ...string) (*protocol.Roster, map[string]peer.ID) {
	t.Helper()
	r := &protocol.Roster{Federation: "f"}
	ids := map[string]peer.ID{}
	for _, n := range names {
		k, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		ids[n] = id
		r.Members = append(r.Members, protocol.Member{Name: n, Role: protocol.RolePlatform, PeerID: id.String()})
	}
	return r, ids
}

// TestNeeded: a majority of the other members by default, what the
// operator says otherwise, and never more than there are.
func TestNeeded(t *testing.T) {
	for _, tt := range []struct {
		members, min, want int
		err                bool
	}{
		{1, -1, 0, true}, {1, 0, 0, false}, {2, -1, 1, false}, {3, -1, 2, false}, {4, -1, 2, false}, {5, -1, 3, false}, {6, -1, 3, false},
		{3, 1, 1, false}, {3, 0, 0, false}, {3, 2, 2, false}, {3, 3, 0, true},
	} {
		names := []string{"self"}
		for i := 1; i < tt.members; i++ {
			names = append(names, string(rune('a'+i)))
		}
		r, _ := roster(t, names...)
		got, err := Needed(r, "self", tt.min)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("%d members, min %d: %d, %v; want %d (error %v)", tt.members, tt.min, got, err, tt.want, tt.err)
		}
	}
}

// TestRound: a peer counts when it is connected, its session completes,
// and the own head held after it is at least the one it announced; a
// peer that announces more than it serves does not (#12 item 8).
func TestRound(t *testing.T) {
	r, ids := roster(t, "self", "honest", "liar", "down", "failing")
	own := protocol.AuthorKey{1}
	held := uint64(3)
	announced := map[peer.ID]uint64{ids["honest"]: 3, ids["liar"]: 9, ids["failing"]: 3}
	d := Deps{Roster: func() *protocol.Roster { return r }, Self: "self", Own: own,
		Connected: func(p peer.ID) bool { return p != ids["down"] },
		Announced: func(_ context.Context, p peer.ID) (uint64, error) { return announced[p], nil },
		Sync: func(_ context.Context, p peer.ID) error {
			if p == ids["failing"] {
				return errors.New("stream reset")
			}
			held = max(held, min(announced[p], 4)) // the liar serves one more, not nine
			return nil
		},
		Head:  func(k protocol.AuthorKey) (protocol.Head, error) { return protocol.Head{Author: k, Seq: held}, nil },
		Heads: func() ([]protocol.Head, error) { return []protocol.Head{{Author: own, Seq: held}}, nil },
		Log:   slog.New(slog.NewTextHandler(io.Discard, nil))}
	answered := map[string]bool{}
	grew, err := Round(context.Background(), d, answered, false)
	if err != nil || !grew {
		t.Fatalf("round: grew %v, %v", grew, err)
	}
	if got := Names(answered); !slices.Equal(got, []string{"honest"}) {
		t.Fatalf("answered %v, want [honest]", got)
	}
	if grew, _ := Round(context.Background(), d, answered, true); grew {
		t.Fatal("a second round over all grew")
	}
}
