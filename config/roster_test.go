package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/staydown/staydown/protocol"
)

// testRoster returns three members and the roster text of their blocks.
func testRoster(t *testing.T) ([]protocol.Member, string) {
	t.Helper()
	ms := []protocol.Member{
		testMember(t, 0, "nru-demo", protocol.RoleReferral),
		testMember(t, 1, "acme", protocol.RolePlatform),
		testMember(t, 2, "watch.org", protocol.RoleAuditor),
	}
	text := "# Roster of the demo federation.\n"
	for _, m := range ms {
		text += "\n" + MemberBlock(m)
	}
	return ms, text
}

// setMemberKey rewrites key k of member block i (0-based) in roster text
// to line, or removes it when line is "".
func setMemberKey(text string, i int, k, line string) string {
	blocks := strings.Split(text, "[[member]]\n")
	var out []string
	for _, l := range strings.Split(blocks[i+1], "\n") {
		if strings.HasPrefix(l, k+" = ") {
			if line != "" {
				out = append(out, line)
			}
			continue
		}
		out = append(out, l)
	}
	if !strings.Contains(blocks[i+1], k+" = ") {
		out = append([]string{line}, out...)
	}
	blocks[i+1] = strings.Join(out, "\n")
	return strings.Join(blocks, "[[member]]\n")
}

func TestMemberBlock(t *testing.T) {
	m := testMember(t, 0, "nru-demo", protocol.RoleReferral)
	want := `[[member]]
name = "nru-demo"
role = "referral"
author_key = "` + m.AuthorKey.String() + `"
peer_id = "` + m.PeerID + `"
addrs = ["/ip4/127.0.0.1/tcp/4001"]
`
	if got := MemberBlock(m); got != want {
		t.Errorf("MemberBlock:\n%s\nwant:\n%s", got, want)
	}
	m.Addrs = nil
	if got := MemberBlock(m); !strings.HasSuffix(got, "addrs = []\n") {
		t.Errorf("MemberBlock with no addrs:\n%s", got)
	}
}

func TestParseRosterGood(t *testing.T) {
	ms, text := testRoster(t)
	cid := peer.ToCid(peer.ID(mustDecode(t, ms[1].PeerID))).String()
	noAddrs := ms[2]
	noAddrs.Addrs = nil
	tests := []struct {
		name string
		text string
		want []protocol.Member
	}{
		{"blocks", text, ms},
		{"upper-case author key", setMemberKey(text, 0, "author_key", `author_key = "`+strings.ToUpper(ms[0].AuthorKey.String())+`"`), ms},
		{"peer ID as CID is made canonical", setMemberKey(text, 1, "peer_id", `peer_id = "`+cid+`"`), ms},
		{"addrs missing", setMemberKey(text, 2, "addrs", ""), []protocol.Member{ms[0], ms[1], noAddrs}},
		{"addrs empty", setMemberKey(text, 2, "addrs", "addrs = []"), []protocol.Member{ms[0], ms[1], noAddrs}},
		{"inline array", `member = [
  {name = "nru-demo", role = "referral", author_key = "` + ms[0].AuthorKey.String() + `", peer_id = "` + ms[0].PeerID + `", addrs = ["/ip4/127.0.0.1/tcp/4001"]},
]`, ms[:1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRoster("roster.toml", []byte(tt.text), "demo")
			if err != nil {
				t.Fatal(err)
			}
			if r.Federation != "demo" || !reflect.DeepEqual(r.Members, tt.want) {
				t.Errorf("got %q %+v\nwant %+v", r.Federation, r.Members, tt.want)
			}
			for _, m := range tt.want {
				if got, ok := r.ByName(m.Name); !ok || !reflect.DeepEqual(got, m) {
					t.Errorf("ByName(%q) = %+v, %v", m.Name, got, ok)
				}
				if got, ok := r.ByKey(m.AuthorKey); !ok || got.Name != m.Name {
					t.Errorf("ByKey(%s) = %+v, %v", m.AuthorKey, got, ok)
				}
			}
		})
	}
}

