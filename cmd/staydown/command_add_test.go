package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/protocol/pb"
)

func TestAdd(t *testing.T) {
	label := func(slug, text string) *pb.Label { return &pb.Label{Slug: slug, Text: text} }
	tests := []struct {
		name string
		args []string
		want func(t *testing.T) *pb.Addition
	}{
		{"one hash", []string{"add", "--dir", "D", "--type", "sha256", "--label", "recruitment-and-instruction", sha},
			func(t *testing.T) *pb.Addition {
				return &pb.Addition{Signals: []*pb.Signal{mustSignal(t, "sha256", sha)}, Labels: []*pb.Label{label("recruitment-and-instruction", "")}}
			}},
		{"several values, labels and a case", []string{"add", "--dir", "D", "-t", "sha256", "-l", "graphic-violence",
			"--label", "other:beheading, staged", "--case", "CASE-42", strings.ToUpper(sha), sha2},
			func(t *testing.T) *pb.Addition {
				return &pb.Addition{
					Signals: []*pb.Signal{mustSignal(t, "sha256", sha), mustSignal(t, "sha256", sha2)},
					Labels:  []*pb.Label{label("graphic-violence", ""), label("other", "beheading, staged")},
					CaseRef: "CASE-42",
				}
			}},
		{"a url", []string{"add", "--dir", "D", "--type", "url", "--label", "attacker-manifesto", "HTTPS://Example.COM/m.pdf#p2"},
			func(t *testing.T) *pb.Addition {
				return &pb.Addition{Signals: []*pb.Signal{{Value: &pb.Signal_Url{Url: "https://example.com/m.pdf"}}}, Labels: []*pb.Label{label("attacker-manifesto", "")}}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := startNode(t)
			body := n.publishedOnce(t, staydown(n.expand(tt.args)...))
			if got, want := body.GetAddition(), tt.want(t); !proto.Equal(got, want) {
				t.Errorf("published %v, want %v", got, want)
			}
		})
	}
}

func TestAddJSON(t *testing.T) {
	n := startNode(t)
	r := staydown("add", "--dir", n.dir, "--type", "md5", "--label", "graphic-violence", strings.Repeat("0f", 16), "--json")
	if r.code != exitOK {
		t.Fatal(r.stderr)
	}
	wantJSON(t, r.stdout, fmt.Sprintf(`{"id":%q,"seq":1,"author":"nru"}`, n.fake.Signed()[0].ID))
}

func TestAddErrors(t *testing.T) {
	n := startNode(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no type", []string{"--label", "graphic-violence", sha}, `staydown: add: value "` + sha + `": no type: give TYPE:VALUE (e.g. sha256:HEX`},
		{"unknown type", []string{"--type", "sha1", "--label", "graphic-violence", sha}, `staydown: add: --type: bad signal: unknown signal type "sha1"`},
		{"short hash", []string{"--type", "sha256", "--label", "graphic-violence", "0123456789"}, `staydown: add: value "0123456789": bad signal: sha256: want 64 hex characters, got 10`},
		{"second value bad", []string{"--type", "sha256", "--label", "graphic-violence", sha, "zz" + sha[2:]}, `value "zz` + sha[2:] + `": bad signal: sha256: not hex`},
		{"no value", []string{"--type", "sha256", "--label", "graphic-violence"}, "staydown: add: missing VALUE"},
		{"no label", []string{"--type", "sha256", sha}, "staydown: add: --label: required"},
		{"unknown label", []string{"--type", "sha256", "--label", "gore", sha}, `staydown: add: --label "gore": bad label: "gore" is not in the vocabulary`},
		{"other without text", []string{"--type", "sha256", "--label", "other", sha}, `--label "other": bad label: "other" needs free text`},
		{"long case", []string{"--type", "sha256", "--label", "graphic-violence", "--case", strings.Repeat("c", 257), sha}, "staydown: add: --case: 257 bytes, limit 256"},
		{"bad account", []string{"--type", "account", "--label", "graphic-violence", "nobody"}, `value "nobody": bad signal: account`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantFailure(t, staydown(append([]string{"add", "--dir", n.dir}, tt.args...)...), tt.want)
			if c := n.calls(); c != 0 {
				t.Fatalf("%d requests reached the node", c)
			}
		})
	}
}

// The node's refusals are reported with its message, exit 2.
func TestAddRefused(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"forbidden", fmt.Errorf("%w: nru is an auditor; auditors write nothing", api.ErrForbidden), "staydown: add: forbidden: nru is an auditor; auditors write nothing\n"},
		{"internal", errors.New("disk full"), "staydown: add: the node at ADDR failed: internal error; the node's log has the details\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := startNode(t)
			n.fake.Fail(tt.err)
			r := staydown("add", "--dir", n.dir, "--type", "sha256", "--label", "graphic-violence", sha)
			want := strings.ReplaceAll(tt.want, "ADDR", n.addr)
			if r.code != exitError || r.stdout != "" || r.stderr != want {
				t.Errorf("exit %d stdout %q stderr %q, want 2 and %q", r.code, r.stdout, r.stderr, want)
			}
		})
	}
}
