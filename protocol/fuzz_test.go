package protocol

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/protocol/pb"
)

// checkParseError fails t unless err wraps sentinel and is one line: parse
// errors quote what they were given, which may hold a newline.
func checkParseError(t *testing.T, err, sentinel error) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("error does not wrap %v: %v", sentinel, err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("error %q is not one line", err)
	}
}

// FuzzDecode: Decode never panics; what it accepts is canonical (re-encoding
// the decoded body gives the same bytes, so the same id), decodes again
// to the same entry, and DecodeStored (the generated decoder a replica
// reads its own entries with) decodes it to the same body; what it rejects is rejected with ErrMalformed or
// ErrTooLarge.
func FuzzDecode(f *testing.F) {
	_, built := buildVectors(f)
	for _, v := range built {
		raw := v.entry.Raw
		f.Add(raw)
		f.Add(raw[:len(raw)/2])
		f.Add(append(append([]byte(nil), raw...), 0))
		flipped := append([]byte(nil), raw...)
		flipped[len(flipped)/3] ^= 0x10
		f.Add(flipped)
		f.Add(rawSignBytes(seedKey(0x01), append(append([]byte(nil), v.entry.Signed...), 0x98, 0x06, 0x01)))
	}
	for _, body := range membershipBodies() {
		body.Version, body.Federation, body.Author, body.Seq, body.TimestampMs = 1, "fuzz", make([]byte, 32), 1, 1
		signed, err := proto.MarshalOptions{Deterministic: true}.Marshal(body)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(rawSignBytes(seedKey(0x01), signed))
	}
	// A blocking order (SPEC 6.9) and a blocked reply.
	for _, body := range []*pb.Entry{
		{Payload: &pb.Entry_Notice{Notice: &pb.Notice{Addressee: make([]byte, 32), Signals: []*pb.Signal{mustSignal("domain", "*.a.example")},
			Category: mustLabel("attacker-manifesto"), LegalBasis: "b", DeadlineMs: 5, Blocking: &pb.Blocking{StartMs: 2, EndMs: 9}}}},
		{Payload: &pb.Entry_NoticeReply{NoticeReply: &pb.NoticeReply{Notice: fakeID(1), Status: pb.ReplyStatus_REPLY_STATUS_BLOCKED}}},
	} {
		body.Version, body.Federation, body.Author, body.Seq, body.TimestampMs = 1, "fuzz", make([]byte, 32), 1, 1
		signed, err := proto.MarshalOptions{Deterministic: true}.Marshal(body)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(rawSignBytes(seedKey(0x01), signed))
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x00, 0x12, 0x40})
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := Decode(raw)
		if err != nil {
			if e != nil {
				t.Fatal("entry and error")
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error wraps neither ErrMalformed nor ErrTooLarge: %v", err)
			}
			return
		}
		if e.ID != IDOf(raw) || !bytes.Equal(e.Raw, raw) {
			t.Fatal("id or raw differ")
		}
		canon, err := proto.MarshalOptions{Deterministic: true}.Marshal(e.Body)
		if err != nil || !bytes.Equal(canon, e.Signed) {
			t.Fatalf("accepted a non-canonical entry: %x", e.Signed)
		}
		if !bytes.Equal(encodeSigned(canon, e.Signature), raw) {
			t.Fatal("accepted a non-canonical signed entry")
		}
		again, err := Decode(append([]byte(nil), e.Raw...))
		if err != nil || again.ID != e.ID || !proto.Equal(again.Body, e.Body) {
			t.Fatalf("re-decode: %v", err)
		}
		stored, err := DecodeStored(append([]byte(nil), e.Raw...), e.ID)
		if err != nil || stored.Author != e.Author || !proto.Equal(stored.Body, e.Body) {
			t.Fatalf("DecodeStored differs from Decode: %v\n%v\n%v", err, stored, e.Body)
		}
		if e.Kind() == "" {
			t.Fatal("accepted an entry without a payload")
		}
		if named, ok := NamedSignals(e.Body); ok {
			if len(named) > MaxSignals {
				t.Fatalf("accepted %d named signals", len(named))
			}
			for i := 1; i < len(named); i++ {
				if bytes.Compare(SignalKey(named[i-1]), SignalKey(named[i])) >= 0 {
					t.Fatalf("accepted named signals out of index-key order: %v", named)
				}
			}
		}
		if err := e.Verify(); err != nil && !errors.Is(err, ErrBadSignature) {
			t.Fatalf("verify: %v", err)
		}
		_ = CheckNext(Head{}, e)
	})
}

