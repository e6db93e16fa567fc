package protocol

import (
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/staydown/staydown/protocol/pb"
)

type domainVector struct {
	Input string `json:"input"`
	Value string `json:"value,omitempty"`
	Error string `json:"error,omitempty"`
}

func readDomainVectors(t testing.TB) []domainVector {
	b, err := os.ReadFile("testdata/domain_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Vectors []domainVector }
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f.Vectors
}

// TestDomainVectors checks ParseDomain against the table that is part of
// SPEC.md 7.7, and that every normal form passes the wire rule and is its
// own normal form.
func TestDomainVectors(t *testing.T) {
	for _, v := range readDomainVectors(t) {
		s, err := ParseSignal("domain", v.Input)
		if v.Error != "" {
			if err == nil {
				t.Errorf("%q: got %q, want an error containing %q", v.Input, FormatSignal(s), v.Error)
			} else if !strings.Contains(err.Error(), v.Error) || !errors.Is(err, ErrSignal) || !strings.Contains(err.Error(), strings.TrimSpace(v.Input)) {
				t.Errorf("%q: error %q, want ErrSignal containing %q and the input", v.Input, err, v.Error)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", v.Input, err)
			continue
		}
		if got := FormatSignal(s); got != "domain:"+v.Value {
			t.Errorf("%q: got %q, want domain:%s", v.Input, got, v.Value)
		}
		if err := CheckSignal(s); err != nil {
			t.Errorf("%q: normal form fails the wire rule: %v", v.Input, err)
		}
		again, err := ParseSignal("domain", v.Value)
		if err != nil || FormatSignal(again) != FormatSignal(s) {
			t.Errorf("%q: normal form %q is not its own normal form: %v", v.Input, v.Value, err)
		}
		if k := SignalKey(s); string(k) != "\x07"+v.Value {
			t.Errorf("%q: key %q", v.Input, k)
		}
	}
}

func TestCheckDomainWire(t *testing.T) {
	for _, name := range []string{"", "org", "Example.org", "a_b.example.org", "example.org.", "-a.example", "a-.example",
		"a..b", "192.0.2.1", "*.example.org", "bücher.example", strings.Repeat("a.", 127) + "ab"} {
		if err := CheckDomain(&pb.Domain{Name: name}); err == nil {
			t.Errorf("CheckDomain(%q) passed", name)
		}
	}
	// The wire needs neither IDNA nor the suffix list: a public suffix
	// alone (refused from users) and an undecodable A-label pass, so that
	// no two versions of those tables split a federation.
	for _, name := range []string{"co.uk", "xn--zz.example", "a--b.example", strings.Repeat("a.", 125) + "abc"} {
		if err := CheckDomain(&pb.Domain{Name: name}); err != nil {
			t.Errorf("CheckDomain(%q): %v", name, err)
		}
	}
	if err := CheckDomain(nil); err == nil {
		t.Error("CheckDomain(nil) passed")
	}
}

func TestDomainMatchKeys(t *testing.T) {
	var got []string
	for _, k := range DomainMatchKeys("a.www.example.co.uk") {
		got = append(got, string(k[1:]))
	}
	want := []string{"a.www.example.co.uk", "*.a.www.example.co.uk", "*.www.example.co.uk", "*.example.co.uk", "*.co.uk"}
	if !slices.Equal(got, want) {
		t.Errorf("DomainMatchKeys = %q, want %q", got, want)
	}
	// An exact signal of a parent does not cover its subdomains.
	if slices.ContainsFunc(DomainMatchKeys("www.example.org"), func(k []byte) bool { return string(k) == "\x07example.org" }) {
		t.Error("www.example.org matched by the exact example.org")
	}
}

func TestURLHostDomain(t *testing.T) {
	for u, want := range map[string]string{
		"https://www.example.org/a":           "www.example.org",
		"http://user:pw@example.org:8080/?q":  "example.org",
		"https://xn--bcher-kva.example/":      "xn--bcher-kva.example",
		"https://example.org./":               "example.org",
		"https://[2001:db8::1]/":              "",
		"http://192.0.2.1/":                   "",
		"https://a_b.example/":                "",
		"https://localhost/":                  "",
		"https://example.org?x=http://other/": "example.org",
	} {
		got, ok := URLHostDomain(u)
		if got != want || ok != (want != "") {
			t.Errorf("URLHostDomain(%q) = %q, %v; want %q", u, got, ok, want)
		}
	}
}

// FuzzParseDomain: whatever a user types, ParseDomain refuses it with
// ErrSignal or gives a signal that passes the wire rule, formats back to
// an input that parses to the same signal, and never has an IP address
// for a name.
func FuzzParseDomain(f *testing.F) {
	for _, v := range []string{"example.org", "*.Example.ORG.", "bücher.example", "xn--zz.example", "192.0.2.1", "co.uk", "a_b.c", "[::1]", "*.*.a.b", "ß.de", "\u200d.example"} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, in string) {
		d, err := ParseDomain(in)
		if err != nil {
			if !errors.Is(err, ErrSignal) {
				t.Fatalf("%q: error not ErrSignal: %v", in, err)
			}
			return
		}
		s := &pb.Signal{Value: &pb.Signal_Domain{Domain: d}}
		if err := CheckSignal(s); err != nil {
			t.Fatalf("%q: normal form %q fails the wire rule: %v", in, FormatDomain(d), err)
		}
		if isIP(d.Name) {
			t.Fatalf("%q: an IP address passed: %q", in, d.Name)
		}
		again, err := ParseDomain(FormatDomain(d))
		if err != nil || again.Name != d.Name || again.Subdomains != d.Subdomains {
			t.Fatalf("%q: normal form %q is not stable: %v, %v", in, FormatDomain(d), again, err)
		}
	})
}
