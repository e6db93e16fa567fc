package config

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/staydown/staydown/protocol"
)

// Defaults for InitOptions fields left empty.
const (
	DefaultFederation = "staydown"
	DefaultListen     = "/ip4/127.0.0.1/tcp/4001"
	DefaultAPI        = "127.0.0.1:7001"
	DefaultRoster     = "roster.toml" // relative to the node's directory
)

// InitOptions are the inputs of Init. Empty fields take the defaults above
// (Listen: [DefaultListen]).
type InitOptions struct {
	Dir        string // the node's directory; created (0700) if missing
	Name       string // member name
	Role       protocol.Role
	Federation string
	Listen     []string // libp2p multiaddrs to listen on
	// Announce are the multiaddrs peers dial this node at: the addrs of
	// the roster block. Empty: Listen, which must then be dialable (no
	// 0.0.0.0 or ::).
	Announce []string
	API      string // host:port; must be loopback (edit config.toml to allow more)
	Roster   string // roster path as written to config.toml, relative to Dir unless absolute
	// Genesis, when set, is the path of the federation's genesis file,
	// for a node that joins a running federation (SPEC 12.1): Init checks
	// that it is a genesis of Federation with no member named Name,
	// copies it into Dir as GenesisFile and points the config's roster at
	// the copy. Roster must then be empty.
	Genesis string
	// Bootstrap are members' addresses with their peer IDs
	// (/ip4/.../tcp/4001/p2p/12D3KooW...), written as the config's
	// bootstrap: how a joining node first reaches the federation.
	Bootstrap []string
}

// GenesisFile is the name Init gives the copy of the genesis it was
// handed (InitOptions.Genesis) in the node's directory.
const GenesisFile = "genesis.toml"

// Init creates a node directory: it generates the author key, the node key
// and the API token and writes them and config.toml, each with mode 0600,
// config.toml last. It returns this node's roster member and its
// [[member]] block (MemberBlock), which the operator appends to the roster.
// The roster file itself is not read and may not exist yet.
//
// Init never overwrites: if any of the four files exists it returns an
// ErrExists *Error and changes nothing. If it fails half-way it removes the
// files it created.
func Init(o InitOptions) (member protocol.Member, block string, err error) {
	if err := o.fill(); err != nil {
		return protocol.Member{}, "", err
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return protocol.Member{}, "", wrapIO(err)
	}
	cfgFile := filepath.Join(o.Dir, ConfigFile)
	if err := refuseExisting(o.Dir); err != nil {
		return protocol.Member{}, "", err
	}
	genesis, err := o.readGenesis()
	if err != nil {
		return protocol.Member{}, "", err
	}

	_, authorKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return protocol.Member{}, "", fmt.Errorf("config: author key: %w", err)
	}
	nodeKey, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return protocol.Member{}, "", fmt.Errorf("config: node key: %w", err)
	}
	nodeKeyBytes, err := crypto.MarshalPrivateKey(nodeKey)
	if err != nil {
		return protocol.Member{}, "", fmt.Errorf("config: node key: %w", err)
	}
	id, err := peer.IDFromPrivateKey(nodeKey)
	if err != nil {
		return protocol.Member{}, "", fmt.Errorf("config: node key: %w", err)
	}
	token := make([]byte, tokenBytes)
	if _, err := rand.Read(token); err != nil {
		return protocol.Member{}, "", fmt.Errorf("config: api token: %w", err)
	}

	text := initConfigText(o)
	// Init must never write a config that Load rejects.
	if _, err := ParseNode(cfgFile, []byte(text)); err != nil {
		return protocol.Member{}, "", fmt.Errorf("config: bug: init wrote a config it cannot load: %w", err)
	}

	type file struct {
		name string
		data []byte
	}
	files := []file{
		{AuthorKeyFile, []byte(hex.EncodeToString(authorKey.Seed()) + "\n")},
		{NodeKeyFile, nodeKeyBytes},
		{TokenFile, []byte(hex.EncodeToString(token) + "\n")},
	}
	if genesis != nil {
		files = append(files, file{GenesisFile, genesis})
	}
	files = append(files, file{ConfigFile, []byte(text)}) // last: its presence means init finished
	var created []string
	defer func() {
		if err != nil {
			for _, f := range slices.Backward(created) {
				os.Remove(f)
			}
		}
	}()
	for _, f := range files {
		p := filepath.Join(o.Dir, f.name)
		if err := writeNew(p, f.data); err != nil {
			return protocol.Member{}, "", err
		}
		created = append(created, p)
	}
	if err := syncDir(o.Dir); err != nil {
		return protocol.Member{}, "", err
	}

	member = protocol.Member{
		Name:      o.Name,
		Role:      o.Role,
		AuthorKey: protocol.AuthorKeyOf(authorKey),
		PeerID:    id.String(),
		Addrs:     o.Announce,
	}
	return member, MemberBlock(member), nil
}

