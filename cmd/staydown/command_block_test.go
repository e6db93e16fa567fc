package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/notices"
	"github.com/staydown/staydown/protocol"
)

// TestBlockCommands: block and block lift send the requests the API
// documents (the node, tested in node/ and integration/, does the rest);
// to all, one id a line.
func TestBlockCommands(t *testing.T) {
	n := startNode(t)
	r := staydown("block", "--dir", n.dir, "--to", "all", "--domain", "Propaganda.example", "--domain", "*.other.example",
		"--subdomains", "--basis", "LCEN art. 6-1", "--until", "720h", "--deadline", "12h")
	if lines := strings.Fields(r.stdout); r.code != exitOK || len(lines) != 2 || len(lines[0]) != 68 {
		t.Fatalf("block: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	sig := func(s string) any {
		v, err := protocol.ParseSignal("domain", s)
		if err != nil {
			t.Fatal(err)
		}
		return protocol.FormatSignal(v)
	}
	reqs := n.fake.NoticeRequests()
	got, ok := reqs[len(reqs)-1].(notices.OrderRequest)
	if !ok {
		t.Fatalf("sent %#v", reqs[len(reqs)-1])
	}
	var domains []any
	for _, d := range got.Domains {
		domains = append(domains, protocol.FormatSignal(d))
	}
	if got.To != "all" || got.Basis != "LCEN art. 6-1" || got.Until != "720h" || got.Deadline != "12h" ||
		!reflect.DeepEqual(domains, []any{sig("*.propaganda.example"), sig("*.other.example")}) {
		t.Errorf("sent %+v, domains %v", got, domains)
	}
	r = staydown("block", "lift", "--dir", n.dir, target)
	if r.code != exitOK || len(strings.TrimSpace(r.stdout)) != 68 {
		t.Fatalf("block lift: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if reqs := n.fake.NoticeRequests(); !reflect.DeepEqual(reqs[len(reqs)-1], api.OrderLiftRequest{Order: target}) {
		t.Errorf("lift sent %#v", reqs[len(reqs)-1])
	}
}

func TestBlockCommandErrors(t *testing.T) {
	n := startNode(t)
	out := filepath.Join(t.TempDir(), "zone")
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"no to", []string{"block", "--domain", "a.example", "--basis", "b"}, "--to: required"},
		{"no domain", []string{"block", "--to", "isp", "--basis", "b"}, "--domain: required"},
		{"no basis", []string{"block", "--to", "isp", "--domain", "a.example"}, "--basis: required"},
		{"public suffix", []string{"block", "--to", "isp", "--domain", "co.uk", "--basis", "b"}, `"co.uk" is a public suffix`},
		{"IP address", []string{"block", "--to", "isp", "--domain", "192.0.2.1", "--basis", "b"}, `"192.0.2.1": is an IP address`},
		{"a URL", []string{"block", "--to", "isp", "--domain", "https://a.example/x", "--basis", "b"}, "not a URL"},
		{"lift bad id", []string{"block", "lift", "xyz"}, "entry id"},
		{"blocklist bad format", []string{"blocklist", "--format", "bind", "--out", out}, `format "bind"`},
		{"blocklist no out", []string{"blocklist", "--format", "rpz"}, "--out: required"},
		{"blocklist bad landing", []string{"blocklist", "--out", out, "--landing", "0.0.0.0"}, `landing "0.0.0.0"`},
		{"reply bad status", []string{"reply", target, "--status", "blockd"}, `--status "blockd": use one of blocked,`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{tt.args[0], "--dir", n.dir}, tt.args[1:]...)
			if tt.args[0] == "block" && len(tt.args) > 1 && tt.args[1] == "lift" {
				args = append([]string{"block", "lift", "--dir", n.dir}, tt.args[2:]...)
			}
			wantFailure(t, staydown(args...), tt.want)
			if c := n.calls(); c != 0 {
				t.Fatalf("%d requests reached the node", c)
			}
		})
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a refused blocklist wrote %s: %v", out, err)
	}
}
