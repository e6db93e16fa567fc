package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/internal/testclock"
	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/api/apitest"
	"github.com/staydown/staydown/node/tokens"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// Fixtures.
var (
	sha    = strings.Repeat("ab", 32)
	sha2   = strings.Repeat("cd", 32)
	target = "1220" + strings.Repeat("11", 32)
	other  = protocol.Member{Name: "platform-a", Role: protocol.RolePlatform, AuthorKey: protocol.AuthorKey{7}}
)

// testNode is a node directory made by config.Init whose API address is a
// real loopback listener serving api.NewServer over a fake backend.
type testNode struct {
	dir  string
	addr string
	fake *apitest.Backend
	// clock is the clock of the server's tokens.Keeper: api.tokens is
	// looked at again when it has moved tokens.CheckEvery.
	clock *testclock.Clock
}

// startNode opens the listener first, so that Init can write its address.
// The fake's roster is the node (nru, a referral unit) and other.
func startNode(t *testing.T) *testNode {
	t.Helper()
	return startNodeWith(t, other)
}

// startNodeWith is startNode with the fake's roster of the node and
// others.
func startNodeWith(t *testing.T, others ...protocol.Member) *testNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &testNode{dir: initDir(t, ln.Addr().String()), addr: ln.Addr().String()}
	n.serve(t, ln, others)
	return n
}

