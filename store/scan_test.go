package store

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

func pdqSig(b byte) *pb.Signal {
	return &pb.Signal{Value: &pb.Signal_Pdq{Pdq: bytes.Repeat([]byte{b}, protocol.PDQSize)}}
}

func mustSig(t *testing.T, typ, value string) *pb.Signal {
	t.Helper()
	s, err := protocol.ParseSignal(typ, value)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSignalTags pins the on-disk tags to protocol.SignalKey's.
func TestSignalTags(t *testing.T) {
	samples := map[protocol.SignalType]*pb.Signal{
		protocol.SignalSHA256:  sha("a"),
		protocol.SignalMD5:     mustSig(t, "md5", "0123456789abcdef0123456789abcdef"),
		protocol.SignalPDQ:     pdqSig(1),
		protocol.SignalURL:     mustSig(t, "url", "https://example.com/x"),
		protocol.SignalAccount: mustSig(t, "account", "example.com:someone"),
		protocol.SignalVPDQ:    mustSig(t, "vpdq", `["`+strings.Repeat("a5", 32)+`,100,0.0"]`),
	}
	if len(signalTags) != len(protocol.SignalTypes) {
		t.Errorf("%d tags for %d signal types", len(signalTags), len(protocol.SignalTypes))
	}
	for typ, s := range samples {
		k := protocol.SignalKey(s)
		if k[0] != signalTags[typ] {
			t.Errorf("%s: SignalKey tag %d, signalTags %d", typ, k[0], signalTags[typ])
		}
		if n, ok := fixedKeyLen[typ]; ok && n != len(k) {
			t.Errorf("%s: key length %d, fixedKeyLen %d", typ, len(k), n)
		}
	}
}

func collectKeys(t *testing.T, s *testStore, typ protocol.SignalType) [][]byte {
	t.Helper()
	var out [][]byte
	if err := s.SignalKeys(typ, func(k []byte) error {
		out = append(out, bytes.Clone(k))
		return nil
	}); err != nil {
		t.Fatalf("SignalKeys(%s): %v", typ, err)
	}
	return out
}

func TestSignalKeys(t *testing.T) {
	s, w := mustOpen(t), newWorld(t)
	url1, url2 := mustSig(t, "url", "https://example.com/a"), mustSig(t, "url", "https://example.com/a?b")
	acct := mustSig(t, "account", "example.com:someone")
	md5 := mustSig(t, "md5", "0123456789abcdef0123456789abcdef")
	a1 := w.A.next(addition(pdqSig(3), sha("x"), pdqSig(1), url2))
	s.mustApply(Applied,
		a1,
		w.B.next(addition(pdqSig(1), pdqSig(2), url1, acct, md5)),
		w.A.next(retraction(a1.ID, "wrong")),              // retracted: still listed
		w.C.next(allow("news", "report", pdqSig(9))),      // allowed only, never added: not listed
		w.C.next(dispute(a1.ID, "a false positive")),      // disputes change nothing here
		w.C.next(addition(sha("y"), pdqSig(2), sha("x"))), // repeats: listed once
	)
	want := map[protocol.SignalType][]*pb.Signal{
		protocol.SignalPDQ:     {pdqSig(1), pdqSig(2), pdqSig(3)},
		protocol.SignalSHA256:  {sha("x"), sha("y")},
		protocol.SignalMD5:     {md5},
		protocol.SignalURL:     {url1, url2},
		protocol.SignalAccount: {acct},
	}
	// The same with the mapped pages released after every key read, as a
	// scan of millions does every releaseEvery keys.
	defer func(n int) { releaseEvery = n }(releaseEvery)
	for _, every := range []int{releaseEvery, 1} {
		releaseEvery = every
		for typ, sigs := range want {
			var wantKeys [][]byte
			for _, sig := range sigs {
				wantKeys = append(wantKeys, key(sig))
			}
			slices.SortFunc(wantKeys, bytes.Compare)
			if got := collectKeys(t, s, typ); !slices.EqualFunc(got, wantKeys, bytes.Equal) {
				t.Errorf("release every %d: %s: keys\n%x\nwant\n%x", every, typ, got, wantKeys)
			}
		}
	}

	t.Run("empty store", func(t *testing.T) {
		if got := collectKeys(t, mustOpen(t), protocol.SignalPDQ); len(got) != 0 {
			t.Errorf("keys %x", got)
		}
	})
	t.Run("fn's error stops the scan", func(t *testing.T) {
		stop := errors.New("stop")
		n := 0
		err := s.SignalKeys(protocol.SignalPDQ, func([]byte) error { n++; return stop })
		if err != stop || n != 1 {
			t.Errorf("error %v after %d calls, want stop after 1", err, n)
		}
	})
	t.Run("unknown type", func(t *testing.T) {
		if err := s.SignalKeys("tmk", func([]byte) error { return nil }); err == nil {
			t.Error("no error")
		}
	})
}

func TestSignalKeysCorrupt(t *testing.T) {
	s := mustOpen(t)
	s.corrupt = true
	s.bolt(func(tx *bolt.Tx) error {
		return tx.Bucket(indexNames[idxAttest]).Put([]byte{33, 3, 1, 2}, nil)
	})
	err := s.SignalKeys(protocol.SignalPDQ, func([]byte) error { return nil })
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("error %v, want ErrCorrupt", err)
	}
}

// BenchmarkSignalKeys reads the keys of the million-signal store.
func BenchmarkSignalKeys(b *testing.B) {
	s := openMatchDB(b)
	for b.Loop() {
		n := 0
		if err := s.SignalKeys(protocol.SignalSHA256, func([]byte) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
		if n != matchSignals {
			b.Fatalf("%d keys, want %d", n, matchSignals)
		}
	}
	b.ReportMetric(float64(matchSignals)*float64(b.N)/b.Elapsed().Seconds(), "keys/s")
}
