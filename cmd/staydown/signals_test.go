package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// #13 item 11: every command that takes a signal takes TYPE:VALUE, the
// form `hash` prints; --type applies to bare values only.
func TestParseSignalArg(t *testing.T) {
	md5 := strings.Repeat("0f", 16)
	tests := []struct {
		typ, arg string
		want     api.Signal
		err      string
	}{
		{"", "sha256:" + sha, api.Signal{Type: "sha256", Value: sha}, ""},
		{"", "SHA256:" + sha, api.Signal{}, `unknown signal type "SHA256"`},
		{"", "sha256:" + strings.ToUpper(sha), api.Signal{Type: "sha256", Value: sha}, ""},
		{"sha256", sha, api.Signal{Type: "sha256", Value: sha}, ""},
		{"sha256", "sha256:" + sha, api.Signal{Type: "sha256", Value: sha}, ""},
		{"md5", "sha256:" + sha, api.Signal{}, `the type prefix "sha256:" contradicts --type "md5"`},
		{"", "md5:" + md5, api.Signal{Type: "md5", Value: md5}, ""},
		{"", sha, api.Signal{}, "no type: give TYPE:VALUE"},
		{"", "https://example.org/a", api.Signal{}, "no type: give TYPE:VALUE"},
		{"", "sha1:abc", api.Signal{}, `bad signal: unknown signal type "sha1"`},
		{"sha1", "abc", api.Signal{}, `--type: bad signal: unknown signal type "sha1"`},
		{"", "sha256:abc", api.Signal{}, "sha256: want 64 hex characters, got 3"},
		// A url's scheme and an account's service are not type prefixes.
		{"url", "https://example.org/a", api.Signal{Type: "url", Value: "https://example.org/a"}, ""},
		{"", "url:https://example.org/a", api.Signal{Type: "url", Value: "https://example.org/a"}, ""},
		{"account", "x:123", api.Signal{Type: "account", Value: "x:123"}, ""},
		{"", "account:x:123", api.Signal{Type: "account", Value: "x:123"}, ""},
		{"account", "account:x:123", api.Signal{Type: "account", Value: "x:123"}, ""},
		{"url", "account:x:123", api.Signal{}, `the type prefix "account:" contradicts --type "url"`},
	}
	for _, tt := range tests {
		t.Run(tt.typ+" "+tt.arg, func(t *testing.T) {
			got, err := parseSignalArg(tt.typ, tt.arg)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestReadSignalList(t *testing.T) {
	pdqHex := strings.Repeat("3c", 32)
	tests := []struct {
		name, typ, text string
		want            []api.Signal
		err             string
	}{
		{"hash output of one file", "", "sha256:" + sha + "\nmd5:" + strings.Repeat("0f", 16) + "\npdq:" + pdqHex + " quality=87\n",
			[]api.Signal{{Type: "sha256", Value: sha}, {Type: "md5", Value: strings.Repeat("0f", 16)}, {Type: "pdq", Value: pdqHex}}, ""},
		{"hash output of several files", "", "sha256:" + sha + "  a b.jpg\npdq:" + pdqHex + " quality=87  a b.jpg\r\n",
			[]api.Signal{{Type: "sha256", Value: sha}, {Type: "pdq", Value: pdqHex}}, ""},
		{"comments, blanks, bare values of --type", "sha256", "# from case 7\n\n  " + sha + "  \n\t# x\nsha256:" + sha2 + "\n",
			[]api.Signal{{Type: "sha256", Value: sha}, {Type: "sha256", Value: sha2}}, ""},
		{"an account id keeps its blanks", "", "account:forum:John Smith\n", []api.Signal{{Type: "account", Value: "forum:John Smith"}}, ""},
		{"bare without --type", "", "# x\n" + sha + "\n", nil, `list:2: "` + sha + `": no type: give TYPE:VALUE`},
		{"conflict", "md5", "sha256:" + sha + "\n", nil, `list:1: "sha256:` + sha + `": the type prefix "sha256:" contradicts --type "md5"`},
		{"bad value", "", "sha256:" + sha + "\nmd5:abc quality=3\n", nil, `list:2: "md5:abc quality=3": bad signal: md5: want 32 hex characters, got 3`},
		{"a line with a newline-like byte is quoted", "", "sha256:\x1b[2J\n", nil, `list:1: "sha256:\x1b[2J": bad signal`},
		{"empty", "", "# nothing\n\n", nil, "list lists no signal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "list")
			if err := os.WriteFile(p, []byte(tt.text), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := readSignalList(p, nil, tt.typ)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error is not one line: %q", err)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
			// Standard input reads the same.
			if got2, err := readSignalList("-", strings.NewReader(tt.text), tt.typ); err != nil || fmt.Sprint(got2) != fmt.Sprint(got) {
				t.Errorf("from stdin: %v, %v", got2, err)
			}
		})
	}
}

// What `hash` prints, for one file and for several, reads back as the
// file's signals.
func TestHashOutputRoundTrip(t *testing.T) {
	photo := referenceImage(t, "bridge-mods--aaa-orig.jpg")
	text := filepath.Join(t.TempDir(), "notes with blanks.txt")
	if err := os.WriteFile(text, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	var want []api.Signal
	for _, f := range []string{photo, text} {
		h, err := hashPath(t.Context(), f, videoOptions{}, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range h.Hashes {
			want = append(want, api.Signal{Type: s.Type, Value: s.Value})
		}
	}
	if len(want) != 5 {
		t.Fatalf("%d hashes, want sha256, md5, pdq of the photo and sha256, md5 of the text", len(want))
	}
	for _, files := range [][]string{{photo}, {photo, text}} {
		r := staydown(append([]string{"hash"}, files...)...)
		if r.code != exitOK {
			t.Fatal(r.stderr)
		}
		got, err := readSignalList("-", strings.NewReader(r.stdout), "")
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want[:len(got)]) || len(got) != 3*len(files)-len(files)/2 {
			t.Errorf("hash output\n%s\nread as %v, want %v", r.stdout, got, want)
		}
	}
}

func TestAddFromList(t *testing.T) {
	pdqHex := strings.Repeat("3c", 32)
	list := "# case 7\nsha256:" + sha + "\npdq:" + pdqHex + " quality=87\n\nsha256:" + sha + "\n"
	wantSigs := func(t *testing.T) []*pb.Signal {
		return []*pb.Signal{mustSignal(t, "sha256", sha), mustSignal(t, "pdq", pdqHex)}
	}
	t.Run("file", func(t *testing.T) {
		n := startNode(t)
		body := n.publishedOnce(t, staydown("add", "--dir", n.dir, "--file", writeList(t, list), "--label", "graphic-violence"))
		if got := body.GetAddition().GetSignals(); !sigsEqual(got, wantSigs(t)) {
			t.Errorf("published %v", got)
		}
	})
	t.Run("stdin", func(t *testing.T) {
		n := startNode(t)
		body := n.publishedOnce(t, staydownIn(list, "add", "--dir", n.dir, "--file", "-", "--label", "graphic-violence"))
		if got := body.GetAddition().GetSignals(); !sigsEqual(got, wantSigs(t)) {
			t.Errorf("published %v", got)
		}
	})
	t.Run("TYPE:VALUE arguments", func(t *testing.T) {
		n := startNode(t)
		body := n.publishedOnce(t, staydown("add", "--dir", n.dir, "sha256:"+sha, "pdq:"+pdqHex, "--label", "graphic-violence"))
		if got := body.GetAddition().GetSignals(); !sigsEqual(got, wantSigs(t)) {
			t.Errorf("published %v", got)
		}
	})
	t.Run("allow from stdin", func(t *testing.T) {
		n := startNode(t)
		body := n.publishedOnce(t, staydownIn(list, "allow", "--dir", n.dir, "-f", "-", "--category", "news", "--reason", "r"))
		if got := body.GetAllow().GetSignals(); !sigsEqual(got, wantSigs(t)) {
			t.Errorf("published %v", got)
		}
	})
}

// A list longer than an entry holds becomes several additions, each id
// printed, with the same labels and case.
func TestAddLongList(t *testing.T) {
	n := startNode(t)
	var b strings.Builder
	const total = 2*protocol.MaxSignals + 5
	for i := range total {
		fmt.Fprintf(&b, "md5:%032x\n", i)
	}
	r := staydownIn(b.String(), "add", "--dir", n.dir, "--file", "-", "--label", "graphic-violence", "--case", "C-1")
	if r.code != exitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	signed, published := n.fake.Signed(), n.fake.Published()
	if len(published) != 3 {
		t.Fatalf("%d entries, want 3", len(published))
	}
	var ids []string
	seen := 0
	for i, e := range published {
		a := e.GetAddition()
		if want := []int{1000, 1000, 5}[i]; len(a.GetSignals()) != want || a.GetCaseRef() != "C-1" || len(a.GetLabels()) != 1 {
			t.Errorf("entry %d: %d signals, case %q, labels %v", i, len(a.GetSignals()), a.GetCaseRef(), a.GetLabels())
		}
		if !proto.Equal(a.GetSignals()[0], mustSignal(t, "md5", fmt.Sprintf("%032x", seen))) {
			t.Errorf("entry %d starts with %v", i, a.GetSignals()[0])
		}
		seen += len(a.GetSignals())
		ids = append(ids, signed[i].ID.String())
	}
	if want := strings.Join(ids, "\n") + "\n"; r.stdout != want {
		t.Errorf("stdout %q, want the ids %q", r.stdout, want)
	}
}

func TestAddListErrors(t *testing.T) {
	n := startNode(t)
	many := make([]string, protocol.MaxSignals+1)
	for i := range many {
		many[i] = fmt.Sprintf("md5:%032x", i)
	}
	for _, tc := range []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"values and --file", "", []string{"--file", "-", "sha256:" + sha}, "give VALUEs or --file, not both"},
		{"neither", "", nil, "missing VALUE (or --file LIST)"},
		{"a bad line", "sha256:" + sha + "\n\npdq:zz quality=9\n", []string{"--file", "-"}, `standard input:3: "pdq:zz quality=9": bad signal: pdq`},
		{"conflicting type", "", []string{"--type", "md5", "sha256:" + sha}, `value "sha256:` + sha + `": the type prefix "sha256:" contradicts --type "md5"`},
		{"too many arguments", "", many, "1001 values, limit 1000 on the command line: list them in a file"},
		{"missing file", "", []string{"--file", filepath.Join(t.TempDir(), "nope")}, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"add", "--dir", n.dir, "--label", "graphic-violence"}, tc.args...)
			wantFailure(t, staydownIn(tc.stdin, args...), tc.want)
			if c := n.calls(); c != 0 {
				t.Errorf("%d backend calls", c)
			}
		})
	}
}

