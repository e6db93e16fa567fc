package main

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/protocol/pb"
)

func TestRetract(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		reason string
	}{
		{"with a reason", []string{"retract", "--dir", "D", target, "--reason", "wrong file"}, "wrong file"},
		{"without a reason", []string{"retract", "--dir", "D", target}, ""},
		{"upper-case id", []string{"retract", "--dir", "D", strings.ToUpper(target)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := startNode(t)
			body := n.publishedOnce(t, staydown(n.expand(tt.args)...))
			want := &pb.Retraction{Target: mustID(t, target), Reason: tt.reason}
			if got := body.GetRetraction(); !proto.Equal(got, want) {
				t.Errorf("published %v, want %v", got, want)
			}
		})
	}
}

func TestRetractErrors(t *testing.T) {
	n := startNode(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no id", nil, "staydown: retract: missing ENTRY_ID"},
		{"two ids", []string{target, target}, "staydown: retract: want 1 ENTRY_ID, got 2 arguments"},
		{"short id", []string{"1220abc"}, "staydown: retract: bad key: entry id: want 68 hex characters, got 7"},
		{"not a multihash", []string{strings.Repeat("00", 34)}, "bad key: entry id: not a sha2-256 multihash"},
		{"long reason", []string{target, "--reason", strings.Repeat("r", 1025)}, "staydown: retract: reason: 1025 bytes, limit 1024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantFailure(t, staydown(append([]string{"retract", "--dir", n.dir}, tt.args...)...), tt.want)
			if c := n.calls(); c != 0 {
				t.Fatalf("%d requests reached the node", c)
			}
		})
	}
	t.Run("unknown target", func(t *testing.T) {
		n.fake.Fail(fmt.Errorf("%w: entry %s", api.ErrNotFound, target))
		wantFailure(t, staydown("retract", "--dir", n.dir, target), "staydown: retract: not found: entry "+target)
	})
}
