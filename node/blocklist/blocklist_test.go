package blocklist

import (
	"fmt"
	"strings"
	"testing"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

func domains(t testing.TB, in ...string) []*pb.Domain {
	var out []*pb.Domain
	for _, s := range in {
		d, err := protocol.ParseDomain(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// TestWrite: every format and landing, byte for byte.
func TestWrite(t *testing.T) {
	z := Zone{Domains: domains(t, "*.propaganda.example", "site.example"), Serial: 1764900000}
	head := "; Staydown blocking orders in force: 2 domains\n$TTL 60\n@ SOA localhost. hostmaster.localhost. 1764900000 60 60 604800 60\n@ NS localhost.\n"
	for _, c := range []struct {
		f    Format
		o    Options
		want string
	}{
		{RPZ, Options{}, head + "propaganda.example CNAME .\n*.propaganda.example CNAME .\nsite.example CNAME .\n"},
		{RPZ, Options{Landing: mustLanding(t, "192.0.2.10")}, head + "propaganda.example A 192.0.2.10\n*.propaganda.example A 192.0.2.10\nsite.example A 192.0.2.10\n"},
		{RPZ, Options{Landing: mustLanding(t, "2001:db8::10")}, head + "propaganda.example AAAA 2001:db8::10\n*.propaganda.example AAAA 2001:db8::10\nsite.example AAAA 2001:db8::10\n"},
		{RPZ, Options{Landing: mustLanding(t, "Blocked.ISP.example.")}, head + "propaganda.example CNAME blocked.isp.example.\n*.propaganda.example CNAME blocked.isp.example.\nsite.example CNAME blocked.isp.example.\n"},
		{RPZ, Options{Refresh: 1}, "; Staydown blocking orders in force: 2 domains\n$TTL 1\n@ SOA localhost. hostmaster.localhost. 1764900000 1 1 604800 1\n@ NS localhost.\n" +
			"propaganda.example CNAME .\n*.propaganda.example CNAME .\nsite.example CNAME .\n"},
		{Hosts, Options{}, "# Staydown blocking orders in force: 2 domains (serial 1764900000)\n0.0.0.0 propaganda.example\n0.0.0.0 site.example\n"},
		{Hosts, Options{Landing: mustLanding(t, "192.0.2.10")}, "# Staydown blocking orders in force: 2 domains (serial 1764900000)\n192.0.2.10 propaganda.example\n192.0.2.10 site.example\n"},
		{Domains, Options{}, "*.propaganda.example\nsite.example\n"},
	} {
		if got := string(Write(z, c.f, c.o)); got != c.want {
			t.Errorf("%s %+v:\n%s\nwant\n%s", c.f, c.o, got, c.want)
		}
	}
	if ETag(Write(z, RPZ, Options{})) == ETag(Write(Zone{Domains: z.Domains, Serial: z.Serial + 1}, RPZ, Options{})) {
		t.Error("the ETag does not change with the serial")
	}
	if Key(z.Domains) == Key(z.Domains[:1]) || Key(z.Domains) != Key(domains(t, "*.propaganda.example", "site.example")) {
		t.Error("Key does not follow the domains")
	}
}

func mustLanding(t *testing.T, s string) Landing {
	l, err := ParseLanding(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestParseLandingAndFormat(t *testing.T) {
	for _, s := range []string{"0.0.0.0", "::", "fe80::1%eth0", "*.x.example", "https://x.example/", "a_b.example"} {
		if _, err := ParseLanding(s); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", s)) {
			t.Errorf("ParseLanding(%q): %v", s, err)
		}
	}
	if _, err := ParseFormat("bind"); err == nil || !strings.Contains(err.Error(), `"bind"`) {
		t.Errorf("ParseFormat(bind): %v", err)
	}
}

// FuzzParseLanding: a landing that parses is written into a zone as one
// token, so that no input can add a record to the RPZ.
func FuzzParseLanding(f *testing.F) {
	for _, s := range []string{"192.0.2.1", "2001:db8::1", "blocked.example", "x.example. A 1.2.3.4", "a\nb.example", "::ffff:1.2.3.4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLanding(s)
		if err != nil {
			return
		}
		out := string(Write(Zone{Domains: domains(t, "x.example"), Serial: 1}, RPZ, Options{Landing: l}))
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 5 || len(strings.Fields(lines[4])) != 3 {
			t.Fatalf("landing %q wrote %q", s, out)
		}
	})
}

// BenchmarkWriteRPZ100k: the RPZ of 100,000 blocked domains, half of them
// with their subdomains.
func BenchmarkWriteRPZ100k(b *testing.B) {
	z := Zone{Serial: 1764900000}
	for i := range 100_000 {
		z.Domains = append(z.Domains, &pb.Domain{Name: fmt.Sprintf("site-%06d.example", i), Subdomains: i%2 == 0})
	}
	var n int
	for b.Loop() {
		n = len(Write(z, RPZ, Options{}))
	}
	b.ReportMetric(float64(n), "bytes")
}
