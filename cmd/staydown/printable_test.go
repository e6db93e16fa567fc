package main

import (
	"strings"
	"testing"

	"github.com/staydown/staydown/node/api"
)

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"graphic-violence":          "graphic-violence",
		"other:beheading vidéo":     "other:beheading vidéo",
		"\x1b[2Jcleared":            `\x1b[2Jcleared`,
		"ok\nverdict: none":         `ok\x0averdict: none`,
		"tab\there":                 `tab\x09here`,
		"del\x7f c1\u0085":          `del\x7f c1\x85`,
		"abc\u202edcba":             `abc\u202edcba`,
		"bad \xff byte":             `bad \xff byte`,
		"isolate\u2066x\u2069 mark": `isolate\u2066x\u2069 mark`,
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestNoticesEscapeMemberText: a member's free text reaches the terminal
// escaped (#12 item 6): it cannot clear the screen or forge a line.
func TestNoticesEscapeMemberText(t *testing.T) {
	n := startNode(t)
	n.fake.SetNotices(api.NoticeView{ID: strings.Repeat("ab", 34), From: "nru", To: "platform-a", State: "open",
		Category: "other:\x1b[2J", Signals: []string{},
		Details: &api.NoticeDetails{URLs: []string{"https://x.example/\x1b[A"}, Text: "see below\nverdict: none"}})
	r := staydown("notices", "--dir", n.dir, "--box", "all")
	if r.code != exitOK {
		t.Fatalf("exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	if strings.ContainsAny(r.stdout, "\x1b") || strings.Contains(r.stdout, "\nverdict: none") {
		t.Errorf("raw member text on the terminal:\n%q", r.stdout)
	}
	for _, want := range []string{`other:\x1b[2J`, `see below\x0averdict: none`, `https://x.example/\x1b[A`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %s:\n%s", want, r.stdout)
		}
	}
}
