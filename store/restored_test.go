package store

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestRestoredRecord: the restore record survives a reopen, a store
// never restored has none, and a record that cannot be is refused on
// write and reported by Check (#12 item 8).
func TestRestoredRecord(t *testing.T) {
	s := mustOpen(t)
	if _, ok, err := s.Restored(); ok || err != nil {
		t.Fatalf("a new store: restored %v, %v; want none", ok, err)
	}
	r := Restored{At: time.Date(2026, 12, 3, 13, 0, 0, 0, time.UTC), Damaged: "store.db.damaged-20261203T130000Z",
		From: []string{"b"}, Needed: 2, OwnSeq: 7}
	if err := s.SetRestored(r); err != nil {
		t.Fatal(err)
	}
	s.mustReopen()
	got, ok, err := s.Restored()
	if err != nil || !ok || !reflect.DeepEqual(got, r) {
		t.Fatalf("after reopen: %+v %v %v, want %+v", got, ok, err, r)
	}
	bad := r
	bad.Confirmed = true // by 1 of 2
	if err := s.SetRestored(bad); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("confirmed by too few: %v, want ErrCorrupt", err)
	}
	if got, _, _ := s.Restored(); !reflect.DeepEqual(got, r) {
		t.Fatalf("a refused record changed the one kept: %+v", got)
	}
	// A row written by something else: Check names it.
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(metaRestored, []byte(`{"needed":-1}`))
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Check of a bad restore record: %v, want ErrCorrupt", err)
	}
	s.corrupt = true
}

// FuzzDecodeRestored: any bytes decode to a record or to ErrCorrupt, and
// a record that decodes encodes back to one that decodes the same.
func FuzzDecodeRestored(f *testing.F) {
	f.Add([]byte(`{"at":"2026-12-03T13:00:00Z","from":["b","c"],"needed":2,"own_seq":7,"confirmed":true,"confirmed_at":"2026-12-03T13:00:01Z"}`))
	f.Add([]byte(`{"at":"2026-12-03T13:00:00Z","damaged":"store.db.damaged-x","from":[],"needed":1,"own_seq":0,"confirmed":false}`))
	f.Add([]byte(`{"needed":-1}`))
	f.Add([]byte(`{} {}`))
	f.Fuzz(func(t *testing.T, v []byte) {
		r, err := DecodeRestored(v)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := DecodeRestored(again)
		if err != nil || !reflect.DeepEqual(r.From, r2.From) || r.Needed != r2.Needed || r.OwnSeq != r2.OwnSeq || r.Confirmed != r2.Confirmed || !r.At.Equal(r2.At) {
			t.Fatalf("round trip: %+v -> %s -> %+v, %v", r, again, r2, err)
		}
	})
}
