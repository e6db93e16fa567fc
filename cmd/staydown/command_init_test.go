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
		{"bad role", []string{"--dir", "D", "--name", "nru", "--role", "admin"}, `staydown: init: --role: "admin" is not a role: use referral, platform or auditor`},
		{"bad listen", []string{"--dir", "D", "--name", "nru", "--role", "referral", "--listen", "tcp:4001"}, "listen: address 1: \"tcp:4001\" is not a multiaddr"},
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
