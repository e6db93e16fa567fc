package store

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/replica"
)

// Members is a membership the store judges entries under (SPEC 12.5): a
// *membership.History.
type Members interface {
	replica.Members
	// Fingerprint changes whenever the verdict on some entry may.
	Fingerprint() []byte
}

type membersBox struct{ m replica.Members }

// judge is the membership entries are decided under now; nil (before
// SetMembers) judges every entry in.
func (s *Store) judge() replica.Members {
	if b := s.members.Load(); b != nil {
		return b.m
	}
	return nil
}

// SetMembers makes m the membership that Apply, Preview, Rebuild and
// Check judge entries under, from the next write on. The indexes hold
// what the logs mean under some membership: if it was another one (its
// fingerprint differs, or none is recorded: a new or upgraded file) and
// affected says the verdict on an entry of some log up to its head may
// differ, they are derived again under m (Rebuild), in the same write
// transaction. A nil affected means any. A store with no membership
// recorded was derived judging every entry in: affected is asked against
// that (membership.History.Affected(nil)). It reports whether it rebuilt.
func (s *Store) SetMembers(m Members, affected func(author protocol.AuthorKey, head uint64) bool) (rebuilt bool, err error) {
	fp := m.Fingerprint()
	err = s.update(func(tx *bolt.Tx) error {
		s.members.Store(&membersBox{m})
		meta := tx.Bucket(bucketMeta)
		if old := meta.Get(metaMembers); bytes.Equal(old, fp) {
			return nil
		} else if affected != nil {
			heads := tx.Bucket(indexNames[idxHeads])
			err := heads.ForEach(func(k, v []byte) error {
				if len(k) != authorSize || len(v) < 8 {
					return fmt.Errorf("%w: heads/%x: bad row", ErrCorrupt, k)
				}
				if affected(protocol.AuthorKey(k), binary.BigEndian.Uint64(v)) {
					rebuilt = true
				}
				return nil
			})
			if err != nil {
				return err
			}
			if !rebuilt {
				if rebuilt, err = voidTurnsIn(tx, m); err != nil {
					return err
				}
			}
		} else {
			rebuilt = true
		}
		if rebuilt {
			if err := rebuild(tx, m); err != nil {
				return err
			}
		}
		return meta.Put(metaMembers, fp)
	})
	return rebuilt, wrapDB("set members", err)
}

// voidTurnsIn reports whether m takes in an entry the membership made
// void before (a notice to a key that has become a platform's).
func voidTurnsIn(tx *bolt.Tx, m Members) (bool, error) {
	b, err := openBuckets(tx)
	if err != nil {
		return false, err
	}
	ids, err := b.ids()
	if err != nil {
		return false, err
	}
	prefix := []byte(replica.ErrMember.Error() + ": ")
	found := false
	err = b.idx[idxVoid].ForEach(func(k, v []byte) error {
		if found || !bytes.HasPrefix(v, prefix) {
			return nil
		}
		row := ids.Get(k)
		if row == nil {
			return fmt.Errorf("%w: void/%x: no ids row", ErrCorrupt, k)
		}
		r, err := parseIDRow(k, row)
		if err != nil {
			return err
		}
		log := b.logs.Bucket(r.Author[:])
		if log == nil || log.Get(u64(r.Seq)) == nil {
			return fmt.Errorf("%w: void/%x: not in its log", ErrCorrupt, k)
		}
		e, err := decodeStored(r.Author, r.Seq, log.Get(u64(r.Seq)))
		if err != nil {
			return err
		}
		found = replica.CheckRules(rules{ids, b.idx[idxRetractions]}, m, e) == nil
		return nil
	})
	return found, err
}

// MembershipEntries is every logged membership entry (amendment,
// approval, rotation, peer-update; SPEC 12.2), void ones too, in log
// order: what membership.Compute takes.
func (s *Store) MembershipEntries() ([]*protocol.Entry, error) {
	var out []*protocol.Entry
	err := s.view(func(b *buckets) error {
		return b.idx[idxMembership].ForEach(func(k, v []byte) error {
			id, ok := idOf(v)
			if len(k) != logKeySize || !ok {
				return fmt.Errorf("%w: membership/%x: want author || seq -> id", ErrCorrupt, k)
			}
			author, seq := authorOf(k), binary.BigEndian.Uint64(k[authorSize:])
			log := b.logs.Bucket(author[:])
			if log == nil {
				return fmt.Errorf("%w: membership/%x: no log", ErrCorrupt, k)
			}
			raw := log.Get(u64(seq))
			if raw == nil {
				return fmt.Errorf("%w: membership/%x: no entry at seq %d", ErrCorrupt, k, seq)
			}
			// Stored entries passed protocol.Decode when they came in:
			// a node with a long membership history starts faster for
			// not checking them again (Check does).
			e, err := protocol.DecodeStored(bytes.Clone(raw), id)
			if err != nil || e.Author != author || e.Seq() != seq {
				return fmt.Errorf("%w: logs/%s/%d: not the entry the membership index names (%v)", ErrCorrupt, author, seq, err)
			}
			out = append(out, e)
			return nil
		})
	})
	return out, wrapDB("membership entries", err)
}
