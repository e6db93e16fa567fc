// Package prototest helps tests write signed logs.
package prototest

import (
	"crypto/ed25519"
	"fmt"
	"testing"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// Log writes one author's log: each Next fills in the header of a body
// (version, federation, seq, prev, a timestamp one millisecond after the
// last) and signs it as the entry after Head.
type Log struct {
	Key        ed25519.PrivateKey
	Federation string
	Head       protocol.Head
	TimeMs     int64 // the last entry's timestamp; Next adds 1
}

// NewLog is the empty log of key in federation, its timestamps from
// 2023-11-14 on.
func NewLog(key ed25519.PrivateKey, federation string) *Log {
	return &Log{Key: key, Federation: federation, Head: protocol.Head{Author: protocol.AuthorKeyOf(key)}, TimeMs: 1_700_000_000_000}
}

// Next signs body as the next entry of the log.
func (l *Log) Next(tb testing.TB, body *pb.Entry) *protocol.Entry {
	tb.Helper()
	l.TimeMs++
	body.Version, body.Federation, body.Seq, body.TimestampMs, body.Prev = protocol.Version, l.Federation, l.Head.Seq+1, l.TimeMs, nil
	if l.Head.Seq > 0 {
		body.Prev = l.Head.ID[:]
	}
	e, err := protocol.Sign(l.Key, body)
	if err != nil {
		tb.Fatal(err)
	}
	l.Head = protocol.Head{Author: e.Author, Seq: e.Seq(), ID: e.ID}
	return e
}

// Addition is an addition of signals labelled graphic-violence.
func Addition(sigs ...*pb.Signal) *pb.Entry {
	return &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{Signals: sigs, Labels: []*pb.Label{{Slug: "graphic-violence"}}}}}
}

// SHA256 is the sha256 signal whose value is n, in hex.
func SHA256(tb testing.TB, n uint64) *pb.Signal {
	tb.Helper()
	s, err := protocol.ParseSignal("sha256", fmt.Sprintf("%064x", n))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// Additions is a log of n additions, the i-th (from 1) of SHA256(i).
func Additions(tb testing.TB, key ed25519.PrivateKey, federation string, n int) []*protocol.Entry {
	tb.Helper()
	l := NewLog(key, federation)
	out := make([]*protocol.Entry, n)
	for i := range out {
		out[i] = l.Next(tb, Addition(SHA256(tb, uint64(i+1))))
	}
	return out
}

// Amend is an amendment of roster version base.
func Amend(base uint64, change any) *pb.Entry {
	a := &pb.Amendment{Base: base}
	switch c := change.(type) {
	case *pb.MemberBlock:
		a.Change = &pb.Amendment_Admit{Admit: c}
	case *pb.Removal:
		a.Change = &pb.Amendment_Remove{Remove: c}
	case *pb.RoleChange:
		a.Change = &pb.Amendment_Role{Role: c}
	case *pb.Revocation:
		a.Change = &pb.Amendment_Revoke{Revoke: c}
	case *pb.VotingRule:
		a.Change = &pb.Amendment_Rule{Rule: c}
	default:
		panic(fmt.Sprintf("prototest.Amend: %T is no amendment", change))
	}
	return &pb.Entry{Payload: &pb.Entry_Amendment{Amendment: a}}
}

// Approve is an approval of the amendment proposal of version base.
func Approve(base uint64, proposal protocol.ID) *pb.Entry {
	return &pb.Entry{Payload: &pb.Entry_Approval{Approval: &pb.Approval{Proposal: proposal[:], Base: base}}}
}

// Rotate is a rotation to newKey.
func Rotate(newKey protocol.AuthorKey) *pb.Entry {
	return &pb.Entry{Payload: &pb.Entry_Rotation{Rotation: &pb.Rotation{NewKey: newKey[:]}}}
}
