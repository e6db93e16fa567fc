package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/staydown/staydown/protocol"
)

const goodConfig = `# a node
name = "nru-demo"
role = "referral"
federation = "staydown-demo"
roster = "../roster.toml"
listen = ["/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/udp/4001/quic-v1"]
api = "127.0.0.1:7001"
`

// withKeys returns goodConfig with key k set to line (or removed when line
// is ""), keeping the other keys.
func withKey(k, line string) string {
	var out []string
	found := false
	for _, l := range strings.Split(goodConfig, "\n") {
		if strings.HasPrefix(l, k+" = ") {
			found = true
			if line != "" {
				out = append(out, line)
			}
			continue
		}
		out = append(out, l)
	}
	if !found {
		out = append(out, line)
	}
	return strings.Join(out, "\n") + "\n"
}

func TestParseNodeGood(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "nru", ConfigFile)
	nodeDir := filepath.Join(dir, "nru")
	tests := []struct {
		name string
		text string
		want Node
	}{
		{"defaults", goodConfig, Node{
			Dir: nodeDir, Name: "nru-demo", Role: protocol.RoleReferral, Federation: "staydown-demo",
			RosterPath: filepath.Join(dir, "roster.toml"),
			Listen:     []string{"/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/udp/4001/quic-v1"},
			API:        "127.0.0.1:7001", StorePath: filepath.Join(nodeDir, "store.db"), LogLevel: "info",
		}},
		{"everything", `name = "p.1_x-y"
role = "platform"
federation = "federation-1"
roster = "/etc/staydown/roster.toml"
listen = []
api = "0.0.0.0:8080"
store = "data/s.db"
log_level = "debug"
allow_remote_api = true
api_tls_cert = "tls/api.crt"
api_tls_key = "/etc/staydown/api.key"
allow_remote_api_without_tls = false
metrics_token = true
`, Node{
			Dir: nodeDir, Name: "p.1_x-y", Role: protocol.RolePlatform, Federation: "federation-1",
			RosterPath: "/etc/staydown/roster.toml", Listen: nil,
			API: "0.0.0.0:8080", StorePath: filepath.Join(nodeDir, "data", "s.db"), LogLevel: "debug", AllowRemoteAPI: true,
			APITLSCert: filepath.Join(nodeDir, "tls", "api.crt"), APITLSKey: "/etc/staydown/api.key", MetricsToken: true,
		}},
		{"loopback v6 and localhost", withKey("api", `api = "[::1]:7001"`), Node{
			Dir: nodeDir, Name: "nru-demo", Role: protocol.RoleReferral, Federation: "staydown-demo",
			RosterPath: filepath.Join(dir, "roster.toml"),
			Listen:     []string{"/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/udp/4001/quic-v1"},
			API:        "[::1]:7001", StorePath: filepath.Join(nodeDir, "store.db"), LogLevel: "info",
		}},
		{"remote api allowed but off", withKey("allow_remote_api", "allow_remote_api = false"), Node{
			Dir: nodeDir, Name: "nru-demo", Role: protocol.RoleReferral, Federation: "staydown-demo",
			RosterPath: filepath.Join(dir, "roster.toml"),
			Listen:     []string{"/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/udp/4001/quic-v1"},
			API:        "127.0.0.1:7001", StorePath: filepath.Join(nodeDir, "store.db"), LogLevel: "info",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := ParseNode(file, []byte(tt.text))
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Policy = DefaultPolicy()               // no [policy] table; policy_test.go has them
			tt.want.MaxVideoUpload = DefaultMaxVideoUpload // TestVideoKeys has them
			if !reflect.DeepEqual(*n, tt.want) {
				t.Errorf("got  %+v\nwant %+v", *n, tt.want)
			}
		})
	}
}