func mustDecode(t *testing.T, s string) peer.ID {
	t.Helper()
	id, err := peer.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestParseRosterErrors(t *testing.T) {
	ms, text := testRoster(t)
	pub, err := crypto.UnmarshalEd25519PublicKey(ms[1].AuthorKey[:])
	if err != nil {
		t.Fatal(err)
	}
	authorPeer, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	const file = "fed/roster.toml"
	tests := []struct {
		name     string
		text     string
		sentinel error
		want     []string // besides the file name
	}{
		{"syntax", "[[member]]\nname = \"a\nrole = \"x\"\n", ErrSyntax, []string{"roster.toml:2:", "not valid TOML"}},
		{"syntax table and array", "[member]\n[[member]]\n", ErrSyntax, []string{"roster.toml:2:", "not valid TOML"}},
		{"empty", "", ErrInvalid, []string{"no members", "append the [[member]] block that `staydown init` printed"}},
		{"only comments", "# nothing yet\n", ErrInvalid, []string{"no members"}},
		{"empty inline", "member = []\n", ErrInvalid, []string{"no members"}},
		{"unknown top key", "federation = \"x\"\n" + text, ErrInvalid, []string{`unknown key "federation"`}},
		{"unknown top typo", strings.ReplaceAll(text, "[[member]]", "[[members]]"), ErrInvalid, []string{`unknown key "members": did you mean member?`}},
		{"member is string", `member = "x"`, ErrInvalid, []string{`member: want [[member]] blocks, got a string`}},
		{"member is table", "[member]\nname = \"x\"\n", ErrInvalid, []string{`member: want [[member]] blocks, got a table`}},
		{"member element not table", `member = [1]`, ErrInvalid, []string{`member 1: want a table`, "got the integer 1"}},
		{"unknown member key", setMemberKey(text, 2, "authorkey", `authorkey = "x"`), ErrInvalid, []string{`member 3 ("watch.org"): unknown key "authorkey": did you mean author_key?`}},
		{"member subtable", text + "[member.extra]\nx = 1\n", ErrInvalid, []string{`member 3 ("watch.org"): unknown key "extra"`}},
		{"missing name", setMemberKey(text, 1, "name", ""), ErrInvalid, []string{"member 2: name: missing"}},
		{"missing role", setMemberKey(text, 1, "role", ""), ErrInvalid, []string{`member 2 ("acme"): role: missing`}},
		{"missing author_key", setMemberKey(text, 1, "author_key", ""), ErrInvalid, []string{`member 2 ("acme"): author_key: missing`, "staydown init"}},
		{"missing peer_id", setMemberKey(text, 1, "peer_id", ""), ErrInvalid, []string{`member 2 ("acme"): peer_id: missing`}},
		{"name type", setMemberKey(text, 1, "name", "name = true"), ErrInvalid, []string{"member 2: name: want a string in quotes, got the boolean true"}},
		{"name charset", setMemberKey(text, 1, "name", `name = "Acme Corp"`), ErrInvalid, []string{`member 2 ("Acme Corp"): name: "Acme Corp" has 'A'`}},
		{"name long", setMemberKey(text, 1, "name", `name = "`+strings.Repeat("a", 65)+`"`), ErrInvalid, []string{"name: want 1 to 64 characters, got 65"}},
		{"bad role", setMemberKey(text, 1, "role", `role = "isp"`), ErrInvalid, []string{`member 2 ("acme"): role: "isp" is not a role`}},
		{"author key short", setMemberKey(text, 2, "author_key", `author_key = "0123456789ab"`), ErrInvalid, []string{`member 3 ("watch.org"): author_key: want 64 hex characters, got 12`}},
		{"author key not hex", setMemberKey(text, 2, "author_key", `author_key = "`+strings.Repeat("ab", 20)+"g"+strings.Repeat("a", 23)+`"`), ErrInvalid, []string{`member 3 ("watch.org"): author_key: want 64 hex characters (0-9, a-f), got "g" at character 41`}},
		{"author key type", setMemberKey(text, 2, "author_key", `author_key = 12`), ErrInvalid, []string{`author_key: want a string in quotes, got the integer 12`}},
		{"peer id garbage", setMemberKey(text, 0, "peer_id", `peer_id = "12D3KooWnope"`), ErrInvalid, []string{`member 1 ("nru-demo"): peer_id: "12D3KooWnope" is not the libp2p peer ID of an ed25519 key`, "copy peer_id from the block"}},
		{"peer id empty", setMemberKey(text, 0, "peer_id", `peer_id = ""`), ErrInvalid, []string{`peer_id: "" is not the libp2p peer ID of an ed25519 key`}},
		{"peer id not ed25519", setMemberKey(text, 0, "peer_id", `peer_id = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"`), ErrInvalid, []string{`peer_id: "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N" is not the libp2p peer ID of an ed25519 key`}},
		{"peer id of author key", setMemberKey(text, 1, "peer_id", `peer_id = "`+authorPeer.String()+`"`), ErrInvalid, []string{`member 2 ("acme"): peer_id:`, "is the peer ID of the author key", "separate key"}},
		{"addrs type", setMemberKey(text, 0, "addrs", `addrs = "/ip4/127.0.0.1/tcp/4001"`), ErrInvalid, []string{`member 1 ("nru-demo"): addrs: want an array of strings`}},
		{"addrs bad", setMemberKey(text, 0, "addrs", `addrs = ["/ip4/127.0.0.1/tcp/4001", "/dns4/"]`), ErrInvalid, []string{`member 1 ("nru-demo"): addrs: address 2: "/dns4/" is not a multiaddr`}},
		{"addrs p2p", setMemberKey(text, 0, "addrs", `addrs = ["/ip4/127.0.0.1/tcp/4001/p2p/`+ms[0].PeerID+`"]`), ErrInvalid, []string{`addrs: address 1:`, "has a /p2p/ part"}},
		{"duplicate name", setMemberKey(text, 2, "name", `name = "acme"`), ErrInvalid, []string{`member 2 and member 3 are both named "acme"`, "appended twice?"}},
		{"duplicate block", text + "\n" + MemberBlock(ms[0]), ErrInvalid, []string{`member 1 and member 4 are both named "nru-demo"`}},
		{"duplicate author key", setMemberKey(text, 2, "author_key", `author_key = "`+ms[0].AuthorKey.String()+`"`), ErrInvalid, []string{`members "nru-demo" and "watch.org" have the same author key`}},
		{"duplicate peer id", setMemberKey(text, 2, "peer_id", `peer_id = "`+ms[1].PeerID+`"`), ErrInvalid, []string{`members "acme" and "watch.org" have the same peer ID`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRoster(file, []byte(tt.text), "demo")
			if err == nil {
				t.Fatalf("no error; got %+v\n%s", r.Members, tt.text)
			}
			wantError(t, err, tt.sentinel, append([]string{file + ":"}, tt.want...)...)
		})
	}
}

func TestParseRosterFederation(t *testing.T) {
	_, text := testRoster(t)
	for _, f := range []string{"", strings.Repeat("f", 65), "a\nb"} {
		_, err := ParseRoster("roster.toml", []byte(text), f)
		wantError(t, err, ErrInvalid, "roster.toml", "federation")
	}
}

func TestLoadRoster(t *testing.T) {
	ms, text := testRoster(t)
	path := filepath.Join(t.TempDir(), "roster.toml")
	_, err := LoadRoster(path, "demo")
	wantError(t, err, ErrNotFound, path, "does not exist", "append the [[member]] block")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%v does not wrap fs.ErrNotExist", err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := LoadRoster(path, "demo")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.Members, ms) {
		t.Errorf("LoadRoster: got %+v", r.Members)
	}
}