func sigsEqual(a, b []*pb.Signal) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// FuzzParseSignalLine: any line is refused with a one-line error or read
// as a signal that parses back to itself.
func FuzzParseSignalLine(f *testing.F) {
	for _, s := range []string{"sha256:" + sha, "pdq:" + strings.Repeat("3c", 32) + " quality=87  a.jpg", "# c", "", "url:https://a.example/x y",
		"account:svc:id with blanks", sha, "md5:" + strings.Repeat("0F", 16), "sha1:x", "https://a.example/",
		`vpdq:["` + strings.Repeat("3c", 32) + `,100,0.0", "` + strings.Repeat("a5", 32) + `,90,1.5"]  clip, with blanks.mp4`,
		`vpdq:["` + strings.Repeat("3c", 32) + `,100,1.23e+02"]`, `vpdq:["x"]] y`, `vpdq:[`} {
		f.Add("", s)
		f.Add("sha256", s)
	}
	f.Fuzz(func(t *testing.T, typ, line string) {
		s, ok, err := parseSignalLine(typ, line)
		if err != nil {
			if ok {
				t.Fatal("ok with an error")
			}
			if strings.ContainsAny(fmt.Sprintf("%s: %v", short(line), err), "\n\r") {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		if !ok {
			return
		}
		again, err := parseSignalArg("", s.Type+":"+s.Value)
		if err != nil || again != s {
			t.Fatalf("%v does not parse back: %v, %v", s, again, err)
		}
	})
}

// When a later entry of a long list is refused, the error says which
// entries were published already: they took effect.
func TestAddLongListPartialFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &testNode{dir: initDir(t, ln.Addr().String()), addr: ln.Addr().String()}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.serve(t, inner, []protocol.Member{other})
	// The front passes the first addition to the node and fails the
	// second as a node that lost its store would.
	var posts atomic.Int32
	front := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/additions" {
			if posts.Add(1) == 2 {
				http.Error(w, `{"error":"store closed"}`, http.StatusServiceUnavailable)
				return
			}
		}
		(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: "http", Host: inner.Addr().String()})
		}}).ServeHTTP(w, r)
	})}
	go front.Serve(ln)
	t.Cleanup(func() { front.Close() })

	var b strings.Builder
	for i := range protocol.MaxSignals + 1 {
		fmt.Fprintf(&b, "md5:%032x\n", i)
	}
	r := staydownIn(b.String(), "add", "--dir", n.dir, "--file", "-", "--label", "graphic-violence")
	id := n.fake.Signed()[0].ID.String()
	if r.code != exitError || r.stdout != id+"\n" {
		t.Errorf("exit %d, stdout %q; want 2 and the first id", r.code, r.stdout)
	}
	if want := "(published before this error: 1 entry of 2, the first 1000 signals of 1001: " + id + ")"; !strings.Contains(r.stderr, want) {
		t.Errorf("stderr %q, want %q", r.stderr, want)
	}
}

func TestAddLongListJSON(t *testing.T) {
	n := startNode(t)
	var b strings.Builder
	for i := range protocol.MaxSignals + 1 {
		fmt.Fprintf(&b, "md5:%032x\n", i)
	}
	r := staydownIn(b.String(), "add", "--dir", n.dir, "--file", "-", "--label", "graphic-violence", "--json")
	if r.code != exitOK {
		t.Fatal(r.stderr)
	}
	s := n.fake.Signed()
	wantJSON(t, r.stdout, fmt.Sprintf(`[{"id":%q,"seq":1,"author":"nru"},{"id":%q,"seq":2,"author":"nru"}]`, s[0].ID, s[1].ID))
}
