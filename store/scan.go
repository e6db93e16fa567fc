package store

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/staydown/staydown/protocol"
)

// signalTags are the index tags of SPEC.md section 7.1, the first byte of
// a signal key. They are on disk (in attest and allow keys), so they never
// change; scan_test.go checks them against protocol.SignalKey.
var signalTags = map[protocol.SignalType]byte{
	protocol.SignalSHA256:  1,
	protocol.SignalMD5:     2,
	protocol.SignalPDQ:     3,
	protocol.SignalURL:     4,
	protocol.SignalAccount: 5,
	protocol.SignalVPDQ:    6,
	protocol.SignalDomain:  7,
}

// fixedKeyLen is the signal key length of the types that have one; their
// attest rows are contiguous, so a scan seeks straight to them.
var fixedKeyLen = map[protocol.SignalType]int{
	protocol.SignalSHA256: 1 + 32,
	protocol.SignalMD5:    1 + 16,
	protocol.SignalPDQ:    1 + protocol.PDQSize,
	protocol.SignalVPDQ:   1 + 32, // tag, SHA-256 of the value
}

// releaseEvery is how many keys SignalKeys reads between releases of the
// mapped pages (ReleaseMapped).
var releaseEvery = 1 << 20

// SignalKeys calls fn with the key (protocol.SignalKey) of every distinct
// signal of type typ that some addition or some takedown notice carries,
// in key order, first those of additions, then those of notices (a key
// both carry comes twice), whatever their status: status is worked out
// when matching. It stops when fn returns an error, which it returns as
// is. It is the start-up loader of the node's in-memory match indexes:
// one read transaction, one pass over the attest and noticesigs indexes
// (only over the type's own rows for sha256, md5 and pdq, whose keys have
// a fixed length).
//
// key is valid only during the call: fn must copy what it keeps. fn runs
// inside a read transaction and must not call the store.
func (s *Store) SignalKeys(typ protocol.SignalType, fn func(key []byte) error) error {
	tag, ok := signalTags[typ]
	if !ok {
		return fmt.Errorf("store: signal keys: unknown signal type %q", typ)
	}
	var prefix []byte
	if n, fixed := fixedKeyLen[typ]; fixed {
		prefix = append(binary.AppendUvarint(nil, uint64(n)), tag)
	}
	var fnErr error
	err := s.view(func(b *buckets) error {
		scanned := 0
		for _, idx := range []int{idxAttest, idxNoticeSigs} {
			// attest keys end in the addition's author || seq, noticesigs
			// keys in the notice's id.
			suffix := uint64(logKeySize)
			if idx == idxNoticeSigs {
				suffix = idSize
			}
			var last []byte
			c, err := b.cursor(idx)
			if err != nil {
				return err
			}
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				// A scan of millions of keys reads much of the file: hand
				// the pages back as it goes, so that the process's
				// resident set does not grow by the index's size. (k is
				// read again from the file if touched after.)
				if scanned++; scanned%releaseEvery == 0 {
					if err := s.dontNeed(); err != nil {
						return err
					}
				}
				n, m := binary.Uvarint(k)
				if m <= 0 || n == 0 || uint64(len(k)-m) != n+suffix {
					return fmt.Errorf("%w: %s/%x: key is not len(sk) || sk || its entry", ErrCorrupt, indexNames[idx], k)
				}
				sk := k[m : m+int(n)]
				if sk[0] != tag || bytes.Equal(sk, last) {
					continue
				}
				// k points into the read transaction's pages, which stay
				// put until it ends.
				last = sk
				if fnErr = fn(sk); fnErr != nil {
					return fnErr
				}

			}
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	return wrapDB("signal keys", err)
}
