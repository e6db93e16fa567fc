package store

import (
	"bytes"
	"errors"
	"maps"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/staydown/staydown/protocol"
)

// TestNoticeAlertsRecord: the record of notice alerts raised survives a
// reopen and a Rebuild (it is local, not derived from the logs), an
// empty record removes the row, and a row that cannot be is reported by
// Check (#13 item 9: no alert twice after a restart).
func TestNoticeAlertsRecord(t *testing.T) {
	s := mustOpen(t)
	if m, err := s.NoticeAlerts(); err != nil || len(m) != 0 {
		t.Fatalf("a new store: %v, %v; want none", m, err)
	}
	var a, b protocol.ID
	a[0], b[0] = 2, 1
	want := map[protocol.ID]uint8{a: 1, b: 3}
	if err := s.SetNoticeAlerts(want); err != nil {
		t.Fatal(err)
	}
	s.mustReopen()
	if err := s.Rebuild(); err != nil {
		t.Fatal(err)
	}
	if got, err := s.NoticeAlerts(); err != nil || !maps.Equal(got, want) {
		t.Fatalf("after reopen and rebuild: %v %v, want %v", got, err, want)
	}
	if err := s.SetNoticeAlerts(map[protocol.ID]uint8{a: 0}); err == nil {
		t.Fatal("an empty mask was stored")
	}
	if err := s.SetNoticeAlerts(nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.NoticeAlerts(); err != nil || len(got) != 0 {
		t.Fatalf("after clearing: %v %v", got, err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(metaNoticeAlerts, []byte{1, 2, 3})
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Check of a bad notice-alerts record: %v, want ErrCorrupt", err)
	}
	s.corrupt = true
}

// FuzzDecodeNoticeAlerts: any bytes decode to a record or to ErrCorrupt,
// and a record that decodes encodes back to the same bytes.
func FuzzDecodeNoticeAlerts(f *testing.F) {
	var a, b protocol.ID
	a[0], b[0] = 1, 2
	good, _ := EncodeNoticeAlerts(map[protocol.ID]uint8{a: 1, b: 6})
	f.Add(good)
	f.Add([]byte{})
	f.Add(append(bytes.Clone(good[noticeAlertRow:]), good[:noticeAlertRow]...)) // unsorted
	f.Add(make([]byte, noticeAlertRow))                                         // empty mask
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, v []byte) {
		m, err := DecodeNoticeAlerts(v)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%v is not ErrCorrupt", err)
			}
			return
		}
		back, err := EncodeNoticeAlerts(m)
		if err != nil || !bytes.Equal(back, v) {
			t.Fatalf("round trip: %x, %v; want %x", back, err, v)
		}
	})
}
