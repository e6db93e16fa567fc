package p2p

import (
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"
)

// The wire format of the liveness protocol (SPEC 13.1): protobuf
// messages, encoded and decoded here field by field (protowire), each
// preceded on the stream by its length as an unsigned varint.
//
//	message LiveInstance {
//	  string federation = 1;
//	  bytes nonce = 2;           // 16 random bytes, new at each process start
//	  int64 started_ms = 3;      // when the process started, its clock
//	  bytes challenge = 4;       // empty in a hello; in an attestation, the nonce it answers
//	  repeated string addrs = 5; // the addresses the process listens on
//	}
//	message LiveSigned { bytes instance = 1; bytes signature = 2; }
//	message LiveTaken { LiveSigned other = 1; string remote = 2; int64 since_ms = 3; }
//	message LiveChallenge { LiveSigned newcomer = 1; string remote = 2; }
//	message LiveMessage {        // exactly one field set
//	  LiveSigned hello = 1;
//	  bool free = 2;
//	  LiveTaken taken = 3;
//	  LiveChallenge challenge = 4;
//	  LiveSigned attestation = 5;
//	}

// Liveness limits.
const (
	// NonceSize is the size of a process's instance nonce.
	NonceSize = 16
	// MaxLiveMessage bounds one message of the liveness protocol.
	MaxLiveMessage = 4096
	// maxLiveAddrs bounds the addresses an instance lists.
	maxLiveAddrs = 16
)

// liveDomain prefixes the bytes a node's transport key signs for the
// liveness protocol, so that no signature made for another purpose (the
// libp2p handshake, a peer record) can pass for one.
const liveDomain = "staydown/live/v1\n"

// ErrLiveMalformed is a liveness message that does not decode or is not
// signed by the key it should be.
var ErrLiveMalformed = errors.New("malformed liveness message")

// Instance is one running process of a node, as it signs itself.
type Instance struct {
	Federation string
	Nonce      []byte // NonceSize bytes
	StartedMs  int64
	Challenge  []byte // empty, or the nonce of the instance an attestation answers
	Addrs      []string
}

// Signed is an Instance with the signature of the node's transport key
// over liveDomain and Raw, the Instance's encoding as signed.
type Signed struct {
	Instance Instance
	Raw      []byte
	Sig      []byte
}

// Taken answers a hello: another instance of the sender's identity is
// connected to the answerer; Other is its attestation, Remote the
// address the answerer sees it connected from, SinceMs since when (the
// answerer's clock).
type Taken struct {
	Other   Signed
	Remote  string
	SinceMs int64
}

// Challenge asks an instance to attest that it is live: Newcomer is the
// hello of another instance of its identity, Remote the address that one
// connected from.
type Challenge struct {
	Newcomer Signed
	Remote   string
}

// LiveMessage is one message of the liveness protocol: exactly one of
// its fields is set (Free counts when true).
type LiveMessage struct {
	Hello       *Signed
	Free        bool
	Taken       *Taken
	Challenge   *Challenge
	Attestation *Signed
}

// Sign makes the signed form of i with the node's transport key.
func (i Instance) Sign(key crypto.PrivKey) (Signed, error) {
	raw := i.encode()
	sig, err := key.Sign(append([]byte(liveDomain), raw...))
	if err != nil {
		return Signed{}, err
	}
	return Signed{Instance: i, Raw: raw, Sig: sig}, nil
}

// VerifyBy checks that s is signed by peer p's key (the key a peer ID
// of an ed25519 key embeds).
func (s Signed) VerifyBy(p peer.ID) error {
	pub, err := p.ExtractPublicKey()
	if err != nil {
		return fmt.Errorf("%w: no public key in peer ID %s: %v", ErrLiveMalformed, p, err)
	}
	ok, err := pub.Verify(append([]byte(liveDomain), s.Raw...), s.Sig)
	if err != nil || !ok {
		return fmt.Errorf("%w: signature is not %s's", ErrLiveMalformed, p)
	}
	return nil
}

func (i Instance) encode() []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, i.Federation)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendBytes(b, i.Nonce)
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(i.StartedMs))
	if len(i.Challenge) > 0 {
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendBytes(b, i.Challenge)
	}
	for _, a := range i.Addrs {
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendString(b, a)
	}
	return b
}

func (s Signed) encode() []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, s.Raw)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	return protowire.AppendBytes(b, s.Sig)
}

// Encode is m's wire form (without the length prefix).
func (m LiveMessage) Encode() []byte {
	var b []byte
	switch {
	case m.Hello != nil:
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, m.Hello.encode())
	case m.Taken != nil:
		var t []byte
		t = protowire.AppendTag(t, 1, protowire.BytesType)
		t = protowire.AppendBytes(t, m.Taken.Other.encode())
		t = protowire.AppendTag(t, 2, protowire.BytesType)
		t = protowire.AppendString(t, m.Taken.Remote)
		t = protowire.AppendTag(t, 3, protowire.VarintType)
		t = protowire.AppendVarint(t, uint64(m.Taken.SinceMs))
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, t)
	case m.Challenge != nil:
		var c []byte
		c = protowire.AppendTag(c, 1, protowire.BytesType)
		c = protowire.AppendBytes(c, m.Challenge.Newcomer.encode())
		c = protowire.AppendTag(c, 2, protowire.BytesType)
		c = protowire.AppendString(c, m.Challenge.Remote)
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendBytes(b, c)
	case m.Attestation != nil:
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendBytes(b, m.Attestation.encode())
	case m.Free:
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	return b
}