// FuzzParseSignal: ParseSignal never panics; what it accepts passes
// CheckSignal, can be encoded, and survives FormatSignal/ParseSignal
// unchanged, with the same index key.
func FuzzParseSignal(f *testing.F) {
	for _, s := range [][2]string{
		{"sha256", sha256Empty}, {"sha256", strings.ToUpper(sha256Empty)}, {"md5", md5Empty}, {"pdq", pdqHex},
		{"url", "https://Example.com:443/a?b#c"}, {"url", "http://[::1]:80"}, {"account", "Example.com:user"},
		{"account", "a:b:c"}, {"tmk", "00"}, {"url", "https://example.com/?\xff"}, {"account", "\xff:x"},
		{"url", "https://exa\nmple.com/"}, {"account", "a\n"}, {"account", "a:\nb"}, {"md5", strings.Repeat("\n", 32)}, {"t\nmk", "00"},
		{"domain", "*.Bücher.example."}, {"domain", "192.0.2.1"}, {"domain", "co.uk"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, typ, value string) {
		s, err := ParseSignal(typ, value)
		if err != nil {
			checkParseError(t, err, ErrSignal)
			return
		}
		if err := CheckSignal(s); err != nil {
			t.Fatalf("ParseSignal accepted what CheckSignal rejects: %v", err)
		}
		if string(TypeOf(s)) != typ {
			t.Fatalf("TypeOf = %q, want %q", TypeOf(s), typ)
		}
		if _, err := proto.Marshal(s); err != nil {
			t.Fatalf("accepted a signal that cannot be encoded: %v", err)
		}
		f := FormatSignal(s)
		typ2, val2, _ := strings.Cut(f, ":")
		s2, err := ParseSignal(typ2, val2)
		if err != nil {
			t.Fatalf("FormatSignal gave %q, which does not parse: %v", f, err)
		}
		if !proto.Equal(s, s2) || !bytes.Equal(SignalKey(s), SignalKey(s2)) || FormatSignal(s2) != f {
			t.Fatalf("round trip of %q changed it", f)
		}
	})
}

// FuzzNormalizeURL: NormalizeURL never panics and is idempotent; its
// result is valid UTF-8 within MaxURLLen and passes CheckSignal.
func FuzzNormalizeURL(f *testing.F) {
	for _, s := range []string{
		"https://example.com", "HTTP://EXAMPLE.COM:80/A?B#C", "http://[2001:DB8::1]:8080/x", "https://b\u00fccher.example/",
		"https://example.com/a%2Fb", "https://example.com/%zz", "http://a/?\xff", "http://[fe80::1%25en0]/", "https://u:p@h/",
		"http://%41.com/", "HTTP://0? #", "https://example.com/" + strings.Repeat("%20", 700), "http://a\n/", "http://[\n]/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		n, err := NormalizeURL(in)
		if err != nil {
			checkParseError(t, err, ErrSignal)
			return
		}
		again, err := NormalizeURL(n)
		if err != nil {
			t.Fatalf("NormalizeURL(%q) = %q, which it rejects: %v", in, n, err)
		}
		if again != n {
			t.Fatalf("not idempotent: %q -> %q -> %q", in, n, again)
		}
		if !utf8.ValidString(n) || len(n) > MaxURLLen {
			t.Fatalf("normal form %q is not valid UTF-8 or too long", n)
		}
	})
}

// FuzzParseLabel: ParseLabel never panics; what it accepts can be encoded
// and survives FormatLabel/ParseLabel unchanged.
func FuzzParseLabel(f *testing.F) {
	for _, s := range []string{"graphic-violence", "other:text", " other : x ", "other:", "spam", "other:a:b", "other:\xff", "spa\nm", "other:a\nb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		l, err := ParseLabel(in)
		if err != nil {
			checkParseError(t, err, ErrLabel)
			return
		}
		if _, err := proto.Marshal(l); err != nil {
			t.Fatalf("accepted a label that cannot be encoded: %v", err)
		}
		l2, err := ParseLabel(FormatLabel(l))
		if err != nil || !proto.Equal(l, l2) {
			t.Fatalf("round trip of %q: %v", FormatLabel(l), err)
		}
	})
}

// membershipBodies are one body of each membership payload (SPEC 12.2),
// valid, for the fuzz corpora.
func membershipBodies() []*pb.Entry {
	key := bytes.Repeat([]byte{7}, 32)
	id := append([]byte{0x12, 0x20}, bytes.Repeat([]byte{9}, 32)...)
	block := &pb.MemberBlock{Name: "acme", Role: "platform", AuthorKey: key, PeerId: "12D3KooWAcme", Addrs: []string{"/ip4/192.0.2.1/tcp/4001"}}
	amend := func(a *pb.Amendment) *pb.Entry { return &pb.Entry{Payload: &pb.Entry_Amendment{Amendment: a}} }
	return []*pb.Entry{
		amend(&pb.Amendment{Base: 3, Change: &pb.Amendment_Admit{Admit: block}}),
		amend(&pb.Amendment{Change: &pb.Amendment_Remove{Remove: &pb.Removal{Member: "acme", Key: key, AfterSeq: 12}}}),
		amend(&pb.Amendment{Change: &pb.Amendment_Role{Role: &pb.RoleChange{Member: "acme", Key: key, AfterSeq: 1, Role: "referral"}}}),
		amend(&pb.Amendment{Change: &pb.Amendment_Revoke{Revoke: &pb.Revocation{Member: "acme", Key: key, AfterSeq: 5, NewKey: bytes.Repeat([]byte{8}, 32)}}}),
		amend(&pb.Amendment{Change: &pb.Amendment_Rule{Rule: &pb.VotingRule{Roles: []string{"referral", "platform"}, ThresholdPercent: 66}}}),
		{Payload: &pb.Entry_Approval{Approval: &pb.Approval{Proposal: id, Base: 3}}},
		{Payload: &pb.Entry_Rotation{Rotation: &pb.Rotation{NewKey: bytes.Repeat([]byte{8}, 32)}}},
		{Payload: &pb.Entry_PeerUpdate{PeerUpdate: &pb.PeerUpdate{PeerId: "12D3KooWAcme", Addrs: []string{"/dns4/acme.example/tcp/4001"}}}},
	}
}

