package protocol

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"sort"
)

// HeadsDigest is the convergence check: sha256 over the heads sorted by
// author key, each written as author key (32 bytes), seq (8 bytes,
// big-endian), id (34 bytes). Nodes with the same heads have the same
// digest. heads is not modified.
func HeadsDigest(heads []Head) [32]byte {
	heads = slices.Clone(heads)
	sort.Slice(heads, func(i, j int) bool { return bytes.Compare(heads[i].Author[:], heads[j].Author[:]) < 0 })
	h := sha256.New()
	var seq [8]byte
	for _, hd := range heads {
		h.Write(hd.Author[:])
		binary.BigEndian.PutUint64(seq[:], hd.Seq)
		h.Write(seq[:])
		h.Write(hd.ID[:])
	}
	var d [32]byte
	h.Sum(d[:0])
	return d
}