// fields walks the fields of a protobuf message: f is given each field's
// number, type, and its value (the bytes of a length-delimited field, or
// the varint). Unknown fields are f's to skip.
func fields(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := f(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

func wrong(what string, num protowire.Number) error {
	return fmt.Errorf("%w: %s field %d has the wrong type", ErrLiveMalformed, what, num)
}

func decodeInstance(b []byte) (Instance, error) {
	var i Instance
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		if num >= 1 && num <= 5 && (typ == protowire.VarintType) != (num == 3) {
			return wrong("instance", num)
		}
		switch num {
		case 1:
			i.Federation = string(v)
		case 2:
			i.Nonce = v
		case 3:
			i.StartedMs = int64(x)
		case 4:
			i.Challenge = v
		case 5:
			if len(i.Addrs) == maxLiveAddrs {
				return fmt.Errorf("%w: more than %d addresses", ErrLiveMalformed, maxLiveAddrs)
			}
			i.Addrs = append(i.Addrs, string(v))
		}
		return nil
	})
	if err != nil {
		return i, err
	}
	if len(i.Nonce) != NonceSize {
		return i, fmt.Errorf("%w: nonce of %d bytes, want %d", ErrLiveMalformed, len(i.Nonce), NonceSize)
	}
	if len(i.Challenge) != 0 && len(i.Challenge) != NonceSize {
		return i, fmt.Errorf("%w: challenge of %d bytes, want %d", ErrLiveMalformed, len(i.Challenge), NonceSize)
	}
	return i, nil
}

func decodeSigned(b []byte) (Signed, error) {
	var s Signed
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if (num == 1 || num == 2) && typ != protowire.BytesType {
			return wrong("signed instance", num)
		}
		switch num {
		case 1:
			s.Raw = v
		case 2:
			s.Sig = v
		}
		return nil
	})
	if err != nil {
		return s, err
	}
	if len(s.Sig) == 0 {
		return s, fmt.Errorf("%w: a signed instance without its signature", ErrLiveMalformed)
	}
	s.Instance, err = decodeInstance(s.Raw)
	return s, err
}

// DecodeLiveMessage decodes one message of the liveness protocol. It
// checks the shape only; signatures are the reader's to check (VerifyBy).
// The message may retain b.
func DecodeLiveMessage(b []byte) (LiveMessage, error) {
	var m LiveMessage
	if len(b) > MaxLiveMessage {
		return m, fmt.Errorf("%w: %d bytes, at most %d", ErrLiveMalformed, len(b), MaxLiveMessage)
	}
	set := 0
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		if num >= 1 && num <= 5 && (typ == protowire.VarintType) != (num == 2) {
			return wrong("message", num)
		}
		var err error
		switch num {
		case 1:
			var s Signed
			s, err = decodeSigned(v)
			m.Hello = &s
		case 2:
			m.Free = x != 0
		case 3:
			var t Taken
			err = fields(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
				if num >= 1 && num <= 3 && (typ == protowire.VarintType) != (num == 3) {
					return wrong("taken", num)
				}
				var err error
				switch num {
				case 1:
					t.Other, err = decodeSigned(v)
				case 2:
					t.Remote = string(v)
				case 3:
					t.SinceMs = int64(x)
				}
				return err
			})
			if err == nil && t.Other.Raw == nil {
				err = fmt.Errorf("%w: taken without the other instance", ErrLiveMalformed)
			}
			m.Taken = &t
		case 4:
			var c Challenge
			err = fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
				if (num == 1 || num == 2) && typ != protowire.BytesType {
					return wrong("challenge", num)
				}
				var err error
				switch num {
				case 1:
					c.Newcomer, err = decodeSigned(v)
				case 2:
					c.Remote = string(v)
				}
				return err
			})
			if err == nil && c.Newcomer.Raw == nil {
				err = fmt.Errorf("%w: challenge without the newcomer's hello", ErrLiveMalformed)
			}
			m.Challenge = &c
		case 5:
			var s Signed
			s, err = decodeSigned(v)
			m.Attestation = &s
		default:
			return nil // unknown: skipped
		}
		set++
		return err
	})
	if err != nil && !errors.Is(err, ErrLiveMalformed) {
		err = fmt.Errorf("%w: %v", ErrLiveMalformed, err)
	}
	if err != nil {
		return LiveMessage{}, err
	}
	if set != 1 || (!m.Free && m.Hello == nil && m.Taken == nil && m.Challenge == nil && m.Attestation == nil) {
		return LiveMessage{}, fmt.Errorf("%w: %d fields set, want exactly one", ErrLiveMalformed, set)
	}
	return m, nil
}
