package protocol

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf8"

	mh "github.com/multiformats/go-multihash"

	"github.com/staydown/staydown/protocol/pb"
)

// SignalType names a signal type as users and SPEC.md write it.
type SignalType string

const (
	SignalSHA256  SignalType = "sha256"
	SignalMD5     SignalType = "md5"
	SignalPDQ     SignalType = "pdq"
	SignalURL     SignalType = "url"
	SignalAccount SignalType = "account"
)

// SignalTypes lists the signal types the CLI and the API take, in
// index-tag order.
var SignalTypes = []SignalType{SignalSHA256, SignalMD5, SignalPDQ, SignalURL, SignalAccount, SignalVPDQ, SignalDomain}

// Index tags: the first byte of a signal key (see SignalKey).
const (
	tagSHA256  = 1
	tagMD5     = 2
	tagPDQ     = 3
	tagURL     = 4
	tagAccount = 5
)

// Limits on signal values, in bytes.
const (
	MaxURLLen     = 2048
	MaxServiceLen = 253
	MaxAccountLen = 256
	PDQSize       = 32
)

// ParseSignal parses a user-supplied signal value of the given type: hex
// for sha256, md5 and pdq; an absolute http(s) URL for url (normalised);
// "SERVICE:ID" for account; python-threatexchange's JSON signal string for
// vpdq (SPEC.md 7.6); a domain name, "*." first for its subdomains too,
// for domain (SPEC.md 7.7).
func ParseSignal(typ, value string) (*pb.Signal, error) {
	switch SignalType(typ) {
	case SignalSHA256:
		return hexHash(typ, value, mh.SHA2_256, 32)
	case SignalMD5:
		return hexHash(typ, value, mh.MD5, 16)
	case SignalPDQ:
		b, err := parseHex(typ, value, PDQSize)
		if err != nil {
			return nil, err
		}
		return &pb.Signal{Value: &pb.Signal_Pdq{Pdq: b}}, nil
	case SignalURL:
		u, err := NormalizeURL(value)
		if err != nil {
			return nil, err
		}
		return &pb.Signal{Value: &pb.Signal_Url{Url: u}}, nil
	case SignalAccount:
		service, id, ok := strings.Cut(value, ":")
		if !ok {
			return nil, fmt.Errorf("%w: account %q: want SERVICE:ID, e.g. example.com:someuser", ErrSignal, value)
		}
		a := &pb.Account{Service: strings.ToLower(strings.TrimSpace(service)), Id: strings.TrimSpace(id)}
		s := &pb.Signal{Value: &pb.Signal_Account{Account: a}}
		return s, CheckSignal(s)
	case SignalVPDQ:
		frames, err := ParseVPDQJSON(value)
		if err != nil {
			return nil, err
		}
		b, err := EncodeVPDQ(frames)
		if err != nil {
			return nil, err
		}
		return &pb.Signal{Value: &pb.Signal_Vpdq{Vpdq: b}}, nil
	case SignalDomain:
		d, err := ParseDomain(value)
		if err != nil {
			return nil, err
		}
		return &pb.Signal{Value: &pb.Signal_Domain{Domain: d}}, nil
	default:
		return nil, fmt.Errorf("%w: unknown signal type %q; use one of sha256, md5, pdq, url, account, vpdq, domain", ErrSignal, typ)
	}
}

func parseHex(typ, value string, size int) ([]byte, error) {
	if len(value) != 2*size {
		return nil, fmt.Errorf("%w: %s: want %d hex characters, got %d", ErrSignal, typ, 2*size, len(value))
	}
	b, err := hex.DecodeString(value)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: not hex: %v", ErrSignal, typ, err)
	}
	return b, nil
}

func hexHash(typ, value string, code uint64, size int) (*pb.Signal, error) {
	b, err := parseHex(typ, strings.ToLower(value), size)
	if err != nil {
		return nil, err
	}
	m, err := mh.Encode(b, code)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrSignal, typ, err)
	}
	return &pb.Signal{Value: &pb.Signal_Multihash{Multihash: m}}, nil
}

