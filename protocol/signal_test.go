package protocol

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/protocol/pb"
)

const (
	sha256Empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	md5Empty    = "d41d8cd98f00b204e9800998ecf8427e"
	pdqHex      = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
)

func TestParseSignal(t *testing.T) {
	good := []struct {
		typ, value string
		wire       *pb.Signal
		format     string // FormatSignal of the result
	}{
		{"sha256", sha256Empty, &pb.Signal{Value: &pb.Signal_Multihash{Multihash: mustHex("1220" + sha256Empty)}}, "sha256:" + sha256Empty},
		{"sha256", strings.ToUpper(sha256Empty), &pb.Signal{Value: &pb.Signal_Multihash{Multihash: mustHex("1220" + sha256Empty)}}, "sha256:" + sha256Empty},
		// md5's multicodec 0xd5 is a two-byte varint: d5 01, then length 0x10.
		{"md5", md5Empty, &pb.Signal{Value: &pb.Signal_Multihash{Multihash: mustHex("d50110" + md5Empty)}}, "md5:" + md5Empty},
		{"md5", strings.ToUpper(md5Empty), &pb.Signal{Value: &pb.Signal_Multihash{Multihash: mustHex("d50110" + md5Empty)}}, "md5:" + md5Empty},
		{"pdq", pdqHex, &pb.Signal{Value: &pb.Signal_Pdq{Pdq: mustHex(pdqHex)}}, "pdq:" + pdqHex},
		{"pdq", strings.ToUpper(pdqHex), &pb.Signal{Value: &pb.Signal_Pdq{Pdq: mustHex(pdqHex)}}, "pdq:" + pdqHex},
		{"url", "HTTPS://Example.COM:443/A?b=C#frag", &pb.Signal{Value: &pb.Signal_Url{Url: "https://example.com/A?b=C"}}, "url:https://example.com/A?b=C"},
		{"account", "Example.COM:SomeUser", &pb.Signal{Value: &pb.Signal_Account{Account: &pb.Account{Service: "example.com", Id: "SomeUser"}}}, "account:example.com:SomeUser"},
		{"account", " example.com : user:with:colons ", &pb.Signal{Value: &pb.Signal_Account{Account: &pb.Account{Service: "example.com", Id: "user:with:colons"}}}, "account:example.com:user:with:colons"},
	}
	for _, c := range good {
		t.Run(c.typ+" "+c.value, func(t *testing.T) {
			s, err := ParseSignal(c.typ, c.value)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(s, c.wire) {
				t.Errorf("got %s, want %s", describe(s), describe(c.wire))
			}
			if err := CheckSignal(s); err != nil {
				t.Errorf("CheckSignal: %v", err)
			}
			if string(TypeOf(s)) != c.typ {
				t.Errorf("TypeOf = %q", TypeOf(s))
			}
			if got := FormatSignal(s); got != c.format {
				t.Errorf("FormatSignal = %q, want %q", got, c.format)
			}
		})
	}

	bad := []struct {
		typ, value string
		mention    []string
	}{
		{"sha256", sha256Empty[:62], []string{"sha256", "want 64 hex characters, got 62"}},
		{"sha256", sha256Empty + "00", []string{"want 64 hex characters, got 66"}},
		{"sha256", "", []string{"want 64 hex characters, got 0"}},
		{"sha256", "1220" + sha256Empty, []string{"want 64 hex characters, got 68"}},
		{"sha256", "zz" + sha256Empty[2:], []string{"sha256", "not hex"}},
		{"sha256", " " + sha256Empty[1:], []string{"not hex"}},
		{"md5", md5Empty + "0", []string{"md5", "want 32 hex characters, got 33"}},
		{"md5", sha256Empty, []string{"md5", "want 32 hex characters, got 64"}},
		{"md5", "g" + md5Empty[1:], []string{"md5", "not hex"}},
		{"pdq", pdqHex[:63], []string{"pdq", "want 64 hex characters, got 63"}},
		{"pdq", "x" + pdqHex[1:], []string{"pdq", "not hex"}},
		{"url", "ftp://example.com/", []string{"url", "http or https"}},
		{"url", "/relative/path", []string{"url", "http or https"}},
		{"url", "example.com/path", []string{"url", "http or https"}},
		{"url", "https:///path", []string{"url", "no host"}},
		{"url", "https://example.com/" + strings.Repeat("a", MaxURLLen), []string{"url", "limit 2048"}},
		{"url", "http://[::1", []string{"url"}},
		// Found by FuzzNormalizeURL/FuzzParseSignal: accepted, then
		// impossible to encode (proto3 strings are UTF-8).
		{"url", "https://example.com/?q=\xff", []string{"url", "not valid UTF-8"}},
		{"account", "example.com:\xff", []string{"account", "not valid UTF-8"}},
		{"account", "no-colon", []string{"account", "SERVICE:ID"}},
		{"account", ":user", []string{"account", "service"}},
		{"account", "example.com:", []string{"account", "id"}},
		{"account", "exa mple.com:user", []string{"account", "service"}},
		{"account", "example.com:" + strings.Repeat("u", MaxAccountLen+1), []string{"account", "id"}},
		{"SHA256", sha256Empty, []string{"unknown signal type", `"SHA256"`, "sha256, md5, pdq, url, account, vpdq"}},
		{"tmk", "00", []string{"unknown signal type", `"tmk"`, "sha256, md5, pdq, url, account, vpdq"}},
		{"", "00", []string{"unknown signal type"}},
	}
	for _, c := range bad {
		t.Run(fmt.Sprintf("bad %s %.40q", c.typ, c.value), func(t *testing.T) {
			s, err := ParseSignal(c.typ, c.value)
			if err == nil {
				t.Fatalf("accepted: %s", describe(s))
			}
			checkErr(t, err, ErrSignal, c.mention...)
		})
	}
}

