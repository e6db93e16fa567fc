package protocol

import (
	"net"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// goV1NormalizeURL is NormalizeURL as it was before the v2 form: the
// normal form after Go's net/url (Go 1.26) that every entry written before
// v2 carries. It stays here as the reference the v1 form of SPEC 7.4 is
// checked against: every URL it held to be normal must stay valid
// (FuzzURLForms).
func goV1NormalizeURL(s string) (string, error) {
	if len(s) > MaxURLLen {
		return "", errLegacy
	}
	if !utf8.ValidString(s) {
		// The query is kept as given, and a signal's strings must be UTF-8.
		return "", errLegacy
	}
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return "", errLegacy
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", errLegacy
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return "", errLegacy
	}
	// Hostname has removed the brackets of an IPv6 literal; any left are
	// stray (url.Parse lets "http://]:0" through) and would be lost below.
	if strings.ContainsAny(host, "[]") {
		return "", errLegacy
	}
	host = strings.ToLower(host)
	if port != "" {
		// url.Parse has checked that it is digits.
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", errLegacy
		}
	}
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") { // IPv6 literal
		host = "[" + host + "]"
	}
	if port != "" {
		host = net.JoinHostPort(strings.Trim(host, "[]"), port)
	}
	u.Host = host
	u.Fragment, u.RawFragment = "", ""
	// The query is kept as given, except for white space at its end: the
	// normal form must not end in white space, which step 2 would remove
	// on a second pass ("http://h/? #x" -> "http://h/?", not "http://h/? ").
	if q := strings.TrimRightFunc(u.RawQuery, unicode.IsSpace); q != u.RawQuery {
		u.RawQuery, u.ForceQuery = q, true
	}
	if u.Path == "" {
		u.Path, u.RawPath = "/", ""
	}
	// Escaping can make the normal form longer than the input; the limit
	// applies to what is signed.
	n := u.String()
	if len(n) > MaxURLLen {
		return "", errLegacy
	}
	return n, nil
}

var errLegacy = ErrSignal
