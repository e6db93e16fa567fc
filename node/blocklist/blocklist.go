// Package blocklist writes the domains an access provider must block (the
// blocking orders in force for its node, SPEC 6.9) in the forms resolvers
// and hosts files take: a DNS response-policy zone (RPZ, the IETF draft
// draft-vixie-dnsop-dns-rpz, as BIND, Unbound, Knot Resolver and PowerDNS
// load it), a hosts file, or a plain list of domains. It is pure: the
// node gives it the domains and the serial.
package blocklist

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// Format is one of the forms a blocklist is written in.
type Format string

const (
	RPZ     Format = "rpz"     // a DNS zone file of RPZ rules
	Hosts   Format = "hosts"   // "ADDRESS NAME" lines
	Domains Format = "domains" // one domain per line, "*." first for subdomains
)

// Formats lists the formats, for error messages.
var Formats = []Format{RPZ, Hosts, Domains}

// ParseFormat reads a format name.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("format %q: use rpz, hosts or domains", s)
}

// Landing is where a blocked name points: nowhere (NXDOMAIN; the zero
// Landing), an address (A or AAAA), or a host name (CNAME).
type Landing struct {
	Addr netip.Addr
	Host string // A-labels, no trailing dot
}

// ParseLanding reads a landing: "" for NXDOMAIN, an IP address, or a host
// name (normalised as a domain signal is, SPEC 7.7, but a single label
// or a public suffix is not refused: it is the provider's own host).
func ParseLanding(s string) (Landing, error) {
	if s == "" {
		return Landing{}, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" || a.IsUnspecified() {
			return Landing{}, fmt.Errorf("landing %q: want an address a resolver can answer with", s)
		}
		return Landing{Addr: a.Unmap()}, nil
	}
	d, err := protocol.ParseDomain(s)
	if err != nil || d.Subdomains {
		return Landing{}, fmt.Errorf("landing %q: want an IP address or a host name", s)
	}
	return Landing{Host: d.Name}, nil
}

// Zone is a blocklist's content and its version.
type Zone struct {
	Domains []*pb.Domain // sorted, no duplicates
	// Serial is the RPZ's SOA serial: it must grow with every change of
	// Domains (and of the landing) for resolvers to reload the zone.
	Serial uint32
}

// DefaultRefresh is the RPZ's SOA refresh and retry and its records' TTL,
// in seconds, unless the resolver asks for another (?refresh=): how soon
// a resolver that polls the zone sees a new order or a lift (SPEC 24).
const DefaultRefresh = 60

// MaxRefresh bounds the refresh a resolver may ask for: a day.
const MaxRefresh = 86400

// Options are how a blocklist is written.
type Options struct {
	Landing Landing
	Refresh int // RPZ: seconds, 1 to MaxRefresh; 0 is DefaultRefresh
}

// Write writes the zone in the format.
func Write(z Zone, f Format, o Options) []byte {
	l := o.Landing
	ttl := o.Refresh
	if ttl <= 0 {
		ttl = DefaultRefresh
	}
	var b bytes.Buffer
	switch f {
	case RPZ:
		// Names are relative to the zone's origin, which the resolver's
		// configuration names (e.g. Unbound's auth-zone name:).
		fmt.Fprintf(&b, "; Staydown blocking orders in force: %d domains\n", len(z.Domains))
		fmt.Fprintf(&b, "$TTL %d\n", ttl)
		fmt.Fprintf(&b, "@ SOA localhost. hostmaster.localhost. %d %d %d 604800 %d\n", z.Serial, ttl, ttl, ttl)
		b.WriteString("@ NS localhost.\n")
		// The policy record, after the name: the same for every name.
		var rr string
		switch {
		case l.Host != "":
			rr = " CNAME " + l.Host + ".\n"
		case l.Addr.Is4():
			rr = " A " + l.Addr.String() + "\n"
		case l.Addr.Is6():
			rr = " AAAA " + l.Addr.String() + "\n"
		default:
			rr = " CNAME .\n" // NXDOMAIN
		}
		b.Grow(len(z.Domains) * (2*len(rr) + 48))
		for _, d := range z.Domains {
			b.WriteString(d.Name)
			b.WriteString(rr)
			if d.Subdomains {
				b.WriteString("*.")
				b.WriteString(d.Name)
				b.WriteString(rr)
			}
		}
	case Hosts:
		// A hosts file has no wildcards: a domain with its subdomains is
		// listed by its own name only (resolvers take the RPZ).
		addr := "0.0.0.0"
		if l.Addr.IsValid() {
			addr = l.Addr.String()
		}
		fmt.Fprintf(&b, "# Staydown blocking orders in force: %d domains (serial %d)\n", len(z.Domains), z.Serial)
		var last string
		for _, d := range z.Domains {
			if d.Name != last {
				fmt.Fprintf(&b, "%s %s\n", addr, d.Name)
			}
			last = d.Name
		}
	case Domains:
		for _, d := range z.Domains {
			b.WriteString(protocol.FormatDomain(d))
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// ETag is the HTTP entity tag of a written blocklist.
func ETag(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// Key is a digest of the zone's domains, to tell whether they changed.
func Key(ds []*pb.Domain) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(protocol.FormatDomain(d))
		b.WriteByte('\n')
	}
	sum := sha256.Sum256([]byte(b.String()))
	return string(sum[:])
}
