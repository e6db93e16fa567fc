package store

import (
	"bytes"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/staydown/staydown/protocol"
)

// metaNoticeAlerts is the node's record of the notice alerts it raised
// on the clock (node/alerts: due soon, overdue), so that a restart does
// not raise them again: one row in meta, local like meta/restored (not a
// function of the logs; Rebuild keeps it). Its owner is node/alerts,
// which keeps it small: notices no longer open drop out of it.
var metaNoticeAlerts = []byte("notice-alerts")

// noticeAlertRow is one notice's record: its id and a bit mask of the
// alerts raised (the owner's bits; never 0).
const noticeAlertRow = protocol.IDSize + 1

// maxNoticeAlerts bounds the rows the record holds.
const maxNoticeAlerts = 1 << 20

// NoticeAlerts returns the record of notice alerts raised: notice id to
// a non-zero bit mask. An empty map when none was recorded.
func (s *Store) NoticeAlerts() (map[protocol.ID]uint8, error) {
	var v []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if m := tx.Bucket(bucketMeta); m != nil {
			v = bytes.Clone(m.Get(metaNoticeAlerts))
		}
		return nil
	})
	if err != nil {
		return nil, wrapDB("notice alerts", err)
	}
	return DecodeNoticeAlerts(v)
}

// SetNoticeAlerts replaces the record (an empty map removes it).
func (s *Store) SetNoticeAlerts(sent map[protocol.ID]uint8) error {
	v, err := EncodeNoticeAlerts(sent)
	if err != nil {
		return fmt.Errorf("store: notice alerts: %w", err)
	}
	return wrapDB("set notice alerts", s.db.Update(func(tx *bolt.Tx) error {
		if len(v) == 0 {
			return tx.Bucket(bucketMeta).Delete(metaNoticeAlerts)
		}
		return tx.Bucket(bucketMeta).Put(metaNoticeAlerts, v)
	}))
}

// EncodeNoticeAlerts writes the record: rows of id || mask, sorted by id.
func EncodeNoticeAlerts(sent map[protocol.ID]uint8) ([]byte, error) {
	if len(sent) > maxNoticeAlerts {
		return nil, fmt.Errorf("%d notices, limit %d", len(sent), maxNoticeAlerts)
	}
	ids := make([]protocol.ID, 0, len(sent))
	for id, mask := range sent {
		if mask == 0 {
			return nil, fmt.Errorf("notice %s: empty mask", id)
		}
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b protocol.ID) int { return bytes.Compare(a[:], b[:]) })
	out := make([]byte, 0, len(ids)*noticeAlertRow)
	for _, id := range ids {
		out = append(append(out, id[:]...), sent[id])
	}
	return out, nil
}

// DecodeNoticeAlerts reads the record; one that is not whole rows
// sorted by id, each with a non-zero mask, is ErrCorrupt.
func DecodeNoticeAlerts(v []byte) (map[protocol.ID]uint8, error) {
	if len(v)%noticeAlertRow != 0 || len(v)/noticeAlertRow > maxNoticeAlerts {
		return nil, fmt.Errorf("%w: meta/notice-alerts is %d bytes, not whole rows of %d", ErrCorrupt, len(v), noticeAlertRow)
	}
	out := make(map[protocol.ID]uint8, len(v)/noticeAlertRow)
	var prev []byte
	for off := 0; off < len(v); off += noticeAlertRow {
		row := v[off : off+noticeAlertRow]
		id, mask := row[:protocol.IDSize], row[protocol.IDSize]
		if prev != nil && bytes.Compare(prev, id) >= 0 {
			return nil, fmt.Errorf("%w: meta/notice-alerts: row %d is not after the one before", ErrCorrupt, off/noticeAlertRow+1)
		}
		if mask == 0 {
			return nil, fmt.Errorf("%w: meta/notice-alerts: row %d has an empty mask", ErrCorrupt, off/noticeAlertRow+1)
		}
		prev = id
		out[protocol.ID(id)] = mask
	}
	return out, nil
}
