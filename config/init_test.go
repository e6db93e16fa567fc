package config

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/staydown/staydown/protocol"
)

var initFiles = []string{ConfigFile, AuthorKeyFile, NodeKeyFile, TokenFile}

func readAll(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, f := range initFiles {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		out[f] = b
	}
	return out
}

func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fed", "nru")
	m, block, err := Init(InitOptions{
		Dir: dir, Name: "nru-demo", Role: protocol.RoleReferral, Federation: "staydown-demo",
		Listen: []string{"/ip4/127.0.0.1/tcp/4101"}, API: "127.0.0.1:7101", Roster: "../roster.toml",
	})
	if err != nil {
		t.Fatal(err)
	}

	if runtime.GOOS != "windows" {
		for _, f := range initFiles {
			fi, err := os.Stat(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v, want 0600", f, fi.Mode().Perm())
			}
		}
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("dir: mode %v (%v), want 0700", fi.Mode().Perm(), err)
		}
	}

	// The block is MemberBlock of the member and parses back to it.
	if block != MemberBlock(m) {
		t.Errorf("block %q != MemberBlock %q", block, MemberBlock(m))
	}
	r, err := ParseRoster("roster.toml", []byte(block), "staydown-demo")
	if err != nil {
		t.Fatalf("block does not parse: %v\n%s", err, block)
	}
	if !reflect.DeepEqual(r.Members, []protocol.Member{m}) {
		t.Errorf("block parses to %+v, want %+v", r.Members, m)
	}

	// The config loads to what was asked for.
	n, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := Node{
		Dir: dir, Name: "nru-demo", Role: protocol.RoleReferral, Federation: "staydown-demo",
		RosterPath: filepath.Join(filepath.Dir(dir), "roster.toml"), Listen: []string{"/ip4/127.0.0.1/tcp/4101"},
		API: "127.0.0.1:7101", StorePath: filepath.Join(dir, DefaultStore), LogLevel: DefaultLogLevel,
		Policy: DefaultPolicy(), MaxVideoUpload: DefaultMaxVideoUpload,
	}
	if !reflect.DeepEqual(*n, want) {
		t.Errorf("Load: %+v\nwant %+v", *n, want)
	}

	// The keys are the member's, and two different keys.
	author, err := n.AuthorKey()
	if err != nil {
		t.Fatal(err)
	}
	if protocol.AuthorKeyOf(author) != m.AuthorKey {
		t.Errorf("author.key is not the member's author key")
	}
	nk, err := n.NodeKey()
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(nk)
	if err != nil || id.String() != m.PeerID {
		t.Errorf("node.key has peer ID %s (%v), member has %s", id, err, m.PeerID)
	}
	raw, err := nk.Raw()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(raw[:ed25519.SeedSize], author.Seed()) || bytes.Contains(raw, m.AuthorKey[:]) {
		t.Errorf("node key and author key are the same key")
	}
	tok, err := n.Token()
	if err != nil || len(tok) != 64 {
		t.Errorf("token %q, %v", tok, err)
	}

	// The roster check passes once the block is in the roster.
	other := MemberBlock(testMember(t, 5, "acme", protocol.RolePlatform))
	if err := os.WriteFile(n.RosterPath, []byte(other+"\n"+block), 0o644); err != nil {
		t.Fatal(err)
	}
	if r, err := n.Roster(); err != nil || len(r.Members) != 2 {
		t.Errorf("Roster: %v", err)
	}
	if err := os.WriteFile(n.RosterPath, []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = n.Roster()
	wantError(t, err, ErrNotListed, n.RosterPath, `has no member named "nru-demo"`)

	// A second init changes nothing.
	before := readAll(t, dir)
	_, _, err = Init(InitOptions{Dir: dir, Name: "other", Role: protocol.RolePlatform})
	wantError(t, err, ErrExists, filepath.Join(dir, ConfigFile), "already exists", "another directory")
	if after := readAll(t, dir); !reflect.DeepEqual(before, after) {
		t.Errorf("second Init changed the files")
	}
}

