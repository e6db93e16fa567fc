package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/staydown/staydown/protocol"
)

// MatchMany is Match for many signal keys in one read transaction: a bulk
// import asks for thousands at a time, and opening the buckets once per
// key (Match) was most of its cost. out[i] answers keys[i].
func (s *Store) MatchMany(keys [][]byte) ([][]Attestation, error) {
	out := make([][]Attestation, len(keys))
	err := s.view(func(b *buckets) error {
		for i, k := range keys {
			atts, err := b.match(k)
			if err != nil {
				return err
			}
			out[i] = atts
		}
		return nil
	})
	if err != nil {
		return nil, wrapDB("match", err)
	}
	return out, nil
}

// AdditionsBy is MatchMany narrowed to one author's additions: out[i]
// holds author's attestations of keys[i] by addition, as Match gives them
// (status, reasons, equivocation flag), in seq order. An import asks it
// for every signal of a list to skip what this member attests already,
// and nearly every key is one the member does not attest: such a key
// costs one seek per run of the attest index for the author's rows, not
// Match's merged walk of every attestation, the allowlist and the notices
// (MatchMany took a fifth of a million-signal import's CPU).
func (s *Store) AdditionsBy(author protocol.AuthorKey, keys [][]byte) ([][]Attestation, error) {
	out := make([][]Attestation, len(keys))
	// In key order, the seeks of neighbouring keys share pages.
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(x, y int) int { return bytes.Compare(keys[x], keys[y]) })
	err := s.view(func(b *buckets) error {
		rs, err := b.runSet(idxAttest)
		if err != nil {
			return err
		}
		flagged, known := false, false
		var prefix []byte
		// One cursor per run for all the keys: a new cursor allocates its
		// path on every seek.
		cursors := make([]*bolt.Cursor, len(rs.runs))
		for j, r := range rs.runs {
			cursors[j] = r.b.Cursor()
		}
		for _, i := range order {
			sk := keys[i]
			prefix = append(append(binary.AppendUvarint(prefix[:0], uint64(len(sk))), sk...), author[:]...)
			sp := prefix[:len(prefix)-authorSize] // signalPrefix(sk)
			var allows []Reason
			for _, c := range cursors {
				for k, _ := c.Seek(prefix); hasPrefix(k, prefix); k, _ = c.Next() {
					lk := k[len(sp):]
					if len(lk) != logKeySize {
						return fmt.Errorf("%w: attest/%x: key does not end in author || seq", ErrCorrupt, k)
					}
					if out[i] == nil {
						if allows, err = b.allows(sk, sp); err != nil {
							return err
						}
						if !known {
							flagged, known = b.flagged(author), true
						}
					}
					a, err := b.attestation(sk, lk, allows)
					if err != nil {
						return err
					}
					a.Equivocated = flagged
					out[i] = append(out[i], a)
				}
			}
			slices.SortFunc(out[i], func(x, y Attestation) int { return cmp.Compare(x.Seq, y.Seq) })
		}
		return nil
	})
	if err != nil {
		return nil, wrapDB("match", err)
	}
	return out, nil
}
