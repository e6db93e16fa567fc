package store

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// A file of the schema before urlKeysV2 (5) was written when url signal
// keys were the URL as the entry carries it (the v1 normal form). Opening
// it rebuilds the indexes with v2 keys (SPEC 7.5), so that the URL matches in its v2 form, which
// is how every query is normalised now; and the watchlist, which Rebuild
// keeps, has its url keys re-derived, so a URL watched before the upgrade
// still meets the additions that carry it.
func TestOpenUpgradesURLKeys(t *testing.T) {
	const (
		v1 = "https://b%C3%BCcher.example/%7euser/%c3%a4"
		v2 = "https://xn--bcher-kva.example/~user/%C3%A4"
	)
	if n, err := protocol.NormalizeURLForm(v1, protocol.URLFormV1); err != nil || n != v1 {
		t.Fatalf("the test's v1 form: %q, %v", n, err)
	}
	s, w := mustOpen(t), newWorld(t)
	urlSig := &pb.Signal{Value: &pb.Signal_Url{Url: v1}}
	e := w.A.next(addition(urlSig, sha("other")))
	s.mustApply(Applied, e)
	want := s.snapshot()

	tag := key(urlSig)[0]
	oldKey, newKey := append([]byte{tag}, v1...), append([]byte{tag}, v2...)
	if !bytes.Equal(key(urlSig), newKey) {
		t.Fatalf("key of %q is %q, want %q", v1, key(urlSig), newKey)
	}
	// The file as the schema before urlKeysV2 wrote it: the entry's URL itself as key, in the
	// indexes and on the watchlist.
	if err := s.Watch([][]byte{oldKey}, nil); err != nil {
		t.Fatal(err)
	}
	s.bolt(func(tx *bolt.Tx) error {
		for _, name := range indexNames {
			if err := rekeyTree(tx.Bucket(name), signalPrefix(newKey), signalPrefix(oldKey)); err != nil {
				return err
			}
		}
		// An alert it raised (node/matching's after hook), recorded once.
		alerts := tx.Bucket(bucketWatchlist).Bucket(watchAlerts)
		rec, _ := json.Marshal(alertRecord{RaisedMs: 1, Watched: "url:" + v1, Signal: "url:" + v1, Entry: hex.EncodeToString(e.ID[:])})
		if err := alerts.Put(u64(1), rec); err != nil {
			return err
		}
		if err := alerts.SetSequence(1); err != nil {
			return err
		}
		if err := tx.Bucket(bucketWatchlist).Bucket(watchAlerted).Put(cat(e.ID[:], oldKey), u64(1)); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(metaSchema, u64(urlKeysV2-1))
	})
	if as, err := s.Match(newKey); err != nil || len(as) != 0 {
		t.Fatalf("the older file matches the v2 key already: %v, %v", as, err)
	}

	s.mustReopen()
	a := matchOne(t, s, &pb.Signal{Value: &pb.Signal_Url{Url: v2}})
	if a.Author != w.A.key || a.Seq != 1 {
		t.Errorf("match after the upgrade: %+v", a)
	}
	// Every spelling a user might give meets it.
	for _, in := range []string{"https://bücher.example/~user/ä", "HTTPS://B%c3%bcCHER.example:443/%7Euser/%C3%A4#x"} {
		sig, err := protocol.ParseSignal("url", in)
		if err != nil {
			t.Fatal(err)
		}
		matchOne(t, s, sig)
	}
	got := s.snapshot()
	for _, m := range []map[string]string{want, got} {
		for k := range m {
			if strings.HasPrefix(k, "watchlist") {
				delete(m, k)
			}
		}
	}
	if d := diff(want, got); d != "" {
		t.Errorf("upgraded indexes differ from those written at schema %d:\n%s", schemaVersion, d)
	}
	s.bolt(func(tx *bolt.Tx) error {
		wl := tx.Bucket(bucketWatchlist)
		if wl.Bucket(watchSignals).Get(newKey) == nil || wl.Bucket(watchSignals).Get(oldKey) != nil {
			t.Errorf("watchlist not rekeyed to the v2 form")
		}
		if wl.Bucket(watchAlerted).Get(cat(e.ID[:], newKey)) == nil || wl.Bucket(watchAlerted).Get(cat(e.ID[:], oldKey)) != nil {
			t.Errorf("alerted set not rekeyed to the v2 form")
		}
		return nil
	})
}

// rekeyTree replaces, in b and its nested buckets, every key that starts
// with from by the same key starting with to.
func rekeyTree(b *bolt.Bucket, from, to []byte) error {
	if b == nil {
		return nil
	}
	type kv struct{ k, v []byte }
	var move []kv
	var nested [][]byte
	if err := b.ForEach(func(k, v []byte) error {
		switch {
		case v == nil:
			nested = append(nested, bytes.Clone(k))
		case bytes.HasPrefix(k, from):
			move = append(move, kv{bytes.Clone(k), bytes.Clone(v)})
		}
		return nil
	}); err != nil {
		return err
	}
	for _, n := range nested {
		if err := rekeyTree(b.Bucket(n), from, to); err != nil {
			return err
		}
	}
	for _, m := range move {
		if err := b.Delete(m.k); err != nil {
			return err
		}
		if err := b.Put(cat(to, m.k[len(from):]), m.v); err != nil {
			return err
		}
	}
	return nil
}

// TestImportLegacyURLKeys: a watchlist.db side file predates the v2 URL
// form, so its url keys are the URLs as entries carried them; imported,
// they take the v2 form (and Check, which derives an alert's alerted key
// from its watched signal, passes); importing it again changes nothing.
func TestImportLegacyURLKeys(t *testing.T) {
	const v1 = "https://example.com/%7euser"
	w := newWorld(t)
	sig := &pb.Signal{Value: &pb.Signal_Url{Url: v1}}
	a1 := w.A.next(addition(sig))
	tag := key(sig)[0]
	oldKey := append([]byte{tag}, v1...)
	alert := fmt.Sprintf(`{"raised_ms":1700000000000,"watched":%q,"signal":%q,"entry":%q}`, "url:"+v1, "url:"+v1, a1.ID)
	file := writeLegacy(t, map[string]legacyBucket{
		"signals": {rows: []kv{{oldKey, []byte{1}}}},
		"alerts":  {rows: []kv{{u64(1), []byte(alert)}}, seq: 1},
		"alerted": {rows: []kv{{cat(a1.ID[:], oldKey), u64(1)}}},
	})
	s := mustOpen(t)
	s.mustApply(Applied, a1)
	for range 2 {
		if err := s.ImportLegacy(file); err != nil {
			t.Fatalf("ImportLegacy: %v", err)
		}
		var watched [][]byte
		if err := s.WatchedKeys(func(k []byte) error { watched = append(watched, bytes.Clone(k)); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(watched) != 1 || !bytes.Equal(watched[0], key(sig)) {
			t.Errorf("watched %q, want %q", watched, key(sig))
		}
		if err := s.Check(); err != nil {
			t.Fatal(err)
		}
	}
}
