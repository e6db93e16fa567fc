package main

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/internal/testclock"
	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/api/apitest"
	"github.com/staydown/staydown/node/console"
	"github.com/staydown/staydown/node/tokens"
)

// consoleNode serves the API and the console of a node directory, over a
// fake backend, on a real loopback listener, as the node does.
func consoleNode(t *testing.T) *testNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &testNode{dir: initDir(t, ln.Addr().String()), addr: ln.Addr().String()}
	cfg, err := config.Load(n.dir)
	if err != nil {
		t.Fatal(err)
	}
	token, err := cfg.Token()
	if err != nil {
		t.Fatal(err)
	}
	n.clock = testclock.New(time.Now())
	keys, err := tokens.Open(cfg.Dir, token, n.clock.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	n.fake = apitest.New(cfg.Name, cfg.Role, other)
	mux := http.NewServeMux()
	mux.Handle("/v1/", api.NewServer(n.fake, keys, slog.New(slog.DiscardHandler)))
	mux.Handle("/", console.New(n.fake, keys, slog.New(slog.DiscardHandler), console.Options{Now: n.clock.Now}))
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return n
}

var linkRE = regexp.MustCompile(`http://127\.0\.0\.1:\d+/signin\?ticket=[A-Za-z0-9_-]+`)

func TestConsoleLink(t *testing.T) {
	n := consoleNode(t)
	r := staydown("console", "--dir", n.dir)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	link := linkRE.FindString(r.stdout)
	if link == "" || !strings.Contains(r.stdout, "session scope: admin") {
		t.Fatalf("output %q: want a sign-in link and the session's scope", r.stdout)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	res, err := browser.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/" || !strings.Contains(string(body), "<h1>Overview</h1>") {
		t.Errorf("opening the link: %s at %s", res.Status, res.Request.URL)
	}

	// A read token's session says so.
	tok, _, err := tokens.Add(n.dir, tokens.Read, "viewer", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	n.clock.Add(2 * tokens.CheckEvery)
	file := filepath.Join(t.TempDir(), "read.token")
	os.WriteFile(file, []byte(tok+"\n"), 0o600)
	if r := staydown("console", "--dir", n.dir, "--token-file", file); r.code != 0 || !strings.Contains(r.stdout, "session scope: read") {
		t.Errorf("--token-file: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if r := staydown("console", "--dir", n.dir, "--json"); r.code != 0 || !regexp.MustCompile(`"url": "http://127`).MatchString(r.stdout) {
		t.Errorf("--json: exit %d, %q", r.code, r.stdout)
	}
}

func TestConsoleLinkErrors(t *testing.T) {
	n := consoleNode(t)
	two := filepath.Join(t.TempDir(), "two")
	os.WriteFile(two, []byte("one\ntwo\n"), 0o600)
	wrong := filepath.Join(t.TempDir(), "wrong")
	os.WriteFile(wrong, []byte("not-a-token\n"), 0o600)
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"missing file", []string{"--token-file", "/nonexistent/x"}, "--token-file"},
		{"two lines", []string{"--token-file", two}, `--token-file "` + two + `": want one token on one line`},
		{"unknown token", []string{"--token-file", wrong}, "wrong token"},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantFailure(t, staydown(append([]string{"console", "--dir", n.dir}, c.args...)...), c.want)
		})
	}
	wantFailure(t, staydown("console", "--dir", stoppedNode(t).dir), "")
}