func TestCheckRosterHasSelf(t *testing.T) {
	ms, text := testRoster(t)
	r, err := ParseRoster("roster.toml", []byte(text), "demo")
	if err != nil {
		t.Fatal(err)
	}
	dir, rosterPath := filepath.FromSlash("/d"), filepath.FromSlash("/fed/roster.toml")
	cfg := filepath.Join(dir, ConfigFile)
	n := &Node{Dir: dir, Name: "acme", Role: protocol.RolePlatform, Federation: "demo", RosterPath: rosterPath}
	id := mustDecode(t, ms[1].PeerID)
	if err := CheckRosterHasSelf(n, r, ms[1].AuthorKey, id); err != nil {
		t.Fatalf("good node: %v", err)
	}
	other := *n
	other.Name = "acme2"
	otherFed := *n
	otherFed.Federation = "other"
	auditor := *n
	auditor.Role = protocol.RoleAuditor
	tests := []struct {
		name string
		n    *Node
		key  protocol.AuthorKey
		id   peer.ID
		want []string
	}{
		{"no such name", &Node{Name: "ghost", Role: protocol.RolePlatform, Federation: "demo", Dir: dir, RosterPath: rosterPath}, protocol.AuthorKey{1}, id,
			[]string{rosterPath + `: has no member named "ghost" (name in ` + cfg + `)`, "append the [[member]] block `staydown init` printed"}},
		{"renamed", &other, ms[1].AuthorKey, id,
			[]string{`has no member named "acme2"`, `but member "acme" has this node's author key`}},
		{"federation", &otherFed, ms[1].AuthorKey, id, []string{`loaded for federation "demo"`, `federation = "other"`}},
		{"role", &auditor, ms[1].AuthorKey, id, []string{`member 2 ("acme"): role: is "platform", but ` + cfg + ` says role = "auditor"`}},
		{"author key", n, ms[0].AuthorKey, id, []string{`member 2 ("acme"): author_key: is ` + ms[1].AuthorKey.String(), "author.key holds the key " + ms[0].AuthorKey.String(), "replace this member's block"}},
		{"peer id", n, ms[1].AuthorKey, mustDecode(t, ms[0].PeerID), []string{`member 2 ("acme"): peer_id: is "` + ms[1].PeerID + `"`, "node.key has the peer ID " + ms[0].PeerID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, CheckRosterHasSelf(tt.n, r, tt.key, tt.id), ErrNotListed, tt.want...)
		})
	}
}