// CheckSignal checks a signal as received on the wire.
func CheckSignal(s *pb.Signal) error {
	switch v := s.GetValue().(type) {
	case *pb.Signal_Multihash:
		d, err := mh.Decode(v.Multihash)
		if err != nil {
			return fmt.Errorf("%w: multihash: %v", ErrSignal, err)
		}
		switch {
		case d.Code == mh.SHA2_256 && d.Length == 32, d.Code == mh.MD5 && d.Length == 16:
			return nil
		}
		return fmt.Errorf("%w: multihash: code 0x%x length %d is not sha2-256 or md5", ErrSignal, d.Code, d.Length)
	case *pb.Signal_Pdq:
		if len(v.Pdq) != PDQSize {
			return fmt.Errorf("%w: pdq: want %d bytes, got %d", ErrSignal, PDQSize, len(v.Pdq))
		}
	case *pb.Signal_Url:
		return CheckNormalURL(v.Url)
	case *pb.Signal_Vpdq:
		_, err := DecodeVPDQ(v.Vpdq)
		return err
	case *pb.Signal_Domain:
		return CheckDomain(v.Domain)
	case *pb.Signal_Account:
		a := v.Account
		switch {
		case a.Service == "" || len(a.Service) > MaxServiceLen || strings.ToLower(a.Service) != a.Service || strings.ContainsAny(a.Service, ": \t\n\x00"):
			return fmt.Errorf("%w: account: service %q: want a lower-case host name of at most %d bytes", ErrSignal, a.Service, MaxServiceLen)
		case a.Id == "" || len(a.Id) > MaxAccountLen || strings.ContainsAny(a.Id, "\x00\n"):
			return fmt.Errorf("%w: account: id %q: want 1 to %d bytes, no NUL or newline", ErrSignal, a.Id, MaxAccountLen)
		case !utf8.ValidString(a.Service) || !utf8.ValidString(a.Id):
			return fmt.Errorf("%w: account: not valid UTF-8", ErrSignal)
		}
	default:
		return fmt.Errorf("%w: signal has no value", ErrSignal)
	}
	return nil
}

// TypeOf returns the signal's type. The signal must have passed CheckSignal.
func TypeOf(s *pb.Signal) SignalType {
	switch v := s.GetValue().(type) {
	case *pb.Signal_Multihash:
		if len(v.Multihash) > 0 && v.Multihash[0] == mh.MD5 {
			return SignalMD5
		}
		return SignalSHA256
	case *pb.Signal_Pdq:
		return SignalPDQ
	case *pb.Signal_Url:
		return SignalURL
	case *pb.Signal_Account:
		return SignalAccount
	case *pb.Signal_Vpdq:
		return SignalVPDQ
	case *pb.Signal_Domain:
		return SignalDomain
	}
	return ""
}

// SignalKey is the signal's index key: a one-byte type tag, then the
// digest (sha256, md5), the 32 hash bytes (pdq), the URL in v2 normal form, or
// service, 0x00, id (account), the SHA-256 of the canonical value (vpdq),
// or the name, "*." first if it covers its subdomains (domain). Equal
// signals have equal keys. The signal must have passed CheckSignal.
func SignalKey(s *pb.Signal) []byte {
	switch v := s.GetValue().(type) {
	case *pb.Signal_Multihash:
		tag := byte(tagSHA256)
		if TypeOf(s) == SignalMD5 {
			tag = tagMD5
		}
		return append([]byte{tag}, multihashDigest(v.Multihash)...)
	case *pb.Signal_Pdq:
		return append([]byte{tagPDQ}, v.Pdq...)
	case *pb.Signal_Url:
		// The v2 form of a v1 URL: equivalent URLs of either form meet.
		return append([]byte{tagURL}, URLKey(v.Url)...)
	case *pb.Signal_Account:
		k := append([]byte{tagAccount}, v.Account.Service...)
		return append(append(k, 0), v.Account.Id...)
	case *pb.Signal_Vpdq:
		return vpdqKey(v.Vpdq)
	case *pb.Signal_Domain:
		return domainKey(v.Domain.Name, v.Domain.Subdomains)
	}
	return nil
}

// FormatSignal writes a signal as TYPE:VALUE, the inverse of ParseSignal.
func FormatSignal(s *pb.Signal) string {
	typ, val := SignalValue(s)
	return string(typ) + ":" + val
}

// SignalValue returns the signal's type and its value as ParseSignal takes it.
func SignalValue(s *pb.Signal) (SignalType, string) {
	switch v := s.GetValue().(type) {
	case *pb.Signal_Multihash:
		return TypeOf(s), hex.EncodeToString(multihashDigest(v.Multihash))
	case *pb.Signal_Pdq:
		return SignalPDQ, hex.EncodeToString(v.Pdq)
	case *pb.Signal_Url:
		return SignalURL, v.Url
	case *pb.Signal_Account:
		return SignalAccount, v.Account.Service + ":" + v.Account.Id
	case *pb.Signal_Vpdq:
		frames, err := DecodeVPDQ(v.Vpdq)
		if err != nil {
			return SignalVPDQ, ""
		}
		return SignalVPDQ, FormatVPDQ(frames)
	case *pb.Signal_Domain:
		return SignalDomain, FormatDomain(v.Domain)
	}
	return "", ""
}

// multihashDigest returns the digest part of a multihash: what follows the
// code and the length, two varints. The md5 code (0xd5) takes two bytes
// (d5 01), sha2-256 (0x12) one, so the offset is not fixed.
func multihashDigest(m []byte) []byte {
	_, n := binary.Uvarint(m)
	if n <= 0 {
		return nil
	}
	_, k := binary.Uvarint(m[n:])
	if k <= 0 {
		return nil
	}
	return m[n+k:]
}
