package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/store"
)

func writeList(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hosted.txt")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestWatchAdd(t *testing.T) {
	n := startNode(t)
	pdqHex := strings.Repeat("3c", 32)
	list := writeList(t, "# hosted content, 2024\n\nsha256:"+strings.ToUpper(sha)+"\npdq:"+pdqHex+" quality=87\n"+
		"  url:HTTPS://Video.Example/watch?v=1#t=3  \naccount:Example.com:some:one\nsha256:"+sha+"\n")
	id := protocol.ID{0x12, 0x20, 4}
	n.fake.SetAlerts(api.RaisedAlert{Seq: 1, RaisedMs: 1_700_000_000_000, Watched: mustSignal(t, "pdq", pdqHex),
		Signal: mustSignal(t, "pdq", pdqHex), Distance: 3, Attestation: store.Attestation{
			Author: other.AuthorKey, EntryID: id, Seq: 4, Labels: []string{"graphic-violence"}, Status: store.StatusActive}})
	r := staydown("watch", "add", "--dir", n.dir, "--file", list)
	want := "added 4, already watched 1, watchlist now 4 signals\n" +
		"alert 1  2023-11-14T22:13:20.000Z  pdq:" + pdqHex + " distance=3  active  platform-a  graphic-violence  " + id.String() + "\n"
	if r.code != exitOK || r.stderr != "" || r.stdout != want {
		t.Fatalf("exit %d stderr %q stdout\n%s\nwant\n%s", r.code, r.stderr, r.stdout, want)
	}
	for _, s := range [][2]string{{"sha256", sha}, {"pdq", pdqHex}, {"url", "https://video.example/watch?v=1"}, {"account", "example.com:some:one"}} {
		if !n.fake.Watched(mustSignal(t, s[0], s[1])) {
			t.Errorf("%s:%s not watched", s[0], s[1])
		}
	}
	r = staydown("watch", "add", "--dir", n.dir, "--file", list, "--json")
	if r.code != exitOK || !strings.Contains(r.stdout, `"known": 5`) || !strings.Contains(r.stdout, `"distance": 3`) {
		t.Errorf("JSON: exit %d\n%s", r.code, r.stdout)
	}
}

func TestWatchAddErrors(t *testing.T) {
	n := startNode(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no signal", nil, "staydown: watch add: no signal: give TYPE:VALUE arguments or --file LIST"},
		{"missing file", []string{"--file", "/nonexistent/list"}, "open /nonexistent/list: no such file or directory"},
		{"bad line", []string{"--file", writeList(t, "sha256:"+sha+"\n# ok\nmd5:abc\n")}, `hosted.txt:3: "md5:abc": bad signal: md5: want 32 hex characters, got 3`},
		{"no type", []string{"--file", writeList(t, sha+"\n")}, `hosted.txt:1: "` + sha + `": no type: give TYPE:VALUE`},
		{"unknown type", []string{"--file", writeList(t, "sha1:abc\n")}, `hosted.txt:1: "sha1:abc": bad signal: unknown signal type "sha1"`},
		{"empty", []string{"--file", writeList(t, "# nothing\n\n")}, "lists no signal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantFailure(t, staydown(append([]string{"watch", "add", "--dir", n.dir}, tt.args...)...), tt.want)
			if c := n.calls(); c != 0 {
				t.Fatalf("%d requests reached the node", c)
			}
		})
	}
}