// fill applies the defaults and validates the options, canonicalising the
// listen addresses. Errors wrap ErrInvalid and name the option.
func (o *InitOptions) fill() error {
	bad := func(opt string, err error) error { return fmt.Errorf("%w: %s: %v", ErrInvalid, opt, err) }
	if o.Dir == "" {
		return bad("dir", errors.New("missing: give the node's directory"))
	}
	if err := CheckName(o.Name); err != nil {
		return bad("name", err)
	}
	if _, err := checkRole(string(o.Role)); err != nil {
		return bad("role", err)
	}
	if o.Federation == "" {
		o.Federation = DefaultFederation
	}
	if err := checkFederation(o.Federation); err != nil {
		return bad("federation", err)
	}
	if len(o.Listen) == 0 {
		o.Listen = []string{DefaultListen}
	}
	listen, err := CheckAddrs(o.Listen)
	if err != nil {
		return bad("listen", err)
	}
	o.Listen = listen
	if len(o.Announce) > 0 {
		announce, err := CheckAddrs(o.Announce)
		if err != nil {
			return bad("announce", err)
		}
		for _, a := range announce {
			if why := undialable(a); why != "" {
				return bad("announce", fmt.Errorf("%s %s: peers cannot dial it", short(a), why))
			}
		}
		o.Announce = announce
	} else {
		for _, a := range o.Listen {
			if why := undialable(a); why != "" {
				return bad("listen", fmt.Errorf("%s %s: peers cannot dial it, so it cannot go in the roster block; add --announce with the address peers reach this node at (e.g. /ip4/203.0.113.5/tcp/4001 or /dns4/node.example.org/tcp/4001)", short(a), why))
			}
		}
		o.Announce = o.Listen
	}
	if o.API == "" {
		o.API = DefaultAPI
	}
	if err := checkAPI(o.API, false); err != nil {
		return bad("api", err)
	}
	if o.Genesis != "" {
		if o.Roster != "" {
			return bad("roster", errors.New("give either a roster path or a genesis to copy, not both"))
		}
		o.Roster = GenesisFile
	}
	if o.Roster == "" {
		o.Roster = DefaultRoster
	}
	boot, err := CheckBootstrap(o.Bootstrap)
	if err != nil {
		return bad("bootstrap", err)
	}
	o.Bootstrap = boot
	if !utf8.ValidString(o.Roster) {
		return bad("roster", errors.New("path is not valid UTF-8"))
	}
	if _, err := resolve(o.Dir, o.Roster); err != nil {
		return bad("roster", err)
	}
	return nil
}

// readGenesis reads and checks the genesis a joining node was given
// (o.Genesis): a genesis of o.Federation (ParseGenesis) that has no member
// named o.Name. It returns the file's bytes to copy, or nil when there is
// nothing to copy: no genesis given, or the file is already the node's
// GenesisFile.
func (o *InitOptions) readGenesis() ([]byte, error) {
	if o.Genesis == "" {
		return nil, nil
	}
	data, err := os.ReadFile(o.Genesis)
	if err != nil {
		return nil, readError(o.Genesis, err, "give the genesis file of the federation to join (a member has it: the roster file its config names)")
	}
	g, err := ParseGenesis(o.Genesis, data, o.Federation)
	if err != nil {
		return nil, err
	}
	if m, ok := g.Roster.ByName(o.Name); ok {
		return nil, &Error{File: o.Genesis, Msg: fmt.Sprintf("already has a member named %s (%s, author key %s): a joining node needs a name of its own; a founding member's node is initialised with --roster", short(o.Name), m.Role, m.AuthorKey), Err: ErrInvalid}
	}
	src, err := filepath.Abs(o.Genesis)
	if err != nil {
		return nil, wrapIO(err)
	}
	dst, err := filepath.Abs(filepath.Join(o.Dir, GenesisFile))
	if err != nil {
		return nil, wrapIO(err)
	}
	if src == dst {
		return nil, nil
	}
	if _, err := os.Lstat(dst); err == nil {
		return nil, &Error{File: dst, Msg: fmt.Sprintf("already exists: not overwriting it with %s; move it away, or give it as the genesis itself", display(o.Genesis)), Err: ErrExists}
	}
	return data, nil
}

