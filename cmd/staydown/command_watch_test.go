package main

import (
	"fmt"
	"os"
	"path/filepath"
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
