package config

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// decode parses TOML text into a generic table. Both files are decoded
// generically, not into structs, so that every type mismatch and unknown key
// gets a message of ours naming the key path (toml's own says "incompatible
// types" and, inside [[member]] blocks, cannot say which member).
func decode(file string, data []byte) (map[string]any, error) {
	var m map[string]any
	if _, err := toml.Decode(string(data), &m); err != nil {
		return nil, syntaxError(file, data, err)
	}
	return m, nil
}

// syntaxError turns a toml error into an ErrSyntax *Error with the line,
// column and snippet.
func syntaxError(file string, data []byte, err error) error {
	e := &Error{File: file, Msg: "not valid TOML: " + oneLine(err.Error()), Err: ErrSyntax, Cause: err}
	var pe toml.ParseError
	if errors.As(err, &pe) {
		e.Line, e.Column = pe.Position.Line, pe.Position.Col
		e.Msg = "not valid TOML: " + oneLine(pe.Message)
		if pe.LastKey != "" {
			e.Msg += fmt.Sprintf(" (after key %s)", oneLine(pe.LastKey))
		}
		e.Snippet = snippet(pe, data)
	}
	return e
}

// oneLine escapes control characters, so that a message taken from toml
// (which may quote the input raw) stays on one line.
func oneLine(s string) string { return OneLine(s) }

// OneLine escapes the control characters of s (a newline becomes \n), so
// that an error message quoting a library's text, or a path, stays on one
// line.
func OneLine(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			b.WriteString(strings.Trim(strconv.QuoteRune(r), "'"))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// snippet is the part of toml's ErrorWithPosition that shows the lines and
// the caret, without its header (which repeats the message and position).
func snippet(pe toml.ParseError, data []byte) string {
	// ErrorWithPosition indexes the input by Position without checking it.
	p := pe.Position
	if p.Line < 1 || p.Line > bytes.Count(data, []byte("\n"))+1 || p.Col < 1 || p.Len < 0 {
		return ""
	}
	s := pe.ErrorWithPosition()
	if parts := strings.SplitN(s, "\n\n", 3); len(parts) == 3 {
		s = parts[2]
	}
	return strings.TrimRight(s, "\n")
}

// table is one decoded TOML table and its place in the file, for messages.
type table struct {
	file string
	path string // prefix of key paths, e.g. `member 3 ("acme")`; "" at top level
	m    map[string]any
}

// key is the key path of k in t.
func (t table) key(k string) string {
	k = toml.Key{k}.String()
	if t.path == "" {
		return k
	}
	return t.path + ": " + k
}

// checkKeys reports the first unknown key of t (in sorted order, so the
// message is the same every time), with a suggestion when it looks like a
// misspelt known key.
func (t table) checkKeys(known []string) error {
	var unknown []string
	for k := range t.m {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	k := unknown[0]
	msg := fmt.Sprintf("unknown key %s", short(k))
	if s := suggest(k, known); s != "" {
		msg += fmt.Sprintf(": did you mean %s?", s)
	} else {
		msg += fmt.Sprintf(": remove it (known keys: %s)", strings.Join(known, ", "))
	}
	return &Error{File: t.file, Key: t.path, Msg: msg, Err: ErrInvalid}
}

// str returns the string at k. A missing key is an error when hint is not
// empty (hint says what to add); otherwise it returns ok == false.
func (t table) str(k, hint string) (s string, ok bool, err error) {
	v, ok := t.m[k]
	if !ok {
		if hint != "" {
			return "", false, invalid(t.file, t.key(k), "missing: add %s", hint)
		}
		return "", false, nil
	}
	s, isStr := v.(string)
	if !isStr {
		return "", false, invalid(t.file, t.key(k), "want a string in quotes, got %s", typeName(v))
	}
	return s, true, nil
}

// strs returns the array of strings at k, with the same rule for missing
// keys as str.
func (t table) strs(k, hint string) (ss []string, ok bool, err error) {
	v, ok := t.m[k]
	if !ok {
		if hint != "" {
			return nil, false, invalid(t.file, t.key(k), "missing: add %s", hint)
		}
		return nil, false, nil
	}
	a, isArr := v.([]any)
	if !isArr {
		return nil, false, invalid(t.file, t.key(k), "want an array of strings such as [\"/ip4/127.0.0.1/tcp/4001\"], got %s", typeName(v))
	}
	ss = make([]string, len(a))
	for i, e := range a {
		s, isStr := e.(string)
		if !isStr {
			return nil, false, invalid(t.file, t.key(k), "element %d: want a string in quotes, got %s", i+1, typeName(e))
		}
		ss[i] = s
	}
	return ss, true, nil
}

// boolean returns the boolean at k; missing is not an error.
func (t table) boolean(k string) (b bool, ok bool, err error) {
	v, ok := t.m[k]
	if !ok {
		return false, false, nil
	}
	b, isBool := v.(bool)
	if !isBool {
		return false, false, invalid(t.file, t.key(k), "want true or false (no quotes), got %s", typeName(v))
	}
	return b, true, nil
}

// typeName names the TOML type of a decoded value, for messages.
func typeName(v any) string {
	switch v := v.(type) {
	case string:
		return "a string"
	case int64:
		return fmt.Sprintf("the integer %d", v)
	case float64:
		return "a number"
	case bool:
		return fmt.Sprintf("the boolean %t", v)
	case time.Time:
		return "a date/time"
	case []map[string]any:
		return "an array of tables"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("a %T", v)
}

// suggest returns the known key closest to k, if it is close enough to be a
// typo (edit distance at most 2, and less than half of k).
func suggest(k string, known []string) string {
	best, bestD := "", 3
	for _, c := range known {
		if d := distance(strings.ToLower(k), c); d < bestD && 2*d < len(k) {
			best, bestD = c, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b, in bytes. Keys are
// short; inputs longer than 64 bytes are never typos of one.
func distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// short quotes a value for a message, cut to a readable length.
func short(s string) string {
	const max = 80
	if len(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q...", s[:cut])
}

// quote writes s as a TOML basic string. s must be valid UTF-8 (every
// string that reaches here was validated or came from TOML).
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// quoteList writes ss as a TOML array of basic strings on one line.
func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