// TestWatchAddBatches: a list longer than a request's limit goes in
// several requests.
func TestWatchAddBatches(t *testing.T) {
	n := startNode(t)
	var b strings.Builder
	const count = api.MaxWatchBatch + 10
	for i := range count {
		fmt.Fprintf(&b, "sha256:%064x\n", i)
	}
	r := staydown("watch", "add", "--dir", n.dir, "--file", writeList(t, b.String()))
	if r.code != exitOK || r.stdout != fmt.Sprintf("added %d, already watched 0, watchlist now %d signals\n", count, count) {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if c := n.calls(); c != 2 {
		t.Errorf("%d requests, want 2", c)
	}
}

func TestAlerts(t *testing.T) {
	n := startNode(t)
	r := staydown("alerts", "--dir", n.dir)
	if r.code != exitOK || r.stdout != "no alerts\n" {
		t.Fatalf("exit %d stdout %q", r.code, r.stdout)
	}
	id := protocol.ID{0x12, 0x20, 8}
	n.fake.SetAlerts(
		api.RaisedAlert{Seq: 1, RaisedMs: 1_700_000_000_000, Watched: mustSignal(t, "sha256", sha), Signal: mustSignal(t, "sha256", sha),
			Attestation: store.Attestation{Author: other.AuthorKey, EntryID: id, Seq: 8, Labels: []string{"attacker-manifesto"}, Status: store.StatusRetracted}},
		api.RaisedAlert{Seq: 2, RaisedMs: 1_700_000_001_000, Watched: mustSignal(t, "url", "https://example.com/x"), Signal: mustSignal(t, "url", "https://example.com/x"),
			Attestation: store.Attestation{Author: other.AuthorKey, EntryID: id, Seq: 8, Labels: []string{"attacker-manifesto"}, Status: store.StatusActive}},
	)
	r = staydown("alerts", "--dir", n.dir)
	want := "alert 1  2023-11-14T22:13:20.000Z  sha256:" + sha + "  retracted  platform-a  attacker-manifesto  " + id.String() + "\n" +
		"alert 2  2023-11-14T22:13:21.000Z  url:https://example.com/x" + strings.Repeat(" ", len("sha256:"+sha)-len("url:https://example.com/x")) + "  active     platform-a  attacker-manifesto  " + id.String() + "\n"
	if r.code != exitOK || r.stdout != want {
		t.Errorf("stdout\n%s\nwant\n%s", r.stdout, want)
	}
	r = staydown("alerts", "--dir", n.dir, "--since", "1", "--json")
	if r.code != exitOK || !strings.Contains(r.stdout, `"seq": 2`) || strings.Contains(r.stdout, `"seq": 1`) {
		t.Errorf("--since 1 --json:\n%s", r.stdout)
	}
}

func TestWatchRemove(t *testing.T) {
	n := startNode(t)
	pdqHex := strings.Repeat("3c", 32)
	staydown("watch", "add", "--dir", n.dir, "--file", writeList(t, "sha256:"+sha+"\npdq:"+pdqHex+"\nurl:https://example.com/x\n"))
	list := writeList(t, "# taken down\nsha256:"+strings.ToUpper(sha)+"\npdq:"+pdqHex+" quality=90\nmd5:"+strings.Repeat("0", 32)+"\n")
	r := staydown("watch", "remove", "--dir", n.dir, "--file", list)
	if r.code != exitOK || r.stderr != "" || r.stdout != "removed 2, not watched 1, watchlist now 1 signals\n" {
		t.Fatalf("exit %d stderr %q stdout %q", r.code, r.stderr, r.stdout)
	}
	if n.fake.Watched(mustSignal(t, "sha256", sha)) || n.fake.Watched(mustSignal(t, "pdq", pdqHex)) || !n.fake.Watched(mustSignal(t, "url", "https://example.com/x")) {
		t.Error("the fake's watchlist is not what the removal should leave")
	}
	r = staydown("watch", "remove", "--dir", n.dir, "--file", list, "--json")
	if r.code != exitOK || !strings.Contains(r.stdout, `"removed": 0`) || !strings.Contains(r.stdout, `"unknown": 3`) || !strings.Contains(r.stdout, `"total": 1`) {
		t.Errorf("JSON: exit %d\n%s", r.code, r.stdout)
	}
}

func TestWatchRemoveErrors(t *testing.T) {
	n := startNode(t)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"no signal", nil, "staydown: watch remove: no signal: give TYPE:VALUE arguments or --file LIST"},
		{"bad line", []string{"--file", writeList(t, "sha256:"+sha+"\nmd5:abc\n")}, `hosted.txt:2: "md5:abc": bad signal: md5: want 32 hex characters, got 3`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantFailure(t, staydown(append([]string{"watch", "remove", "--dir", n.dir}, tt.args...)...), tt.want)
			if c := n.calls(); c != 0 {
				t.Fatalf("%d requests reached the node", c)
			}
		})
	}
}

