package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/protocol"
)

func TestInit(t *testing.T) {
	tests := []struct {
		name       string
		args       []string // after init --dir D
		member     protocol.Member
		api        string
		federation string
		roster     string // relative to D
	}{
		{"defaults", []string{"--name", "nru", "--role", "referral"},
			protocol.Member{Name: "nru", Role: protocol.RoleReferral, Addrs: []string{"/ip4/127.0.0.1/tcp/4001"}},
			"127.0.0.1:7001", "staydown", "roster.toml"},
		{"every flag", []string{"--name", "plat.b", "--role", "platform", "--listen", "/ip4/127.0.0.1/tcp/4102",
			"--listen", "/ip6/::1/tcp/4102", "--api", "127.0.0.1:7102", "--roster", "../roster.toml", "--federation", "demo"},
			protocol.Member{Name: "plat.b", Role: protocol.RolePlatform, Addrs: []string{"/ip4/127.0.0.1/tcp/4102", "/ip6/::1/tcp/4102"}},
			"127.0.0.1:7102", "demo", "../roster.toml"},
		{"listen as a list", []string{"--name", "aud", "--role", "auditor", "--listen", "/ip4/127.0.0.1/tcp/1,/ip4/127.0.0.1/tcp/2"},
			protocol.Member{Name: "aud", Role: protocol.RoleAuditor, Addrs: []string{"/ip4/127.0.0.1/tcp/1", "/ip4/127.0.0.1/tcp/2"}},
			"127.0.0.1:7001", "staydown", "roster.toml"},
		// #13 item 10: the block said addrs = ["/ip4/0.0.0.0/tcp/4001"],
		// which no peer can dial.
		{"every interface, announced", []string{"--name", "nru", "--role", "referral", "--listen", "/ip4/0.0.0.0/tcp/4001",
			"--announce", "/dns4/node.example.org/tcp/4001", "--announce", "/ip4/203.0.113.5/tcp/4001"},
			protocol.Member{Name: "nru", Role: protocol.RoleReferral, Addrs: []string{"/dns4/node.example.org/tcp/4001", "/ip4/203.0.113.5/tcp/4001"}},
			"127.0.0.1:7001", "staydown", "roster.toml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "node")
			r := staydown(append([]string{"init", "--dir", dir}, tt.args...)...)
			if r.code != exitOK {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			// stdout is the member block and nothing else.
			m, err := config.ParseMemberBlock("stdout", []byte(r.stdout))
			if err != nil {
				t.Fatalf("stdout is not a member block: %v\n%s", err, r.stdout)
			}
			if m.Name != tt.member.Name || m.Role != tt.member.Role || !slices.Equal(m.Addrs, tt.member.Addrs) {
				t.Errorf("member %+v, want %+v", m, tt.member)
			}
			if !strings.HasPrefix(r.stdout, "[[member]]\n") {
				t.Errorf("stdout does not start with the block: %q", r.stdout)
			}
			cfg, err := config.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			key, err := cfg.AuthorKey()
			if err != nil {
				t.Fatal(err)
			}
			if protocol.AuthorKeyOf(key) != m.AuthorKey {
				t.Error("the block's author key is not the key in the directory")
			}
			if cfg.API != tt.api || cfg.Federation != tt.federation || cfg.RosterPath != filepath.Join(dir, tt.roster) {
				t.Errorf("config api %s federation %s roster %s", cfg.API, cfg.Federation, cfg.RosterPath)
			}
			for _, want := range []string{"created node " + tt.member.Name, "append the block above to the roster (" + cfg.RosterPath + ")", "staydown run --dir " + dir} {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr %q, want %q", r.stderr, want)
				}
			}
		})
	}
}