// TestMembershipPayloads: each membership payload decodes when valid and
// is malformed when a field breaks its rule (SPEC 12.2).
func TestMembershipPayloads(t *testing.T) {
	for _, body := range membershipBodies() {
		if err := CheckPayload(body); err != nil {
			t.Errorf("%s: %v", KindOf(body), err)
		}
	}
	bad := []struct {
		name string
		body *pb.Entry
	}{
		{"admit: bad name", &pb.Entry{Payload: &pb.Entry_Amendment{Amendment: &pb.Amendment{Change: &pb.Amendment_Admit{Admit: &pb.MemberBlock{Name: "Acme", Role: "platform", AuthorKey: bytes.Repeat([]byte{7}, 32), PeerId: "12D3KooWAcme"}}}}}},
		{"admit: bad role", &pb.Entry{Payload: &pb.Entry_Amendment{Amendment: &pb.Amendment{Change: &pb.Amendment_Admit{Admit: &pb.MemberBlock{Name: "acme", Role: "admin", AuthorKey: bytes.Repeat([]byte{7}, 32), PeerId: "12D3KooWAcme"}}}}}},
		{"admit: zero key", &pb.Entry{Payload: &pb.Entry_Amendment{Amendment: &pb.Amendment{Change: &pb.Amendment_Admit{Admit: &pb.MemberBlock{Name: "acme", Role: "platform", AuthorKey: make([]byte, 32), PeerId: "12D3KooWAcme"}}}}}},
		{"admit: peer not base58", &pb.Entry{Payload: &pb.Entry_Amendment{Amendment: &pb.Amendment{Change: &pb.Amendment_Admit{Admit: &pb.MemberBlock{Name: "acme", Role: "platform", AuthorKey: bytes.Repeat([]byte{7}, 32), PeerId: "0OIl"}}}}}},
		{"admit: address", &pb.Entry{Payload: &pb.Entry_Amendment{Amendment: &pb.Amendment{Change: &pb.Amendment_Admit{Admit: &pb.MemberBlock{Name: "acme", Role: "platform", AuthorKey: bytes.Repeat([]byte{7}, 32), PeerId: "12D3KooWAcme", Addrs: []string{"ip4 1.2.3.4"}}}}}}},
		{"no change", &pb.Entry{Payload: &pb.Entry_Amendment{Amendment: &pb.Amendment{Base: 1}}}},
		{"rule: threshold 49", &pb.Entry{Payload: &pb.Entry_Amendment{Amendment: &pb.Amendment{Change: &pb.Amendment_Rule{Rule: &pb.VotingRule{Roles: []string{"platform"}, ThresholdPercent: 49}}}}}},
		{"rule: threshold 100", &pb.Entry{Payload: &pb.Entry_Amendment{Amendment: &pb.Amendment{Change: &pb.Amendment_Rule{Rule: &pb.VotingRule{Roles: []string{"platform"}, ThresholdPercent: 100}}}}}},
		{"rule: repeated role", &pb.Entry{Payload: &pb.Entry_Amendment{Amendment: &pb.Amendment{Change: &pb.Amendment_Rule{Rule: &pb.VotingRule{Roles: []string{"platform", "platform"}, ThresholdPercent: 50}}}}}},
		{"revoke: new key is the key", &pb.Entry{Payload: &pb.Entry_Amendment{Amendment: &pb.Amendment{Change: &pb.Amendment_Revoke{Revoke: &pb.Revocation{Member: "acme", Key: bytes.Repeat([]byte{7}, 32), NewKey: bytes.Repeat([]byte{7}, 32)}}}}}},
		{"approval: not an id", &pb.Entry{Payload: &pb.Entry_Approval{Approval: &pb.Approval{Proposal: []byte{1, 2}}}}},
		{"rotation: short key", &pb.Entry{Payload: &pb.Entry_Rotation{Rotation: &pb.Rotation{NewKey: []byte{1}}}}},
		{"peer update: no peer", &pb.Entry{Payload: &pb.Entry_PeerUpdate{PeerUpdate: &pb.PeerUpdate{}}}},
	}
	for _, c := range bad {
		if err := CheckPayload(c.body); !errors.Is(err, ErrMalformed) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}
