package main

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/protocol/pb"
)

func TestDispute(t *testing.T) {
	n := startNode(t)
	body := n.publishedOnce(t, staydown("dispute", "--dir", n.dir, target, "--reason", "a news report, not propaganda"))
	want := &pb.Dispute{Target: mustID(t, target), Reason: "a news report, not propaganda"}
	if got := body.GetDispute(); !proto.Equal(got, want) {
		t.Errorf("published %v, want %v", got, want)
	}
}

func TestDisputeErrors(t *testing.T) {
	n := startNode(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no reason", []string{target}, "staydown: dispute: --reason: required"},
		{"empty reason", []string{target, "--reason", ""}, "staydown: dispute: --reason: required"},
		{"no id", []string{"--reason", "r"}, "staydown: dispute: missing ENTRY_ID"},
		{"bad id", []string{"xyz", "--reason", "r"}, "staydown: dispute: bad key: entry id: want 68 hex characters, got 3"},
		{"long reason", []string{target, "--reason", strings.Repeat("r", 1025)}, "staydown: dispute: reason: 1025 bytes, limit 1024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantFailure(t, staydown(append([]string{"dispute", "--dir", n.dir}, tt.args...)...), tt.want)
			if c := n.calls(); c != 0 {
				t.Fatalf("%d requests reached the node", c)
			}
		})
	}
}
