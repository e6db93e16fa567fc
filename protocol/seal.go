package protocol

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"
	"slices"

	"filippo.io/edwards25519"
	"golang.org/x/crypto/nacl/box"
	"golang.org/x/crypto/nacl/secretbox"
	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/protocol/pb"
)

// Sealed details (SPEC.md section 6.8). A notice's URLs and free text are
// readable only by its recipients: the issuer, the addressee and every
// auditor of the roster. The algorithms are NaCl's, as libsodium names
// them:
//
//   - a fresh 32-byte content key K and 24-byte nonce; ciphertext =
//     crypto_secretbox (XSalsa20-Poly1305) of the NoticeDetails bytes
//     under K and the nonce;
//   - for each recipient, sealed_key = crypto_box_seal (an ephemeral
//     X25519 key, XSalsa20-Poly1305) of K to the recipient's X25519 key;
//   - a member's X25519 key is derived from its ed25519 author key, as
//     libsodium's crypto_sign_ed25519_pk_to_curve25519 and _sk_to_curve25519
//     do (RFC 7748's birational map for the public key, the clamped first
//     half of SHA-512(seed) for the private one), so the roster needs no
//     second key.

// ErrSealed: sealed details cannot be opened by this member, or open to
// something malformed.
var ErrSealed = errors.New("sealed details")

// ContentKeySize, SealNonceSize and SealedKeySize are the sizes of the
// content key, the secretbox nonce and a sealed content key (ephemeral
// public key, Poly1305 tag, key).
const (
	ContentKeySize = 32
	SealNonceSize  = 24
	SealedKeySize  = 32 + box.Overhead + ContentKeySize
)

// MaxNoticeURLs bounds the URLs in one NoticeDetails.
const MaxNoticeURLs = 256

// X25519Public converts an author key to the X25519 public key that
// details are sealed to. It fails for bytes that are not a point of the
// curve.
func X25519Public(k AuthorKey) (*[32]byte, error) {
	p, err := new(edwards25519.Point).SetBytes(k[:])
	if err != nil {
		return nil, fmt.Errorf("%w: author key %s is not a curve point: %v", ErrKey, k, err)
	}
	var out [32]byte
	copy(out[:], p.BytesMontgomery())
	return &out, nil
}

// X25519Private derives the X25519 private key of an ed25519 private key.
func X25519Private(priv ed25519.PrivateKey) *[32]byte {
	h := sha512.Sum512(priv.Seed())
	var out [32]byte
	copy(out[:], h[:32])
	out[0] &= 248
	out[31] &= 127
	out[31] |= 64
	return &out
}

