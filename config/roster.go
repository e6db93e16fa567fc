package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/membership"
)

// memberKeys are the keys a [[member]] block may hold.
var memberKeys = []string{"name", "role", "author_key", "peer_id", "addrs"}

// appendHint is the fix for a roster that lacks members.
const appendHint = "append the [[member]] block that `staydown init` printed for each node of the federation"

// LoadRoster reads and validates the roster file at path for federation.
func LoadRoster(path, federation string) (*protocol.Roster, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, readError(path, err, "create it: "+appendHint)
	}
	return ParseRoster(path, data, federation)
}

// ParseRoster parses and validates roster text: one or more [[member]]
// blocks and nothing else. filename is used only in messages. Peer IDs are
// returned in their canonical (base58) form and addresses in canonical
// multiaddr form.
func ParseRoster(filename string, data []byte, federation string) (*protocol.Roster, error) {
	g, err := ParseGenesis(filename, data, federation)
	if err != nil {
		return nil, err
	}
	return g.Roster, nil
}

// LoadGenesis reads the genesis file at path (SPEC 12.1: the roster's
// [[member]] blocks and an optional [voting] table) for federation.
func LoadGenesis(path, federation string) (*membership.Genesis, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, readError(path, err, "create it: "+appendHint)
	}
	return ParseGenesis(path, data, federation)
}

// votingKeys are the keys of the [voting] table.
var votingKeys = []string{"roles", "threshold_percent"}

// ParseGenesis parses and validates a genesis file (SPEC 12.1): one or
// more [[member]] blocks and an optional [voting] table (roles, and
// threshold_percent from 50 to 99; the default is more than half of the
// referral units and platforms).
func ParseGenesis(filename string, data []byte, federation string) (*membership.Genesis, error) {
	r, m, err := parseRoster(filename, data, federation)
	if err != nil {
		return nil, err
	}
	rule := membership.DefaultRule()
	if v, ok := m["voting"]; ok {
		vm, isTable := v.(map[string]any)
		if !isTable {
			return nil, invalid(filename, "voting", "want a table ([voting] and keys below it), got %s", typeName(v))
		}
		t := table{file: filename, path: "voting", m: vm}
		if err := t.checkKeys(votingKeys); err != nil {
			return nil, err
		}
		if roles, ok, err := t.strs("roles", `roles = ["referral", "platform"], the roles that vote on amendments`); err != nil {
			return nil, err
		} else if ok {
			rule.Roles = nil
			for _, s := range roles {
				role, err := checkRole(s)
				if err != nil {
					return nil, invalid(filename, "voting.roles", "%v", err)
				}
				if slices.Contains(rule.Roles, role) {
					return nil, invalid(filename, "voting.roles", "%s is listed twice", short(s))
				}
				rule.Roles = append(rule.Roles, role)
			}
			if len(rule.Roles) == 0 {
				return nil, invalid(filename, "voting.roles", "empty: name at least one role that votes")
			}
		}
		if v, ok := vm["threshold_percent"]; ok {
			n, isInt := v.(int64)
			if !isInt || n < protocol.MinThreshold || n > protocol.MaxThreshold {
				return nil, invalid(filename, "voting.threshold_percent", "want an integer from %d to %d (an amendment passes with more than this share of the voters), got %v", protocol.MinThreshold, protocol.MaxThreshold, v)
			}
			rule.Threshold = uint32(n)
		}
	}
	g, err := membership.NewGenesis(r, rule)
	if err != nil {
		return nil, &Error{File: filename, Msg: oneLine(err.Error()), Err: ErrInvalid, Cause: err}
	}
	return g, nil
}

func parseRoster(filename string, data []byte, federation string) (*protocol.Roster, map[string]any, error) {
	if err := checkFederation(federation); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: federation: %v", ErrInvalid, display(filename), err)
	}
	m, err := decode(filename, data)
	if err != nil {
		return nil, nil, err
	}
	top := table{file: filename, m: m}
	if err := top.checkKeys([]string{"member", "voting"}); err != nil {
		return nil, nil, err
	}
	members, err := parseMembers(filename, m)
	if err != nil {
		return nil, nil, err
	}
	if len(members) == 0 {
		return nil, nil, &Error{File: filename, Msg: "no members: " + appendHint, Err: ErrInvalid}
	}
	r, err := protocol.NewRoster(federation, members)
	if err != nil {
		return nil, nil, &Error{File: filename, Msg: err.Error() + ": every member has its own name, author key and peer ID; was a block appended twice?", Err: ErrInvalid, Cause: err}
	}
	return r, m, nil
}

// parseMembers validates the [[member]] blocks of a decoded file.
func parseMembers(filename string, m map[string]any) ([]protocol.Member, error) {
	var blocks []map[string]any
	switch v := m["member"].(type) {
	case nil:
	case []map[string]any: // [[member]] blocks
		blocks = v
	case []any: // member = [{...}, ...]
		for i, e := range v {
			b, ok := e.(map[string]any)
			if !ok {
				return nil, invalid(filename, fmt.Sprintf("member %d", i+1), "want a table of name, role, author_key, peer_id and addrs, got %s", typeName(e))
			}
			blocks = append(blocks, b)
		}
	default:
		return nil, invalid(filename, "member", "want [[member]] blocks, got %s", typeName(v))
	}
	members := make([]protocol.Member, len(blocks))
	for i, b := range blocks {
		var err error
		if members[i], err = parseMember(filename, i, b); err != nil {
			return nil, err
		}
	}
	return members, nil
}

