package protocol

import (
	"bytes"
	"crypto/ed25519"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/protocol/pb"
)

const (
	// Version is the only Entry.version this package writes and accepts.
	Version = 1
	// MaxEntrySize bounds a SignedEntry in bytes. Larger ones are rejected
	// before anything else is looked at.
	MaxEntrySize = 64 << 10
	// SignatureContext is prepended to the Entry bytes before signing, so
	// that an entry signature can never be mistaken for any other signature
	// made with the same key.
	SignatureContext = "staydown/v1/entry\n"
)

// Entry is one decoded, structurally valid log entry. Raw is what is stored
// and gossiped; everything else is derived from it and must not be
// modified.
type Entry struct {
	Raw       []byte    // SignedEntry bytes, exactly as signed and transmitted
	ID        ID        // IDOf(Raw)
	Body      *pb.Entry // decoded from Signed
	Signed    []byte    // sub-slice of Raw: the Entry bytes that were signed
	Signature []byte    // sub-slice of Raw: 64 bytes
	Author    AuthorKey
}

// Seq is the entry's position in its author's log.
func (e *Entry) Seq() uint64 { return e.Body.GetSeq() }

// Prev is the id of the previous entry, zero for seq 1.
func (e *Entry) Prev() ID {
	var id ID
	copy(id[:], e.Body.GetPrev())
	return id
}

// Kind names the payload, as in SPEC.md ("addition", "retraction", ...).
func (e *Entry) Kind() Kind { return KindOf(e.Body) }

// Head is the newest entry of one author's log.
type Head struct {
	Author AuthorKey
	Seq    uint64
	ID     ID
}

// Sign encodes body canonically, signs it with priv and returns the entry.
// body.Author is set from priv. body must describe a valid entry: Sign runs
// the same structural checks as Decode, so a node cannot publish what its
// peers would reject.
func Sign(priv ed25519.PrivateKey, body *pb.Entry) (*Entry, error) {
	ak := AuthorKeyOf(priv)
	body.Author = ak[:]
	signed, err := proto.MarshalOptions{Deterministic: true}.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("%w: encode: %v", ErrMalformed, err)
	}
	sig := ed25519.Sign(priv, signingBytes(signed))
	raw := encodeSigned(signed, sig)
	return Decode(raw)
}

func signingBytes(signed []byte) []byte {
	b := make([]byte, 0, len(SignatureContext)+len(signed))
	return append(append(b, SignatureContext...), signed...)
}

// encodeSigned writes the canonical SignedEntry: field 1 (entry), field 2
// (signature).
func encodeSigned(signed, sig []byte) []byte {
	b := make([]byte, 0, len(signed)+len(sig)+8)
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, signed)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendBytes(b, sig)
	return b
}

// Decode parses SignedEntry bytes and checks everything that needs neither
// the roster nor a key: size, canonical encoding, version, field shapes and
// the payload's shape. It does not verify the signature (see Verify). The
// returned Entry retains raw.
func Decode(raw []byte) (*Entry, error) {
	if len(raw) > MaxEntrySize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(raw), MaxEntrySize)
	}
	signed, sig, err := decodeSigned(raw)
	if err != nil {
		return nil, err
	}
	body := new(pb.Entry)
	// Unknown fields are discarded so that the re-encoding below cannot
	// reproduce them: proto.Marshal writes kept unknown fields back after
	// the known ones, so an unknown field at the end of any message would
	// otherwise pass the byte comparison.
	if err := (proto.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(signed, body); err != nil {
		return nil, fmt.Errorf("%w: entry: %v", ErrMalformed, err)
	}
	// Only the canonical encoding is accepted, so that an entry has exactly
	// one byte string (and one id) and unknown fields cannot ride along.
	canon, err := proto.MarshalOptions{Deterministic: true}.Marshal(body)
	if err != nil || !bytes.Equal(canon, signed) {
		return nil, fmt.Errorf("%w: entry: not in canonical encoding (unknown fields, repeated or misordered fields)", ErrMalformed)
	}
	if err := checkEntry(body); err != nil {
		return nil, err
	}
	e := &Entry{Raw: raw, ID: IDOf(raw), Body: body, Signed: signed, Signature: sig}
	copy(e.Author[:], body.Author)
	return e, nil
}

