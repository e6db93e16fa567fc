package store

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/staydown/staydown/protocol"
)

// VPDQVideos calls fn with the signal key and the wire value (SPEC 7.6)
// of every distinct vpdq signal that some addition carries, in key order,
// whatever its status (status is worked out when matching). It is the
// start-up loader of the node's video frame index: a vpdq key is a
// digest of the frames, so they are read from the vpdqframes index,
// which apply writes in the transaction that stores the addition. It
// stops when fn returns an error, which it returns as is.
//
// key and value are valid only during the call: fn must copy what it
// keeps. fn runs inside a read transaction and must not call the store.
func (s *Store) VPDQVideos(fn func(key, value []byte) error) error {
	var fnErr error
	err := s.view(func(b *buckets) error {
		c := b.idx[idxVPDQFrames].Cursor()
		var last []byte
		scanned := 0
		for k, v := c.First(); k != nil; k, v = c.Next() {
			// Frames are up to 55 KB a video: hand the pages back as the
			// scan goes, as SignalKeys does.
			if scanned++; scanned%max(1, releaseEvery/64) == 0 {
				if err := s.dontNeed(); err != nil {
					return err
				}
			}
			n, m := binary.Uvarint(k)
			if m <= 0 || n == 0 || uint64(len(k)-m) != n+uint64(logKeySize) {
				return fmt.Errorf("%w: %s/%x: key is not len(sk) || sk || author || seq", ErrCorrupt, indexNames[idxVPDQFrames], k)
			}
			sk := k[m : m+int(n)]
			if bytes.Equal(sk, last) {
				continue
			}
			last = sk
			if fnErr = fn(sk, v); fnErr != nil {
				return fnErr
			}
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	return wrapDB("vpdq videos", err)
}

// VPDQValue returns the wire value of the stored video (vpdq signal) with
// key sk, or nil when no addition carries it.
func (s *Store) VPDQValue(sk []byte) ([]byte, error) {
	var out []byte
	err := s.view(func(b *buckets) error {
		prefix := signalPrefix(sk)
		k, v := b.idx[idxVPDQFrames].Cursor().Seek(prefix)
		if k != nil && bytes.HasPrefix(k, prefix) {
			out = bytes.Clone(v)
		}
		return nil
	})
	return out, wrapDB("vpdq value", err)
}

// VPDQSize returns upper bounds of what VPDQVideos will hand out: the
// number of videos and their frames in all, for a loader to size its
// arrays once. It reads the vpdqframes index's page headers (bbolt's
// bucket statistics), not its values. The bounds count a video carried by
// several additions once for each, and the frames from the bytes the
// index's leaves use, keys and page headers included.
func (s *Store) VPDQSize() (videos, frames int, err error) {
	err = s.view(func(b *buckets) error {
		st := b.idx[idxVPDQFrames].Stats()
		videos, frames = st.KeyN, st.LeafInuse/protocol.VPDQFrameSize
		return nil
	})
	return videos, frames, wrapDB("vpdq size", err)
}
