package p2p

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/staydown/staydown/protocol"
)

func testKey(t testing.TB, seed byte) crypto.PrivKey {
	t.Helper()
	pk, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(append(make([]byte, ed25519.SeedSize-1), seed)))
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

func nonce(b byte) []byte { return bytes.Repeat([]byte{b}, NonceSize) }

func mustSign(t testing.TB, i Instance, key crypto.PrivKey) Signed {
	t.Helper()
	s, err := i.Sign(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Every message survives its encoding, and a message whose fields are
// not exactly one of the five, or whose nonces are not 16 bytes, is
// refused.
func TestLiveMessageEncoding(t *testing.T) {
	key := testKey(t, 1)
	hello := mustSign(t, Instance{Federation: "test", Nonce: nonce(1), StartedMs: 1_700_000_000_000, Addrs: []string{"/ip4/192.0.2.1/tcp/4001"}}, key)
	att := mustSign(t, Instance{Federation: "test", Nonce: nonce(1), StartedMs: 1_700_000_000_000, Challenge: nonce(2)}, key)
	for _, m := range []LiveMessage{
		{Hello: &hello},
		{Free: true},
		{Taken: &Taken{Other: att, Remote: "/ip4/192.0.2.1/tcp/4001", SinceMs: 1_700_000_001_000}},
		{Challenge: &Challenge{Newcomer: hello, Remote: "/ip4/192.0.2.9/tcp/4001"}},
		{Attestation: &att},
	} {
		got, err := DecodeLiveMessage(m.Encode())
		if err != nil {
			t.Fatalf("%+v: %v", m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("decoded %+v, want %+v", got, m)
		}
	}
	short := mustSign(t, Instance{Federation: "test", Nonce: []byte{1, 2, 3}}, key)
	for name, b := range map[string][]byte{
		"empty":       nil,
		"free is 0":   {0x10, 0x00},
		"two fields":  append(LiveMessage{Free: true}.Encode(), LiveMessage{Hello: &hello}.Encode()...),
		"short nonce": LiveMessage{Hello: &short}.Encode(),
		"garbage":     {0x0a, 0x05, 0xff},
		"too long":    make([]byte, MaxLiveMessage+1),
	} {
		if _, err := DecodeLiveMessage(b); !errors.Is(err, ErrLiveMalformed) {
			t.Errorf("%s: %v, want ErrLiveMalformed", name, err)
		}
	}
}

// FuzzLiveMessage: no input crashes the decoder, and what decodes
// encodes to a message that decodes alike.
func FuzzLiveMessage(f *testing.F) {
	key := testKey(f, 1)
	hello := mustSign(f, Instance{Federation: "test", Nonce: nonce(1), StartedMs: 5, Addrs: []string{"/ip4/192.0.2.1/tcp/4001"}}, key)
	att := mustSign(f, Instance{Federation: "test", Nonce: nonce(1), StartedMs: 5, Challenge: nonce(2)}, key)
	for _, m := range []LiveMessage{{Hello: &hello}, {Free: true}, {Taken: &Taken{Other: att, Remote: "x", SinceMs: 9}},
		{Challenge: &Challenge{Newcomer: hello, Remote: "y"}}, {Attestation: &att}} {
		f.Add(m.Encode())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeLiveMessage(b)
		if err != nil {
			if !errors.Is(err, ErrLiveMalformed) {
				t.Fatalf("error %v is no ErrLiveMalformed", err)
			}
			return
		}
		again, err := DecodeLiveMessage(m.Encode())
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		if !reflect.DeepEqual(normalised(again), normalised(m)) {
			t.Fatalf("round trip changed %+v into %+v", m, again)
		}
	})
}

// normalised drops what the encoding does not keep: empty challenges
// and address lists (nil or empty alike).
func normalised(m LiveMessage) LiveMessage {
	n := func(s *Signed) {
		if s != nil {
			if len(s.Instance.Challenge) == 0 {
				s.Instance.Challenge = nil
			}
			if len(s.Instance.Addrs) == 0 {
				s.Instance.Addrs = nil
			}
		}
	}
	n(m.Hello)
	n(m.Attestation)
	if m.Taken != nil {
		n(&m.Taken.Other)
	}
	if m.Challenge != nil {
		n(&m.Challenge.Newcomer)
	}
	return m
}

// The evidence of a clash holds only when it is signed with the node's
// own key, names another process than this one, and answers this one's
// nonce: another member cannot forge it, nor replay one it saw before.
func TestLiveEvidenceCannotBeFaked(t *testing.T) {
	own, other := testKey(t, 1), testKey(t, 2)
	self, err := peer.IDFromPrivateKey(own)
	if err != nil {
		t.Fatal(err)
	}
	l := &Live{d: LiveDeps{Federation: "test"}, self: self, hello: mustSign(t, Instance{Federation: "test", Nonce: nonce(1)}, own)}
	for name, tc := range map[string]struct {
		s    Signed
		want bool
	}{
		"genuine":                  {mustSign(t, Instance{Federation: "test", Nonce: nonce(7), Challenge: nonce(1)}, own), true},
		"signed by another member": {mustSign(t, Instance{Federation: "test", Nonce: nonce(7), Challenge: nonce(1)}, other), false},
		"replayed (old challenge)": {mustSign(t, Instance{Federation: "test", Nonce: nonce(7), Challenge: nonce(3)}, own), false},
		"this process's own nonce": {mustSign(t, Instance{Federation: "test", Nonce: nonce(1), Challenge: nonce(1)}, own), false},
		"another federation":       {mustSign(t, Instance{Federation: "other", Nonce: nonce(7), Challenge: nonce(1)}, own), false},
	} {
		err := l.ownOther(tc.s, nonce(1))
		if (err == nil) != tc.want {
			t.Errorf("%s: %v", name, err)
		}
	}
	forged := mustSign(t, Instance{Federation: "test", Nonce: nonce(7), Challenge: nonce(1)}, own)
	forged.Raw = append([]byte(nil), forged.Raw...)
	forged.Raw[len(forged.Raw)-1] ^= 1
	if err := l.ownOther(forged, nonce(1)); err == nil {
		t.Error("a tampered attestation holds")
	}
}

// A member's node that answers a starting node "taken" with a replayed
// attestation of it (one made for another process's nonce) does not stop
// it from starting.
func TestLiveCheckIgnoresReplayedTaken(t *testing.T) {
	mn := mocknet.New()
	defer mn.Close()
	selfKey, liarKey := testKey(t, 1), testKey(t, 2)
	self, err := mn.AddPeer(selfKey, ma.StringCast("/ip4/10.0.0.1/tcp/4001"))
	if err != nil {
		t.Fatal(err)
	}
	liar, err := mn.AddPeer(liarKey, ma.StringCast("/ip4/10.0.0.2/tcp/4001"))
	if err != nil {
		t.Fatal(err)
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	roster, err := protocol.NewRoster("test", []protocol.Member{
		{Name: "nru", Role: protocol.RoleReferral, AuthorKey: protocol.AuthorKey{1}, PeerID: self.ID().String()},
		{Name: "liar", Role: protocol.RolePlatform, AuthorKey: protocol.AuthorKey{2}, PeerID: liar.ID().String()},
	})
	if err != nil {
		t.Fatal(err)
	}
	// An attestation of self's identity seen earlier, for another nonce.
	replayed := mustSign(t, Instance{Federation: "test", Nonce: nonce(7), Challenge: nonce(8)}, selfKey)
	answered := make(chan struct{})
	liar.SetStreamHandler(LiveProtocol, func(s network.Stream) {
		defer close(answered)
		if _, err := readLive(bufio.NewReader(s)); err != nil {
			t.Error(err)
		}
		if err := writeLive(s, LiveMessage{Taken: &Taken{Other: replayed, Remote: "/ip4/192.0.2.66/tcp/4001"}}); err != nil {
			t.Error(err)
		}
		s.Close()
	})
	log := slog.New(slog.DiscardHandler)
	g := NewGater(self.ID(), roster, nil, log, time.Now)
	l, err := NewLive(LiveDeps{Host: self, Key: selfKey, Gater: g, Federation: "test", Random: rand.Reader, Now: time.Now, Log: log, Clash: func(c Clash) {
		t.Errorf("a clash from a replayed attestation: %+v", c)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Check(context.Background(), []peer.AddrInfo{{ID: liar.ID(), Addrs: liar.Addrs()}}); err != nil {
		t.Fatalf("a replayed attestation stopped the start: %v", err)
	}
	<-answered
}
