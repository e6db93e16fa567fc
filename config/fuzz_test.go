package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/staydown/staydown/protocol"
)

// encodeNode writes n as config.toml text with every key explicit. Parsing
// it with the same file name gives n back.
func encodeNode(n *Node) string {
	return fmt.Sprintf("name = %s\nrole = %s\nfederation = %s\nroster = %s\nlisten = %s\napi = %s\nstore = %s\nlog_level = %s\nallow_remote_api = %t\n",
		quote(n.Name), quote(string(n.Role)), quote(n.Federation), quote(n.RosterPath), quoteList(n.Listen),
		quote(n.API), quote(n.StorePath), quote(n.LogLevel), n.AllowRemoteAPI) + encodeVideo(n) + encodeAlerts(n.Alerts)
}

// encodeVideo writes the video keys of n, ffmpeg when set.
func encodeVideo(n *Node) string {
	s := fmt.Sprintf("max_video_upload = \"%d\"\n", n.MaxVideoUpload)
	if n.FFmpeg != "" {
		s += "ffmpeg = " + quote(n.FFmpeg) + "\n"
	}
	return s
}

// encodeAlerts writes the [alerts] blocks of a, every key explicit.
func encodeAlerts(a Alerts) string {
	var b strings.Builder
	for _, w := range a.Webhooks {
		fmt.Fprintf(&b, "[[alerts.webhook]]\nurl = %s\nsecret = %s\nformat = %s\n", quote(w.URL), quote(w.Secret), quote(w.Format))
	}
	if e := a.Email; e != nil {
		fmt.Fprintf(&b, "[alerts.email]\nsmtp = %s\nfrom = %s\nto = %s\ntls = %s\n", quote(e.SMTP), quote(e.From), quoteList(e.To), quote(e.TLS))
		if e.Username != "" || e.Password != "" {
			fmt.Fprintf(&b, "username = %s\npassword = %s\n", quote(e.Username), quote(e.Password))
		}
	}
	return b.String()
}

// checkFailure checks the shape every parse error must have: an *Error
// naming the file and unwrapping to one sentinel, on one line.
func checkFailure(t *testing.T, file string, err error) {
	var e *Error
	if !errors.As(err, &e) {
		if errors.Is(err, ErrInvalid) { // an argument, not the file, is bad
			return
		}
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if e.File != file || !strings.HasPrefix(err.Error(), file) {
		t.Fatalf("error %q does not name %s", err, file)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("error %q is not one line", err)
	}
	if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrInvalid) {
		t.Fatalf("error %q wraps neither ErrSyntax nor ErrInvalid", err)
	}
}

func FuzzParseNode(f *testing.F) {
	f.Add([]byte(goodConfig))
	f.Add([]byte(withKey("api", `api = "[::1]:1"`) + "store = \"/abs/s.db\"\nlog_level = \"warn\"\n"))
	f.Add([]byte("name = \"x\"\nrole = \"auditor\"\nfederation = \"f\\u0000\"\nroster = \"r\"\nlisten = []\napi = \":1\"\nallow_remote_api = true\n"))
	f.Add([]byte(withKey("listen", `listen = ["/dns4/example.org/tcp/1", "/ip6/::1/udp/2/quic-v1/webtransport", "/unix/a\"b"]`)))
	f.Add([]byte(withKey("listen", `listen = ["/ip4/1.2.3.4\n/tcp/1"]`))) // a two-line error once
	f.Add([]byte(withKey("name", `name = "NRU"`)))
	f.Add([]byte(withKey("role", `role = 1`)))
	f.Add([]byte("name = \n"))
	f.Add([]byte("[a]\n[[a]]\n"))
	f.Add([]byte("listn = []\n"))
	f.Add([]byte(goodConfig + goodAlerts))
	f.Add([]byte(goodConfig + "[[alerts.webhook]]\nurl = \"http://[::1]:1/\"\nsecret = \"0123456789abcdef\"\n[alerts.email]\nsmtp = \"[::1]:25\"\nfrom = \"a@b\"\nto = [\"c@d\"]\ntls = \"implicit\"\n"))
	f.Add([]byte(goodConfig + "ffmpeg = \"bin/ffmpeg\"\nmax_video_upload = \"3GiB\"\n"))
	f.Add([]byte(goodConfig + "max_video_upload = \"9999999TiB\"\n[policy]\nvpdq_query_match = 50.5\nvpdq_compared_match = 0\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		const file = "d/config.toml"
		n, err := ParseNode(file, data)
		if err != nil {
			checkFailure(t, file, err)
			return
		}
		text := encodeNode(n)
		n2, err := ParseNode(file, []byte(text))
		if err != nil {
			t.Fatalf("accepted config does not re-validate: %v\n%s", err, text)
		}
		if !reflect.DeepEqual(n, n2) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", n, n2)
		}
	})
}

