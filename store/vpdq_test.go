package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// A video (vpdq) addition (SPEC 7.6) is stored and found by its index key
// like any signal, and survives a reopen; a retraction marks it retracted.
func TestApplyVPDQAddition(t *testing.T) {
	s, w := mustOpen(t), newWorld(t)
	sig, err := protocol.ParseSignal("vpdq", `["`+strings.Repeat("a5", 32)+`,100,0.0", "`+strings.Repeat("5a", 32)+`,90,1.0"]`)
	if err != nil {
		t.Fatal(err)
	}
	a1 := w.A.next(addition(sig, sha("the same video's file")))
	s.mustApply(Applied, a1)
	wantMatches(t, s, sig, 1)
	s.mustReopen()
	wantMatches(t, s, sig, 1)
	s.mustApply(Applied, w.A.next(retraction(a1.ID, "wrong video")))
	as, err := s.Match(key(sig))
	if err != nil || len(as) != 1 || as[0].Status != StatusRetracted || as[0].EntryID != a1.ID {
		t.Fatalf("after the retraction: %+v %v", as, err)
	}
}

// vpdqSignal is a vpdq signal of n frames whose hashes derive from seed.
func vpdqSignal(t testing.TB, seed string, n int) *pb.Signal {
	t.Helper()
	frames := make([]protocol.VPDQFrame, n)
	for i := range frames {
		frames[i] = protocol.VPDQFrame{Hash: sha256.Sum256([]byte(fmt.Sprint(seed, i))), Quality: 100, Timestamp: uint32(i * 1000)}
	}
	v, err := protocol.EncodeVPDQ(frames)
	if err != nil {
		t.Fatal(err)
	}
	return &pb.Signal{Value: &pb.Signal_Vpdq{Vpdq: v}}
}

// videos reads VPDQVideos into a map of signal key to wire value.
func videos(t testing.TB, s *testStore) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	var last string
	if err := s.VPDQVideos(func(k, v []byte) error {
		if string(k) <= last {
			t.Errorf("VPDQVideos: key %x after %x: not in order or repeated", k, last)
		}
		last = string(k)
		out[string(k)] = bytes.Clone(v)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// The frames of every video an addition carries are kept under its
// signal key (a digest) in the transaction that stores it, once however
// many additions carry it, retracted or not, and survive a reopen and a
// rebuild; other signals are not there.
func TestVPDQVideos(t *testing.T) {
	s, w := mustOpen(t), newWorld(t)
	v1, v2 := vpdqSignal(t, "one", 3), vpdqSignal(t, "two", 40)
	a1 := w.A.next(addition(v1, sha("file one")))
	s.mustApply(Applied, a1, w.B.next(addition(v1, v2)))
	s.mustApply(Applied, w.A.next(retraction(a1.ID, "wrong")))
	want := map[string][]byte{string(key(v1)): v1.GetVpdq(), string(key(v2)): v2.GetVpdq()}
	check := func(when string) {
		if got := videos(t, s); !maps.EqualFunc(got, want, bytes.Equal) {
			t.Errorf("%s: VPDQVideos has %d videos, want %d (%x, %x)", when, len(got), len(want), key(v1), key(v2))
		}
	}
	check("after apply")
	s.mustReopen()
	check("after reopen")
	if err := s.Rebuild(); err != nil {
		t.Fatal(err)
	}
	check("after rebuild")
	stop := errors.New("stop")
	if err := s.VPDQVideos(func(k, v []byte) error { return stop }); err != stop {
		t.Errorf("VPDQVideos returned %v, want fn's error as is", err)
	}
}

// Check finds a frame row missing, changed or extra; Rebuild repairs it.
func TestCheckVPDQFrames(t *testing.T) {
	for name, damage := range map[string]func(b *bolt.Bucket, k []byte) error{
		"missing": func(b *bolt.Bucket, k []byte) error { return b.Delete(k) },
		"changed": func(b *bolt.Bucket, k []byte) error { return b.Put(k, []byte("garbage")) },
		"extra": func(b *bolt.Bucket, k []byte) error {
			return b.Put(append(bytes.Clone(k[:len(k)-1]), 0xff), []byte("x"))
		},
	} {
		t.Run(name, func(t *testing.T) {
			s, w := mustOpen(t), newWorld(t)
			v := vpdqSignal(t, "one", 5)
			s.mustApply(Applied, w.A.next(addition(v)))
			s.bolt(func(tx *bolt.Tx) error {
				b := tx.Bucket(indexNames[idxVPDQFrames])
				k, _ := b.Cursor().First()
				if k == nil {
					t.Fatal("no vpdqframes row after the addition")
				}
				return damage(b, bytes.Clone(k))
			})
			if err := s.Check(); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Check: %v, want ErrCorrupt", err)
			} else {
				t.Logf("Check: %v", err)
			}
			if err := s.Rebuild(); err != nil {
				t.Fatal(err)
			}
			if got := videos(t, s); !bytes.Equal(got[string(key(v))], v.GetVpdq()) || len(got) != 1 {
				t.Errorf("after Rebuild: %d videos", len(got))
			}
		})
	}
}

// toSchemaBeforeVPDQFrames makes the file as schema 7 wrote it: no
// vpdqframes index.
func toSchemaBeforeVPDQFrames(tx *bolt.Tx) error {
	if err := tx.DeleteBucket(indexNames[idxVPDQFrames]); err != nil {
		return err
	}
	return tx.Bucket(bucketMeta).Put(metaSchema, u64(vpdqFrames-1))
}

// A schema 7 file holding video additions opens at schema 8 with their
// frames in the new index.
func TestOpenUpgradesVPDQFrames(t *testing.T) {
	s, w := mustOpen(t), newWorld(t)
	v := vpdqSignal(t, "old", 7)
	s.mustApply(Applied, w.A.next(addition(v, sha("old file"))))
	want := s.snapshot()
	s.bolt(toSchemaBeforeVPDQFrames)
	s.mustReopen()
	if d := diff(want, s.snapshot()); d != "" {
		t.Errorf("upgraded store differs from one written at schema %d:\n%s", schemaVersion, d)
	}
	if got := videos(t, s); !bytes.Equal(got[string(key(v))], v.GetVpdq()) {
		t.Errorf("after the upgrade VPDQVideos has %d videos, not the stored one", len(got))
	}
}
