package main

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/protocol/pb"
)

func TestAllow(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want func(t *testing.T) *pb.Allow
	}{
		{"hashes", []string{"--type", "sha256", "--category", "news", "--reason", "broadcast footage", sha, sha2},
			func(t *testing.T) *pb.Allow {
				return &pb.Allow{Signals: []*pb.Signal{mustSignal(t, "sha256", sha), mustSignal(t, "sha256", sha2)}, Category: "news", Reason: "broadcast footage"}
			}},
		{"an account", []string{"-t", "account", "--category", "counter-speech", "--reason", "exit programme", "Example.org:Former"},
			func(t *testing.T) *pb.Allow {
				return &pb.Allow{Signals: []*pb.Signal{{Value: &pb.Signal_Account{Account: &pb.Account{Service: "example.org", Id: "Former"}}}}, Category: "counter-speech", Reason: "exit programme"}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := startNode(t)
			body := n.publishedOnce(t, staydown(append([]string{"allow", "--dir", n.dir}, tt.args...)...))
			if got, want := body.GetAllow(), tt.want(t); !proto.Equal(got, want) {
				t.Errorf("published %v, want %v", got, want)
			}
		})
	}
}

func TestAllowErrors(t *testing.T) {
	n := startNode(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no type", []string{"--category", "news", "--reason", "r", sha}, `staydown: allow: value "` + sha + `": no type: give TYPE:VALUE (e.g. sha256:HEX`},
		{"no category", []string{"--type", "sha256", "--reason", "r", sha}, "staydown: allow: --category: required: one of counter-speech, news, research, other"},
		{"unknown category", []string{"--type", "sha256", "--category", "satire", "--reason", "r", sha}, `staydown: allow: --category: "satire" is not an allowlist category`},
		{"no reason", []string{"--type", "sha256", "--category", "news", sha}, "staydown: allow: --reason: required"},
		{"bad value", []string{"--type", "pdq", "--category", "news", "--reason", "r", "ab"}, `staydown: allow: value "ab": bad signal: pdq: want 64 hex characters, got 2`},
		{"no value", []string{"--type", "sha256", "--category", "news", "--reason", "r"}, "staydown: allow: missing VALUE"},
		{"long reason", []string{"--type", "sha256", "--category", "news", "--reason", strings.Repeat("r", 1025), sha}, "staydown: allow: reason: 1025 bytes, limit 1024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantFailure(t, staydown(append([]string{"allow", "--dir", n.dir}, tt.args...)...), tt.want)
			if c := n.calls(); c != 0 {
				t.Fatalf("%d requests reached the node", c)
			}
		})
	}
}