// serve serves the API of the node's directory on ln, over a fake
// backend whose roster is the node and others, with the tokens of
// api.token and api.tokens, as the node does.
func (n *testNode) serve(t *testing.T, ln net.Listener, others []protocol.Member) {
	t.Helper()
	cfg, err := config.Load(n.dir)
	if err != nil {
		t.Fatal(err)
	}
	token, err := cfg.Token()
	if err != nil {
		t.Fatal(err)
	}
	n.clock = testclock.New(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	keys, err := tokens.Open(cfg.Dir, token, n.clock.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	n.fake = apitest.New(cfg.Name, cfg.Role, others...)
	srv := &http.Server{Handler: api.NewServer(n.fake, keys, slog.New(slog.DiscardHandler))}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// stoppedNode is a node directory whose API address nothing listens on.
func stoppedNode(t *testing.T) *testNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return &testNode{dir: initDir(t, addr), addr: addr}
}

func initDir(t *testing.T, apiAddr string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "nru")
	_, _, err := config.Init(config.InitOptions{
		Dir: dir, Name: "nru", Role: protocol.RoleReferral, API: apiAddr, Listen: []string{"/ip4/127.0.0.1/tcp/0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// calls is the number of backend calls, 0 for a stopped node.
func (n *testNode) calls() int {
	if n.fake == nil {
		return 0
	}
	return n.fake.Calls()
}

type result struct {
	code           int
	stdout, stderr string
}

// staydown runs the command line in process.
func staydown(args ...string) result {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return result{code, out.String(), errb.String()}
}

// staydownIn runs the command line in process with stdin as its
// standard input.
func staydownIn(stdin string, args ...string) result {
	var out, errb bytes.Buffer
	code := runIn(args, strings.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

// expand replaces D in args with the node's directory.
func (n *testNode) expand(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "D" {
			a = n.dir
		}
		out[i] = a
	}
	return out
}

// wantFailure checks exit 2, nothing on stdout, and the message on stderr
// starting "staydown: " and containing want.
func wantFailure(t *testing.T, r result, want string) {
	t.Helper()
	if r.code != exitError {
		t.Errorf("exit %d, want %d; stderr %q", r.code, exitError, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("stdout %q, want nothing", r.stdout)
	}
	if !strings.HasPrefix(r.stderr, "staydown: ") || !strings.Contains(r.stderr, want) {
		t.Errorf("stderr %q, want \"staydown: ...%s...\"", r.stderr, want)
	}
}

// wantJSON checks that got is exactly the JSON document want.
func wantJSON(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want: %v", err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("JSON:\ngot  %s\nwant %s", got, want)
	}
}

func mustSignal(t *testing.T, typ, value string) *pb.Signal {
	t.Helper()
	s, err := protocol.ParseSignal(typ, value)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustID(t *testing.T, s string) []byte {
	t.Helper()
	id, err := protocol.ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id[:]
}

// publishedOnce checks that exactly one entry was published and that the
// command printed its id.
func (n *testNode) publishedOnce(t *testing.T, r result) *pb.Entry {
	t.Helper()
	if r.code != exitOK {
		t.Fatalf("exit %d; stderr %q", r.code, r.stderr)
	}
	signed := n.fake.Signed()
	if len(signed) != 1 {
		t.Fatalf("%d entries published, want 1", len(signed))
	}
	if want := signed[0].ID.String() + "\n"; r.stdout != want {
		t.Errorf("stdout %q, want the entry id %q", r.stdout, want)
	}
	return n.fake.Published()[0]
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
		code int
	}{
		{"no command prints help", nil, "Usage:", exitOK},
		{"help", []string{"--help"}, "Available Commands:", exitOK},
		{"command help", []string{"match", "--help"}, "0 block (the node's policy says act on it), 3", exitOK},
		{"unknown command", []string{"frobnicate"}, `staydown: unknown command "frobnicate" for "staydown"`, exitError},
		{"unknown flag", []string{"status", "--verbose"}, "staydown: status: unknown flag: --verbose", exitError},
		{"unknown global flag", []string{"--colour", "status"}, "unknown flag: --colour", exitError},
		{"flag without value", []string{"add", "--type"}, "staydown: add: flag needs an argument: --type", exitError},
		{"stray argument", []string{"status", "--dir", "D", "extra"}, `staydown: status: unexpected argument "extra"`, exitError},
		// #13 item 8: these printed the group's help and exited 0.
		{"unknown subcommand", []string{"watch", "foo"}, `staydown: watch: unknown subcommand "foo"; want one of add, list, remove`, exitError},
		{"unknown nested subcommand", []string{"member", "propose", "bogus"}, `staydown: member propose: unknown subcommand "bogus"`, exitError},
		{"group without a subcommand", []string{"log"}, "staydown: log: missing subcommand: one of export, import", exitError},
		// #13 item 16: the help called it "your own case reference".
		{"--case is public", []string{"add", "--help"}, "a case reference, PUBLIC: signed into the entry", exitOK},
		{"version", []string{"--version"}, "protocol  entries v1, sync /staydown/sync/1.0.0, export v1", exitOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := staydown(tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d; stderr %q", r.code, tt.code, r.stderr)
			}
			if !strings.Contains(r.stdout+r.stderr, tt.want) {
				t.Errorf("output %q%q, want %q", r.stdout, r.stderr, tt.want)
			}
			if tt.code == exitError && !strings.Contains(r.stderr, "--help' for usage") {
				t.Errorf("a usage error should point to --help: %q", r.stderr)
			}
		})
	}
}

// Every command that talks to the node says clearly when it is not running.
func TestNodeNotRunning(t *testing.T) {
	n := stoppedNode(t)
	commands := [][]string{
		{"add", "--dir", "D", "--type", "sha256", "--label", "graphic-violence", sha},
		{"retract", "--dir", "D", target},
		{"dispute", "--dir", "D", target, "--reason", "r"},
		{"allow", "--dir", "D", "--type", "sha256", "--category", "news", "--reason", "r", sha},
		{"match", "--dir", "D", "--type", "sha256", sha},
		{"match", "--dir", "D", "--type", "sha256", sha, "--json"},
		{"status", "--dir", "D"},
	}
	for _, args := range commands {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := staydown(n.expand(args)...)
			want := "staydown: " + args[0] + ": cannot reach the node at " + n.addr + " (is `staydown run --dir " + n.dir + "` running?)\n"
			if r.code != exitError || r.stdout != "" || r.stderr != want {
				t.Errorf("exit %d, stdout %q, stderr\n %q\nwant exit 2 and\n %q", r.code, r.stdout, r.stderr, want)
			}
		})
	}
}

// A node that does not know this directory's token is reported as such.
func TestWrongToken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := initDir(t, ln.Addr().String())
	fake := apitest.New("nru", protocol.RoleReferral)
	srv := &http.Server{Handler: api.NewServer(fake, tokens.Static("another-token"), slog.New(slog.DiscardHandler))}
	go srv.Serve(ln)
	defer srv.Close()
	r := staydown("status", "--dir", dir)
	wantFailure(t, r, "refused the token in "+filepath.Join(dir, config.TokenFile))
	if fake.Calls() != 0 {
		t.Error("backend called")
	}
}

func TestMissingDir(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nowhere")
	for _, args := range [][]string{
		{"status"},
		{"match", "--type", "sha256", sha},
		{"add", "--type", "sha256", "--label", "graphic-violence", sha},
	} {
		t.Run(args[0]+" without --dir", func(t *testing.T) {
			wantFailure(t, staydown(args...), "staydown: "+args[0]+": --dir: required")
		})
		t.Run(args[0]+" with a directory that is not a node", func(t *testing.T) {
			wantFailure(t, staydown(append(args, "--dir", missing)...), filepath.Join(missing, config.ConfigFile)+": does not exist")
		})
	}
}

// An error that names a file or directory given with a newline is one
// line: the name is quoted where the command writes it, and a message from
// elsewhere (the os package names paths raw) has the newline escaped.
func TestErrorsStayOneLine(t *testing.T) {
	tmp := t.TempDir()
	odd := filepath.Join(tmp, "a\nb")
	if err := os.Mkdir(odd, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"hash of a directory", []string{"hash", odd}, "staydown: hash: " + strconv.Quote(odd) + " is not a regular file"},
		{"hash of a missing file", []string{"hash", filepath.Join(odd, "x\ny")}, "staydown: hash: open " + tmp + `/a\nb/x\ny: no such file or directory`},
		{"dir that is not a node", []string{"status", "--dir", odd}, "staydown: status: " + strconv.Quote(filepath.Join(odd, config.ConfigFile)) + ": does not exist"},
		{"bad name", []string{"init", "--dir", filepath.Join(tmp, "n"), "--name", "a\nb", "--role", "platform"}, `staydown: init: --name: "a\nb" has '\n' at byte 2`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := staydown(tc.args...)
			wantFailure(t, r, tc.want)
			// A usage error adds a line pointing to --help.
			lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
			if len(lines) > 2 || len(lines) == 2 && !strings.HasPrefix(lines[1], "Run '") {
				t.Errorf("stderr is %d lines:\n%s", len(lines), r.stderr)
			}
			if first, _, _ := strings.Cut(r.stderr, "\n"); !strings.Contains(first, tc.want) {
				t.Errorf("first line %q, want %q in it", first, tc.want)
			}
		})
	}
}
