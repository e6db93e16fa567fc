package main

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/store"
)

func TestMatch(t *testing.T) {
	n := startNode(t)
	self := n.fake.Author()
	id := func(b byte) protocol.ID { return protocol.ID{0x12, 0x20, b} }
	active := store.Attestation{
		Author: self, EntryID: id(1), Seq: 4, Labels: []string{"recruitment-and-instruction", "other:training video"},
		CaseRef: "C-7", TimeMs: 1_700_000_000_123, Status: store.StatusActive,
	}
	disputed := store.Attestation{
		Author: other.AuthorKey, EntryID: id(2), Seq: 1, Labels: []string{"graphic-violence"}, TimeMs: 1_700_000_060_000,
		Status: store.StatusDisputed, Equivocated: true,
		Reasons: []store.Reason{{Kind: protocol.KindDispute, Author: self, EntryID: id(3), Reason: "news report"}},
	}
	n.fake.Attest(mustSignal(t, "sha256", sha), active, disputed)
	n.fake.Attest(mustSignal(t, "sha256", sha2), disputed)

	activeJSON := `{"author":"nru","author_key":"` + self.String() + `","id":"` + id(1).String() + `","seq":4,
		"labels":["recruitment-and-instruction","other:training video"],"case_ref":"C-7","time":"2023-11-14T22:13:20.123Z",
		"status":"active","reasons":[],"equivocated":false}`
	disputedJSON := `{"author":"platform-a","author_key":"` + other.AuthorKey.String() + `","id":"` + id(2).String() + `","seq":1,
		"labels":["graphic-violence"],"case_ref":"","time":"2023-11-14T22:14:20.000Z","status":"disputed",
		"reasons":[{"kind":"dispute","author":"nru","id":"` + id(3).String() + `","category":"","reason":"news report"}],"equivocated":true}`
	activeLine := "active    nru         recruitment-and-instruction,other:training video  " + id(1).String() + "  2023-11-14T22:13:20.123Z"
	disputedLine := "disputed  platform-a  graphic-violence                                  " + id(2).String() + "  2023-11-14T22:14:20.000Z  dispute by nru: news report; platform-a is flagged for equivocation"

	tests := []struct {
		name   string
		value  string
		json   bool
		code   int
		stdout string
	}{
		{"active: exit 0", strings.ToUpper(sha), false, exitOK, activeLine + "\n" + disputedLine + "\n"},
		{"active, JSON", sha, true, exitOK, `{"signal":{"type":"sha256","value":"` + sha + `"},"matched":true,"attestations":[` + activeJSON + `,` + disputedJSON + `]}`},
		{"only disputed: exit 1", sha2, false, exitNoMatch, strings.Replace(disputedLine, "platform-a  graphic-violence                                  ", "platform-a  graphic-violence  ", 1) + "\n"},
		{"only disputed, JSON", sha2, true, exitNoMatch, `{"signal":{"type":"sha256","value":"` + sha2 + `"},"matched":false,"attestations":[` + disputedJSON + `]}`},
		{"nothing: exit 1", strings.Repeat("ef", 32), false, exitNoMatch, "no match\n"},
		{"nothing, JSON", strings.Repeat("ef", 32), true, exitNoMatch, `{"signal":{"type":"sha256","value":"` + strings.Repeat("ef", 32) + `"},"matched":false,"attestations":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(n.fake.Matched())
			args := []string{"match", "--dir", n.dir, "--type", "sha256", tt.value}
			if tt.json {
				args = append(args, "--json")
			}
			r := staydown(args...)
			if r.code != tt.code || r.stderr != "" {
				t.Errorf("exit %d stderr %q, want %d and nothing", r.code, r.stderr, tt.code)
			}
			if tt.json {
				wantJSON(t, r.stdout, tt.stdout)
			} else if r.stdout != tt.stdout {
				t.Errorf("stdout\n%s\nwant\n%s", r.stdout, tt.stdout)
			}
			m := n.fake.Matched()
			if len(m) != before+1 || len(m[before]) != 1 || !proto.Equal(m[before][0], mustSignal(t, "sha256", tt.value)) {
				t.Errorf("the node was asked %v", m[before:])
			}
		})
	}
}

func TestMatchErrors(t *testing.T) {
	n := startNode(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no type", []string{sha}, "staydown: match: --type: required"},
		{"unknown type", []string{"--type", "tmk", sha}, `staydown: match: --type: bad signal: unknown signal type "tmk"`},
		{"bad hash", []string{"--type", "sha256", "abc"}, `staydown: match: value "abc": bad signal: sha256: want 64 hex characters, got 3`},
		{"bad url", []string{"--type", "url", "example.com/x"}, `staydown: match: value "example.com/x": bad signal: url`},
		{"no value", []string{"--type", "sha256"}, "staydown: match: missing VALUE"},
		{"two values", []string{"--type", "sha256", sha, sha2}, "staydown: match: want 1 VALUE, got 2 arguments"},
		{"bad value, JSON", []string{"--type", "md5", sha, "--json"}, `staydown: match: value "` + sha + `": bad signal: md5: want 32 hex characters, got 64`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantFailure(t, staydown(append([]string{"match", "--dir", n.dir}, tt.args...)...), tt.want)
			if c := n.calls(); c != 0 {
				t.Fatalf("%d requests reached the node", c)
			}
		})
	}
}