// NoticeRecipients lists who may read a notice's details: its issuer, its
// addressee and every auditor of the roster, sorted by key, once each.
func NoticeRecipients(r *Roster, issuer, addressee AuthorKey) []AuthorKey {
	keys := []AuthorKey{issuer, addressee}
	for _, m := range r.Members {
		if m.Role == RoleAuditor {
			keys = append(keys, m.AuthorKey)
		}
	}
	slices.SortFunc(keys, func(a, b AuthorKey) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(keys)
}

// CheckDetails checks plaintext details: at least one URL or some text,
// every URL in a normal form (CheckNormalURL: v1 or v2), within the limits.
func CheckDetails(d *pb.NoticeDetails) error {
	if len(d.Urls) == 0 && d.Text == "" {
		return fmt.Errorf("%w: details: neither URLs nor text", ErrSealed)
	}
	if len(d.Urls) > MaxNoticeURLs {
		return fmt.Errorf("%w: details: %d URLs, limit %d", ErrSealed, len(d.Urls), MaxNoticeURLs)
	}
	for i, u := range d.Urls {
		if err := CheckNormalURL(u); err != nil {
			return fmt.Errorf("%w: details.urls[%d]: %v", ErrSealed, i, err)
		}
	}
	return nil
}

// Seal encrypts details to the recipients. URLs must be normalised
// already (CheckDetails). random is the randomness source for the content
// key, the nonce and the ephemeral keys: crypto/rand.Reader outside tests.
// It is required (the package does no I/O of its own): nil is an error.
func Seal(d *pb.NoticeDetails, recipients []AuthorKey, random io.Reader) (*pb.Sealed, error) {
	if random == nil {
		return nil, fmt.Errorf("%w: no randomness source: pass crypto/rand.Reader", ErrSealed)
	}
	if err := CheckDetails(d); err != nil {
		return nil, err
	}
	if len(recipients) == 0 || len(recipients) > MaxRecipients {
		return nil, fmt.Errorf("%w: want 1 to %d recipients, got %d", ErrSealed, MaxRecipients, len(recipients))
	}
	plain, err := proto.MarshalOptions{Deterministic: true}.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding details: %v", ErrSealed, err)
	}
	if len(plain)+secretbox.Overhead > MaxSealedTextBytes {
		return nil, fmt.Errorf("%w: details are %d bytes, limit %d", ErrSealed, len(plain), MaxSealedTextBytes-secretbox.Overhead)
	}
	var key [ContentKeySize]byte
	var nonce [SealNonceSize]byte
	if _, err := io.ReadFull(random, key[:]); err != nil {
		return nil, fmt.Errorf("%w: content key: %v", ErrSealed, err)
	}
	if _, err := io.ReadFull(random, nonce[:]); err != nil {
		return nil, fmt.Errorf("%w: nonce: %v", ErrSealed, err)
	}
	s := &pb.Sealed{Nonce: nonce[:], Ciphertext: secretbox.Seal(nil, plain, &nonce, &key)}
	for _, r := range recipients {
		pub, err := X25519Public(r)
		if err != nil {
			return nil, fmt.Errorf("%w: recipient: %v", ErrSealed, err)
		}
		sk, err := box.SealAnonymous(nil, key[:], pub, random)
		if err != nil {
			return nil, fmt.Errorf("%w: sealing to %s: %v", ErrSealed, r, err)
		}
		s.Recipients = append(s.Recipients, &pb.Recipient{Member: append([]byte(nil), r[:]...), SealedKey: sk})
	}
	return s, nil
}

// Readable reports whether the member is among the sealed details'
// recipients.
func Readable(s *pb.Sealed, member AuthorKey) bool {
	for _, r := range s.GetRecipients() {
		if bytes.Equal(r.Member, member[:]) {
			return true
		}
	}
	return false
}

// Open decrypts sealed details with a recipient's author key. It fails
// with ErrSealed when the member is not a recipient, when its sealed key
// or the ciphertext do not open (tampered, or sealed to another key), and
// when the plaintext is not well-formed details.
func Open(s *pb.Sealed, priv ed25519.PrivateKey) (*pb.NoticeDetails, error) {
	me := AuthorKeyOf(priv)
	var sealedKey []byte
	for _, r := range s.GetRecipients() {
		if bytes.Equal(r.Member, me[:]) {
			sealedKey = r.SealedKey
			break
		}
	}
	if sealedKey == nil {
		return nil, fmt.Errorf("%w: %s is not a recipient", ErrSealed, me)
	}
	pub, err := X25519Public(me)
	if err != nil {
		return nil, err
	}
	key, ok := box.OpenAnonymous(nil, sealedKey, pub, X25519Private(priv))
	if !ok || len(key) != ContentKeySize {
		return nil, fmt.Errorf("%w: the content key sealed to %s does not open", ErrSealed, me)
	}
	if len(s.Nonce) != SealNonceSize {
		return nil, fmt.Errorf("%w: nonce is %d bytes, want %d", ErrSealed, len(s.Nonce), SealNonceSize)
	}
	var k [ContentKeySize]byte
	var nonce [SealNonceSize]byte
	copy(k[:], key)
	copy(nonce[:], s.Nonce)
	plain, ok := secretbox.Open(nil, s.Ciphertext, &nonce, &k)
	if !ok {
		return nil, fmt.Errorf("%w: the ciphertext does not open under its content key", ErrSealed)
	}
	d := &pb.NoticeDetails{}
	if err := proto.Unmarshal(plain, d); err != nil {
		return nil, fmt.Errorf("%w: plaintext is not NoticeDetails: %v", ErrSealed, err)
	}
	if err := CheckDetails(d); err != nil {
		return nil, err
	}
	return d, nil
}
