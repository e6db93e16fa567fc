package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"

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
//
// A node starts with it, so it is built for speed: one read transaction
// copies the entries' bytes into a few large buffers (the entries alias
// them), and
// they are decoded outside it, on every CPU. Stored entries passed
// protocol.Decode when they came in: they are not checked again (Check
// does).
func (s *Store) MembershipEntries() ([]*protocol.Entry, error) {
	type loc struct {
		id     protocol.ID
		author protocol.AuthorKey
		seq    uint64
		raw    []byte
	}
	var locs []loc
	var buf []byte // the chunk entries are copied into
	err := s.view(func(b *buckets) error {
		idx := b.idx[idxMembership]
		// Sized up front: appending 100k locations would copy them
		// over and over (KeyN counts the pages' elements, not a scan).
		locs = make([]loc, 0, idx.Stats().KeyN)
		// A cursor on the log of the entry before: the next entry of
		// the same log is often the next key, which Next finds without
		// a search from the root.
		var log *bolt.Cursor
		var logOf protocol.AuthorKey
		var last uint64
		return idx.ForEach(func(k, v []byte) error {
			id, ok := idOf(v)
			if len(k) != logKeySize || !ok {
				return fmt.Errorf("%w: membership/%x: want author || seq -> id", ErrCorrupt, k)
			}
			author, seq := authorOf(k), binary.BigEndian.Uint64(k[authorSize:])
			if log == nil || author != logOf {
				lb := b.logs.Bucket(author[:])
				if lb == nil {
					return fmt.Errorf("%w: membership/%x: no log", ErrCorrupt, k)
				}
				log, logOf, last = lb.Cursor(), author, 0
			}
			var key, raw []byte
			if last != 0 && seq == last+1 {
				key, raw = log.Next()
			}
			if want := u64(seq); !bytes.Equal(key, want) {
				key, raw = log.Seek(want)
				if !bytes.Equal(key, want) {
					raw = nil
				}
			}
			last = seq
			if raw == nil {
				return fmt.Errorf("%w: membership/%x: no entry at seq %d", ErrCorrupt, k, seq)
			}
			if len(raw) > cap(buf)-len(buf) {
				buf = make([]byte, 0, max(len(raw), 1<<20))
			}
			buf = append(buf, raw...)
			locs = append(locs, loc{id: id, author: author, seq: seq, raw: buf[len(buf)-len(raw) : len(buf) : len(buf)]})
			return nil
		})
	})
	if err != nil {
		return nil, wrapDB("membership entries", err)
	}
	out := make([]*protocol.Entry, len(locs))
	errs := make([]error, len(locs))
	parallel(len(locs), func(i int) {
		l := locs[i]
		e, err := protocol.DecodeStored(l.raw, l.id)
		if err != nil || e.Author != l.author || e.Seq() != l.seq {
			errs[i] = fmt.Errorf("%w: logs/%s/%d: not the entry the membership index names (%v)", ErrCorrupt, l.author, l.seq, err)
		}
		out[i] = e
	})
	if err := errors.Join(errs...); err != nil {
		return nil, wrapDB("membership entries", err)
	}
	return out, nil
}

// parallel calls fn(i) for i in [0, n), on as many goroutines as the
// process may run at once, and returns when every call has.
func parallel(n int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), max(1, n/1024))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w * n / workers; i < (w+1)*n/workers; i++ {
				fn(i)
			}
		})
	}
	wg.Wait()
}

// metaMembersSnapshot is node/members' snapshot of the membership it
// computed (membership.History.MarshalSnapshot), a cache: it carries the
// digest of the membership entries it was computed from, and is used
// only when that is MembershipDigest's now (absent, stale or damaged
// means "compute again"), so no schema version or migration covers it.
var metaMembersSnapshot = []byte("members-snapshot")

// MembershipDigest is a digest of the set of membership entries es (by
// author, seq and id; duplicates count once), made as
// MembersSnapshot makes it of the membership index: equal digests, equal
// sets.
func MembershipDigest(es []*protocol.Entry) [32]byte {
	rows := make([][logKeySize + idSize]byte, 0, len(es))
	for _, e := range es {
		var r [logKeySize + idSize]byte
		copy(r[:], logKey(e.Author, e.Seq()))
		copy(r[logKeySize:], e.ID[:])
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b [logKeySize + idSize]byte) int { return bytes.Compare(a[:], b[:]) })
	d := sha256.New()
	for i, r := range rows {
		if i > 0 && r == rows[i-1] {
			continue
		}
		d.Write(r[:])
	}
	return [32]byte(d.Sum(nil))
}

// MembersSnapshot is the digest of the membership entries logged now
// (what MembershipDigest gives of MembershipEntries) and the snapshot
// last saved (SaveMembersSnapshot; nil if none), read in one
// transaction: the caller trusts the snapshot only for that digest. It
// reads the membership index's keys, not the entries: a start with a
// snapshot that holds costs a scan of the index.
func (s *Store) MembersSnapshot() (digest [32]byte, snap []byte, err error) {
	err = s.view(func(b *buckets) error {
		d := sha256.New()
		// The index is in key order (author, seq): the order
		// MembershipDigest sorts rows in. Rows are hashed a buffer at a
		// time (two small writes a row cost more than the hashing).
		buf := make([]byte, 0, 1<<16)
		c := b.idx[idxMembership].Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) != logKeySize || len(v) != idSize {
				return fmt.Errorf("%w: membership/%x: want author || seq -> id", ErrCorrupt, k)
			}
			if len(buf)+len(k)+len(v) > cap(buf) {
				d.Write(buf)
				buf = buf[:0]
			}
			buf = append(append(buf, k...), v...)
		}
		d.Write(buf)
		digest = [32]byte(d.Sum(nil))
		snap = bytes.Clone(b.meta.Get(metaMembersSnapshot))
		return nil
	})
	return digest, snap, wrapDB("members snapshot", err)
}

// SaveMembersSnapshot keeps snap as the membership snapshot, replacing
// the one before.
func (s *Store) SaveMembersSnapshot(snap []byte) error {
	return wrapDB("save members snapshot", s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(metaMembersSnapshot, snap)
	}))
}
