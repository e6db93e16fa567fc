package matching

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/staydown/staydown/node/match"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/prototest"
	"github.com/staydown/staydown/store"
)

// readVideos, the start-up loader's reader in a goroutine of its own,
// hands out what store.VPDQVideos does, in its order, across several of
// its ~1 MB batches; an error of fn is returned at once and ends the
// reader (st.Close waits for its read transaction: a reader left behind
// would hang it).
func TestReadVideosInBatches(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	log := prototest.NewLog(key, "test")
	rng := rand.New(rand.NewPCG(9, 10))
	var batch []*protocol.Entry
	for range 60 { // 60 additions of 10 videos of 100 frames: ~2.2 MB
		var sigs []*pb.Signal
		for range 10 {
			hs := make([]match.Hash, 100)
			for i := range hs {
				hs[i] = randomHash(rng)
			}
			sigs = append(sigs, videoSignal(t, frameSet(rng, hs, 90)))
		}
		batch = append(batch, log.Next(t, prototest.Addition(sigs...)))
	}
	if _, err := st.Apply(batch); err != nil {
		t.Fatal(err)
	}
	var want [][2][]byte
	if err := st.VPDQVideos(func(k, v []byte) error {
		want = append(want, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(want) != 600 {
		t.Fatalf("store has %d videos, want 600", len(want))
	}
	i := 0
	if err := readVideos(st, func(k, v []byte) error {
		if i >= len(want) || !bytes.Equal(k, want[i][0]) || !bytes.Equal(v, want[i][1]) {
			t.Fatalf("video %d: key %x, not the store's", i, k)
		}
		i++
		return nil
	}); err != nil || i != len(want) {
		t.Fatalf("readVideos: %d videos, %v", i, err)
	}

	for _, stopAt := range []int{0, 5, 400, 599} {
		boom := errors.New("boom")
		n := 0
		err := readVideos(st, func(k, v []byte) error {
			if n == stopAt {
				return boom
			}
			n++
			return nil
		})
		if err != boom || n != stopAt {
			t.Fatalf("stop at %d: %v after %d videos", stopAt, err, n)
		}
	}
	// Close waits for every read transaction: a reader still in
	// VPDQVideos would hang it.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}