// refuseExisting fails if dir already holds any file Init writes.
func refuseExisting(dir string) error {
	cfg := filepath.Join(dir, ConfigFile)
	if _, err := os.Lstat(cfg); err == nil {
		return &Error{File: cfg, Msg: "already exists: this directory already holds a node; use another directory (init never overwrites a node's keys)", Err: ErrExists}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return wrapIO(err)
	}
	for _, name := range []string{AuthorKeyFile, NodeKeyFile, TokenFile} {
		p := filepath.Join(dir, name)
		if _, err := os.Lstat(p); err == nil {
			return &Error{File: p, Msg: fmt.Sprintf("already exists, but %s does not: an earlier init did not finish, or the config was removed; init never overwrites keys: move the file away (or use another directory) and run init again", display(cfg)), Err: ErrExists}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return wrapIO(err)
		}
	}
	return nil
}

// syncDir makes the new directory entries durable: the keys must not
// vanish after init printed the block that names them.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return wrapIO(err)
	}
	defer d.Close()
	// Some systems (Windows) cannot sync a directory; the files themselves
	// were synced.
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) && !errors.Is(err, errors.ErrUnsupported) {
		return wrapIO(err)
	}
	return nil
}

// initConfigText is the config.toml that Init writes: every required key,
// and the optional ones as comments with their defaults.
func initConfigText(o InitOptions) string {
	var b strings.Builder
	b.WriteString("# Staydown node configuration, written by `staydown init`.\n")
	b.WriteString("# Relative paths are relative to this directory.\n\n")
	b.WriteString("# This node's member name: the roster lists this node under it.\n")
	fmt.Fprintf(&b, "name = %s\n", quote(o.Name))
	b.WriteString("# referral, platform, auditor or access: what the node may publish.\n")
	fmt.Fprintf(&b, "role = %s\n", quote(string(o.Role)))
	b.WriteString("# The federation's name, the same on every node: entries are bound to it.\n")
	fmt.Fprintf(&b, "federation = %s\n", quote(o.Federation))
	if o.Genesis != "" {
		b.WriteString("# The federation's genesis: its founding members and voting rule. Later\n")
		b.WriteString("# members, this one included, are admitted by votes in the logs.\n")
	} else {
		b.WriteString("# The roster: the [[member]] block of every member, this one included.\n")
	}
	fmt.Fprintf(&b, "roster = %s\n", quote(o.Roster))
	b.WriteString("# libp2p addresses to listen on; peers dial the addrs in the roster.\n")
	fmt.Fprintf(&b, "listen = %s\n", quoteList(o.Listen))
	if len(o.Bootstrap) > 0 {
		b.WriteString("# Members to dial first (multiaddrs ending in /p2p/PEER_ID), besides the roster's.\n")
		fmt.Fprintf(&b, "bootstrap = %s\n", quoteList(o.Bootstrap))
	}
	b.WriteString("# The HTTP API for the staydown commands; the token is in api.token.\n")
	fmt.Fprintf(&b, "api = %s\n\n", quote(o.API))
	fmt.Fprintf(&b, "# store = %s\n", quote(DefaultStore))
	fmt.Fprintf(&b, "# log_level = %s          # debug, info, warn or error\n", quote(DefaultLogLevel))
	b.WriteString("# allow_remote_api = false  # true lets api be a non-loopback address\n")
	return b.String()
}

// undialable says why a peer cannot dial the multiaddr a (an unspecified
// address: 0.0.0.0 or ::), or "" when it can be dialed as far as this
// machine can tell.
func undialable(a string) string {
	m, err := ma.NewMultiaddr(a)
	if err != nil {
		return "is not a multiaddr"
	}
	if manet.IsIPUnspecified(m) {
		return "is an unspecified address (it means every interface of this machine)"
	}
	return ""
}