// A node's block alone parses as the member to admit, whatever its role;
// anything but exactly one valid block is refused with the key at fault.
func TestParseMemberBlock(t *testing.T) {
	ms, text := testRoster(t)
	aud := MemberBlock(ms[2])
	m, err := ParseMemberBlock("block.toml", []byte("# from init\n"+aud))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, ms[2]) {
		t.Errorf("parsed %+v, want %+v", m, ms[2])
	}
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"three blocks", text, []string{"block.toml", "want exactly one [[member]] block", "got 3"}},
		{"empty", "# nothing\n", []string{"want exactly one [[member]] block", "got 0"}},
		{"voting table", aud + "[voting]\nthreshold_percent = 60\n", []string{`unknown key "voting"`}},
		{"bad key", setMemberKey(aud, 0, "author_key", `author_key = "abc"`), []string{`member 1 ("watch.org"): author_key`, "want 64 hex characters, got 3"}},
		{"peer id of the author key", setMemberKey(aud, 0, "peer_id", `peer_id = "`+authorPeerID(t, 2)+`"`), []string{"peer_id", "is the peer ID of the author key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseMemberBlock("block.toml", []byte(tc.text))
			wantError(t, err, ErrInvalid, tc.want...)
		})
	}
}

// authorPeerID is the peer ID of member i's author key (testKeys): what
// a block must never give as its peer ID.
func authorPeerID(t *testing.T, i int) string {
	t.Helper()
	author, _ := testKeys(t, i)
	pk, err := crypto.UnmarshalEd25519PrivateKey(author)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

func TestCheckMember(t *testing.T) {
	good := testMember(t, 1, "acme", protocol.RolePlatform)
	good.Addrs = []string{"/ip4/127.0.0.1/tcp/4001", "/dns4/node.example/tcp/4001"}
	if m, err := CheckMember(good); err != nil || !reflect.DeepEqual(m, good) {
		t.Fatalf("CheckMember(%+v) = %+v, %v", good, m, err)
	}
	for _, tc := range []struct {
		name string
		edit func(*protocol.Member)
		want string
	}{
		{"bad name", func(m *protocol.Member) { m.Name = "Acme" }, `name: "Acme" has 'A' at byte 1`},
		{"bad role", func(m *protocol.Member) { m.Role = "admin" }, `role: "admin" is not a role`},
		{"zero key", func(m *protocol.Member) { m.AuthorKey = protocol.AuthorKey{} }, "author_key: all zeros"},
		{"bad peer id", func(m *protocol.Member) { m.PeerID = "12D3KooWnope" }, `peer_id: "12D3KooWnope" is not the libp2p peer ID of an ed25519 key`},
		{"author's peer id", func(m *protocol.Member) { m.PeerID = authorPeerID(t, 1) }, "peer_id: " + `"` + authorPeerID(t, 1) + `" is the peer ID of the author key`},
		{"bad addr", func(m *protocol.Member) { m.Addrs = []string{"127.0.0.1:4001"} }, `addrs: address 1: "127.0.0.1:4001" is not a multiaddr`},
		{"addr with peer", func(m *protocol.Member) { m.Addrs = []string{"/ip4/127.0.0.1/tcp/1/p2p/" + good.PeerID} }, "addrs: address 1: \"/ip4/127.0.0.1/tcp/1/p2p/" + good.PeerID + "\" has a /p2p/ part"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := good
			m.Addrs = slices.Clone(good.Addrs)
			tc.edit(&m)
			_, err := CheckMember(m)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}
