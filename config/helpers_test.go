package config

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/staydown/staydown/protocol"
)

// testKeys returns a deterministic author key and node key for member i.
func testKeys(t testing.TB, i int) (ed25519.PrivateKey, crypto.PrivKey) {
	t.Helper()
	author := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(2*i + 1)}, ed25519.SeedSize))
	node, _, err := crypto.GenerateEd25519Key(bytes.NewReader(bytes.Repeat([]byte{byte(2*i + 2)}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	return author, node
}

// testMember returns a valid roster member with deterministic keys.
func testMember(t testing.TB, i int, name string, role protocol.Role) protocol.Member {
	t.Helper()
	author, node := testKeys(t, i)
	id, err := peer.IDFromPrivateKey(node)
	if err != nil {
		t.Fatal(err)
	}
	return protocol.Member{
		Name:      name,
		Role:      role,
		AuthorKey: protocol.AuthorKeyOf(author),
		PeerID:    id.String(),
		Addrs:     []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 4001+i)},
	}
}

// wantError checks that err is an error wrapping sentinel whose message
// contains every one of want.
func wantError(t *testing.T, err, sentinel error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one containing %q", want)
	}
	if !errors.Is(err, sentinel) {
		t.Errorf("error %q does not wrap %v", err, sentinel)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q is not one line", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}