// TestWatchRemoveBatches: a long list goes in several requests.
func TestWatchRemoveBatches(t *testing.T) {
	n := startNode(t)
	var b strings.Builder
	const count = api.MaxWatchBatch + 10
	for i := range count {
		fmt.Fprintf(&b, "sha256:%064x\n", i)
	}
	r := staydown("watch", "remove", "--dir", n.dir, "--file", writeList(t, b.String()))
	if r.code != exitOK || r.stdout != fmt.Sprintf("removed 0, not watched %d, watchlist now 0 signals\n", count) {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if c := n.calls(); c != 2 {
		t.Errorf("%d requests, want 2", c)
	}
}

// TestWatchRefs: #13 item 12. A signal given as an argument takes --ref,
// a line of a list its ref after a TAB; refs are kept per signal, each
// once; remove --ref takes one ref off, the signal with its last.
func TestWatchRefs(t *testing.T) {
	n := startNode(t)
	pdqHex := strings.Repeat("3c", 32)
	sha2 := strings.Repeat("cd", 32)
	r := staydown("watch", "add", "--dir", n.dir, "--ref", "upload-123", "sha256:"+strings.ToUpper(sha), "pdq:"+pdqHex)
	if r.code != exitOK || r.stderr != "" || r.stdout != "added 2, already watched 0, refs added 2, watchlist now 2 signals\n" {
		t.Fatalf("args: exit %d stderr %q stdout %q", r.code, r.stderr, r.stdout)
	}
	list := writeList(t, "# hosted\nsha256:"+sha+"\thttps://host.example/v/9?a=1 b\n"+
		"pdq:"+pdqHex+" quality=87\tupload-123\n"+
		"sha256:"+sha2+"\n"+
		"url:https://video.example/watch?v=1\tvideo 7, copy 2\n"+
		"  account:example.com:some one\tacct-1  \n")
	r = staydown("watch", "add", "--dir", n.dir, "--file", list)
	if r.code != exitOK || r.stdout != "added 3, already watched 2, refs added 3, watchlist now 5 signals\n" {
		t.Fatalf("file: exit %d stderr %q stdout %q", r.code, r.stderr, r.stdout)
	}
	for _, tt := range []struct {
		typ, value string
		refs       []string
	}{
		{"sha256", sha, []string{"upload-123", "https://host.example/v/9?a=1 b"}},
		{"pdq", pdqHex, []string{"upload-123"}},
		{"sha256", sha2, nil},
		{"url", "https://video.example/watch?v=1", []string{"video 7, copy 2"}},
		{"account", "example.com:some one", []string{"acct-1"}},
	} {
		if got := n.fake.WatchedRefs(mustSignal(t, tt.typ, tt.value)); !slices.Equal(got, tt.refs) {
			t.Errorf("%s:%s: refs %q, want %q", tt.typ, tt.value, got, tt.refs)
		}
	}
	r = staydown("watch", "remove", "--dir", n.dir, "--ref", "upload-123", "sha256:"+sha, "pdq:"+pdqHex, "sha256:"+sha2)
	if r.code != exitOK || r.stdout != "removed 1, refs removed 1, not watched 1, watchlist now 4 signals\n" {
		t.Fatalf("remove --ref: exit %d stderr %q stdout %q", r.code, r.stderr, r.stdout)
	}
	if got := n.fake.WatchedRefs(mustSignal(t, "sha256", sha)); !slices.Equal(got, []string{"https://host.example/v/9?a=1 b"}) {
		t.Errorf("after remove --ref: %q", got)
	}
	if n.fake.Watched(mustSignal(t, "pdq", pdqHex)) || !n.fake.Watched(mustSignal(t, "sha256", sha2)) {
		t.Error("remove --ref: the pdq signal (its last ref gone) should be off the list, the ref-less sha256 on it")
	}
	r = staydown("watch", "remove", "--dir", n.dir, "--file", writeList(t, "url:https://video.example/watch?v=1\n"), "--json")
	if r.code != exitOK || !strings.Contains(r.stdout, `"removed": 1`) || !strings.Contains(r.stdout, `"refs_removed": 0`) {
		t.Errorf("remove without a ref: exit %d\n%s", r.code, r.stdout)
	}
}

func TestWatchRefErrors(t *testing.T) {
	n := startNode(t)
	long := strings.Repeat("x", 513)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"ref with --file", []string{"--ref", "u-1", "--file", writeList(t, "sha256:"+sha+"\n")}, "--ref is for the signals given as arguments or a --file VIDEO: in a --file LIST, put each line's ref after a TAB"},
		{"arguments and --file", []string{"sha256:" + sha, "--file", writeList(t, "sha256:"+sha+"\n")}, "give signals as arguments or in --file, not both"},
		{"ref too long", []string{"--ref", long, "sha256:" + sha}, "--ref: bad watch ref: 513 bytes, limit 512"},
		{"ref with a control character", []string{"--ref", "a\x1bb", "sha256:" + sha}, `--ref: bad watch ref: "a\x1bb" holds the unprintable character U+001B`},
		{"ref with a blank at the end", []string{"--ref", "u-1 ", "sha256:" + sha}, `--ref: bad watch ref: "u-1 " begins or ends with white space`},
		{"bad argument", []string{"--ref", "u-1", "md5:abc"}, `value "md5:abc": bad signal: md5: want 32 hex characters, got 3`},
		{"bad ref in a list", []string{"--file", writeList(t, "sha256:"+sha+"\tok\nsha256:"+sha+"\tnot\vok\n")}, `hosted.txt:2: "sha256:` + sha + `\tnot\vok": bad watch ref: "not\vok" holds the unprintable character U+000B`},
		{"ref too long in a list", []string{"--file", writeList(t, "sha256:"+sha+"\t"+long+"\n")}, "hosted.txt:1: " + short("sha256:"+sha+"\t"+long) + ": bad watch ref: 513 bytes, limit 512"},
		{"ref without a signal", []string{"--file", writeList(t, "\tupload-1\n")}, `hosted.txt:1: "\tupload-1": a ref without a signal`},
		{"second TAB", []string{"--file", writeList(t, "sha256:"+sha+"\tu-1\tu-2\n")}, `holds the unprintable character U+0009`},
	} {
		for _, verb := range []string{"add", "remove"} {
			t.Run(verb+"/"+tt.name, func(t *testing.T) {
				wantFailure(t, staydown(append([]string{"watch", verb, "--dir", n.dir}, tt.args...)...), tt.want)
				if c := n.calls(); c != 0 {
					t.Fatalf("%d requests reached the node", c)
				}
			})
		}
	}
}

