package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// metaRestored is the record of a store rebuilt from the federation's
// peers (`staydown store restore`, SPEC 16.7): the node's own head was
// lost with its file, and the node may not sign again until its own
// log, as its peers hold it, is known. A store never restored has no
// such row.
var metaRestored = []byte("restored")

// Restored says when and from whom a store was rebuilt, and whether the
// node's own head is confirmed. Its owner is node/ownhead (the rule) and
// the restore (node.Restore); the store only keeps it.
type Restored struct {
	At time.Time `json:"at"` // when the restore ended (UTC)
	// Damaged is the file the damaged store was moved aside to ("" when
	// there was none: a lost disk).
	Damaged string `json:"damaged,omitempty"`
	// From are the member names of the peers whose sync sessions
	// completed: during the restore, and after it while unconfirmed.
	From []string `json:"from"`
	// Needed is how many of them confirm the own head (SPEC 16.7).
	Needed int `json:"needed"`
	// OwnSeq is the node's own head when the restore ended.
	OwnSeq uint64 `json:"own_seq"`
	// Confirmed is whether len(From) reached Needed; ConfirmedAt when.
	Confirmed   bool      `json:"confirmed"`
	ConfirmedAt time.Time `json:"confirmed_at,omitzero"`
}

// maxRestored bounds the row: From names at most a roster's members.
const maxRestored = 1 << 20

// SetRestored records r (replacing the record kept).
func (s *Store) SetRestored(r Restored) error {
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("store: restored: %w", err)
	}
	if _, err := DecodeRestored(v); err != nil {
		return fmt.Errorf("store: restored: %w", err)
	}
	return wrapDB("set restored", s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(metaRestored, v)
	}))
}

// Restored returns the restore record, and false when the store was
// never restored.
func (s *Store) Restored() (Restored, bool, error) {
	var v []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if m := tx.Bucket(bucketMeta); m != nil {
			v = bytes.Clone(m.Get(metaRestored))
		}
		return nil
	})
	if err != nil || v == nil {
		return Restored{}, false, wrapDB("restored", err)
	}
	r, err := DecodeRestored(v)
	return r, err == nil, err
}

// DecodeRestored reads a restore record; one that does not decode, or
// says what cannot be (a negative count, confirmed with fewer peers than
// needed), is ErrCorrupt.
func DecodeRestored(v []byte) (Restored, error) {
	var r Restored
	if len(v) > maxRestored {
		return r, fmt.Errorf("%w: meta/restored is %d bytes, limit %d", ErrCorrupt, len(v), maxRestored)
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Restored{}, fmt.Errorf("%w: meta/restored: %v", ErrCorrupt, err)
	}
	if dec.More() {
		return Restored{}, fmt.Errorf("%w: meta/restored: data after the record", ErrCorrupt)
	}
	switch {
	case r.Needed < 0:
		return Restored{}, fmt.Errorf("%w: meta/restored: needed %d", ErrCorrupt, r.Needed)
	case r.Confirmed && len(r.From) < r.Needed:
		return Restored{}, fmt.Errorf("%w: meta/restored: confirmed by %d peers, %d needed", ErrCorrupt, len(r.From), r.Needed)
	}
	return r, nil
}