// ParseMemberBlock parses and validates exactly one [[member]] block, as
// `staydown init` printed it for a node: what a voting member proposes to
// admit (SPEC 12.3). Unlike ParseGenesis it asks nothing of the block's
// role (a lone auditor's block is a fine admission). filename is used only
// in messages.
func ParseMemberBlock(filename string, data []byte) (protocol.Member, error) {
	m, err := decode(filename, data)
	if err != nil {
		return protocol.Member{}, err
	}
	top := table{file: filename, m: m}
	if err := top.checkKeys([]string{"member"}); err != nil {
		return protocol.Member{}, err
	}
	members, err := parseMembers(filename, m)
	if err != nil {
		return protocol.Member{}, err
	}
	if len(members) != 1 {
		return protocol.Member{}, &Error{File: filename, Msg: fmt.Sprintf("want exactly one [[member]] block (the one `staydown init` printed for the node to admit), got %d", len(members)), Err: ErrInvalid}
	}
	return members[0], nil
}

// CheckMember validates a member as a block of the roster would be: its
// name, role, author key, the peer ID of an ed25519 transport key that is
// not the author key, and its addresses (multiaddrs without /p2p/). It
// returns the member with its peer ID and addresses in canonical form.
// Errors name the key (name, role, peer_id, addrs) and quote the value.
func CheckMember(m protocol.Member) (protocol.Member, error) {
	if err := CheckName(m.Name); err != nil {
		return m, fmt.Errorf("name: %w", err)
	}
	if _, err := checkRole(string(m.Role)); err != nil {
		return m, fmt.Errorf("role: %w", err)
	}
	if m.AuthorKey == (protocol.AuthorKey{}) {
		return m, errors.New("author_key: all zeros")
	}
	id, err := checkPeerID(m.PeerID, m.AuthorKey)
	if err != nil {
		return m, fmt.Errorf("peer_id: %w", err)
	}
	addrs, err := CheckAddrs(m.Addrs)
	if err != nil {
		return m, fmt.Errorf("addrs: %w", err)
	}
	m.PeerID, m.Addrs = id, addrs
	return m, nil
}

// parseMember validates block i (0-based) of the roster.
func parseMember(file string, i int, b map[string]any) (protocol.Member, error) {
	t := table{file: file, path: fmt.Sprintf("member %d", i+1), m: b}
	if name, ok := b["name"].(string); ok {
		t.path += fmt.Sprintf(" (%s)", short(name))
	}
	var m protocol.Member
	if err := t.checkKeys(memberKeys); err != nil {
		return m, err
	}
	var err error
	if m.Name, _, err = t.str("name", `name = "...", the member's name`); err != nil {
		return m, err
	}
	if err := CheckName(m.Name); err != nil {
		return m, invalid(file, t.key("name"), "%v", err)
	}

	role, _, err := t.str("role", `role = "referral", "platform", "auditor" or "access"`)
	if err != nil {
		return m, err
	}
	if m.Role, err = checkRole(role); err != nil {
		return m, invalid(file, t.key("role"), "%v", err)
	}

	key, _, err := t.str("author_key", "author_key = \"<64 hex characters>\" from the block `staydown init` printed")
	if err != nil {
		return m, err
	}
	if m.AuthorKey, err = checkAuthorKey(key); err != nil {
		return m, invalid(file, t.key("author_key"), "%v", err)
	}

	id, _, err := t.str("peer_id", "peer_id = \"12D3KooW...\" from the block `staydown init` printed")
	if err != nil {
		return m, err
	}
	if m.PeerID, err = checkPeerID(id, m.AuthorKey); err != nil {
		return m, invalid(file, t.key("peer_id"), "%v", err)
	}

	addrs, _, err := t.strs("addrs", "")
	if err != nil {
		return m, err
	}
	if m.Addrs, err = CheckAddrs(addrs); err != nil {
		return m, invalid(file, t.key("addrs"), "%v", err)
	}
	return m, nil
}

// checkAuthorKey parses an author key, saying where it went wrong.
func checkAuthorKey(s string) (protocol.AuthorKey, error) {
	var k protocol.AuthorKey
	if len(s) != 2*len(k) {
		return k, fmt.Errorf("want %d hex characters, got %d", 2*len(k), len(s))
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return !isHex(r) }); i >= 0 {
		return k, fmt.Errorf("want %d hex characters (0-9, a-f), got %s at character %d", 2*len(k), short(s[i:i+1]), i+1)
	}
	return protocol.ParseAuthorKey(s)
}

func isHex(r rune) bool {
	return '0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F'
}

