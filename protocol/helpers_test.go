package protocol

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/protocol/pb"
)

// seedKey returns the ed25519 key whose 32-byte seed is first, first+1, ...
// first+31. The vectors use first = 0x01, 0x21 and 0x41.
func seedKey(first byte) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = first + byte(i)
	}
	return ed25519.NewKeyFromSeed(seed)
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func mustSignal(typ, value string) *pb.Signal {
	s, err := ParseSignal(typ, value)
	if err != nil {
		panic(err)
	}
	return s
}

func mustLabel(s string) *pb.Label {
	l, err := ParseLabel(s)
	if err != nil {
		panic(err)
	}
	return l
}

// fakeID is a well-formed entry id that names no entry.
func fakeID(b byte) []byte {
	id := IDOf([]byte{b})
	return id[:]
}

// rawSignBytes signs entry bytes as they are, canonical or not, and wraps
// them in a canonical SignedEntry: the signature is valid over exactly
// these bytes, so a rejection can only come from the encoding rules.
func rawSignBytes(priv ed25519.PrivateKey, entry []byte) []byte {
	return encodeSigned(entry, ed25519.Sign(priv, signingBytes(entry)))
}

// rawSign encodes body deterministically, without any check, sets the
// author from priv unless body has one, and signs it.
func rawSign(t testing.TB, priv ed25519.PrivateKey, body *pb.Entry) []byte {
	t.Helper()
	if body.Author == nil {
		ak := AuthorKeyOf(priv)
		body.Author = ak[:]
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(body)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return rawSignBytes(priv, b)
}

const testTS = 1767225600000 // 2026-01-01T00:00:00Z

// header is a valid seq-1 entry header with no payload.
func header() *pb.Entry {
	return &pb.Entry{Version: Version, Federation: "test", Seq: 1, TimestampMs: testTS}
}

func testSealed(to ...AuthorKey) *pb.Sealed {
	s := &pb.Sealed{Nonce: make([]byte, 24), Ciphertext: []byte("ciphertext")}
	for _, k := range to {
		s.Recipients = append(s.Recipients, &pb.Recipient{Member: append([]byte(nil), k[:]...), SealedKey: make([]byte, 48)})
	}
	return s
}

// validBody returns a fresh, valid seq-1 body of the given kind. A notice
// is addressed to addressee.
func validBody(k Kind, addressee AuthorKey) *pb.Entry {
	b := header()
	switch k {
	case KindAddition:
		b.Payload = &pb.Entry_Addition{Addition: &pb.Addition{
			Signals: []*pb.Signal{mustSignal("sha256", strings.Repeat("ab", 32))},
			Labels:  []*pb.Label{mustLabel("graphic-violence")},
		}}
	case KindRetraction:
		b.Payload = &pb.Entry_Retraction{Retraction: &pb.Retraction{Target: fakeID(1)}}
	case KindDispute:
		b.Payload = &pb.Entry_Dispute{Dispute: &pb.Dispute{Target: fakeID(2), Reason: "news footage"}}
	case KindAllow:
		b.Payload = &pb.Entry_Allow{Allow: &pb.Allow{
			Signals:  []*pb.Signal{mustSignal("md5", strings.Repeat("cd", 16))},
			Category: "news", Reason: "broadcast report",
		}}
	case KindNotice:
		b.Payload = &pb.Entry_Notice{Notice: &pb.Notice{
			Addressee:  append([]byte(nil), addressee[:]...),
			Signals:    []*pb.Signal{mustSignal("url", "https://platform.example/v/1")},
			Category:   mustLabel("recruitment-and-instruction"),
			LegalBasis: "art. 3",
			Binding:    true,
			DeadlineMs: testTS + 3600000,
		}}
	case KindNoticeUpdate:
		b.Payload = &pb.Entry_NoticeUpdate{NoticeUpdate: &pb.NoticeUpdate{Notice: fakeID(3), Withdraw: true}}
	case KindNoticeReply:
		b.Payload = &pb.Entry_NoticeReply{NoticeReply: &pb.NoticeReply{
			Notice: fakeID(4), Status: pb.ReplyStatus_REPLY_STATUS_REMOVED, ActionTimeMs: testTS,
		}}
	default:
		panic("unknown kind " + string(k))
	}
	return b
}

var allKinds = []Kind{KindAddition, KindRetraction, KindDispute, KindAllow, KindNotice, KindNoticeUpdate, KindNoticeReply}

// sentinels lists every sentinel error of the package.
var sentinels = []error{ErrMalformed, ErrTooLarge, ErrBadSignature, ErrUnknownAuthor, ErrRole, ErrFederation, ErrChain, ErrGap, ErrSignal, ErrLabel, ErrKey}

// checkErr fails unless err wraps want and its message contains every
// one of mention.
func checkErr(t testing.TB, err, want error, mention ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", want)
	}
	if !errors.Is(err, want) {
		t.Fatalf("error %q does not wrap %q", err, want)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q is not one line", err)
	}
	for _, s := range sentinels {
		if s != want && errors.Is(err, s) {
			t.Errorf("error %q wraps %q as well as %q", err, s, want)
		}
	}
	for _, m := range mention {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("error %q does not mention %q", err, m)
		}
	}
}
