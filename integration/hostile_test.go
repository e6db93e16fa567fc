package integration

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/node/gossip"
	"github.com/staydown/staydown/node/p2p"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/prototest"
)

// hostile is a roster member that attacks the federation with its own
// keys, built from the project's protocol package rather than a node
// (#12, the chaos run). It listens on the address the roster gives it, so
// honest nodes dial it and sync with it too.
type hostile struct {
	name    string
	fed     string
	h       host.Host
	author  ed25519.PrivateKey
	roster  *protocol.Roster
	genesis []byte
	topic   *pubsub.Topic
	// counts of what it did
	flooded, stalled, hogged, garbage atomic.Int64
}

func newHostile(t *testing.T, n *node) *hostile {
	t.Helper()
	cfg, err := config.Load(n.dir)
	if err != nil {
		t.Fatal(err)
	}
	roster, err := cfg.Roster()
	if err != nil {
		t.Fatal(err)
	}
	g, err := cfg.Genesis()
	if err != nil {
		t.Fatal(err)
	}
	nk, err := cfg.NodeKey()
	if err != nil {
		t.Fatal(err)
	}
	ak, err := cfg.AuthorKey()
	if err != nil {
		t.Fatal(err)
	}
	h, _, err := p2p.NewHost(nk, cfg.Listen, roster, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	gh := g.Hash()
	return &hostile{name: n.name, fed: cfg.Federation, h: h, author: ak, roster: roster, genesis: gh[:]}
}

// honestPeers are the roster's other members, with their addresses.
func (x *hostile) honestPeers(skip ...string) []peer.AddrInfo {
	var out []peer.AddrInfo
	for _, m := range x.roster.Members {
		if m.Name == x.name || strings.Contains(strings.Join(skip, " "), m.Name) {
			continue
		}
		id, err := peer.Decode(m.PeerID)
		if err != nil {
			continue
		}
		ai := peer.AddrInfo{ID: id}
		for _, a := range m.Addrs {
			if addr, err := ma.NewMultiaddr(a); err == nil {
				ai.Addrs = append(ai.Addrs, addr)
			}
		}
		out = append(out, ai)
	}
	return out
}

// connect dials every honest member (best effort: a node may be down).
func (x *hostile) connect(ctx context.Context, skip ...string) {
	for _, ai := range x.honestPeers(skip...) {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		x.h.Connect(c, ai)
		cancel()
	}
}

// floodFarAhead joins the gossip topic and publishes, until ctx ends,
// validly signed entries of about 58 KB far beyond its log's head
// (#12 item 2): a node must neither buffer them without bound nor relay
// them.
func (x *hostile) floodFarAhead(ctx context.Context, t *testing.T, every time.Duration) {
	ps, err := gossip.NewPubSub(ctx, x.h, slog.New(slog.DiscardHandler), nil, gossip.Topic(x.fed))
	if err != nil {
		t.Error(err)
		return
	}
	x.topic, err = ps.Join(gossip.Topic(x.fed))
	if err != nil {
		t.Error(err)
		return
	}
	if _, err := x.topic.Subscribe(); err != nil {
		t.Error(err)
		return
	}
	l := prototest.NewLog(x.author, x.fed)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := uint64(0); ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		l.Head = protocol.Head{Author: l.Head.Author, Seq: 1000 + i, ID: protocol.IDOf([]byte(fmt.Sprint(i)))}
		var sigs []*pb.Signal
		for j := range 28 {
			sigs = append(sigs, &pb.Signal{Value: &pb.Signal_Url{Url: fmt.Sprintf("https://flood.example/%d/%d/%s", i, j, strings.Repeat("a", 2000))}})
		}
		e := l.Next(t, prototest.Addition(sigs...))
		if x.topic.Publish(ctx, e.Raw) == nil {
			x.flooded.Add(1)
		}
	}
}

// serveLies answers every sync stream with a hello that claims its own
// log ends at 2^64-1 and every other log is a few entries further than
// the asker holds (#12 item 7), then reads requests and answers none of
// them, holding the stream until the asker gives up (#12 item 3).
func (x *hostile) serveLies(ctx context.Context) {
	me := protocol.AuthorKeyOf(x.author)
	x.h.SetStreamHandler(protocol.SyncProtocol, func(s network.Stream) {
		defer s.Close()
		r := bufio.NewReader(s)
		var hello pb.SyncHello
		if protodelim.UnmarshalFrom(r, &hello) != nil {
			return
		}
		heads := []*pb.SyncHead{{Author: me[:], Seq: math.MaxUint64, Id: make([]byte, 34)}}
		for _, h := range hello.Heads {
			heads = append(heads, &pb.SyncHead{Author: h.Author, Seq: h.Seq + 5, Id: make([]byte, 34)})
		}
		protodelim.MarshalTo(s, &pb.SyncHello{Federation: x.fed, Genesis: x.genesis, Heads: heads})
		x.stalled.Add(1)
		for ctx.Err() == nil {
			var req pb.SyncRequest
			if protodelim.UnmarshalFrom(r, &req) != nil {
				return
			}
		}
	})
}

// hogSlots opens sync streams to every honest member, more than a server
// serves at once, and keeps each alive with a request every 20 s whose
// answer it never reads (#12 item 4).
func (x *hostile) hogSlots(ctx context.Context, perPeer int) {
	for _, ai := range x.honestPeers() {
		for range perPeer {
			go func() {
				s, err := x.h.NewStream(network.WithAllowLimitedConn(ctx, "hog"), ai.ID, protocol.SyncProtocol)
				if err != nil {
					return
				}
				defer s.Close()
				if _, err := protodelim.MarshalTo(s, &pb.SyncHello{Federation: x.fed, Genesis: x.genesis}); err != nil {
					return
				}
				x.hogged.Add(1)
				tick := time.NewTicker(20 * time.Second)
				defer tick.Stop()
				for {
					me := protocol.AuthorKeyOf(x.author)
					if _, err := protodelim.MarshalTo(s, &pb.SyncRequest{Author: me[:], FromSeq: 1, ToSeq: 1 << 20}); err != nil {
						return
					}
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
					}
				}
			}()
		}
	}
}

// sendGarbage opens sync streams to every honest member and writes what
// no honest peer would (#12 item 10): bytes that are no hello, or a length
// prefix far over the limit. A node cuts the sender off.
func (x *hostile) sendGarbage(ctx context.Context) {
	junk := [][]byte{
		[]byte("\x05hello"),
		{0xff, 0xff, 0xff, 0xff, 0x0f}, // a length prefix of 4 GiB
	}
	for i, ai := range x.honestPeers() {
		s, err := x.h.NewStream(ctx, ai.ID, protocol.SyncProtocol)
		if err != nil {
			continue
		}
		if _, err := s.Write(junk[i%len(junk)]); err == nil {
			x.garbage.Add(1)
		}
		s.Close()
	}
}
