package protocol

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// Checkpoints (SPEC.md section 20). Each author's log is also an RFC 6962
// Merkle tree whose leaves are its entry ids in seq order; a checkpoint
// states the tree's size (= seq) and root in the C2SP tlog-checkpoint
// signed-note format, signed by the author, and cosigned by witnesses
// (other members) that hold the same log.

// ErrCheckpoint: a checkpoint or proof is malformed or does not verify.
var ErrCheckpoint = errors.New("bad checkpoint")

var hasher = rfc6962.DefaultHasher

// LeafHash is the Merkle leaf hash of an entry: SHA-256(0x00 || id).
func LeafHash(id ID) []byte { return hasher.HashLeaf(id[:]) }

// Tree computes the Merkle root of a log as it grows, keeping only a
// compact range (one hash per set bit of the size).
type Tree struct {
	r *compact.Range
}

var rangeFactory = &compact.RangeFactory{Hash: hasher.HashChildren}

// NewTree returns the tree of the empty log.
func NewTree() *Tree { return &Tree{r: rangeFactory.NewEmptyRange(0)} }

// Append adds the next entry's id.
func (t *Tree) Append(id ID) {
	// Append fails only for a malformed range, which NewTree never makes.
	if err := t.r.Append(LeafHash(id), nil); err != nil {
		panic(err)
	}
}

// Size is the number of leaves.
func (t *Tree) Size() uint64 { return t.r.End() }

// Root is the RFC 6962 root hash (SHA-256 of the empty string for size 0).
func (t *Tree) Root() []byte {
	if t.r.End() == 0 {
		return hasher.EmptyRoot()
	}
	root, err := t.r.GetRootHash(nil)
	if err != nil {
		panic(err)
	}
	return root
}

// MerkleRoot is the root of the tree over leaf hashes (RFC 6962 MTH).
func MerkleRoot(leaves [][]byte) []byte {
	switch len(leaves) {
	case 0:
		return hasher.EmptyRoot()
	case 1:
		return leaves[0]
	}
	k := split(uint64(len(leaves)))
	return hasher.HashChildren(MerkleRoot(leaves[:k]), MerkleRoot(leaves[k:]))
}

// split is the largest power of two smaller than n (n > 1).
func split(n uint64) uint64 { return 1 << (bits.Len64(n-1) - 1) }

// InclusionProof is RFC 6962's PATH(index, leaves): the audit path of
// leaf index (0-based) in the tree over leaves.
func InclusionProof(leaves [][]byte, index uint64) ([][]byte, error) {
	if index >= uint64(len(leaves)) {
		return nil, fmt.Errorf("%w: leaf %d of a tree of %d", ErrCheckpoint, index, len(leaves))
	}
	return path(leaves, index), nil
}

func path(d [][]byte, m uint64) [][]byte {
	n := uint64(len(d))
	if n == 1 {
		return nil
	}
	k := split(n)
	if m < k {
		return append(path(d[:k], m), MerkleRoot(d[k:]))
	}
	return append(path(d[k:], m-k), MerkleRoot(d[:k]))
}

// VerifyInclusion checks an inclusion proof of the entry id at leaf index
// in a tree of size with root.
func VerifyInclusion(id ID, index, size uint64, path [][]byte, root []byte) error {
	if err := proof.VerifyInclusion(hasher, index, size, LeafHash(id), path, root); err != nil {
		// The merkle library's message spans lines (it prints both roots):
		// keep ours on one.
		return fmt.Errorf("%w: inclusion of %s at %d in %d: %s", ErrCheckpoint, id, index, size, strings.Join(strings.Fields(err.Error()), " "))
	}
	return nil
}

// Checkpoint is the body of a C2SP tlog-checkpoint note.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   []byte // 32 bytes
}

// CheckpointOrigin names an author's log: "staydown/FEDERATION/AUTHOR-KEY-HEX".
func CheckpointOrigin(federation string, author AuthorKey) string {
	return "staydown/" + federation + "/" + author.String()
}