// The blocks of several inits, appended, are a roster.
func TestInitBuildsRoster(t *testing.T) {
	base := t.TempDir()
	roster := filepath.Join(base, "roster.toml")
	for i, n := range []struct{ name, role string }{{"nru", "referral"}, {"plat-a", "platform"}, {"plat-b", "platform"}} {
		r := staydown("init", "--dir", filepath.Join(base, n.name), "--name", n.name, "--role", n.role,
			"--listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 4001+i), "--api", fmt.Sprintf("127.0.0.1:%d", 7001+i), "--roster", "../roster.toml")
		if r.code != exitOK {
			t.Fatalf("init %s: %s", n.name, r.stderr)
		}
		f, err := os.OpenFile(roster, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(r.stdout)
		f.Close()
	}
	for _, name := range []string{"nru", "plat-a", "plat-b"} {
		cfg, err := config.Load(filepath.Join(base, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cfg.Roster(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestInitErrors(t *testing.T) {
	existing := filepath.Join(t.TempDir(), "node")
	if r := staydown("init", "--dir", existing, "--name", "nru", "--role", "referral"); r.code != exitOK {
		t.Fatal(r.stderr)
	}
	tests := []struct {
		name string
		args []string // after init; D is a fresh directory
		want string
	}{
		{"no dir", []string{"--name", "nru", "--role", "referral"}, "staydown: init: --dir: required"},
		{"no name", []string{"--dir", "D", "--role", "referral"}, "staydown: init: --name: required"},
		{"no role", []string{"--dir", "D", "--name", "nru"}, "staydown: init: --role: required"},
		{"bad name", []string{"--dir", "D", "--name", "NRU", "--role", "referral"}, `staydown: init: --name: "NRU" has 'N' at byte 1`},
		{"bad role", []string{"--dir", "D", "--name", "nru", "--role", "admin"}, `staydown: init: --role: "admin" is not a role: use referral, platform, auditor or access`},
		{"bad listen", []string{"--dir", "D", "--name", "nru", "--role", "referral", "--listen", "tcp:4001"}, "listen: address 1: \"tcp:4001\" is not a multiaddr"},
		{"every interface, not announced", []string{"--dir", "D", "--name", "nru", "--role", "referral", "--listen", "/ip4/0.0.0.0/tcp/4001"},
			`listen: "/ip4/0.0.0.0/tcp/4001" is an unspecified address (it means every interface of this machine): peers cannot dial it, so it cannot go in the roster block; add --announce`},
		{"unspecified announce", []string{"--dir", "D", "--name", "nru", "--role", "referral", "--announce", "/ip6/::/tcp/4001"},
			`announce: "/ip6/::/tcp/4001" is an unspecified address`},
		{"remote api", []string{"--dir", "D", "--name", "nru", "--role", "referral", "--api", "10.1.2.3:7001"}, "api: \"10.1.2.3:7001\" is not a loopback address"},
		{"api without port", []string{"--dir", "D", "--name", "nru", "--role", "referral", "--api", "127.0.0.1"}, "is not host:port"},
		{"existing node", []string{"--dir", existing, "--name", "nru", "--role", "referral"}, "config.toml: already exists"},
		{"argument", []string{"--dir", "D", "--name", "nru", "--role", "referral", "extra"}, `staydown: init: unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &testNode{dir: filepath.Join(t.TempDir(), "fresh")}
			wantFailure(t, staydown(append([]string{"init"}, n.expand(tt.args)...)...), tt.want)
			if tt.name != "existing node" {
				if _, err := os.Stat(filepath.Join(n.dir, config.ConfigFile)); err == nil {
					t.Error("a failed init left a config behind")
				}
			}
		})
	}
}

// A node that joins: init copies the genesis into its directory, writes
// the bootstrap address, prints the block and, on stderr, how to be
// admitted.
func TestInitJoin(t *testing.T) {
	base := t.TempDir()
	founder := staydown("init", "--dir", filepath.Join(base, "nru"), "--name", "nru", "--role", "referral", "--federation", "fed")
	if founder.code != exitOK {
		t.Fatal(founder.stderr)
	}
	genesis := filepath.Join(base, "shared", "genesis.toml")
	if err := os.MkdirAll(filepath.Dir(genesis), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(genesis, []byte(founder.stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	nru, err := config.ParseMemberBlock("nru", []byte(founder.stdout))
	if err != nil {
		t.Fatal(err)
	}
	boot := "/ip4/192.0.2.1/tcp/4001/p2p/" + nru.PeerID
	dir := filepath.Join(base, "pc")
	r := staydown("init", "--dir", dir, "--name", "pc", "--role", "platform", "--federation", "fed", "--genesis", genesis, "--bootstrap", boot)
	if r.code != exitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	m, err := config.ParseMemberBlock("stdout", []byte(r.stdout))
	if err != nil || m.Name != "pc" || m.Role != protocol.RolePlatform {
		t.Fatalf("stdout %q: %+v %v", r.stdout, m, err)
	}
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RosterPath != filepath.Join(dir, config.GenesisFile) || !slices.Equal(cfg.Bootstrap, []string{boot}) {
		t.Errorf("config roster %s bootstrap %v", cfg.RosterPath, cfg.Bootstrap)
	}
	if copied, err := os.ReadFile(cfg.RosterPath); err != nil || string(copied) != founder.stdout {
		t.Errorf("genesis copy %q, %v", copied, err)
	}
	for _, want := range []string{
		"created node pc (platform) in " + dir + "\n",
		"it joins federation fed from the genesis copied to " + cfg.RosterPath + "\n",
		"    staydown member propose admit --dir THEIR_DIR --block FILE",
		"start this node with: staydown run --dir " + dir,
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr\n%s\nwant %q in it", r.stderr, want)
		}
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"roster and genesis", []string{"--genesis", genesis, "--roster", "r.toml"}, "staydown: init: --roster and --genesis: give one"},
		{"bootstrap without peer", []string{"--genesis", genesis, "--bootstrap", "/ip4/192.0.2.1/tcp/4001"}, `bootstrap: address 1: "/ip4/192.0.2.1/tcp/4001" does not end in /p2p/`},
		{"name in the genesis", []string{"--name", "nru", "--genesis", genesis}, genesis + `: already has a member named "nru"`},
		{"genesis of nobody", []string{"--genesis", filepath.Join(base, "none.toml")}, filepath.Join(base, "none.toml") + ": does not exist"},
		{"genesis of another federation's rule", []string{"--genesis", genesis, "--federation", "Bad"}, "federation:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fresh := filepath.Join(t.TempDir(), "node")
			args := append([]string{"init", "--dir", fresh, "--name", "pd", "--role", "platform", "--federation", "fed"}, tc.args...)
			wantFailure(t, staydown(args...), tc.want)
			if _, err := os.Stat(filepath.Join(fresh, config.ConfigFile)); err == nil {
				t.Error("a failed init left a config behind")
			}
		})
	}
}
