package protocol

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/protocol/pb"
)

// field is one top-level field of an encoded message: its number and its
// complete encoding (tag and value).
type field struct {
	num protowire.Number
	enc []byte
}

func splitFields(t testing.TB, b []byte) []field {
	t.Helper()
	var fs []field
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("split: %v", protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			t.Fatalf("split: %v", protowire.ParseError(m))
		}
		fs = append(fs, field{num, b[:n+m]})
		b = b[n+m:]
	}
	return fs
}

func joinFields(fs []field) []byte {
	var b []byte
	for _, f := range fs {
		b = append(b, f.enc...)
	}
	return b
}

// canonicalEntry is the Entry bytes of a valid addition at seq 1.
func canonicalEntry(t testing.TB, priv ed25519.PrivateKey) []byte {
	t.Helper()
	e, err := Sign(priv, validBody(KindAddition, AuthorKey{}))
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), e.Signed...)
}

// nonMinimal encodes v as a varint one byte longer than necessary.
func nonMinimal(v uint64) []byte {
	b := protowire.AppendVarint(nil, v)
	b[len(b)-1] |= 0x80
	return append(b, 0x00)
}

type rejectCase struct {
	name    string
	raw     []byte
	want    error
	mention []string
}

func TestDecodeRejectsSignedEntryEncoding(t *testing.T) {
	priv := seedKey(0x01)
	good, err := Sign(priv, validBody(KindAddition, AuthorKey{}))
	if err != nil {
		t.Fatal(err)
	}
	raw, entry, sig := good.Raw, good.Signed, good.Signature
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	f1 := cat(protowire.AppendTag(nil, 1, protowire.BytesType), protowire.AppendBytes(nil, entry))
	f2 := cat(protowire.AppendTag(nil, 2, protowire.BytesType), protowire.AppendBytes(nil, sig))

	cases := []rejectCase{
		{"empty", nil, ErrMalformed, []string{"field 1 (entry)"}},
		{"oversized", make([]byte, MaxEntrySize+1), ErrTooLarge, []string{fmt.Sprint(MaxEntrySize + 1), fmt.Sprint(MaxEntrySize)}},
		{"oversized valid prefix", cat(raw, make([]byte, MaxEntrySize)), ErrTooLarge, []string{"limit"}},
		{"truncated in signature", raw[:len(raw)-1], ErrMalformed, []string{"signature", "truncated"}},
		{"truncated in entry", raw[:20], ErrMalformed, []string{"entry", "truncated"}},
		{"truncated after entry", f1, ErrMalformed, []string{"field 2 (signature)"}},
		{"trailing byte", cat(raw, []byte{0}), ErrMalformed, []string{"signed entry", "trailing"}},
		{"extra field 3", cat(raw, []byte{0x1a, 0x01, 0x00}), ErrMalformed, []string{"signed entry", "trailing"}},
		{"signature then entry", cat(f2, f1), ErrMalformed, []string{"field 1 (entry)"}},
		{"entry twice", cat(f1, f1, f2), ErrMalformed, []string{"field 2 (signature)"}},
		{"entry as varint", cat([]byte{0x08, 0x01}, f2), ErrMalformed, []string{"field 1 (entry)"}},
		{"non-minimal entry length", cat([]byte{0x0a}, nonMinimal(uint64(len(entry))), entry, f2), ErrMalformed, []string{"signed entry", "canonical"}},
		{"non-minimal signature length", cat(f1, []byte{0x12}, nonMinimal(64), sig), ErrMalformed, []string{"signed entry", "canonical"}},
		{"non-minimal tag", cat([]byte{0x8a, 0x00}, protowire.AppendBytes(nil, entry), f2), ErrMalformed, []string{"signed entry", "canonical"}},
		{"signature 63 bytes", encodeSigned(entry, sig[:63]), ErrMalformed, []string{"signature", "want 64 bytes, got 63"}},
		{"signature 65 bytes", encodeSigned(entry, append(append([]byte(nil), sig...), 0)), ErrMalformed, []string{"signature", "want 64 bytes, got 65"}},
		{"signature empty", encodeSigned(entry, nil), ErrMalformed, []string{"signature", "got 0"}},
		{"entry empty", rawSignBytes(priv, nil), ErrMalformed, []string{"version"}},
	}
	runRejects(t, cases)
}

func runRejects(t *testing.T, cases []rejectCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, err := Decode(c.raw)
			if e != nil {
				t.Fatalf("decoded: %s", describe(e.Body))
			}
			checkErr(t, err, c.want, c.mention...)
		})
	}
}

