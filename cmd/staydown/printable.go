package main

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// printable is s, a member's free text (a label's text, a reason, a
// category, a notice's text or URL), as the CLI may print it on a
// terminal: control characters (C0 and C1, DEL, and newlines and tabs,
// which would start a line or a column of the CLI's own), Unicode's
// direction overrides and bytes that are not UTF-8 are written as Go
// escapes (\x1b, \u202e), so that no member can clear the operator's
// screen, move the cursor or forge a line such as "verdict: none".
// JSON output needs none of this: encoding/json escapes them.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if escaped(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case escaped(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case escaped(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// escaped reports whether printable escapes r.
func escaped(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0, r == utf8.RuneError:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true // bidirectional overrides, isolates and marks
	}
	return false
}

// printables is printable of each of ss.
func printables(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = printable(s)
	}
	return out
}
