package protocol

import (
	"bytes"
	"encoding/hex"
	"fmt"
)

// EntryProof is one entry and the proof that it is in its author's log as
// a checkpoint states it (SPEC.md section 20): what a member hands a
// court or an auditor instead of the whole log. The JSON form is the API's
// and the CLI's.
type EntryProof struct {
	Entry      string   `json:"entry"`      // the signed entry, hex
	LeafIndex  uint64   `json:"leaf_index"` // seq - 1
	TreeSize   uint64   `json:"tree_size"`
	Proof      []string `json:"proof"`      // RFC 6962 audit path, hex hashes
	Checkpoint string   `json:"checkpoint"` // the signed checkpoint note
}

// ProvenEntry is what VerifyEntryProof establishes.
type ProvenEntry struct {
	Entry      *Entry
	Checkpoint SignedCheckpoint
}

// VerifyEntryProof checks a proof against a roster: the entry is
// well-formed, signed, and allowed by the roster; the checkpoint is signed
// by the entry's author (and by the cosigners it names); the entry is the
// leaf at seq-1 of the tree the checkpoint states.
func VerifyEntryProof(p EntryProof, r *Roster) (ProvenEntry, error) {
	raw, err := hex.DecodeString(p.Entry)
	if err != nil {
		return ProvenEntry{}, fmt.Errorf("%w: entry is not hex: %v", ErrCheckpoint, err)
	}
	e, err := Decode(raw)
	if err != nil {
		return ProvenEntry{}, err
	}
	if err := r.Check(e); err != nil {
		return ProvenEntry{}, err
	}
	if err := e.Verify(); err != nil {
		return ProvenEntry{}, err
	}
	sc, err := OpenCheckpoint([]byte(p.Checkpoint), r)
	if err != nil {
		return ProvenEntry{}, err
	}
	switch {
	case sc.Author != e.Author:
		return ProvenEntry{}, fmt.Errorf("%w: the checkpoint is of another member's log", ErrCheckpoint)
	case p.LeafIndex != e.Seq()-1 || p.TreeSize != sc.Size || p.TreeSize < e.Seq():
		return ProvenEntry{}, fmt.Errorf("%w: leaf %d of a tree of %d does not fit seq %d and a checkpoint of size %d", ErrCheckpoint, p.LeafIndex, p.TreeSize, e.Seq(), sc.Size)
	}
	path := make([][]byte, len(p.Proof))
	for i, h := range p.Proof {
		if path[i], err = hex.DecodeString(h); err != nil {
			return ProvenEntry{}, fmt.Errorf("%w: proof[%d] is not hex", ErrCheckpoint, i)
		}
	}
	if err := VerifyInclusion(e.ID, p.LeafIndex, p.TreeSize, path, sc.Root); err != nil {
		return ProvenEntry{}, err
	}
	return ProvenEntry{Entry: e, Checkpoint: sc}, nil
}

// MakeEntryProof builds the proof of the entry at seq from the ids of its
// log (ids[i] is seq i+1) and a signed checkpoint of that log whose root
// they must give.
func MakeEntryProof(raw []byte, seq uint64, ids []ID, checkpoint []byte, root []byte) (EntryProof, error) {
	leaves := make([][]byte, len(ids))
	for i, id := range ids {
		leaves[i] = LeafHash(id)
	}
	if !bytes.Equal(MerkleRoot(leaves), root) {
		return EntryProof{}, fmt.Errorf("%w: the log held here does not give the checkpoint's root", ErrCheckpoint)
	}
	path, err := InclusionProof(leaves, seq-1)
	if err != nil {
		return EntryProof{}, err
	}
	p := EntryProof{Entry: hex.EncodeToString(raw), LeafIndex: seq - 1, TreeSize: uint64(len(ids)), Checkpoint: string(checkpoint), Proof: []string{}}
	for _, h := range path {
		p.Proof = append(p.Proof, hex.EncodeToString(h))
	}
	return p, nil
}
