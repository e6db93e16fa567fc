// Package apitest provides a fake api.Backend for tests of the API and of
// its clients. It signs real entries, so ids and seqs are genuine, and
// records every call so that a test can prove a bad request never reached
// the node.
package apitest

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// Federation is the federation of every fake's roster.
const Federation = "staydown"

// StartMs is the timestamp of a fake's first entry; each later entry is
// one millisecond after the one before.
const StartMs = 1_700_000_000_000

// Backend is a fake api.Backend. Its author key is derived from its name,
// so the same name gives the same key in every test.
type Backend struct {
	key    ed25519.PrivateKey
	roster *protocol.Roster

	mu        sync.Mutex // guards everything below
	head      protocol.Head
	err       error
	status    api.Status
	atts      map[string][]store.Attestation // by protocol.SignalKey
	published []*pb.Entry
	signed    []*protocol.Entry
	matched   [][]*pb.Signal
	statuses  int
}

// New returns a fake node of the member named name with role role, in a
// roster of itself and others.
func New(name string, role protocol.Role, others ...protocol.Member) *Backend {
	seed := sha256.Sum256([]byte("apitest " + name))
	key := ed25519.NewKeyFromSeed(seed[:])
	self := protocol.Member{Name: name, Role: role, AuthorKey: protocol.AuthorKeyOf(key)}
	roster, err := protocol.NewRoster(Federation, append([]protocol.Member{self}, others...))
	if err != nil {
		panic(fmt.Sprintf("apitest: %v", err))
	}
	return &Backend{key: key, roster: roster, atts: map[string][]store.Attestation{}}
}

// Author is the fake's author key.
func (b *Backend) Author() protocol.AuthorKey { return protocol.AuthorKeyOf(b.key) }

// Fail makes every later call return err (nil: succeed again).
func (b *Backend) Fail(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.err = err
}

// SetStatus sets what Status returns.
func (b *Backend) SetStatus(s api.Status) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.status = s
}

// Attest makes Match answer atts for sig.
func (b *Backend) Attest(sig *pb.Signal, atts ...store.Attestation) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.atts[string(protocol.SignalKey(sig))] = atts
}

// Published returns the bodies Publish received, oldest first.
func (b *Backend) Published() []*pb.Entry {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*pb.Entry(nil), b.published...)
}

// Signed returns the entries Publish signed, oldest first.
func (b *Backend) Signed() []*protocol.Entry {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*protocol.Entry(nil), b.signed...)
}

// Matched returns the signals of every Match call, oldest first.
func (b *Backend) Matched() [][]*pb.Signal {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([][]*pb.Signal(nil), b.matched...)
}

// Calls counts the calls of Publish, Match and Status.
func (b *Backend) Calls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.published) + len(b.matched) + b.statuses
}

// Publish records body and, unless Fail was called, signs it as the next
// entry of the fake's log. It does not check the role rule or targets.
func (b *Backend) Publish(ctx context.Context, body *pb.Entry) (*protocol.Entry, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.published = append(b.published, proto.Clone(body).(*pb.Entry))
	if b.err != nil {
		return nil, b.err
	}
	signed := proto.Clone(body).(*pb.Entry)
	signed.Version = protocol.Version
	signed.Federation = Federation
	signed.Seq = b.head.Seq + 1
	signed.TimestampMs = StartMs + int64(b.head.Seq)
	if b.head.Seq > 0 {
		signed.Prev = b.head.ID[:]
	}
	e, err := protocol.Sign(b.key, signed)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", api.ErrInvalid, err)
	}
	b.head = protocol.Head{Author: e.Author, Seq: e.Seq(), ID: e.ID}
	b.signed = append(b.signed, e)
	return e, nil
}

// Match records sigs and answers what Attest set for each.
func (b *Backend) Match(ctx context.Context, sigs []*pb.Signal) ([][]store.Attestation, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.matched = append(b.matched, sigs)
	if b.err != nil {
		return nil, b.err
	}
	out := make([][]store.Attestation, len(sigs))
	for i, s := range sigs {
		out[i] = b.atts[string(protocol.SignalKey(s))]
	}
	return out, nil
}

// Status records the call and answers what SetStatus set.
func (b *Backend) Status(ctx context.Context) (api.Status, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.statuses++
	if b.err != nil {
		return api.Status{}, b.err
	}
	return b.status, nil
}

// Roster is the fake's roster: itself and the others given to New.
func (b *Backend) Roster() *protocol.Roster { return b.roster }

var _ api.Backend = (*Backend)(nil)