// DecodeStored decodes an entry that passed Decode before (a replica's
// own stored copy) and whose id is id: it parses the bytes and trusts
// them, skipping the checks of canonical encoding and shape, and the
// hash. Never use it on bytes from outside.
//
// It decodes with the code vtprotobuf generates (pb.Entry.UnmarshalVTUnsafe:
// about five times faster than proto.Unmarshal, two allocations instead
// of seven), which does not check that strings are UTF-8 (Decode did)
// and whose strings and bytes alias raw: the caller gives raw to the
// entry, and nothing may change it afterwards.
func DecodeStored(raw []byte, id ID) (*Entry, error) {
	signed, sig, err := decodeSigned(raw)
	if err != nil {
		return nil, err
	}
	body := new(pb.Entry)
	if err := body.UnmarshalVTUnsafe(signed); err != nil {
		return nil, fmt.Errorf("%w: entry: %v", ErrMalformed, err)
	}
	e := &Entry{Raw: raw, ID: id, Body: body, Signed: signed, Signature: sig}
	copy(e.Author[:], body.Author)
	return e, nil
}

func decodeSigned(raw []byte) (signed, sig []byte, err error) {
	b := raw
	field := func(want protowire.Number, name string) ([]byte, error) {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num != want || typ != protowire.BytesType {
			return nil, fmt.Errorf("%w: signed entry: expected field %d (%s) as bytes", ErrMalformed, want, name)
		}
		b = b[n:]
		v, m := protowire.ConsumeBytes(b)
		if m < 0 {
			return nil, fmt.Errorf("%w: signed entry: %s: truncated", ErrMalformed, name)
		}
		b = b[m:]
		return v, nil
	}
	if signed, err = field(1, "entry"); err != nil {
		return nil, nil, err
	}
	if sig, err = field(2, "signature"); err != nil {
		return nil, nil, err
	}
	if len(b) != 0 {
		return nil, nil, fmt.Errorf("%w: signed entry: %d trailing bytes", ErrMalformed, len(b))
	}
	if len(sig) != ed25519.SignatureSize {
		return nil, nil, fmt.Errorf("%w: signature: want %d bytes, got %d", ErrMalformed, ed25519.SignatureSize, len(sig))
	}
	// The canonical form has minimal varint lengths; re-encoding proves it.
	if !bytes.Equal(encodeSigned(signed, sig), raw) {
		return nil, nil, fmt.Errorf("%w: signed entry: not in canonical encoding", ErrMalformed)
	}
	return signed, sig, nil
}

// Verify checks the signature over the entry bytes.
func (e *Entry) Verify() error {
	if !ed25519.Verify(e.Author[:], signingBytes(e.Signed), e.Signature) {
		return fmt.Errorf("%w: entry %s (author %s, seq %d)", ErrBadSignature, e.ID, e.Author, e.Seq())
	}
	return nil
}

// CheckNext checks that e continues the log whose newest entry is head
// (head.Seq == 0 for an empty log). It returns ErrGap when e is further
// ahead, ErrChain when e cannot continue this log at all (an old seq is the
// caller's to classify: duplicate or equivocation).
func CheckNext(head Head, e *Entry) error {
	switch seq := e.Seq(); {
	case seq == head.Seq+1:
		if e.Prev() != head.ID {
			return fmt.Errorf("%w: entry %s seq %d: prev %s, but entry %d is %s", ErrChain, e.ID, seq, e.Prev(), head.Seq, head.ID)
		}
		return nil
	case seq > head.Seq+1:
		return fmt.Errorf("%w: entry %s seq %d, head is %d", ErrGap, e.ID, seq, head.Seq)
	default:
		return fmt.Errorf("%w: entry %s seq %d is not after head %d", ErrChain, e.ID, seq, head.Seq)
	}
}