// TestWatchList: the list in the index's order, one line per signal and
// ref in the form watch add --file reads back; --limit pages with a "#
// more" line whose cursor --after continues; without --limit every page
// is fetched.
func TestWatchList(t *testing.T) {
	n := startNode(t)
	r := staydown("watch", "list", "--dir", n.dir)
	if r.code != exitOK || r.stdout != "# the watchlist is empty\n" {
		t.Fatalf("empty: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	list := "sha256:" + sha + "\tupload-1\nsha256:" + sha + "\thttps://host.example/v/9 copy\n" +
		"url:https://example.com/x\nmd5:" + strings.Repeat("0", 32) + "\tu-md5\n"
	if r := staydown("watch", "add", "--dir", n.dir, "--file", writeList(t, list)); r.code != exitOK {
		t.Fatalf("add: %q", r.stderr)
	}
	// The fake orders by signal key as a node does: type tag, then value.
	var want []string
	page, err := n.fake.Watchlist(t.Context(), nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range page.Signals {
		f := api.FormatSignal(s.Signal)
		if len(s.Refs) == 0 {
			want = append(want, f.Type+":"+f.Value)
		}
		for _, ref := range s.Refs {
			want = append(want, f.Type+":"+f.Value+"\t"+ref)
		}
	}
	r = staydown("watch", "list", "--dir", n.dir)
	if r.code != exitOK || r.stdout != strings.Join(want, "\n")+"\n" {
		t.Fatalf("list: exit %d stderr %q stdout\n%s\nwant\n%s", r.code, r.stderr, r.stdout, strings.Join(want, "\n"))
	}
	// What it prints, watch add reads back as it was.
	back := startNode(t)
	if r := staydown("watch", "add", "--dir", back.dir, "--file", writeList(t, r.stdout)); r.code != exitOK ||
		r.stdout != "added 3, already watched 1, refs added 3, watchlist now 3 signals\n" {
		t.Fatalf("read back: %q %q", r.stdout, r.stderr)
	}

	r = staydown("watch", "list", "--dir", n.dir, "--limit", "2")
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if r.code != exitOK || len(lines) != 4 || !strings.HasPrefix(lines[3], "# more: --after ") {
		t.Fatalf("--limit 2: exit %d stdout\n%s", r.code, r.stdout)
	}
	cursor := strings.TrimPrefix(lines[3], "# more: --after ")
	r2 := staydown("watch", "list", "--dir", n.dir, "--limit", "2", "--after", cursor)
	// Two signals, three lines (one signal has two refs), then the rest.
	if r2.code != exitOK || strings.Join(lines[:3], "\n")+"\n"+r2.stdout != strings.Join(want, "\n")+"\n" {
		t.Errorf("--after: exit %d stderr %q stdout\n%s", r2.code, r2.stderr, r2.stdout)
	}

	r = staydown("watch", "list", "--dir", n.dir, "--limit", "1", "--json")
	var got api.Watchlist
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != exitOK || len(got.Signals) != 1 || got.Next != cursorAfter(t, n, 1) || got.Total != 3 {
		t.Errorf("--json: exit %d %v\n%s", r.code, err, r.stdout)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--limit", "0"}, "--limit 0: want at least 1"},
		{[]string{"--after", "xyz"}, `after: "xyz": want the next cursor of a page before (hex)`},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		wantFailure(t, staydown(append([]string{"watch", "list", "--dir", n.dir}, tt.args...)...), tt.want)
	}
}

// cursorAfter is the cursor of the fake's watchlist after its first n
// signals.
func cursorAfter(t *testing.T, n *testNode, count int) string {
	t.Helper()
	page, err := n.fake.Watchlist(t.Context(), nil, count)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(page.Signals[count-1].Key)
}

// TestWatchListAllPages: without --limit, list fetches page after page.
func TestWatchListAllPages(t *testing.T) {
	n := startNode(t)
	const count = api.MaxWatchPage + 5
	items := make([]api.WatchItem, count)
	for i := range items {
		items[i] = api.WatchItem{Signal: mustSignal(t, "sha256", fmt.Sprintf("%064x", i))}
	}
	if _, err := n.fake.Watch(t.Context(), items); err != nil {
		t.Fatal(err)
	}
	r := staydown("watch", "list", "--dir", n.dir)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if r.code != exitOK || len(lines) != count || lines[0] != "sha256:"+fmt.Sprintf("%064x", 0) || lines[count-1] != "sha256:"+fmt.Sprintf("%064x", count-1) {
		t.Fatalf("exit %d, %d lines, stderr %q", r.code, len(lines), r.stderr)
	}
	r = staydown("watch", "list", "--dir", n.dir, "--json")
	var got api.Watchlist
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got.Signals) != count || got.Next != "" {
		t.Errorf("--json: %d signals, next %q, %v", len(got.Signals), got.Next, err)
	}
}

// TestAlertsShowRefs: an alert names the refs its watched signal had.
func TestAlertsShowRefs(t *testing.T) {
	n := startNode(t)
	id := protocol.ID{0x12, 0x20, 8}
	n.fake.SetAlerts(api.RaisedAlert{Seq: 1, RaisedMs: 1_700_000_000_000, Watched: mustSignal(t, "sha256", sha), Signal: mustSignal(t, "sha256", sha),
		Attestation: store.Attestation{Author: other.AuthorKey, EntryID: id, Seq: 8, Labels: []string{"attacker-manifesto"}, Status: store.StatusActive},
		Refs:        []string{"upload-123", "https://host.example/v/9 copy"}})
	r := staydown("alerts", "--dir", n.dir)
	want := "alert 1  2023-11-14T22:13:20.000Z  sha256:" + sha + "  active  platform-a  attacker-manifesto  " + id.String() +
		`  refs "upload-123" "https://host.example/v/9 copy"` + "\n"
	if r.code != exitOK || r.stdout != want {
		t.Errorf("stdout\n%s\nwant\n%s", r.stdout, want)
	}
	r = staydown("alerts", "--dir", n.dir, "--json")
	if r.code != exitOK || !strings.Contains(r.stdout, `"refs": [
        "upload-123",
        "https://host.example/v/9 copy"
      ]`) {
		t.Errorf("--json:\n%s", r.stdout)
	}
}

// FuzzParseWatchLine: any line is refused with a one-line error, or read
// as a signal that parses back to itself and a ref that CheckWatchRef
// accepts (or none); the line it would be listed as reads back the same.
func FuzzParseWatchLine(f *testing.F) {
	for _, s := range []string{"sha256:" + sha + "\tupload-1", "pdq:" + strings.Repeat("3c", 32) + " quality=87\tu 2", "# c\tx", "", "\t",
		"url:https://a.example/x y\thttps://h.example/1", "account:svc:id with blanks\tr", "sha256:" + sha + "\t\t", "md5:" + strings.Repeat("0F", 16) + "\t\xff",
		"sha256:" + sha + "\t" + strings.Repeat("é", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		s, ok, err := parseWatchLine(line)
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
		if s.Ref != "" {
			if err := store.CheckWatchRef(s.Ref); err != nil {
				t.Fatalf("ref %q accepted: %v", s.Ref, err)
			}
		}
		again, err := parseSignalArg("", s.Type+":"+s.Value)
		if err != nil || again.Type != s.Type || again.Value != s.Value {
			t.Fatalf("%v does not parse back: %v, %v", s, again, err)
		}
		listed := s.Type + ":" + s.Value
		if s.Ref != "" {
			listed += "\t" + s.Ref
		}
		if back, ok, err := parseWatchLine(listed); err != nil || !ok || back != s {
			t.Fatalf("%q (listed as %q) reads back as %+v, %v, %v", line, listed, back, ok, err)
		}
	})
}