func TestNormalizeURL(t *testing.T) {
	cases := []struct{ in, want string }{
		{"http://example.com", "http://example.com/"},
		{"HTTP://EXAMPLE.COM/Path", "http://example.com/Path"},
		{"https://Example.Com/A/B?Q=R", "https://example.com/A/B?Q=R"},
		{"http://example.com:80/a", "http://example.com/a"},
		{"https://example.com:443/a", "https://example.com/a"},
		{"http://example.com:443/a", "http://example.com:443/a"},
		{"https://example.com:80/a", "https://example.com:80/a"},
		{"https://example.com:8443/a", "https://example.com:8443/a"},
		{"https://example.com:65535/a", "https://example.com:65535/a"},
		{"https://example.com:1/a", "https://example.com:1/a"},
		{"https://example.com:080/a", "https://example.com:080/a"},
		{"https://example.com:/a", "https://example.com/a"},
		{"https://example.com/a#section", "https://example.com/a"},
		{"https://example.com#section", "https://example.com/"},
		{"https://example.com?q=1", "https://example.com/?q=1"},
		{"https://example.com/?", "https://example.com/?"},
		{"https://example.com/a?b=1&a=2", "https://example.com/a?b=1&a=2"},
		{"https://example.com/a%2Fb", "https://example.com/a%2Fb"},
		{"https://example.com/a b", "https://example.com/a%20b"},
		{"  https://example.com/a  ", "https://example.com/a"},
		{"http://[2001:DB8::1]/x", "http://[2001:db8::1]/x"},
		{"http://[2001:db8::1]:80/x", "http://[2001:db8::1]/x"},
		{"http://[2001:db8::1]:8080/x", "http://[2001:db8::1]:8080/x"},
		{"https://192.0.2.1:443/", "https://192.0.2.1/"},
		{"https://user@Example.com/", "https://user@example.com/"},
		{"https://b\u00fccher.example/", "https://xn--bcher-kva.example/"},
		// Found by FuzzNormalizeURL: the query's trailing space was kept,
		// and a second pass trimmed it.
		{"HTTP://0? #", "http://0/?"},
		{"http://h/?a \u00a0#x", "http://h/?a"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := NormalizeURL(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
			if again, err := NormalizeURL(got); err != nil || again != got {
				t.Errorf("not idempotent: %q, %v", again, err)
			}
			s := &pb.Signal{Value: &pb.Signal_Url{Url: got}}
			if err := CheckSignal(s); err != nil {
				t.Errorf("CheckSignal: %v", err)
			}
		})
	}
	for _, in := range []string{
		"", "example.com", "//example.com/a", "/a", "mailto:x@example.com", "javascript:alert(1)",
		"file:///etc/passwd", "https:", "https://", "http://:80/", "https://example.com/" + strings.Repeat("a", MaxURLLen),
		// Each character becomes three when escaped: the normal form is too long.
		"https://example.com/" + strings.Repeat(" ", 1000) + "x",
		// Found by FuzzNormalizeURL: normalised to "http://:0/", which has
		// no host.
		"http://]:0", "http://a]b/",
		// Ports out of range (#12 item 9).
		"http://example.com:99999/", "http://example.com:65536/", "http://example.com:0/",
		"http://[2001:db8::1]:70000/", "http://example.com:" + strings.Repeat("9", 30) + "/",
	} {
		t.Run(fmt.Sprintf("bad %.40q", in), func(t *testing.T) {
			got, err := NormalizeURL(in)
			if err == nil {
				t.Fatalf("accepted as %q", got)
			}
			checkErr(t, err, ErrSignal, "url")
		})
	}
}