func FuzzParseRoster(f *testing.F) {
	var ms []protocol.Member
	var text string
	for i, name := range []string{"nru-demo", "acme", "watch.org"} {
		m := testMember(f, i, name, []protocol.Role{protocol.RoleReferral, protocol.RolePlatform, protocol.RoleAuditor}[i])
		ms = append(ms, m)
		text += MemberBlock(m) + "\n"
	}
	f.Add([]byte(text), "demo")
	f.Add([]byte("# roster\n"+MemberBlock(ms[0])), "staydown")
	f.Add([]byte(`member = [{name = "a", role = "platform", author_key = "`+ms[0].AuthorKey.String()+`", peer_id = "`+ms[0].PeerID+`"}]`), "f")
	f.Add([]byte(text+MemberBlock(ms[1])), "demo")
	f.Add([]byte(strings.Replace(text, ms[0].AuthorKey.String(), "abc", 1)), "demo")
	f.Add([]byte(strings.Replace(text, "/ip4/127.0.0.1/tcp/4001", "/ip4/1.2.3.4/tcp/1/p2p/"+ms[0].PeerID, 1)), "demo")
	f.Add([]byte(strings.Replace(text, "[[member]]", "[[membr]]", 1)), "demo")
	f.Add([]byte("[[member]]\nname = \"a\n"), "demo")
	f.Add([]byte(""), "")
	f.Add([]byte("[voting]\nroles = [\"referral\"]\nthreshold_percent = 66\n\n"+text), "demo")
	f.Add([]byte("[voting]\nthreshold_percent = 100\n\n"+text), "demo")
	f.Fuzz(func(t *testing.T, data []byte, federation string) {
		const file = "fed/roster.toml"
		r, err := ParseRoster(file, data, federation)
		if err != nil {
			checkFailure(t, file, err)
			return
		}
		if r.Federation != federation || len(r.Members) == 0 {
			t.Fatalf("accepted roster %+v for %q", r, federation)
		}
		var b strings.Builder
		for _, m := range r.Members {
			if err := CheckName(m.Name); err != nil {
				t.Fatalf("accepted member name %q: %v", m.Name, err)
			}
			if _, err := protocol.ParseRole(string(m.Role)); err != nil {
				t.Fatalf("accepted role %q", m.Role)
			}
			b.WriteString(MemberBlock(m))
		}
		r2, err := ParseRoster(file, []byte(b.String()), federation)
		if err != nil {
			t.Fatalf("accepted roster does not re-validate: %v\n%s", err, b.String())
		}
		if !reflect.DeepEqual(r.Members, r2.Members) {
			t.Fatalf("round trip changed the roster:\n%+v\n%+v", r.Members, r2.Members)
		}
	})
}

// checkKeyFileError checks that err wraps ErrKeyFile and is one line.
func checkKeyFileError(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrKeyFile) {
		t.Fatalf("%s error %v is not ErrKeyFile", what, err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("%s error %q is not one line", what, err)
	}
}

// FuzzKeyFiles feeds the three key file decoders arbitrary bytes.
func FuzzKeyFiles(f *testing.F) {
	author, node := testKeys(f, 0)
	nodeBytes, err := crypto.MarshalPrivateKey(node)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(hex.EncodeToString(author.Seed()) + "\n"))
	f.Add(nodeBytes)
	f.Add([]byte(strings.Repeat("ab", 32)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		if k, err := parseAuthorKey("author.key", data); err == nil {
			k2, err := parseAuthorKey("author.key", []byte(hex.EncodeToString(k.Seed())+"\n"))
			if err != nil || !k2.Equal(k) {
				t.Fatalf("author key round trip: %v", err)
			}
		} else {
			checkKeyFileError(t, "author key", err)
		}
		if k, err := parseNodeKey("node.key", data); err == nil {
			b, err := crypto.MarshalPrivateKey(k)
			if err != nil {
				t.Fatal(err)
			}
			if k2, err := parseNodeKey("node.key", b); err != nil || !k2.Equals(k) {
				t.Fatalf("node key round trip: %v", err)
			}
		} else {
			checkKeyFileError(t, "node key", err)
		}
		if tok, err := parseToken("api.token", data); err == nil {
			if len(tok) != 64 {
				t.Fatalf("token %q", tok)
			}
		} else {
			checkKeyFileError(t, "token", err)
		}
	})
}