// Each of these carries a valid signature over its Entry bytes: only the
// canonical-encoding rule rejects it.
func TestDecodeRejectsNonCanonicalEntry(t *testing.T) {
	priv := seedKey(0x01)
	canon := canonicalEntry(t, priv)
	fs := splitFields(t, canon) // version, federation, author, seq, timestamp, addition
	if len(fs) != 6 || fs[3].num != 4 || fs[5].num != 10 {
		t.Fatalf("unexpected field layout %v", fs)
	}
	with := func(edit func(fs []field) []field) []byte {
		c := append([]field(nil), fs...)
		return joinFields(edit(c))
	}
	tagBytes := func(n protowire.Number, typ protowire.Type) []byte { return protowire.AppendTag(nil, n, typ) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	retraction := cat(tagBytes(11, protowire.BytesType), protowire.AppendBytes(nil, cat(tagBytes(1, protowire.BytesType), protowire.AppendBytes(nil, fakeID(1)))))

	// The addition (field 10) with its labels before its signals.
	addFields := splitFields(t, fs[5].enc[2:]) // tag 0x52, one-byte length
	if fs[5].enc[0] != 0x52 || int(fs[5].enc[1]) != len(fs[5].enc)-2 {
		t.Fatalf("addition encoding %x", fs[5].enc[:2])
	}
	swappedAdd := cat(tagBytes(10, protowire.BytesType), protowire.AppendBytes(nil, joinFields([]field{addFields[1], addFields[0]})))
	// A label (inside the addition) with an unknown field.
	labelUnknown := func() []byte {
		b := validBody(KindAddition, AuthorKey{})
		ak := AuthorKeyOf(priv)
		b.Author = ak[:]
		b.GetAddition().Labels[0].ProtoReflect().SetUnknown(cat(tagBytes(7, protowire.VarintType), []byte{1}))
		enc, err := proto.MarshalOptions{Deterministic: true}.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		return enc
	}()

	entries := []struct {
		name  string
		entry []byte
	}{
		{"unknown varint field appended", cat(canon, tagBytes(99, protowire.VarintType), []byte{7})},
		{"unknown bytes field appended", cat(canon, tagBytes(7, protowire.BytesType), []byte{1, 'x'})},
		{"unknown field inside a label", labelUnknown},
		{"unknown field first", cat(tagBytes(99, protowire.VarintType), []byte{7}, canon)},
		{"unknown group appended", cat(canon, tagBytes(20, protowire.StartGroupType), tagBytes(20, protowire.EndGroupType))},
		{"known field with the wrong wire type appended", cat(canon, tagBytes(4, protowire.BytesType), []byte{1, 1})},
		{"seq before author", with(func(fs []field) []field { fs[2], fs[3] = fs[3], fs[2]; return fs })},
		{"payload before header", with(func(fs []field) []field { return append([]field{fs[5]}, fs[:5]...) })},
		{"labels before signals", with(func(fs []field) []field { fs[5].enc = swappedAdd; return fs })},
		{"seq twice", with(func(fs []field) []field { return append(fs[:4], append([]field{fs[3]}, fs[4:]...)...) })},
		{"seq non-minimal varint", with(func(fs []field) []field { fs[3].enc = cat(tagBytes(4, protowire.VarintType), nonMinimal(1)); return fs })},
		{"seq with non-minimal tag", with(func(fs []field) []field { fs[3].enc = []byte{0xa0, 0x00, 0x01}; return fs })},
		{"version written as 0 then 1", with(func(fs []field) []field { return append([]field{{1, []byte{0x08, 0x00}}}, fs...) })},
		{"default prev written out", with(func(fs []field) []field {
			return append(fs[:4], append([]field{{5, []byte{0x2a, 0x00}}}, fs[4:]...)...)
		})},
		{"default case_ref written out", func() []byte {
			add := cat(fs[5].enc[2:], []byte{0x1a, 0x00})
			return with(func(fs []field) []field {
				fs[5].enc = cat(tagBytes(10, protowire.BytesType), protowire.AppendBytes(nil, add))
				return fs
			})
		}()},
		{"two payloads", cat(canon, retraction)},
		{"version as 5-byte varint of 2^32+1", with(func(fs []field) []field {
			fs[0].enc = cat(tagBytes(1, protowire.VarintType), protowire.AppendVarint(nil, 1<<32+1))
			return fs
		})},
	}
	var cases []rejectCase
	for _, e := range entries {
		cases = append(cases, rejectCase{e.name, rawSignBytes(priv, e.entry), ErrMalformed, []string{"entry", "canonical"}})
	}
	// Not protobuf at all, or not valid proto3: rejected by the parser.
	for _, e := range []struct {
		name  string
		entry []byte
	}{
		{"entry truncated", canon[:len(canon)-1]},
		{"field number 0", cat(canon, []byte{0x00, 0x01})},
		{"federation not UTF-8", with(func(fs []field) []field {
			fs[1].enc = cat(tagBytes(2, protowire.BytesType), protowire.AppendBytes(nil, []byte{0xff, 0xfe}))
			return fs
		})},
	} {
		cases = append(cases, rejectCase{e.name, rawSignBytes(priv, e.entry), ErrMalformed, []string{"entry"}})
	}
	for _, c := range cases {
		if ed25519.Verify(priv.Public().(ed25519.PublicKey), signingBytes(splitSigned(t, c.raw)), c.raw[len(c.raw)-64:]) == false {
			t.Fatalf("%s: test setup: signature does not verify", c.name)
		}
	}
	runRejects(t, cases)
}

func splitSigned(t testing.TB, raw []byte) []byte {
	t.Helper()
	entry, _, err := decodeSigned(raw)
	if err != nil {
		t.Fatal(err)
	}
	return entry
}

// Each case is a validly signed, canonically encoded entry that breaks one
// rule of the header or the payload.
func TestDecodeRejectsInvalidFields(t *testing.T) {
	priv := seedKey(0x01)
	var platform AuthorKey
	copy(platform[:], seedKey(0x41).Public().(ed25519.PublicKey))
	sig := func(typ, v string) *pb.Signal { return mustSignal(typ, v) }
	sha := sig("sha256", strings.Repeat("ab", 32))
	mhSignal := func(b []byte) *pb.Signal { return &pb.Signal{Value: &pb.Signal_Multihash{Multihash: b}} }
	many := func(n int) []*pb.Signal {
		s := make([]*pb.Signal, n)
		for i := range s {
			s[i] = sha
		}
		return s
	}
	labels := func(n int) []*pb.Label {
		l := make([]*pb.Label, n)
		for i := range l {
			l[i] = mustLabel("graphic-violence")
		}
		return l
	}
	add := func(b *pb.Entry) *pb.Addition { return b.GetAddition() }
	notice := func(b *pb.Entry) *pb.Notice { return b.GetNotice() }
	update := func(b *pb.Entry) *pb.NoticeUpdate { return b.GetNoticeUpdate() }
	reply := func(b *pb.Entry) *pb.NoticeReply { return b.GetNoticeReply() }
	long := func(n int) string { return strings.Repeat("x", n) }

	type c struct {
		name    string
		kind    Kind
		edit    func(b *pb.Entry)
		mention []string
	}
	cases := []c{
		// Header.
		{"version 0", KindAddition, func(b *pb.Entry) { b.Version = 0 }, []string{"version", "0, want 1"}},
		{"version 2", KindAddition, func(b *pb.Entry) { b.Version = 2 }, []string{"version", "2, want 1"}},
		{"empty federation", KindAddition, func(b *pb.Entry) { b.Federation = "" }, []string{"federation", "got 0"}},
		{"federation too long", KindAddition, func(b *pb.Entry) { b.Federation = long(MaxFederationLen + 1) }, []string{"federation", "got 65"}},
		{"author missing", KindAddition, func(b *pb.Entry) { b.Author = []byte{} }, []string{"author", "got 0"}},
		{"author 31 bytes", KindAddition, func(b *pb.Entry) { b.Author = make([]byte, 31) }, []string{"author", "want 32 bytes, got 31"}},
		{"author 33 bytes", KindAddition, func(b *pb.Entry) { b.Author = make([]byte, 33) }, []string{"author", "got 33"}},
		{"seq 0", KindAddition, func(b *pb.Entry) { b.Seq = 0 }, []string{"seq"}},
		{"prev at seq 1", KindAddition, func(b *pb.Entry) { b.Prev = fakeID(9) }, []string{"prev", "seq 1"}},
		{"prev missing at seq 2", KindAddition, func(b *pb.Entry) { b.Seq = 2 }, []string{"prev", "sha2-256 multihash"}},
		{"prev sha2-512 code", KindAddition, func(b *pb.Entry) {
			b.Seq, b.Prev = 2, fakeID(9)
			b.Prev[0] = 0x13
		}, []string{"prev", "sha2-256 multihash"}},
		{"prev wrong length byte", KindAddition, func(b *pb.Entry) {
			b.Seq, b.Prev = 2, fakeID(9)
			b.Prev[1] = 0x21
		}, []string{"prev"}},
		{"prev raw digest", KindAddition, func(b *pb.Entry) { b.Seq, b.Prev = 2, fakeID(9)[2:] }, []string{"prev", "32 bytes"}},
		{"timestamp 0", KindAddition, func(b *pb.Entry) { b.TimestampMs = 0 }, []string{"timestamp_ms", "got 0"}},
		{"timestamp negative", KindAddition, func(b *pb.Entry) { b.TimestampMs = -1 }, []string{"timestamp_ms", "got -1"}},
		{"no payload", KindAddition, func(b *pb.Entry) { b.Payload = nil }, []string{"payload"}},

		// Addition and signals.
		{"addition without signals", KindAddition, func(b *pb.Entry) { add(b).Signals = nil }, []string{"addition.signals", "got 0"}},
		{"addition with 1001 signals", KindAddition, func(b *pb.Entry) { add(b).Signals = many(MaxSignals + 1) }, []string{"addition.signals", "got 1001"}},
		{"signal without value", KindAddition, func(b *pb.Entry) { add(b).Signals = []*pb.Signal{{}} }, []string{"addition.signals[0]", "no value"}},
		{"multihash sha2-512", KindAddition, func(b *pb.Entry) {
			add(b).Signals = []*pb.Signal{sha, mhSignal(append([]byte{0x13, 0x40}, make([]byte, 64)...))}
		}, []string{"addition.signals[1]", "code 0x13"}},
		{"multihash identity", KindAddition, func(b *pb.Entry) { add(b).Signals = []*pb.Signal{mhSignal([]byte{0x00, 0x01, 0x00})} }, []string{"addition.signals[0]", "code 0x0"}},
		{"sha256 multihash 31-byte digest", KindAddition, func(b *pb.Entry) {
			add(b).Signals = []*pb.Signal{mhSignal(append([]byte{0x12, 0x1f}, make([]byte, 31)...))}
		}, []string{"addition.signals[0]", "length 31"}},
		{"sha256 multihash length byte disagrees", KindAddition, func(b *pb.Entry) {
			add(b).Signals = []*pb.Signal{mhSignal(append([]byte{0x12, 0x20}, make([]byte, 31)...))}
		}, []string{"addition.signals[0]", "multihash"}},
		{"sha256 multihash trailing byte", KindAddition, func(b *pb.Entry) {
			add(b).Signals = []*pb.Signal{mhSignal(append([]byte{0x12, 0x20}, make([]byte, 33)...))}
		}, []string{"addition.signals[0]", "multihash"}},
		{"md5 of 15 bytes", KindAddition, func(b *pb.Entry) {
			add(b).Signals = []*pb.Signal{mhSignal(append([]byte{0xd5, 0x01, 0x0f}, make([]byte, 15)...))}
		}, []string{"addition.signals[0]", "code 0xd5 length 15"}},
		{"md5 code non-minimal varint", KindAddition, func(b *pb.Entry) {
			add(b).Signals = []*pb.Signal{mhSignal(append([]byte{0xd5, 0x81, 0x00, 0x10}, make([]byte, 16)...))}
		}, []string{"addition.signals[0]", "multihash"}},
		{"pdq 31 bytes", KindAddition, func(b *pb.Entry) {
			add(b).Signals = []*pb.Signal{{Value: &pb.Signal_Pdq{Pdq: make([]byte, 31)}}}
		}, []string{"addition.signals[0]", "pdq", "got 31"}},
		{"url not normalised", KindAddition, func(b *pb.Entry) {
			add(b).Signals = []*pb.Signal{{Value: &pb.Signal_Url{Url: "HTTPS://Example.com/a"}}}
		}, []string{"addition.signals[0]", "not normalised", `"https://example.com/a"`}},
		{"url fragment", KindAddition, func(b *pb.Entry) {
			add(b).Signals = []*pb.Signal{{Value: &pb.Signal_Url{Url: "https://example.com/a#b"}}}
		}, []string{"addition.signals[0]", "not normalised"}},
		{"url ftp", KindAddition, func(b *pb.Entry) {
			add(b).Signals = []*pb.Signal{{Value: &pb.Signal_Url{Url: "ftp://example.com/"}}}
		}, []string{"addition.signals[0]", "http or https"}},
		{"account upper-case service", KindAddition, func(b *pb.Entry) {
			add(b).Signals = []*pb.Signal{{Value: &pb.Signal_Account{Account: &pb.Account{Service: "Example.com", Id: "u"}}}}
		}, []string{"addition.signals[0]", "service"}},
		{"account service with colon", KindAddition, func(b *pb.Entry) {
			add(b).Signals = []*pb.Signal{{Value: &pb.Signal_Account{Account: &pb.Account{Service: "a:b", Id: "u"}}}}
		}, []string{"addition.signals[0]", "service"}},
		{"account without id", KindAddition, func(b *pb.Entry) {
			add(b).Signals = []*pb.Signal{{Value: &pb.Signal_Account{Account: &pb.Account{Service: "example.com"}}}}
		}, []string{"addition.signals[0]", "id"}},
		{"account id with newline", KindAddition, func(b *pb.Entry) {
			add(b).Signals = []*pb.Signal{{Value: &pb.Signal_Account{Account: &pb.Account{Service: "example.com", Id: "a\nb"}}}}
		}, []string{"addition.signals[0]", "newline"}},
		{"account empty message", KindAddition, func(b *pb.Entry) {
			add(b).Signals = []*pb.Signal{{Value: &pb.Signal_Account{Account: &pb.Account{}}}}
		}, []string{"addition.signals[0]", "service"}},
		{"addition without labels", KindAddition, func(b *pb.Entry) { add(b).Labels = nil }, []string{"addition.labels", "got 0"}},
		{"addition with 17 labels", KindAddition, func(b *pb.Entry) { add(b).Labels = labels(MaxLabels + 1) }, []string{"addition.labels", "got 17"}},
		{"label not in vocabulary", KindAddition, func(b *pb.Entry) { add(b).Labels = []*pb.Label{{Slug: "spam"}} }, []string{"addition.labels[0]", `"spam"`}},
		{"label upper case", KindAddition, func(b *pb.Entry) { add(b).Labels = []*pb.Label{{Slug: "Graphic-Violence"}} }, []string{"addition.labels[0]", "vocabulary"}},
		{"other without text", KindAddition, func(b *pb.Entry) { add(b).Labels = []*pb.Label{{Slug: "other"}} }, []string{"addition.labels[0]", "free text"}},
		{"slug with text", KindAddition, func(b *pb.Entry) {
			add(b).Labels = []*pb.Label{mustLabel("graphic-violence"), {Slug: "attacker-manifesto", Text: "x"}}
		}, []string{"addition.labels[1]", "attacker-manifesto"}},
		{"label text too long", KindAddition, func(b *pb.Entry) { add(b).Labels = []*pb.Label{{Slug: "other", Text: long(MaxLabelText + 1)}} }, []string{"addition.labels[0]", "257 bytes"}},
		{"case_ref too long", KindAddition, func(b *pb.Entry) { add(b).CaseRef = long(MaxCaseRefLen + 1) }, []string{"addition.case_ref", "257 bytes"}},

		// Retraction, dispute.
		{"retraction without target", KindRetraction, func(b *pb.Entry) { b.GetRetraction().Target = nil }, []string{"retraction.target"}},
		{"retraction target not an id", KindRetraction, func(b *pb.Entry) { b.GetRetraction().Target = make([]byte, 34) }, []string{"retraction.target", "sha2-256"}},
		{"retraction reason too long", KindRetraction, func(b *pb.Entry) { b.GetRetraction().Reason = long(MaxReasonLen + 1) }, []string{"retraction.reason", "1025 bytes"}},
		{"dispute without reason", KindDispute, func(b *pb.Entry) { b.GetDispute().Reason = "" }, []string{"dispute.reason", "required"}},
		{"dispute reason too long", KindDispute, func(b *pb.Entry) { b.GetDispute().Reason = long(MaxReasonLen + 1) }, []string{"dispute.reason", "1025"}},
		{"dispute without target", KindDispute, func(b *pb.Entry) { b.GetDispute().Target = nil }, []string{"dispute.target"}},
		{"retraction with 1001 signals", KindRetraction, func(b *pb.Entry) { b.GetRetraction().Signals = distinctSignals(MaxSignals + 1) }, []string{"retraction.signals", "got 1001"}},
		{"retraction signal without value", KindRetraction, func(b *pb.Entry) { b.GetRetraction().Signals = []*pb.Signal{{}} }, []string{"retraction.signals[0]", "no value"}},
		{"retraction signals out of order", KindRetraction, func(b *pb.Entry) { b.GetRetraction().Signals = []*pb.Signal{sig("md5", strings.Repeat("01", 16)), sha} }, []string{"retraction.signals[1]", "index-key order"}},
		{"retraction signal twice", KindRetraction, func(b *pb.Entry) { b.GetRetraction().Signals = []*pb.Signal{sha, sha} }, []string{"retraction.signals[1]", "index-key order"}},
		{"dispute with 1001 signals", KindDispute, func(b *pb.Entry) { b.GetDispute().Signals = distinctSignals(MaxSignals + 1) }, []string{"dispute.signals", "got 1001"}},
		{"dispute signal not normalised", KindDispute, func(b *pb.Entry) {
			b.GetDispute().Signals = []*pb.Signal{{Value: &pb.Signal_Url{Url: "HTTP://x.example"}}}
		}, []string{"dispute.signals[0]", "not normalised"}},
		{"dispute signals out of order", KindDispute, func(b *pb.Entry) { b.GetDispute().Signals = []*pb.Signal{distinctSignals(2)[1], distinctSignals(2)[0]} }, []string{"dispute.signals[1]", "index-key order"}},

		// Allow.
		{"allow without signals", KindAllow, func(b *pb.Entry) { b.GetAllow().Signals = nil }, []string{"allow.signals", "got 0"}},
		{"allow bad signal", KindAllow, func(b *pb.Entry) { b.GetAllow().Signals = []*pb.Signal{{}} }, []string{"allow.signals[0]"}},
		{"allow bad category", KindAllow, func(b *pb.Entry) { b.GetAllow().Category = "satire" }, []string{"allow.category", `"satire"`, "counter-speech"}},
		{"allow without category", KindAllow, func(b *pb.Entry) { b.GetAllow().Category = "" }, []string{"allow.category"}},
		{"allow without reason", KindAllow, func(b *pb.Entry) { b.GetAllow().Reason = "" }, []string{"allow.reason", "required"}},

		// Notice.
		{"notice without targets", KindNotice, func(b *pb.Entry) { notice(b).Signals = nil }, []string{"notice", "no target"}},
		{"notice deadline before timestamp", KindNotice, func(b *pb.Entry) { notice(b).DeadlineMs = testTS - 1 }, []string{"notice.deadline_ms", "not after"}},
		{"notice deadline equal to timestamp", KindNotice, func(b *pb.Entry) { notice(b).DeadlineMs = testTS }, []string{"notice.deadline_ms"}},
		{"notice without deadline", KindNotice, func(b *pb.Entry) { notice(b).DeadlineMs = 0 }, []string{"notice.deadline_ms"}},
		{"notice addressee 31 bytes", KindNotice, func(b *pb.Entry) { notice(b).Addressee = make([]byte, 31) }, []string{"notice.addressee", "got 31"}},
		{"notice without addressee", KindNotice, func(b *pb.Entry) { notice(b).Addressee = nil }, []string{"notice.addressee", "got 0"}},
		{"notice bad signal", KindNotice, func(b *pb.Entry) { notice(b).Signals = []*pb.Signal{{Value: &pb.Signal_Pdq{}}} }, []string{"notice.signals[0]"}},
		{"notice with 1001 signals", KindNotice, func(b *pb.Entry) { notice(b).Signals = many(MaxSignals + 1) }, []string{"notice.signals", "got 1001"}},
		{"notice without category", KindNotice, func(b *pb.Entry) { notice(b).Category = nil }, []string{"notice.category", "missing"}},
		{"notice category not in vocabulary", KindNotice, func(b *pb.Entry) { notice(b).Category = &pb.Label{Slug: "spam"} }, []string{"notice.category", `"spam"`}},
		{"notice category empty", KindNotice, func(b *pb.Entry) { notice(b).Category = &pb.Label{} }, []string{"notice.category"}},
		{"notice without legal basis", KindNotice, func(b *pb.Entry) { notice(b).LegalBasis = "" }, []string{"notice.legal_basis", "required"}},
		{"notice legal basis too long", KindNotice, func(b *pb.Entry) { notice(b).LegalBasis = long(MaxReasonLen + 1) }, []string{"notice.legal_basis"}},
		{"sealed with no recipients", KindNotice, func(b *pb.Entry) { notice(b).Details = testSealed() }, []string{"notice.details.recipients", "got 0"}},
		{"sealed with 65 recipients", KindNotice, func(b *pb.Entry) {
			ks := make([]AuthorKey, MaxRecipients+1)
			notice(b).Details = testSealed(ks...)
		}, []string{"notice.details.recipients", "got 65"}},
		{"sealed recipient key 31 bytes", KindNotice, func(b *pb.Entry) {
			s := testSealed(platform)
			s.Recipients[0].Member = s.Recipients[0].Member[:31]
			notice(b).Details = s
		}, []string{"notice.details.recipients[0]", "32-byte member key"}},
		{"sealed recipient without sealed key", KindNotice, func(b *pb.Entry) {
			s := testSealed(platform)
			s.Recipients[0].SealedKey = nil
			notice(b).Details = s
		}, []string{"notice.details.recipients[0]", "sealed key"}},
		{"sealed key too long", KindNotice, func(b *pb.Entry) {
			s := testSealed(platform, platform)
			s.Recipients[1].SealedKey = make([]byte, MaxSealedKeyLen+1)
			notice(b).Details = s
		}, []string{"notice.details.recipients[1]"}},
		{"sealed without nonce", KindNotice, func(b *pb.Entry) {
			s := testSealed(platform)
			s.Nonce = nil
			notice(b).Details = s
		}, []string{"notice.details.nonce", "got 0"}},
		{"sealed nonce too long", KindNotice, func(b *pb.Entry) {
			s := testSealed(platform)
			s.Nonce = make([]byte, MaxSealedNonceLen+1)
			notice(b).Details = s
		}, []string{"notice.details.nonce", "got 65"}},
		{"sealed without ciphertext", KindNotice, func(b *pb.Entry) {
			s := testSealed(platform)
			s.Ciphertext = nil
			notice(b).Details = s
		}, []string{"notice.details.ciphertext", "got 0"}},
		{"sealed ciphertext too long", KindNotice, func(b *pb.Entry) {
			s := testSealed(platform)
			s.Ciphertext = make([]byte, MaxSealedTextBytes+1)
			notice(b).Details = s
		}, []string{"notice.details.ciphertext"}},
		{"sealed empty, no signals", KindNotice, func(b *pb.Entry) {
			notice(b).Signals = nil
			notice(b).Details = &pb.Sealed{}
		}, []string{"notice.details.recipients"}},

		// Notice update.
		{"notice_update changing nothing", KindNoticeUpdate, func(b *pb.Entry) { update(b).Withdraw = false }, []string{"notice_update", "changes nothing"}},
		{"notice_update bad notice id", KindNoticeUpdate, func(b *pb.Entry) { update(b).Notice = []byte{1} }, []string{"notice_update.notice"}},
		{"notice_update deadline negative", KindNoticeUpdate, func(b *pb.Entry) { update(b).DeadlineMs = -5 }, []string{"notice_update.deadline_ms"}},
		{"notice_update deadline before timestamp", KindNoticeUpdate, func(b *pb.Entry) { update(b).DeadlineMs = testTS - 1 }, []string{"notice_update.deadline_ms"}},
		{"notice_update sealed without recipients", KindNoticeUpdate, func(b *pb.Entry) {
			update(b).Withdraw = false
			update(b).Details = testSealed()
		}, []string{"notice_update.details.recipients"}},

		// Notice reply.
		{"reply status unspecified", KindNoticeReply, func(b *pb.Entry) { reply(b).Status = 0 }, []string{"notice_reply.status", "unknown status 0"}},
		{"reply status unknown", KindNoticeReply, func(b *pb.Entry) { reply(b).Status = 9 }, []string{"notice_reply.status", "unknown status 9"}},
		{"reply status negative", KindNoticeReply, func(b *pb.Entry) { reply(b).Status = -1 }, []string{"notice_reply.status"}},
		{"not-executed without reason", KindNoticeReply, func(b *pb.Entry) { reply(b).Status = pb.ReplyStatus_REPLY_STATUS_NOT_EXECUTED }, []string{"notice_reply.reason", "not-executed needs a reason"}},
		{"not-executed with unknown reason", KindNoticeReply, func(b *pb.Entry) {
			reply(b).Status, reply(b).Reason = pb.ReplyStatus_REPLY_STATUS_NOT_EXECUTED, 5
		}, []string{"notice_reply.reason", "got 5"}},
		{"reason on removed", KindNoticeReply, func(b *pb.Entry) {
			reply(b).Reason = pb.NotExecutedReason_NOT_EXECUTED_REASON_FORCE_MAJEURE
		}, []string{"notice_reply.reason", "only a not-executed reply"}},
		{"reply action time negative", KindNoticeReply, func(b *pb.Entry) { reply(b).ActionTimeMs = -1 }, []string{"notice_reply.action_time_ms"}},
		{"reply text too long", KindNoticeReply, func(b *pb.Entry) { reply(b).Text = long(MaxReplyText + 1) }, []string{"notice_reply.text", "4097 bytes"}},
		{"reply bad notice id", KindNoticeReply, func(b *pb.Entry) { reply(b).Notice = nil }, []string{"notice_reply.notice"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := validBody(c.kind, platform)
			c.edit(b)
			raw := rawSign(t, priv, b)
			e, err := Decode(raw)
			if e != nil {
				t.Fatalf("decoded: %s", describe(e.Body))
			}
			checkErr(t, err, ErrMalformed, c.mention...)
			// Sign runs the same checks: no node can publish it. (Sign
			// sets the author itself, so the author cases do not apply.)
			if strings.HasPrefix(c.name, "author") {
				return
			}
			if _, err := Sign(priv, b); !errors.Is(err, ErrMalformed) {
				t.Errorf("Sign accepted it: %v", err)
			}
		})
	}
}

// The limits are inclusive: each of these is at its limit and valid.
func TestDecodeAcceptsLimits(t *testing.T) {
	priv := seedKey(0x01)
	var platform AuthorKey
	long := func(n int) string { return strings.Repeat("y", n) }
	sha := mustSignal("sha256", strings.Repeat("ab", 32))
	cases := []struct {
		name string
		kind Kind
		edit func(b *pb.Entry)
	}{
		{"federation of 64 bytes", KindAddition, func(b *pb.Entry) { b.Federation = long(MaxFederationLen) }},
		{"1000 signals", KindAddition, func(b *pb.Entry) {
			s := make([]*pb.Signal, MaxSignals)
			for i := range s {
				s[i] = sha
			}
			b.GetAddition().Signals = s
		}},
		{"16 labels", KindAddition, func(b *pb.Entry) {
			for range MaxLabels - 1 {
				b.GetAddition().Labels = append(b.GetAddition().Labels, mustLabel("other:"+long(MaxLabelText)))
			}
		}},
		{"case_ref of 256 bytes", KindAddition, func(b *pb.Entry) { b.GetAddition().CaseRef = long(MaxCaseRefLen) }},
		{"retraction without reason", KindRetraction, func(b *pb.Entry) {}},
		{"retraction naming 1000 signals", KindRetraction, func(b *pb.Entry) { b.GetRetraction().Signals = distinctSignals(MaxSignals) }},
		{"dispute naming one signal of each type", KindDispute, func(b *pb.Entry) {
			b.GetDispute().Signals = SortSignals([]*pb.Signal{
				mustSignal("url", "https://x.example/a"), mustSignal("pdq", strings.Repeat("0f", 32)), sha,
				mustSignal("account", "x.example:someone"), mustSignal("md5", strings.Repeat("0e", 16)),
			})
		}},
		{"dispute reason of 1024 bytes", KindDispute, func(b *pb.Entry) { b.GetDispute().Reason = long(MaxReasonLen) }},
		{"notice with sealed details only", KindNotice, func(b *pb.Entry) {
			b.GetNotice().Signals = nil
			b.GetNotice().Details = testSealed(platform)
		}},
		{"notice deadline 1 ms after timestamp", KindNotice, func(b *pb.Entry) { b.GetNotice().DeadlineMs = testTS + 1 }},
		{"sealed at its limits", KindNotice, func(b *pb.Entry) {
			s := testSealed(make([]AuthorKey, MaxRecipients)...)
			s.Recipients[0].SealedKey = make([]byte, MaxSealedKeyLen)
			s.Nonce = make([]byte, MaxSealedNonceLen)
			s.Ciphertext = make([]byte, MaxSealedTextBytes)
			b.GetNotice().Details = s
		}},
		{"notice_update new deadline only", KindNoticeUpdate, func(b *pb.Entry) {
			b.GetNoticeUpdate().Withdraw = false
			b.GetNoticeUpdate().DeadlineMs = testTS + 1
		}},
		{"notice_update details only", KindNoticeUpdate, func(b *pb.Entry) {
			b.GetNoticeUpdate().Withdraw = false
			b.GetNoticeUpdate().Details = testSealed(platform)
		}},
		{"reply not-executed with reason", KindNoticeReply, func(b *pb.Entry) {
			r := b.GetNoticeReply()
			r.Status, r.Reason, r.Text = pb.ReplyStatus_REPLY_STATUS_NOT_EXECUTED, pb.NotExecutedReason_NOT_EXECUTED_REASON_MANIFEST_ERROR, long(MaxReplyText)
		}},
		{"reply without action time", KindNoticeReply, func(b *pb.Entry) { b.GetNoticeReply().ActionTimeMs = 0 }},
		{"seq 2 with prev", KindAddition, func(b *pb.Entry) { b.Seq, b.Prev = 2, fakeID(1) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := validBody(c.kind, platform)
			c.edit(b)
			e, err := Sign(priv, b)
			if err != nil {
				t.Fatalf("sign: %v", err)
			}
			if _, err := Decode(e.Raw); err != nil {
				t.Fatalf("decode: %v", err)
			}
		})
	}
}

// An entry of exactly MaxEntrySize bytes is accepted; one byte more is
// rejected before anything else is looked at, even when validly signed.
func TestDecodeSizeLimit(t *testing.T) {
	priv := seedKey(0x01)
	build := func(size int) []byte {
		// Pad with URL signals; adjust the last one's length until the
		// SignedEntry is exactly size bytes.
		for pad := 0; pad < 8; pad++ {
			b := validBody(KindAddition, AuthorKey{})
			var sigs []*pb.Signal
			for len(sigs) < 32 {
				sigs = append(sigs, mustSignal("url", fmt.Sprintf("https://example.com/%04d/%s", len(sigs), strings.Repeat("p", 2000))))
			}
			sigs = append(sigs, mustSignal("url", "https://example.com/"))
			b.GetAddition().Signals = sigs
			raw := rawSign(t, priv, b)
			missing := size - len(raw) - pad
			if missing < 0 || missing > 2000 {
				t.Fatalf("padding scheme does not reach %d bytes (have %d)", size, len(raw))
			}
			sigs[len(sigs)-1] = mustSignal("url", "https://example.com/"+strings.Repeat("q", missing))
			raw = rawSign(t, priv, b)
			if len(raw) == size {
				return raw
			}
		}
		t.Fatalf("could not build an entry of %d bytes", size)
		return nil
	}
	raw := build(MaxEntrySize)
	if _, err := Decode(raw); err != nil {
		t.Fatalf("entry of exactly %d bytes: %v", MaxEntrySize, err)
	}
	raw = build(MaxEntrySize + 1)
	_, err := Decode(raw)
	checkErr(t, err, ErrTooLarge, "65537 bytes", "limit 65536")
}

// Sign must not be able to produce what Decode rejects, and what it
// produces must decode to the same entry.
func TestSignDecodeRoundTrip(t *testing.T) {
	priv := seedKey(0x01)
	var platform AuthorKey
	for _, k := range allKinds {
		t.Run(string(k), func(t *testing.T) {
			b := validBody(k, platform)
			b.Author = nil
			e, err := Sign(priv, b)
			if err != nil {
				t.Fatal(err)
			}
			if ak := AuthorKeyOf(priv); !bytes.Equal(b.Author, ak[:]) || e.Author != ak {
				t.Errorf("Sign did not set the author from the key")
			}
			if e.Kind() != k || KindOf(b) != k {
				t.Errorf("kind %q, want %q", e.Kind(), k)
			}
			d, err := Decode(e.Raw)
			if err != nil {
				t.Fatal(err)
			}
			if d.ID != e.ID || d.ID != IDOf(e.Raw) || !proto.Equal(d.Body, b) {
				t.Errorf("round trip changed the entry")
			}
			if !bytes.Equal(e.Raw, encodeSigned(e.Signed, e.Signature)) {
				t.Errorf("Signed and Signature are not the parts of Raw")
			}
			if err := d.Verify(); err != nil {
				t.Error(err)
			}
		})
	}
	if KindOf(header()) != "" {
		t.Errorf("KindOf(no payload) is not empty")
	}
}

// distinctSignals returns n different sha256 signals in index-key order.
func distinctSignals(n int) []*pb.Signal {
	s := make([]*pb.Signal, n)
	for i := range s {
		s[i] = mustSignal("sha256", fmt.Sprintf("%064x", i))
	}
	return s
}