func TestParseNodeErrors(t *testing.T) {
	const file = "nru/config.toml"
	tests := []struct {
		name     string
		text     string
		sentinel error
		want     []string // besides the file name
	}{
		{"syntax", "name = \"nru-demo\"\nrole = \n", ErrSyntax, []string{"config.toml:2:8:", "not valid TOML", "expected value"}},
		{"syntax duplicate key", goodConfig + "name = \"x\"\n", ErrSyntax, []string{"config.toml:8:", "already been defined"}},
		{"unknown key typo", withKey("listen", `listn = ["/ip4/127.0.0.1/tcp/4001"]`), ErrInvalid, []string{`unknown key "listn"`, "did you mean listen?"}},
		{"unknown key", goodConfig + "colour = \"red\"\n", ErrInvalid, []string{`unknown key "colour"`, "remove it", "known keys: name, role"}},
		{"unknown table", goodConfig + "[extra]\nx = 1\n", ErrInvalid, []string{`unknown key "extra"`}},
		{"empty file", "", ErrInvalid, []string{"name: missing: add name ="}},
		{"missing role", withKey("role", ""), ErrInvalid, []string{"role: missing: add role = \"referral\""}},
		{"missing federation", withKey("federation", ""), ErrInvalid, []string{"federation: missing"}},
		{"missing roster", withKey("roster", ""), ErrInvalid, []string{"roster: missing: add roster = \"roster.toml\""}},
		{"missing listen", withKey("listen", ""), ErrInvalid, []string{"listen: missing", "[] for none"}},
		{"missing api", withKey("api", ""), ErrInvalid, []string{"api: missing: add api = \"127.0.0.1:7001\""}},
		{"name not a string", withKey("name", "name = 5"), ErrInvalid, []string{"name: want a string in quotes, got the integer 5"}},
		{"name is a table", withKey("name", "name = {a = 1}"), ErrInvalid, []string{"name: want a string in quotes, got a table"}},
		{"name upper case", withKey("name", `name = "NRU"`), ErrInvalid, []string{"name:", `"NRU" has 'N' at byte 1`, "lower-case"}},
		{"name space", withKey("name", `name = "nru demo"`), ErrInvalid, []string{"name:", `' ' at byte 4`}},
		{"name empty", withKey("name", `name = ""`), ErrInvalid, []string{"name: want 1 to 64 characters, got 0"}},
		{"name long", withKey("name", `name = "`+strings.Repeat("a", 65)+`"`), ErrInvalid, []string{"name: want 1 to 64 characters, got 65"}},
		{"bad role", withKey("role", `role = "police"`), ErrInvalid, []string{`role: "police" is not a role`, `"referral", "platform", "auditor" or "access"`}},
		{"role case", withKey("role", `role = "Referral"`), ErrInvalid, []string{`role: "Referral" is not a role`}},
		{"federation empty", withKey("federation", `federation = ""`), ErrInvalid, []string{"federation: want 1 to 64 bytes, got 0"}},
		{"federation long", withKey("federation", `federation = "`+strings.Repeat("é", 33)+`"`), ErrInvalid, []string{"federation: want 1 to 64 bytes, got 66"}},
		{"federation control", withKey("federation", `federation = "a\u0007b"`), ErrInvalid, []string{"federation:", "is not a lower-case letter"}},
		{"roster empty", withKey("roster", `roster = ""`), ErrInvalid, []string{"roster: empty path"}},
		{"listen not array", withKey("listen", `listen = "/ip4/127.0.0.1/tcp/4001"`), ErrInvalid, []string{"listen: want an array of strings", "got a string"}},
		{"listen element type", withKey("listen", `listen = ["/ip4/127.0.0.1/tcp/4001", 4002]`), ErrInvalid, []string{"listen: element 2: want a string", "integer 4002"}},
		{"listen bad multiaddr", withKey("listen", `listen = ["/ip4/127.0.0.1/tcp/4001", "127.0.0.1:4001"]`), ErrInvalid, []string{`listen: address 2: "127.0.0.1:4001" is not a multiaddr`, "/ip4/127.0.0.1/tcp/4001"}},
		{"listen bad ip", withKey("listen", `listen = ["/ip4/300.0.0.1/tcp/4001"]`), ErrInvalid, []string{`listen: address 1: "/ip4/300.0.0.1/tcp/4001" is not a multiaddr`}},
		{"listen p2p", withKey("listen", `listen = ["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"]`), ErrInvalid, []string{"listen: address 1:", "has a /p2p/ part"}},
		// FuzzParseNode found this: the multiaddr library's message quotes
		// the address raw, so the error took two lines.
		{"listen newline", withKey("listen", `listen = ["/ip4/1.2.3.4\n/tcp/1"]`), ErrInvalid, []string{`listen: address 1: "/ip4/1.2.3.4\n/tcp/1" is not a multiaddr`, `1.2.3.4\n)`}},
		{"listen duplicate", withKey("listen", `listen = ["/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/tcp/4001"]`), ErrInvalid, []string{"listen: address 2:", "duplicate of address 1"}},
		{"api no port", withKey("api", `api = "127.0.0.1"`), ErrInvalid, []string{`api: "127.0.0.1" is not host:port`}},
		{"api bad port", withKey("api", `api = "127.0.0.1:http"`), ErrInvalid, []string{`api: "127.0.0.1:http": port "http": want a number from 1 to 65535`}},
		{"api port zero", withKey("api", `api = "127.0.0.1:0"`), ErrInvalid, []string{`port "0": want a number`}},
		{"api port big", withKey("api", `api = "127.0.0.1:65536"`), ErrInvalid, []string{`port "65536": want a number`}},
		{"api remote", withKey("api", `api = "0.0.0.0:7001"`), ErrInvalid, []string{`api: "0.0.0.0:7001" is not a loopback address`, "allow_remote_api = true"}},
		{"api all interfaces", withKey("api", `api = ":7001"`), ErrInvalid, []string{`api: ":7001" is not a loopback address`}},
		{"api hostname", withKey("api", `api = "example.org:7001"`), ErrInvalid, []string{"is not a loopback address"}},
		{"api remote flag false", withKey("api", `api = "10.0.0.1:7001"`) + "allow_remote_api = false\n", ErrInvalid, []string{"is not a loopback address"}},
		{"allow_remote_api string", goodConfig + "allow_remote_api = \"yes\"\n", ErrInvalid, []string{"allow_remote_api: want true or false"}},
		{"tls cert without key", goodConfig + "api_tls_cert = \"a.crt\"\n", ErrInvalid, []string{`api_tls_key: missing: api_tls_cert is set, so add api_tls_key = "FILE"`}},
		{"tls key without cert", goodConfig + "api_tls_key = \"a.key\"\n", ErrInvalid, []string{`api_tls_cert: missing: api_tls_key is set`}},
		{"tls cert empty", goodConfig + "api_tls_cert = \"\"\napi_tls_key = \"a.key\"\n", ErrInvalid, []string{"api_tls_cert: empty path"}},
		{"metrics_token string", goodConfig + "metrics_token = \"yes\"\n", ErrInvalid, []string{"metrics_token: want true or false"}},
		{"allow_remote_api_without_tls number", goodConfig + "allow_remote_api_without_tls = 1\n", ErrInvalid, []string{"allow_remote_api_without_tls: want true or false"}},
		{"store empty", goodConfig + "store = \"\"\n", ErrInvalid, []string{"store: empty path"}},
		{"store not string", goodConfig + "store = 1\n", ErrInvalid, []string{"store: want a string"}},
		{"log level", goodConfig + "log_level = \"verbose\"\n", ErrInvalid, []string{`log_level: "verbose" is not a log level`, `"debug", "info", "warn" or "error"`}},
		{"checkpoint interval", goodConfig + "checkpoint_interval = \"often\"\n", ErrInvalid, []string{`checkpoint_interval: "often": want a duration from 100ms to 24h`}},
		{"checkpoint interval too short", goodConfig + "checkpoint_interval = \"1ms\"\n", ErrInvalid, []string{`checkpoint_interval: "1ms"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := ParseNode(file, []byte(tt.text))
			if err == nil {
				t.Fatalf("no error; got %+v", n)
			}
			wantError(t, err, tt.sentinel, append([]string{file}, tt.want...)...)
			var e *Error
			if !errors.As(err, &e) || e.File != file {
				t.Errorf("error %#v is not an *Error for %s", err, file)
			}
		})
	}
}

func TestSyntaxErrorDetail(t *testing.T) {
	_, err := ParseNode("config.toml", []byte("name = \"a\"\nrole = \"referral\"\nlisten = [\"/ip4/127.0.0.1/tcp/1\",\n"))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *Error", err)
	}
	if e.Line == 0 || e.Column == 0 || !strings.Contains(e.Snippet, "^") || !strings.Contains(e.Snippet, "listen = [") {
		t.Errorf("syntax error %+v: want line, column and a snippet with a caret", e)
	}
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		t.Errorf("error does not unwrap to toml.ParseError")
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("Error() is not one line: %q", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	t.Run("missing", func(t *testing.T) {
		_, err := Load(dir)
		wantError(t, err, ErrNotFound, filepath.Join(dir, ConfigFile), "does not exist", "staydown init --dir")
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%v does not wrap fs.ErrNotExist", err)
		}
	})
	t.Run("good", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(goodConfig), 0o600); err != nil {
			t.Fatal(err)
		}
		// A relative dir is made absolute.
		wd, _ := os.Getwd()
		rel, err := filepath.Rel(wd, dir)
		if err != nil {
			t.Fatal(err)
		}
		n, err := Load(rel)
		if err != nil {
			t.Fatal(err)
		}
		if n.Dir != dir || n.RosterPath != filepath.Join(filepath.Dir(dir), "roster.toml") || n.StorePath != filepath.Join(dir, "store.db") {
			t.Errorf("paths not resolved against %s: %+v", dir, n)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(withKey("role", `role = "x"`)), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(dir)
		wantError(t, err, ErrInvalid, filepath.Join(dir, ConfigFile), "role:")
	})
}

func TestCheckName(t *testing.T) {
	for _, good := range []string{"a", "nru-demo", "acme_1.eu", strings.Repeat("z", 64), "-", "0"} {
		if err := CheckName(good); err != nil {
			t.Errorf("CheckName(%q) = %v", good, err)
		}
	}
	for _, bad := range []string{"", "A", "a b", "é", "a/b", "a\x00", strings.Repeat("z", 65), "\"q\""} {
		if err := CheckName(bad); err == nil {
			t.Errorf("CheckName(%q) = nil", bad)
		}
	}
}

func TestSuggest(t *testing.T) {
	for k, want := range map[string]string{
		"listn": "listen", "lisen": "listen", "Name": "name", "log-level": "log_level",
		"allow_remote": "", "x": "", "rol": "role", "stor": "store", "zzzzzz": "",
	} {
		if got := suggest(k, nodeKeys); got != want {
			t.Errorf("suggest(%q) = %q, want %q", k, got, want)
		}
	}
	if got := suggest("authorkey", memberKeys); got != "author_key" {
		t.Errorf("suggest(authorkey) = %q", got)
	}
}

// ffmpeg is a path resolved against the node's directory; max_video_upload
// a size with a binary unit, 2 GiB when absent.
func TestVideoKeys(t *testing.T) {
	n, err := ParseNode("/x/config.toml", []byte(goodConfig+"ffmpeg = \"bin/ffmpeg\"\nmax_video_upload = \"500MiB\"\n"))
	if err != nil || n.FFmpeg != "/x/bin/ffmpeg" || n.MaxVideoUpload != 500<<20 {
		t.Fatalf("%v, %+v", err, n)
	}
	if n, err := ParseNode("/x/config.toml", []byte(goodConfig)); err != nil || n.FFmpeg != "" || n.MaxVideoUpload != 2<<30 {
		t.Fatalf("defaults: %v, %+v", err, n)
	}
	for _, tt := range []struct{ size, want string }{
		{"2 GB", `max_video_upload: "2 GB": want a size from 1MiB to 1TiB`},
		{"0GiB", `"0GiB": want a size`},
		{"10KiB", `"10KiB": want a size`},
		{"2TiB", `"2TiB": want a size`},
		{"-1MiB", `"-1MiB": want a size`},
	} {
		_, err := ParseNode("/x/config.toml", []byte(goodConfig+"max_video_upload = \""+tt.size+"\"\n"))
		wantError(t, err, ErrInvalid, tt.want)
	}
	for _, size := range []string{"1048576", "1TiB", "2048MiB"} {
		if _, err := ParseNode("/x/config.toml", []byte(goodConfig+"max_video_upload = \""+size+"\"\n")); err != nil {
			t.Errorf("%s: %v", size, err)
		}
	}
}

func TestCheckpointInterval(t *testing.T) {
	n, err := ParseNode("/x/config.toml", []byte(goodConfig+"checkpoint_interval = \"2s\"\n"))
	if err != nil || n.CheckpointInterval != 2*time.Second {
		t.Fatalf("%v, %v", err, n)
	}
	if n, err := ParseNode("/x/config.toml", []byte(goodConfig)); err != nil || n.CheckpointInterval != 0 {
		t.Fatalf("default: %v, %v", err, n)
	}
}

// A directory whose name holds a newline is named quoted, so that every
// message about its files stays on one line; an I/O error's message, which
// names the path raw, has the newline escaped.
func TestPathWithNewline(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows file names cannot hold a newline")
	}
	dir := filepath.Join(t.TempDir(), "node\ndir")
	cfg := strconv.Quote(filepath.Join(dir, ConfigFile))

	_, err := Load(dir)
	wantError(t, err, ErrNotFound, cfg+": does not exist", "staydown init --dir "+strconv.Quote(dir)+" ")

	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(withKey("role", `role = "x"`)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(dir)
	wantError(t, err, ErrInvalid, cfg+": role:")

	key := filepath.Join(dir, AuthorKeyFile)
	if err := os.WriteFile(key, []byte(strings.Repeat("ab", 32)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(key, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	_, err = (&Node{Dir: dir}).AuthorKey()
	wantError(t, err, ErrPermissions, strconv.Quote(key)+": permissions 0644", "chmod 600 "+strconv.Quote(key))

	roster := filepath.Join(dir, "roster.toml")
	if err := os.Mkdir(roster, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err = LoadRoster(roster, "f")
	var pe *fs.PathError
	if !errors.As(err, &pe) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), `node\ndir`) {
		t.Errorf("reading a directory as the roster: %q (%T), want the *fs.PathError on one line", err, err)
	}
}

// A remote API over plain HTTP is refused at the node's start (the CLI
// may still load the config) unless allowed in so many words.
func TestCheckAPITransport(t *testing.T) {
	file := filepath.Join(t.TempDir(), ConfigFile)
	remote := withKey("api", `api = "0.0.0.0:7001"`) + "allow_remote_api = true\n"
	for _, tt := range []struct {
		name, text, want string
	}{
		{"loopback", goodConfig, ""},
		{"remote without TLS", remote, file + ": allow_remote_api: the API would take bearer tokens in clear text from other hosts: set api_tls_cert and api_tls_key (HTTPS), or allow_remote_api_without_tls = true if a proxy in front does TLS"},
		{"remote with TLS", remote + "api_tls_cert = \"a.crt\"\napi_tls_key = \"a.key\"\n", ""},
		{"remote without TLS, allowed", remote + "allow_remote_api_without_tls = true\n", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, err := ParseNode(file, []byte(tt.text))
			if err != nil {
				t.Fatal(err)
			}
			err = n.CheckAPITransport()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want || !errors.Is(err, ErrInvalid)):
				t.Errorf("error %v, want %s", err, tt.want)
			}
		})
	}
}
