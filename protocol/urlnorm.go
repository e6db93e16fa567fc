package protocol

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// URLForm is a version of the URL normal form (SPEC 7.4). Entries written
// before version 2 carry URLs in the v1 form; both are valid on the wire,
// new entries are written in the v2 form, and a url signal's index key is
// the v2 form of whatever it carries (SignalKey), so that equivalent URLs
// written under either form match.
type URLForm int

const (
	// URLFormV1: host lower-cased and its non-ASCII bytes percent-encoded;
	// percent-escapes in path and query kept as written.
	URLFormV1 URLForm = 1
	// URLFormV2: the host through IDNA (UTS #46 ToASCII); percent-escapes
	// in path and query with upper-case hex, those of unreserved
	// characters decoded.
	URLFormV2 URLForm = 2
)

// hostIDNA is the UTS #46 profile of SPEC 7.4 step 9, spelled out rather
// than idna.Lookup, whose configuration "may change over time": a change
// would change index keys. Its mapping table is that of
// idna.UnicodeVersion (15.0.0 for Go before 1.27, where x/net picks its
// 17.0.0 tables; TestUnicodeTables pins it).
var hostIDNA = idna.New(
	idna.MapForLookup(),         // UTS #46 mapping, UseSTD3ASCIIRules, CheckHyphens, CheckJoiners
	idna.Transitional(false),    // Nontransitional_Processing: ß and ς kept
	idna.BidiRule(),             // CheckBidi
	idna.VerifyDNSLength(false), // no length limits beyond MaxURLLen
	idna.RemoveLeadingDots(false),
)

// NormalizeURL returns the v2 normal form (SPEC 7.4) of an absolute http or
// https URL. It is what users' URLs are turned into and what index keys
// are made of.
func NormalizeURL(s string) (string, error) { return NormalizeURLForm(s, URLFormV2) }

// CheckNormalURL reports whether s, as received in an entry, is in a
// normal form of any version (v1 or v2): an upgrade never invalidates an
// entry that was valid before it.
func CheckNormalURL(s string) error {
	n2, err := NormalizeURLForm(s, URLFormV2)
	if err != nil {
		return err
	}
	if n2 == s {
		return nil
	}
	if n1, err := NormalizeURLForm(s, URLFormV1); err == nil && n1 == s {
		return nil
	}
	return fmt.Errorf("%w: url %q is not normalised (want %q)", ErrSignal, s, n2)
}

// URLKey returns the v2 normal form of a URL that passed CheckNormalURL.
// The v2 form is defined on every v1 normal form (SPEC 7.4), so this does
// not fail for them; for anything else it returns s unchanged.
func URLKey(s string) string {
	n, err := NormalizeURL(s)
	if err != nil {
		return s
	}
	return n
}

// Character classes of SPEC 7.4, as 128-bit sets over ASCII.
type asciiSet [2]uint64

func makeSet(chars string) asciiSet {
	var a asciiSet
	for i := 0; i < len(chars); i++ {
		c := chars[i]
		a[c>>6] |= 1 << (c & 63)
	}
	return a
}

func (a *asciiSet) has(c byte) bool { return c < 0x80 && a[c>>6]&(1<<(c&63)) != 0 }

const (
	alnum      = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	unreserved = alnum + "-._~"
)

var (
	setUnreserved = makeSet(unreserved)
	// Characters a path keeps as they are (pchar of RFC 3986, "/", and
	// the brackets browsers leave alone).
	setPath = makeSet(unreserved + "!$&'()*+,;=:@/[]")
	// Characters a reg-name host may contain as they are.
	setHost = makeSet(unreserved + "!\"$&'()*+,;=<>")
	// Characters of the userinfo as written (before decoding).
	setUserinfoIn = makeSet(unreserved + ":!$&'()*+,;=%@")
	// Characters of a user name or password that are not escaped.
	setUserinfoOut = makeSet(unreserved + "$&+,;=")
	// Characters of an IPv6 zone identifier as they are.
	setZone = makeSet(unreserved + "!\"$&'()*+,;=<>:]")
)

const upperHex = "0123456789ABCDEF"

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unHex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// escapedAt reports whether s[i:] starts with a percent-escape, "%" and
// two hex digits.
func escapedAt(s string, i int) bool {
	return s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2])
}

func appendEscape(b []byte, c byte) []byte {
	return append(b, '%', upperHex[c>>4], upperHex[c&15])
}

