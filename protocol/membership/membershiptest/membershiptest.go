// Package membershiptest builds federations and membership histories for
// tests and benchmarks.
package membershiptest

import (
	"crypto/ed25519"
	"fmt"
	"testing"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/prototest"
)

// Key is the i-th test key.
func Key(i int) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	seed[0], seed[1], seed[2] = byte(i), byte(i>>8), byte(i>>16)
	return ed25519.NewKeyFromSeed(seed)
}

// PeerOf is a made-up peer ID for name, in base58 characters (the
// protocol checks only those; it is never dialled).
func PeerOf(name string) string {
	const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	out := []byte("12D3KooW")
	for i := 0; i < len(name); i++ {
		out = append(out, alphabet[name[i]%58])
	}
	return string(out)
}

// Big is a federation of members voters (referral units and platforms in
// turn, named m0, m1, ...) and the history of amends amendments: each
// admits an auditor, proposed by one voter and approved by just enough
// others. It returns the genesis, every membership entry, and the
// voters' keys.
func Big(tb testing.TB, federation string, members, amends int) (*membership.Genesis, []*protocol.Entry, []ed25519.PrivateKey) {
	tb.Helper()
	var ms []protocol.Member
	var keys []ed25519.PrivateKey
	logs := map[int]*prototest.Log{}
	for i := range members {
		k := Key(i + 1)
		keys = append(keys, k)
		role := protocol.RoleReferral
		if i%2 == 1 {
			role = protocol.RolePlatform
		}
		name := fmt.Sprintf("m%d", i)
		ms = append(ms, protocol.Member{Name: name, Role: role, AuthorKey: protocol.AuthorKeyOf(k), PeerID: PeerOf(name)})
		logs[i] = prototest.NewLog(k, federation)
	}
	r, err := protocol.NewRoster(federation, ms)
	if err != nil {
		tb.Fatal(err)
	}
	g, err := membership.NewGenesis(r, membership.Rule{})
	if err != nil {
		tb.Fatal(err)
	}
	var es []*protocol.Entry
	needed := members/2 + 1
	for v := range amends {
		name := fmt.Sprintf("a%d", v)
		nk := protocol.AuthorKeyOf(Key(1<<20 + v))
		block := &pb.MemberBlock{Name: name, Role: "auditor", AuthorKey: nk[:], PeerId: PeerOf(name)}
		proposer := v % members
		p := logs[proposer].Next(tb, prototest.Amend(uint64(v), block))
		es = append(es, p)
		for j := 1; j < needed; j++ {
			es = append(es, logs[(proposer+j)%members].Next(tb, prototest.Approve(uint64(v), p.ID)))
		}
	}
	return g, es, keys
}
