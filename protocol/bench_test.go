package protocol

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/protocol/pb"
)

// typicalAddition is the common case: one sha256 signal, one label, a case
// reference, somewhere in the middle of a log.
func typicalAddition() *pb.Entry {
	b := validBody(KindAddition, AuthorKey{})
	b.Seq, b.Prev = 1234, fakeID(7)
	b.GetAddition().CaseRef = "IRU-2026-004711"
	return b
}

func BenchmarkSign(b *testing.B) {
	priv := seedKey(0x01)
	body := typicalAddition()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Sign(priv, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	e, err := Sign(seedKey(0x01), typicalAddition())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(e.Raw)))
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Verify(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	body := typicalAddition()
	ak := AuthorKeyOf(seedKey(0x01))
	body.Author = ak[:]
	opts := proto.MarshalOptions{Deterministic: true}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := opts.Marshal(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	e, err := Sign(seedKey(0x01), typicalAddition())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(e.Raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(e.Raw); err != nil {
			b.Fatal(err)
		}
	}
}