// checkPeerID parses a peer ID and returns its canonical form. Node keys
// are ed25519 (see NodeKey), so the peer ID must embed an ed25519 key, and
// that key must not be the author key: the transport key is a separate key
// so that a node can be replaced without changing who signed what.
func checkPeerID(s string, author protocol.AuthorKey) (string, error) {
	const fix = "copy peer_id from the block `staydown init` printed"
	bad := fmt.Errorf("%s is not the libp2p peer ID of an ed25519 key (52 characters, 12D3KooW...): %s", short(s), fix)
	id, err := peer.Decode(s)
	if err != nil {
		return "", bad
	}
	pk, err := id.ExtractPublicKey()
	if err != nil || pk.Type() != crypto.Ed25519 {
		return "", bad
	}
	raw, err := pk.Raw()
	if err != nil {
		return "", fmt.Errorf("%s: %s", short(s), oneLine(err.Error()))
	}
	if bytes.Equal(raw, author[:]) {
		return "", fmt.Errorf("%s is the peer ID of the author key: the node's transport key (node.key) must be a separate key; %s", short(s), fix)
	}
	return id.String(), nil
}

// MemberBlock is the roster block for m, exactly as `staydown init` prints
// it: a [[member]] header and one line per key, ending in a newline.
func MemberBlock(m protocol.Member) string {
	var b strings.Builder
	b.WriteString("[[member]]\n")
	fmt.Fprintf(&b, "name = %s\n", quote(m.Name))
	fmt.Fprintf(&b, "role = %s\n", quote(string(m.Role)))
	fmt.Fprintf(&b, "author_key = %s\n", quote(m.AuthorKey.String()))
	fmt.Fprintf(&b, "peer_id = %s\n", quote(m.PeerID))
	fmt.Fprintf(&b, "addrs = %s\n", quoteList(m.Addrs))
	return b.String()
}

// CheckRosterHasSelf checks that the roster lists the node n as it is
// configured: a member of its name, with its role, its author key and the
// peer ID of its node key. A node that started without this check would
// sign entries every peer rejects. Errors wrap ErrNotListed.
func CheckRosterHasSelf(n *Node, r *protocol.Roster, authorKey protocol.AuthorKey, peerID peer.ID) error {
	cfg := display(n.configPath())
	if r.Federation != n.Federation {
		return &Error{File: n.RosterPath, Msg: fmt.Sprintf("loaded for federation %s, but %s says federation = %s", short(r.Federation), cfg, short(n.Federation)), Err: ErrNotListed}
	}
	i := -1
	for j, m := range r.Members {
		if m.Name == n.Name {
			i = j
			break
		}
	}
	if i < 0 {
		msg := fmt.Sprintf("has no member named %s (name in %s): append the [[member]] block `staydown init` printed for this node", short(n.Name), cfg)
		if m, ok := r.ByKey(authorKey); ok {
			msg = fmt.Sprintf("has no member named %s (name in %s), but member %s has this node's author key: make the names agree", short(n.Name), cfg, short(m.Name))
		}
		return &Error{File: n.RosterPath, Msg: msg, Err: ErrNotListed}
	}
	m := r.Members[i]
	key := func(k string) string { return fmt.Sprintf("member %d (%s): %s", i+1, short(m.Name), k) }
	const fix = "replace this member's block with the one `staydown init` printed for this node"
	switch {
	case m.Role != n.Role:
		return &Error{File: n.RosterPath, Key: key("role"), Msg: fmt.Sprintf("is %s, but %s says role = %s: make them agree", short(string(m.Role)), cfg, short(string(n.Role))), Err: ErrNotListed}
	case m.AuthorKey != authorKey:
		return &Error{File: n.RosterPath, Key: key("author_key"), Msg: fmt.Sprintf("is %s, but this node's %s holds the key %s: %s", m.AuthorKey, AuthorKeyFile, authorKey, fix), Err: ErrNotListed}
	case m.PeerID != peerID.String():
		return &Error{File: n.RosterPath, Key: key("peer_id"), Msg: fmt.Sprintf("is %s, but this node's %s has the peer ID %s: %s", short(m.PeerID), NodeKeyFile, peerID, fix), Err: ErrNotListed}
	}
	return nil
}

// Roster loads the roster the config names, for the node's federation, and
// checks that it lists this node with its own keys (CheckRosterHasSelf).
// It is what a node calls before it starts.
func (n *Node) Roster() (*protocol.Roster, error) {
	r, err := LoadRoster(n.RosterPath, n.Federation)
	if err != nil {
		return nil, err
	}
	priv, err := n.AuthorKey()
	if err != nil {
		return nil, err
	}
	nk, err := n.NodeKey()
	if err != nil {
		return nil, err
	}
	id, err := peer.IDFromPrivateKey(nk)
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", display(n.path(NodeKeyFile)), err)
	}
	if err := CheckRosterHasSelf(n, r, protocol.AuthorKeyOf(priv), id); err != nil {
		return nil, err
	}
	return r, nil
}

// Genesis loads the genesis the config names (the roster file) for the
// node's federation. Unlike Roster it does not require this node to be
// in it: a node that joins later is admitted by amendments (SPEC 12).
func (n *Node) Genesis() (*membership.Genesis, error) {
	return LoadGenesis(n.RosterPath, n.Federation)
}
