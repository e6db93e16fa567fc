package protocol

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"

	"github.com/staydown/staydown/protocol/pb"
)

// SignalDomain is a site: a host name, and with subdomains every name
// under it (SPEC.md 7.7).
const SignalDomain SignalType = "domain"

const tagDomain = 7

// MaxDomainLen is the longest domain name, in bytes, without a trailing
// dot (RFC 1035's 255 octets on the wire are 253 characters of text).
const MaxDomainLen = 253

// SubdomainPrefix is how users and index keys write a domain signal that
// covers its subdomains: "*.example.org" is example.org and every name
// under it.
const SubdomainPrefix = "*."

// domainIDNA turns a user's host name into A-labels (SPEC.md 7.7): the
// URL host profile (urlnorm.go) with DNS length limits and STD3 rules
// enforced, since a domain signal is a DNS name, not a URL's host.
var domainIDNA = idna.New(
	idna.MapForLookup(),        // UTS #46 mapping, UseSTD3ASCIIRules, CheckHyphens, CheckJoiners
	idna.Transitional(false),   // Nontransitional_Processing: ß and ς kept
	idna.BidiRule(),            // CheckBidi
	idna.VerifyDNSLength(true), // labels 1 to 63 bytes, the name at most 253
	idna.RemoveLeadingDots(false),
	idna.StrictDomainName(true),
)

// ParseDomain normalises a user's domain (SPEC.md 7.7): white space
// trimmed, a leading "*." meaning "and its subdomains", one trailing dot
// dropped, IDNA to A-labels, lower case. It refuses IP addresses, names
// that are not DNS host names, single labels and names that are a public
// suffix alone (com, co.uk, github.io: the Public Suffix List of
// golang.org/x/net/publicsuffix). The wire rule (CheckDomain) is looser:
// it needs neither IDNA nor the suffix list, whose versions change.
func ParseDomain(value string) (*pb.Domain, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: domain %q: "+format, append([]any{ErrSignal, value}, a...)...)
	}
	if len(value) > 4*MaxDomainLen || !utf8.ValidString(value) {
		return nil, bad("want a domain name of at most %d bytes in UTF-8", MaxDomainLen)
	}
	name := strings.TrimFunc(value, unicode.IsSpace)
	sub := strings.HasPrefix(name, SubdomainPrefix)
	name = strings.TrimPrefix(name, SubdomainPrefix)
	if strings.Contains(name, "://") || strings.ContainsAny(name, "/?#@") {
		return nil, bad("want a domain name (e.g. example.org), not a URL")
	}
	if strings.HasPrefix(name, "[") || isIP(name) || isIP(strings.TrimSuffix(name, ".")) {
		return nil, bad("is an IP address; a domain signal names a site by its domain name")
	}
	if strings.Contains(name, "*") {
		return nil, bad("a wildcard is only allowed as a leading \"*.\" (the name and its subdomains)")
	}
	name = strings.TrimSuffix(name, ".")
	if name == "" {
		return nil, bad("empty")
	}
	a, err := domainIDNA.ToASCII(name)
	if err != nil {
		return nil, bad("not a valid host name: %v", err)
	}
	// A single label is a public suffix to the list's "*" rule; say so
	// only of those the list names (com, not localhost).
	if ps, icann := publicsuffix.PublicSuffix(a); ps == a && (icann || strings.Contains(a, ".")) {
		return nil, bad("%q is a public suffix, under which anyone may register names; name a domain under it", a)
	}
	if err := checkDomainName(a); err != nil {
		return nil, bad("%v", err)
	}
	return &pb.Domain{Name: a, Subdomains: sub}, nil
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// CheckDomain checks a domain signal as received (SPEC.md 7.7): its name
// is a DNS host name in the form ParseDomain writes: 1 to 253 bytes, at
// least two labels of 1 to 63 bytes each, every byte a lower-case ASCII
// letter, a digit or a hyphen, no label starting or ending with a hyphen,
// the last label not all digits.
func CheckDomain(d *pb.Domain) error {
	if d == nil {
		return fmt.Errorf("%w: domain: no name", ErrSignal)
	}
	if err := checkDomainName(d.Name); err != nil {
		return fmt.Errorf("%w: domain %q: %v", ErrSignal, d.Name, err)
	}
	return nil
}

func checkDomainName(name string) error {
	if name == "" || len(name) > MaxDomainLen {
		return fmt.Errorf("want 1 to %d bytes, got %d", MaxDomainLen, len(name))
	}
	labels := strings.Split(name, ".")
	if len(labels) < 2 {
		return fmt.Errorf("a single label is not a site's domain; name the domain under it")
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("label %q: want 1 to 63 bytes", l)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("label %q starts or ends with a hyphen", l)
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return fmt.Errorf("label %q: want lower-case letters, digits and hyphens only", l)
			}
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return fmt.Errorf("the last label is all digits: an IP address, not a domain name")
	}
	return nil
}

// FormatDomain writes a domain signal's value as users write it:
// "*.example.org" with its subdomains, "example.org" without.
func FormatDomain(d *pb.Domain) string {
	if d.Subdomains {
		return SubdomainPrefix + d.Name
	}
	return d.Name
}

func domainKey(name string, sub bool) []byte {
	k := make([]byte, 0, 1+len(SubdomainPrefix)+len(name))
	k = append(k, tagDomain)
	if sub {
		k = append(k, SubdomainPrefix...)
	}
	return append(k, name...)
}

// DomainMatchKeys returns the index keys of every domain signal that
// covers the host name (SPEC.md 7.7): the name itself, exactly or with its
// subdomains, and each parent domain of two labels or more with its
// subdomains. For www.example.org: www.example.org, *.www.example.org,
// *.example.org. The name must have passed CheckDomain.
func DomainMatchKeys(name string) [][]byte {
	keys := [][]byte{domainKey(name, false), domainKey(name, true)}
	for p := name; ; {
		_, rest, _ := strings.Cut(p, ".")
		if !strings.Contains(rest, ".") {
			return keys
		}
		keys = append(keys, domainKey(rest, true))
		p = rest
	}
}

// URLHostDomain returns the host of a URL in normal form (section 7.4) as
// a domain name, and false when it has none: an IP literal, or a host
// that is not a DNS host name (e.g. with an underscore, or one label).
func URLHostDomain(u string) (string, bool) {
	_, rest, ok := strings.Cut(u, "://")
	if !ok {
		return "", false
	}
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	if strings.HasPrefix(rest, "[") {
		return "", false
	}
	host, _, _ := strings.Cut(rest, ":")
	host = strings.TrimSuffix(host, ".")
	if checkDomainName(host) != nil {
		return "", false
	}
	return host, true
}