// Text is the note text: origin, size and base64 root, a line each.
func (c Checkpoint) Text() string {
	return fmt.Sprintf("%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root))
}

// ParseCheckpoint reads a note text. Extension lines after the root are
// refused (version 1 uses none).
func ParseCheckpoint(text string) (Checkpoint, error) {
	lines := strings.Split(text, "\n")
	if len(lines) != 4 || lines[3] != "" {
		return Checkpoint{}, fmt.Errorf("%w: want three lines (origin, size, root), got %q", ErrCheckpoint, text)
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != lines[1] {
		return Checkpoint{}, fmt.Errorf("%w: size %q is not a decimal number", ErrCheckpoint, lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != sha256.Size {
		return Checkpoint{}, fmt.Errorf("%w: root %q is not 32 bytes of base64", ErrCheckpoint, lines[2])
	}
	if lines[0] == "" {
		return Checkpoint{}, fmt.Errorf("%w: empty origin", ErrCheckpoint)
	}
	return Checkpoint{Origin: lines[0], Size: size, Root: root}, nil
}

// noteKey is the signed-note public key encoding of an author key:
// algorithm byte 1 (Ed25519), then the key.
func noteKey(k AuthorKey) []byte { return append([]byte{1}, k[:]...) }

func noteKeyHash(name string, k AuthorKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte("\n"))
	h.Write(noteKey(k))
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// NoteSigner signs notes as member name with its author key.
func NoteSigner(name string, priv ed25519.PrivateKey) (note.Signer, error) {
	k := AuthorKeyOf(priv)
	skey := fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, noteKeyHash(name, k),
		base64.StdEncoding.EncodeToString(append([]byte{1}, priv.Seed()...)))
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("%w: note signer for %q: %v", ErrCheckpoint, name, err)
	}
	return s, nil
}

// NoteVerifier verifies member name's note signatures.
func NoteVerifier(name string, k AuthorKey) (note.Verifier, error) {
	vkey, err := note.NewEd25519VerifierKey(name, k.Public())
	if err != nil {
		return nil, fmt.Errorf("%w: note verifier for %q: %v", ErrCheckpoint, name, err)
	}
	return note.NewVerifier(vkey)
}

// SignCheckpoint signs c as the note of signer.
func SignCheckpoint(c Checkpoint, signer note.Signer) ([]byte, error) {
	return note.Sign(&note.Note{Text: c.Text()}, signer)
}

// Cosign adds a witness's signature to a signed checkpoint, keeping the
// signatures it has (which Open has verified: pass the opened note).
func Cosign(n *note.Note, witness note.Signer) ([]byte, error) {
	return note.Sign(n, witness)
}

// RosterVerifiers verifies the note signatures of every roster member.
func RosterVerifiers(r *Roster) (note.Verifiers, error) {
	var vs []note.Verifier
	for _, m := range r.Members {
		v, err := NoteVerifier(m.Name, m.AuthorKey)
		if err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	return note.VerifierList(vs...), nil
}

// SignedCheckpoint is a checkpoint note opened against the roster.
type SignedCheckpoint struct {
	Checkpoint
	Author    AuthorKey   // whose log it describes, and who signed it
	Cosigners []AuthorKey // other members whose signatures verified
	Note      *note.Note
}

// OpenCheckpoint verifies a checkpoint note: it must be signed by the
// author its origin names (a roster member of federation), and every
// other signature by a roster member must verify; signatures by unknown
// keys are ignored.
func OpenCheckpoint(msg []byte, r *Roster) (SignedCheckpoint, error) {
	vs, err := RosterVerifiers(r)
	if err != nil {
		return SignedCheckpoint{}, err
	}
	n, err := note.Open(msg, vs)
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("%w: %v", ErrCheckpoint, err)
	}
	c, err := ParseCheckpoint(n.Text)
	if err != nil {
		return SignedCheckpoint{}, err
	}
	prefix := "staydown/" + r.Federation + "/"
	hexKey, ok := strings.CutPrefix(c.Origin, prefix)
	if !ok {
		return SignedCheckpoint{}, fmt.Errorf("%w: origin %q is not of federation %s", ErrCheckpoint, c.Origin, r.Federation)
	}
	author, err := ParseAuthorKey(hexKey)
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("%w: origin %q: %v", ErrCheckpoint, c.Origin, err)
	}
	m, ok := r.ByKey(author)
	if !ok {
		return SignedCheckpoint{}, fmt.Errorf("%w: origin %q names no roster member", ErrCheckpoint, c.Origin)
	}
	sc := SignedCheckpoint{Checkpoint: c, Author: author, Note: n}
	signed := false
	for _, s := range n.Sigs {
		signer, ok := r.ByName(s.Name)
		switch {
		case !ok:
		case signer.AuthorKey == author && s.Name == m.Name:
			signed = true
		default:
			sc.Cosigners = append(sc.Cosigners, signer.AuthorKey)
		}
	}
	if !signed {
		return SignedCheckpoint{}, fmt.Errorf("%w: checkpoint of %s's log is not signed by %s", ErrCheckpoint, m.Name, m.Name)
	}
	return sc, nil
}

// Contradict reports whether two checkpoints of one log cannot both be
// true of one honest history: the same size with different roots. (For
// different sizes only a consistency proof could decide; version 1
// exchanges none, SPEC.md section 17.)
func Contradict(a, b Checkpoint) bool {
	return a.Origin == b.Origin && a.Size == b.Size && !bytes.Equal(a.Root, b.Root)
}