// NormalizeURLForm returns the normal form of the given version of an
// absolute http or https URL, following SPEC 7.4 step by step. It does not
// use net/url: the steps are the specification.
func NormalizeURLForm(s string, form URLForm) (string, error) {
	// Step 1.
	if len(s) > MaxURLLen {
		return "", fmt.Errorf("%w: url: %d bytes, limit %d", ErrSignal, len(s), MaxURLLen)
	}
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%w: url: not valid UTF-8", ErrSignal)
	}
	in := s
	// Step 2.
	s = strings.TrimFunc(s, unicode.IsSpace)
	// Step 3.
	s, _, _ = strings.Cut(s, "#")
	// Step 4.
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return "", fmt.Errorf("%w: url %q: control character %q", ErrSignal, in, s[i:i+1])
		}
	}
	// Step 5.
	scheme, rest, ok := strings.Cut(s, ":")
	scheme = strings.ToLower(scheme)
	if !ok || (scheme != "http" && scheme != "https") {
		return "", fmt.Errorf("%w: url %q: want an absolute http or https URL", ErrSignal, in)
	}
	// Step 6.
	rest, ok = strings.CutPrefix(rest, "//")
	if !ok {
		return "", fmt.Errorf("%w: url %q: no host", ErrSignal, in)
	}
	rest, query, hasQuery := strings.Cut(rest, "?")
	authority, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	// Step 7.
	var userinfo []byte
	hostport := authority
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		var err error
		if userinfo, err = normalizeUserinfo(authority[:i]); err != nil {
			return "", fmt.Errorf("%w: url %q: %v", ErrSignal, in, err)
		}
		hostport = authority[i+1:]
	}
	// Step 8.
	host, port, err := splitHostPort(hostport)
	if err != nil {
		return "", fmt.Errorf("%w: url %q: %v", ErrSignal, in, err)
	}
	// Step 9.
	if strings.HasPrefix(host, "[") {
		host, err = normalizeIPLiteral(host)
	} else {
		host, err = normalizeRegName(host, form)
	}
	if err != nil {
		return "", fmt.Errorf("%w: url %q: %v", ErrSignal, in, err)
	}
	// Step 10.
	if port, err = normalizePort(scheme, port); err != nil {
		return "", fmt.Errorf("%w: url %q: %v", ErrSignal, in, err)
	}
	// Steps 11 (path) and 13 (assembly).
	out := make([]byte, 0, len(s)+16)
	out = append(append(out, scheme...), "://"...)
	if userinfo != nil {
		out = append(append(out, userinfo...), '@')
	}
	out = append(out, host...)
	if port != "" {
		out = append(append(out, ':'), port...)
	}
	if path == "" {
		path = "/"
	}
	if out, err = appendPath(out, path, form); err != nil {
		return "", fmt.Errorf("%w: url %q: %v", ErrSignal, in, err)
	}
	// Step 12.
	if hasQuery {
		out = append(out, '?')
		out = appendQuery(out, query, form)
		// White space at the query's end would be removed by step 2 of
		// a second pass.
		out = []byte(strings.TrimRightFunc(string(out), unicode.IsSpace))
	}
	// Step 13.
	if len(out) > MaxURLLen {
		return "", fmt.Errorf("%w: url: normal form is %d bytes, limit %d", ErrSignal, len(out), MaxURLLen)
	}
	return string(out), nil
}

// normalizeUserinfo: step 7. The user name and password (split at the
// first ":") are decoded and escaped again, so each byte has one spelling.
func normalizeUserinfo(u string) ([]byte, error) {
	for i := 0; i < len(u); i++ {
		if !setUserinfoIn.has(u[i]) {
			r, _ := utf8.DecodeRuneInString(u[i:])
			return nil, fmt.Errorf("character %q in user information", r)
		}
		if u[i] == '%' && !escapedAt(u, i) {
			return nil, fmt.Errorf("bad percent-escape in user information")
		}
	}
	out := []byte{}
	for i, part := range strings.SplitN(u, ":", 2) {
		if i == 1 {
			out = append(out, ':')
		}
		for j := 0; j < len(part); j++ {
			c := part[j]
			if c == '%' {
				c = unHex(part[j+1])<<4 | unHex(part[j+2])
				j += 2
			}
			if setUserinfoOut.has(c) {
				out = append(out, c)
			} else {
				out = appendEscape(out, c)
			}
		}
	}
	return out, nil
}

// splitHostPort: step 8. The host keeps its brackets.
func splitHostPort(hp string) (host, port string, err error) {
	if strings.HasPrefix(hp, "[") {
		end := strings.LastIndexByte(hp, ']')
		if end < 0 {
			return "", "", fmt.Errorf("missing \"]\" in host")
		}
		host, rest := hp[:end+1], hp[end+1:]
		if rest != "" {
			p, ok := strings.CutPrefix(rest, ":")
			if !ok {
				return "", "", fmt.Errorf("bad host %q", hp)
			}
			port = p
		}
		return host, port, nil
	}
	host, port, _ = strings.Cut(hp, ":")
	if strings.ContainsAny(port, ":") {
		return "", "", fmt.Errorf("bad host %q: more than one \":\"", hp)
	}
	return host, port, nil
}

