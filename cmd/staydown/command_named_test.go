package main

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// retract and dispute name some of their target's signals with --signal
// (repeatable) or --file: sent sorted in index-key order, once each.
func TestRetractAndDisputeNameSignals(t *testing.T) {
	sha := "sha256:" + strings.Repeat("ab", 32)
	md5 := "md5:" + strings.Repeat("cd", 16)
	url := "url:https://Example.com/a"
	want := protocol.SortSignals([]*pb.Signal{
		mustSignal(t, "sha256", strings.Repeat("ab", 32)), mustSignal(t, "md5", strings.Repeat("cd", 16)), mustSignal(t, "url", "https://example.com/a"),
	})
	tests := []struct {
		name  string
		stdin string
		args  []string
	}{
		{"retract --signal", "", []string{"retract", "--dir", "D", target, "--signal", url, "--signal", md5, "--signal", sha, "--signal", sha}},
		{"retract --file -", "# the wrong ones\n" + url + "\n" + sha + "  clip.mp4\n\n" + md5 + "\n", []string{"retract", "--dir", "D", target, "--file", "-"}},
		{"dispute --signal", "", []string{"dispute", "--dir", "D", target, "--reason", "news", "--signal", sha, "--signal", url, "--signal", md5}},
		{"dispute --file -", md5 + "\n" + sha + "\n" + url + "\n", []string{"dispute", "--dir", "D", target, "--reason", "news", "-f", "-"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := startNode(t)
			body := n.publishedOnce(t, staydownIn(tt.stdin, n.expand(tt.args)...))
			named, ok := protocol.NamedSignals(body)
			if !ok || len(named) != len(want) {
				t.Fatalf("published %v, want %d signals named", body, len(want))
			}
			for i := range want {
				if !proto.Equal(named[i], want[i]) {
					t.Errorf("signal %d: %v, want %v", i, named[i], want[i])
				}
			}
		})
	}
}

func TestNamedSignalErrors(t *testing.T) {
	n := startNode(t)
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"bad signal", "", []string{"retract", target, "--signal", "sha256:xyz"}, `staydown: retract: --signal: value "sha256:xyz": bad signal: sha256: want 64 hex characters, got 3`},
		{"no type", "", []string{"dispute", target, "--reason", "r", "--signal", strings.Repeat("ab", 32)}, `staydown: dispute: --signal "` + strings.Repeat("ab", 32) + `": want TYPE:VALUE`},
		{"both", "", []string{"retract", target, "--signal", "md5:" + strings.Repeat("cd", 16), "--file", "-"}, "staydown: retract: give --signal or --file, not both"},
		{"bad line", "md5:" + strings.Repeat("cd", 16) + "\nsha256:00\n", []string{"dispute", target, "--reason", "r", "--file", "-"}, `staydown: dispute: standard input:2: "sha256:00"`},
		{"empty list", "# nothing\n", []string{"retract", target, "--file", "-"}, "staydown: retract: standard input lists no signal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{tt.args[0], "--dir", n.dir}, tt.args[1:]...)
			wantFailure(t, staydownIn(tt.stdin, args...), tt.want)
			if c := n.calls(); c != 0 {
				t.Fatalf("%d requests reached the node", c)
			}
		})
	}
}