func TestInitDefaults(t *testing.T) {
	dir := t.TempDir() // exists already: fine while it holds no node
	m, _, err := Init(InitOptions{Dir: dir, Name: "acme", Role: protocol.RolePlatform})
	if err != nil {
		t.Fatal(err)
	}
	n, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n.Federation != DefaultFederation || !reflect.DeepEqual(n.Listen, []string{DefaultListen}) ||
		n.API != DefaultAPI || n.RosterPath != filepath.Join(dir, DefaultRoster) || n.AllowRemoteAPI {
		t.Errorf("defaults not applied: %+v", n)
	}
	if !reflect.DeepEqual(m.Addrs, []string{DefaultListen}) {
		t.Errorf("member addrs %v", m.Addrs)
	}
}

func TestInitRefusesLeftoverKey(t *testing.T) {
	dir := t.TempDir()
	key := []byte("leftover\n")
	if err := os.WriteFile(filepath.Join(dir, AuthorKeyFile), key, 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := Init(InitOptions{Dir: dir, Name: "acme", Role: protocol.RolePlatform})
	wantError(t, err, ErrExists, filepath.Join(dir, AuthorKeyFile), "already exists", "never overwrites keys")
	if b, _ := os.ReadFile(filepath.Join(dir, AuthorKeyFile)); !bytes.Equal(b, key) {
		t.Errorf("author.key changed")
	}
	for _, f := range []string{ConfigFile, NodeKeyFile, TokenFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s was created: %v", f, err)
		}
	}
}

func TestInitErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		o    InitOptions
		want []string
	}{
		{"no dir", InitOptions{Name: "a", Role: protocol.RolePlatform}, []string{"dir: missing"}},
		{"bad name", InitOptions{Dir: dir, Name: "A b", Role: protocol.RolePlatform}, []string{"name:", `"A b" has 'A'`}},
		{"bad role", InitOptions{Dir: dir, Name: "a", Role: "isp"}, []string{`role: "isp" is not a role`}},
		{"no role", InitOptions{Dir: dir, Name: "a"}, []string{`role: "" is not a role`}},
		{"bad federation", InitOptions{Dir: dir, Name: "a", Role: protocol.RolePlatform, Federation: strings.Repeat("x", 65)}, []string{"federation: want 1 to 64 bytes"}},
		{"bad listen", InitOptions{Dir: dir, Name: "a", Role: protocol.RolePlatform, Listen: []string{"localhost:4001"}}, []string{`listen: address 1: "localhost:4001" is not a multiaddr`}},
		{"remote api", InitOptions{Dir: dir, Name: "a", Role: protocol.RolePlatform, API: "0.0.0.0:7001"}, []string{`api: "0.0.0.0:7001" is not a loopback address`}},
		{"bad api", InitOptions{Dir: dir, Name: "a", Role: protocol.RolePlatform, API: "7001"}, []string{`api: "7001" is not host:port`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Init(tt.o)
			wantError(t, err, ErrInvalid, tt.want...)
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed inits left files: %v", entries)
	}
}

func TestInitConfigQuoting(t *testing.T) {
	// Paths with characters TOML must escape survive the round trip.
	dir := t.TempDir()
	roster := `we"ird\dir` + "\t" + `/roster.toml`
	if _, _, err := Init(InitOptions{Dir: dir, Name: "a", Role: protocol.RoleAuditor, Roster: roster}); err != nil {
		t.Fatal(err)
	}
	n, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n.RosterPath != filepath.Join(dir, roster) {
		t.Errorf("roster path %q, want %q", n.RosterPath, filepath.Join(dir, roster))
	}
}

// A node that joins a running federation is initialised with the
// federation's genesis and a member's address: the genesis is copied into
// its directory and the config names the copy and the bootstrap address.
func TestInitJoin(t *testing.T) {
	base := t.TempDir()
	founder := testMember(t, 1, "nru", protocol.RoleReferral)
	genesis := filepath.Join(base, "fed-genesis.toml")
	text := "# the founders\n" + MemberBlock(founder)
	if err := os.WriteFile(genesis, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	boot := "/ip4/192.0.2.1/tcp/4001/p2p/" + founder.PeerID
	dir := filepath.Join(base, "acme")
	m, _, err := Init(InitOptions{Dir: dir, Name: "acme", Role: protocol.RolePlatform, Federation: "fed",
		Genesis: genesis, Bootstrap: []string{boot}})
	if err != nil {
		t.Fatal(err)
	}
	n, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n.RosterPath != filepath.Join(dir, GenesisFile) || !reflect.DeepEqual(n.Bootstrap, []string{boot}) {
		t.Errorf("config roster %s bootstrap %v", n.RosterPath, n.Bootstrap)
	}
	if copied, err := os.ReadFile(n.RosterPath); err != nil || string(copied) != text {
		t.Errorf("the copy holds %q (%v), want the genesis as it was", copied, err)
	}
	g, err := n.Genesis()
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Roster.Members) != 1 || g.Roster.Members[0].Name != "nru" {
		t.Errorf("genesis members %+v", g.Roster.Members)
	}
	// The joining node is not in it: Roster, the check of a founder, fails;
	// the node starts from Genesis and waits for its admission.
	if _, err := n.Roster(); !errors.Is(err, ErrNotListed) {
		t.Errorf("Roster: %v, want ErrNotListed", err)
	}
	if m.Name != "acme" {
		t.Errorf("member %+v", m)
	}

	// A genesis already in the directory, under the name Init gives it, is
	// used where it is.
	dir2 := filepath.Join(base, "beta")
	if err := os.MkdirAll(dir2, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir2, GenesisFile), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Init(InitOptions{Dir: dir2, Name: "beta", Role: protocol.RolePlatform, Federation: "fed",
		Genesis: filepath.Join(dir2, GenesisFile)}); err != nil {
		t.Fatal(err)
	}
	if n, err := Load(dir2); err != nil || n.RosterPath != filepath.Join(dir2, GenesisFile) || n.Bootstrap != nil {
		t.Errorf("Load: %+v, %v", n, err)
	}
}

func TestInitJoinErrors(t *testing.T) {
	base := t.TempDir()
	founder := testMember(t, 1, "nru", protocol.RoleReferral)
	write := func(name, text string) string {
		p := filepath.Join(base, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	genesis := write("genesis.toml", MemberBlock(founder))
	auditors := write("auditors.toml", MemberBlock(testMember(t, 2, "aud", protocol.RoleAuditor)))
	notToml := write("broken.toml", "[[member]\n")
	boot := "/ip4/192.0.2.1/tcp/4001/p2p/" + founder.PeerID
	occupied := filepath.Join(base, "occupied")
	if err := os.MkdirAll(occupied, 0o700); err != nil {
		t.Fatal(err)
	}
	write("occupied/"+GenesisFile, "# another genesis\n")
	tests := []struct {
		name     string
		o        InitOptions
		sentinel error
		want     []string
	}{
		{"name taken", InitOptions{Name: "nru", Genesis: genesis}, ErrInvalid, []string{genesis, `already has a member named "nru"`, "a name of its own"}},
		{"no voter", InitOptions{Name: "acme", Genesis: auditors}, ErrInvalid, []string{auditors, "no member has a voting role"}},
		{"not toml", InitOptions{Name: "acme", Genesis: notToml}, ErrSyntax, []string{notToml}},
		{"missing", InitOptions{Name: "acme", Genesis: filepath.Join(base, "nowhere.toml")}, ErrNotFound, []string{"nowhere.toml: does not exist", "genesis file of the federation"}},
		{"roster and genesis", InitOptions{Name: "acme", Genesis: genesis, Roster: "roster.toml"}, ErrInvalid, []string{"roster: give either a roster path or a genesis"}},
		{"bootstrap without peer", InitOptions{Name: "acme", Genesis: genesis, Bootstrap: []string{"/ip4/192.0.2.1/tcp/4001"}}, ErrInvalid, []string{`bootstrap: address 1: "/ip4/192.0.2.1/tcp/4001" does not end in /p2p/`}},
		{"bootstrap not a multiaddr", InitOptions{Name: "acme", Bootstrap: []string{"192.0.2.1:4001"}}, ErrInvalid, []string{`bootstrap: address 1: "192.0.2.1:4001" is not a multiaddr`}},
		{"genesis there already", InitOptions{Dir: occupied, Name: "acme", Genesis: genesis, Bootstrap: []string{boot}}, ErrExists, []string{filepath.Join(occupied, GenesisFile), "already exists: not overwriting it"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.o
			if o.Dir == "" {
				o.Dir = filepath.Join(base, "node")
			}
			o.Role, o.Federation = protocol.RolePlatform, "fed"
			_, _, err := Init(o)
			wantError(t, err, tt.sentinel, tt.want...)
			for _, f := range append(initFiles, GenesisFile) {
				if o.Dir == occupied && f == GenesisFile {
					continue
				}
				if _, err := os.Stat(filepath.Join(o.Dir, f)); err == nil {
					t.Errorf("a failed init left %s", f)
				}
			}
		})
	}
}