// normalizeIPLiteral: step 9a. Brackets, an IPv6 address in lower case,
// and an optional zone.
func normalizeIPLiteral(h string) (string, error) {
	inner := h[1 : len(h)-1]
	addr, zone, hasZone := strings.Cut(inner, "%25")
	for i := 0; i < len(addr); i++ {
		if c := addr[i]; !isHex(c) && c != ':' && c != '.' {
			return "", fmt.Errorf("bad host %q: not an IPv6 address", h)
		}
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil || !ip.Is6() {
		return "", fmt.Errorf("bad host %q: not an IPv6 address", h)
	}
	out := "[" + strings.ToLower(addr)
	if hasZone {
		z, err := normalizeZone(zone)
		if err != nil {
			return "", fmt.Errorf("bad host %q: %v", h, err)
		}
		out += "%25" + z
	}
	return out + "]", nil
}

// normalizeZone: the zone of step 9a (RFC 6874), after its "%25". An
// escape of a character that may stand as it is gets decoded; a space
// and a percent sign stay escaped.
func normalizeZone(z string) (string, error) {
	out := make([]byte, 0, len(z))
	for i := 0; i < len(z); i++ {
		c := z[i]
		if c == '%' {
			if !escapedAt(z, i) {
				return "", fmt.Errorf("bad percent-escape in zone")
			}
			c = unHex(z[i+1])<<4 | unHex(z[i+2])
			i += 2
			if c == ' ' || c == '%' {
				out = appendEscape(out, c)
				continue
			}
		}
		if !setZone.has(c) {
			return "", fmt.Errorf("character %q in zone", c)
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return "", fmt.Errorf("empty zone")
	}
	return string(out), nil
}

// normalizeRegName: step 9b. The host is decoded (escapes only of bytes
// 0x80 to 0xFF, and "%25"), lower-cased; v2 then takes it through IDNA.
func normalizeRegName(h string, form URLForm) (string, error) {
	if strings.ContainsAny(h, "[]") {
		return "", fmt.Errorf("bad host %q", h)
	}
	dec := make([]byte, 0, len(h))
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c == '%':
			if !escapedAt(h, i) {
				return "", fmt.Errorf("bad percent-escape in host %q", h)
			}
			c = unHex(h[i+1])<<4 | unHex(h[i+2])
			if c < 0x80 && c != '%' {
				return "", fmt.Errorf("host %q: percent-escape of ASCII %q", h, h[i:i+3])
			}
			i += 2
		case c < 0x80 && !setHost.has(c):
			return "", fmt.Errorf("character %q in host %q", rune(c), h)
		}
		dec = append(dec, c)
	}
	if len(dec) == 0 {
		return "", fmt.Errorf("no host")
	}
	if !utf8.Valid(dec) {
		return "", fmt.Errorf("host %q is not UTF-8 once decoded", h)
	}
	lower := strings.ToLower(string(dec))
	if form == URLFormV2 {
		if a, err := hostIDNA.ToASCII(lower); err == nil && a != "" {
			return a, nil
		}
	}
	out := make([]byte, 0, len(lower))
	for i := 0; i < len(lower); i++ {
		if c := lower[i]; c >= 0x80 || c == '%' {
			out = appendEscape(out, c)
		} else {
			out = append(out, c)
		}
	}
	return string(out), nil
}

// normalizePort: step 10.
func normalizePort(scheme, port string) (string, error) {
	n := 0
	for i := 0; i < len(port); i++ {
		c := port[i]
		if c < '0' || c > '9' {
			return "", fmt.Errorf("port %q: want 1 to 65535", port)
		}
		if n = n*10 + int(c-'0'); n > 65535 {
			return "", fmt.Errorf("port %q: want 1 to 65535", port)
		}
	}
	if port != "" && n == 0 {
		return "", fmt.Errorf("port %q: want 1 to 65535", port)
	}
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		return "", nil
	}
	return port, nil
}

// appendEscapes normalises a percent-escape at s[i:i+3] for v2: upper-case
// hex, unreserved characters decoded.
func appendNormalEscape(out []byte, s string, i int) []byte {
	c := unHex(s[i+1])<<4 | unHex(s[i+2])
	if setUnreserved.has(c) {
		return append(out, c)
	}
	return appendEscape(out, c)
}

// appendPath: step 11.
func appendPath(out []byte, p string, form URLForm) ([]byte, error) {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%':
			if !escapedAt(p, i) {
				return nil, fmt.Errorf("bad percent-escape %.3q in path", p[i:])
			}
			if form == URLFormV2 {
				out = appendNormalEscape(out, p, i)
			} else {
				out = append(out, p[i:i+3]...)
			}
			i += 2
		case setPath.has(c):
			out = append(out, c)
		default:
			out = appendEscape(out, c)
		}
	}
	return out, nil
}

// appendQuery: step 12. v1 keeps the query as written; v2 normalises its
// percent-escapes, and writes a "%" that starts none as "%25" (otherwise
// decoding "%%36%31" would make "%61", which a second pass decodes again).
func appendQuery(out []byte, q string, form URLForm) []byte {
	if form == URLFormV1 {
		return append(out, q...)
	}
	for i := 0; i < len(q); i++ {
		switch {
		case escapedAt(q, i):
			out = appendNormalEscape(out, q, i)
			i += 2
		case q[i] == '%':
			out = append(out, "%25"...)
		default:
			out = append(out, q[i])
		}
	}
	return out
}
