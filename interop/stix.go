package interop

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/staydown/staydown/protocol"
)

// stixObject is the part of a STIX 2.1 object we read. Only indicators
// carry signals; other objects (identities, relationships, malware, ...)
// are passed over.
type stixObject struct {
	Type        string   `json:"type"`
	ID          string   `json:"id"`
	Pattern     string   `json:"pattern"`
	PatternType string   `json:"pattern_type"`
	Labels      []string `json:"labels"`
	Revoked     bool     `json:"revoked"`
	// IndicatorTypes: a benign indicator (our export's form of an
	// allowlist entry, write_stix.go) says what not to action; it is
	// passed over, never imported as an attestation.
	IndicatorTypes []string `json:"indicator_types"`
}

// stixHashes maps the hash names of STIX's hash-algorithm-ov (and PDQ, the
// name the field gives the perceptual hash as a custom hash) to our types.
var stixHashes = map[string]protocol.SignalType{
	"MD5":     protocol.SignalMD5,
	"SHA-256": protocol.SignalSHA256,
	"SHA256":  protocol.SignalSHA256,
	"PDQ":     protocol.SignalPDQ,
}

// readSTIX reads a STIX 2.1 bundle: for every indicator, the signals its
// pattern compares for equality. A revoked indicator is a deleted row.
func readSTIX(r io.Reader, sink Sink) error {
	found, err := eachElement(r, "objects", false, func(i int, dec *json.Decoder) error {
		var o stixObject
		why, err := decodeElement(dec, &o)
		if err != nil {
			return err
		}
		where := fmt.Sprintf("objects[%d]", i)
		if o.ID != "" {
			where = clip(o.ID)
		}
		if why != "" {
			sink.Reject(Problem{Where: where, Reason: why})
			return nil
		}
		if o.Type != "indicator" || slices.Contains(o.IndicatorTypes, "benign") {
			return nil
		}
		if o.PatternType != "" && o.PatternType != "stix" {
			sink.Reject(Problem{where, o.PatternType, "pattern_type we cannot read; want stix"})
			return nil
		}
		comps, why := parseSTIXPattern(o.Pattern)
		if why != "" {
			sink.Reject(Problem{where, o.Pattern, why})
			return nil
		}
		labels := vocabLabels(o.Labels)
		for _, c := range comps {
			s, why := parse(c.typ, c.value)
			if why != "" {
				sink.Reject(Problem{where, c.value, why})
				continue
			}
			if err := sink.Row(Row{Where: where, Signal: s, Labels: labels, Deleted: o.Revoked}); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && !found {
		return fmt.Errorf("%w: no \"objects\" array: not a STIX bundle", ErrFormat)
	}
	return err
}

type stixComparison struct {
	typ   protocol.SignalType
	value string
}

// parseSTIXPattern reads the subset of STIX patterning a list of signals
// needs: observation expressions joined by OR, each a bracketed list of
// equality comparisons joined by OR, on file:hashes.NAME or url:value.
// Anything else (AND, FOLLOWEDBY, qualifiers, other operators or objects)
// says something a signal cannot: the reason names it.
func parseSTIXPattern(p string) ([]stixComparison, string) {
	lx := stixLexer{s: p}
	var out []stixComparison
	for {
		if !lx.take("[") {
			return nil, "want [ at " + lx.at()
		}
		for {
			path := lx.path()
			if path == "" {
				return nil, "want an object path (file:hashes.'SHA-256', url:value) at " + lx.at()
			}
			var typ protocol.SignalType
			switch {
			case path == "url:value":
				typ = protocol.SignalURL
			case strings.HasPrefix(path, "file:hashes."):
				name := strings.Trim(strings.TrimPrefix(path, "file:hashes."), `'"`)
				t, ok := stixHashes[strings.ToUpper(name)]
				if !ok {
					return nil, fmt.Sprintf("hash %q has no Staydown signal type; known: MD5, SHA-256, PDQ", name)
				}
				typ = t
			default:
				return nil, fmt.Sprintf("object path %q cannot be represented; want file:hashes.NAME or url:value", path)
			}
			if !lx.take("=") {
				return nil, "only = comparisons can be represented; at " + lx.at()
			}
			v, ok := lx.str()
			if !ok {
				return nil, "want a quoted string at " + lx.at()
			}
			out = append(out, stixComparison{typ, v})
			if lx.take("]") {
				break
			}
			if !lx.word("OR") {
				return nil, "only OR between comparisons can be represented; at " + lx.at()
			}
		}
		if lx.end() {
			return out, ""
		}
		if !lx.word("OR") {
			return nil, "only OR between observations can be represented; at " + lx.at()
		}
	}
}

type stixLexer struct {
	s   string
	pos int
}

func (l *stixLexer) skip() {
	for l.pos < len(l.s) && strings.IndexByte(" \t\r\n", l.s[l.pos]) >= 0 {
		l.pos++
	}
}

func (l *stixLexer) end() bool { l.skip(); return l.pos == len(l.s) }

func (l *stixLexer) at() string {
	l.skip()
	if l.pos >= len(l.s) {
		return "the end"
	}
	return fmt.Sprintf("%q", clip(l.s[l.pos:]))
}

func (l *stixLexer) take(tok string) bool {
	l.skip()
	if strings.HasPrefix(l.s[l.pos:], tok) {
		l.pos += len(tok)
		return true
	}
	return false
}

func (l *stixLexer) word(w string) bool {
	l.skip()
	rest := l.s[l.pos:]
	if strings.HasPrefix(rest, w) && (len(rest) == len(w) || strings.IndexByte(" \t\r\n[", rest[len(w)]) >= 0) {
		l.pos += len(w)
		return true
	}
	return false
}

// path reads an object path: letters, digits, - _ : . and quoted steps.
func (l *stixLexer) path() string {
	l.skip()
	start := l.pos
	for l.pos < len(l.s) {
		c := l.s[l.pos]
		switch {
		case c == '\'':
			end := strings.IndexByte(l.s[l.pos+1:], '\'')
			if end < 0 {
				return ""
			}
			l.pos += end + 2
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == ':', c == '.':
			l.pos++
		default:
			return l.s[start:l.pos]
		}
	}
	return l.s[start:l.pos]
}

// str reads a single-quoted string literal with \' and \\ escapes.
func (l *stixLexer) str() (string, bool) {
	l.skip()
	if l.pos >= len(l.s) || l.s[l.pos] != '\'' {
		return "", false
	}
	var b strings.Builder
	for i := l.pos + 1; i < len(l.s); i++ {
		switch c := l.s[i]; c {
		case '\\':
			if i+1 >= len(l.s) {
				return "", false
			}
			i++
			b.WriteByte(l.s[i])
		case '\'':
			l.pos = i + 1
			return b.String(), true
		default:
			b.WriteByte(c)
		}
	}
	return "", false
}