func TestSignalKey(t *testing.T) {
	digest := mustHex(sha256Empty)
	cases := []struct {
		typ, value string
		key        []byte
	}{
		{"sha256", sha256Empty, append([]byte{1}, digest...)},
		{"md5", md5Empty, append([]byte{2}, mustHex(md5Empty)...)},
		{"pdq", sha256Empty, append([]byte{3}, digest...)},
		{"url", "https://example.com/a", append([]byte{4}, "https://example.com/a"...)},
		{"account", "example.com:user", append([]byte{5}, "example.com\x00user"...)},
	}
	seen := map[string]string{}
	for _, c := range cases {
		s := mustSignal(c.typ, c.value)
		k := SignalKey(s)
		if !bytes.Equal(k, c.key) {
			t.Errorf("%s: key %x, want %x", c.typ, k, c.key)
		}
		if other, dup := seen[string(k)]; dup {
			t.Errorf("%s and %s have the same key", c.typ, other)
		}
		seen[string(k)] = c.typ
	}
	// Equal signals, however written, have equal keys.
	for _, p := range [][4]string{
		{"sha256", sha256Empty, "sha256", strings.ToUpper(sha256Empty)},
		{"md5", md5Empty, "md5", strings.ToUpper(md5Empty)},
		{"pdq", pdqHex, "pdq", strings.ToUpper(pdqHex)},
		{"url", "HTTPS://EXAMPLE.COM:443#x", "url", "https://example.com/"},
		{"account", "EXAMPLE.com:u", "account", "example.com:u"},
	} {
		a, b := SignalKey(mustSignal(p[0], p[1])), SignalKey(mustSignal(p[2], p[3]))
		if !bytes.Equal(a, b) {
			t.Errorf("%s %q and %q: keys %x and %x", p[0], p[1], p[3], a, b)
		}
	}
	// Account keys cannot collide across the service/id boundary.
	a := SignalKey(mustSignal("account", "a.b:c"))
	b := SignalKey(mustSignal("account", "a:b.c"))
	if _, err := ParseSignal("account", "a:b.c"); err != nil || bytes.Equal(a, b) {
		t.Errorf("account keys collide: %x %x", a, b)
	}
}

func TestFormatSignalRoundTrip(t *testing.T) {
	for _, s := range []string{
		"sha256:" + sha256Empty, "md5:" + md5Empty, "pdq:" + pdqHex,
		"url:https://example.com/a?b#c", "url:HTTP://EXAMPLE.com:80", "account:Example.com:User Name",
	} {
		typ, val, _ := strings.Cut(s, ":")
		first := mustSignal(typ, val)
		f := FormatSignal(first)
		typ2, val2, _ := strings.Cut(f, ":")
		second, err := ParseSignal(typ2, val2)
		if err != nil {
			t.Errorf("%s: formatted as %q, which does not parse: %v", s, f, err)
			continue
		}
		if !proto.Equal(first, second) || FormatSignal(second) != f {
			t.Errorf("%s: round trip changed it: %q -> %q", s, f, FormatSignal(second))
		}
		st, sv := SignalValue(first)
		if string(st) != typ2 || sv != val2 {
			t.Errorf("SignalValue = %q, %q", st, sv)
		}
	}
}

func TestSignalTypes(t *testing.T) {
	var got []string
	for _, st := range SignalTypes {
		got = append(got, string(st))
	}
	if strings.Join(got, ",") != "sha256,md5,pdq,url,account,vpdq,domain" {
		t.Errorf("SignalTypes = %v", got)
	}
	// The index tags are the 1-based positions in SignalTypes.
	for i, st := range SignalTypes {
		var v string
		switch st {
		case SignalSHA256, SignalPDQ:
			v = sha256Empty
		case SignalMD5:
			v = md5Empty
		case SignalURL:
			v = "https://example.com/"
		case SignalAccount:
			v = "example.com:u"
		case SignalVPDQ:
			v = `["` + strings.Repeat("a5", 32) + `,100,0.0"]`
		case SignalDomain:
			v = "example.org"
		}
		if k := SignalKey(mustSignal(string(st), v)); k[0] != byte(i+1) {
			t.Errorf("%s: tag %d, want %d", st, k[0], i+1)
		}
	}
	if TypeOf(&pb.Signal{}) != "" || SignalKey(&pb.Signal{}) != nil {
		t.Error("empty signal has a type or key")
	}
}
