package protocol

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	mh "github.com/multiformats/go-multihash"
)

// AuthorKey is an ed25519 public key that signs one log.
type AuthorKey [ed25519.PublicKeySize]byte

// String is the key in lower-case hex (64 characters), as in the roster.
func (k AuthorKey) String() string { return hex.EncodeToString(k[:]) }

// Public returns the key as an ed25519.PublicKey sharing no memory with k.
func (k AuthorKey) Public() ed25519.PublicKey { return append(ed25519.PublicKey(nil), k[:]...) }

// ParseAuthorKey parses 64 hex characters.
func ParseAuthorKey(s string) (AuthorKey, error) {
	var k AuthorKey
	if len(s) != 2*len(k) {
		return k, fmt.Errorf("%w: author key: want %d hex characters, got %d", ErrKey, 2*len(k), len(s))
	}
	if _, err := hex.Decode(k[:], []byte(s)); err != nil {
		return k, fmt.Errorf("%w: author key: not hex: %v", ErrKey, err)
	}
	return k, nil
}

// AuthorKeyOf returns the public half of priv.
func AuthorKeyOf(priv ed25519.PrivateKey) AuthorKey {
	var k AuthorKey
	copy(k[:], priv.Public().(ed25519.PublicKey))
	return k
}

// IDSize is the length of an entry id: a sha2-256 multihash (0x12 0x20 and
// 32 digest bytes).
const IDSize = 34

// ID names an entry: the sha2-256 multihash of its SignedEntry bytes.
type ID [IDSize]byte

// String is the id's multihash in lower-case hex (68 characters).
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is the zero value (no entry).
func (id ID) IsZero() bool { return id == ID{} }

// IDOf computes the id of signed entry bytes.
func IDOf(signed []byte) ID {
	var id ID
	id[0], id[1] = mh.SHA2_256, sha256.Size
	sum := sha256.Sum256(signed)
	copy(id[2:], sum[:])
	return id
}

// ParseID parses an id written as hex.
func ParseID(s string) (ID, error) {
	if len(s) != 2*IDSize {
		return ID{}, fmt.Errorf("%w: entry id: want %d hex characters, got %d", ErrKey, 2*IDSize, len(s))
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return ID{}, fmt.Errorf("%w: entry id: not hex: %v", ErrKey, err)
	}
	return idFromBytes(b)
}

// idFromBytes checks that b is a sha2-256 multihash and returns it as an ID.
func idFromBytes(b []byte) (ID, error) {
	var id ID
	if len(b) != IDSize || b[0] != mh.SHA2_256 || b[1] != sha256.Size {
		return id, fmt.Errorf("%w: entry id: not a sha2-256 multihash (%d bytes)", ErrKey, len(b))
	}
	copy(id[:], b)
	return id, nil
}

// IDFromBytes reads a 34-byte id (a sha2-256 multihash).
func IDFromBytes(b []byte) (ID, error) { return idFromBytes(b) }
