package config

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/staydown/staydown/protocol"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// MaxNameLen bounds a member name in bytes.
const MaxNameLen = 64

// Log levels accepted by log_level.
var logLevels = []string{"debug", "info", "warn", "error"}

// CheckName checks a member name: 1 to 64 of lower-case ASCII letters,
// digits, '-', '_' and '.'. Names appear in file paths, URLs and logs, so
// they are kept to a charset that needs no quoting anywhere.
func CheckName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("want 1 to %d characters, got %d", MaxNameLen, len(name))
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !nameChar(c) {
			r, _ := utf8.DecodeRuneInString(name[i:])
			return fmt.Errorf("%s has %q at byte %d: use only lower-case letters a-z, digits, '-', '_' and '.'", short(name), r, i+1)
		}
	}
	return nil
}

func nameChar(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.'
}

// checkFederation checks a federation name by the protocol's rule
// (protocol.CheckFederation): it names the gossip topic and is signed into
// every entry, so it must read the same on every node.
func checkFederation(f string) error {
	if err := protocol.CheckFederation(f); err != nil {
		return fmt.Errorf("%v: e.g. federation = \"eu-tco-pilot\"", err)
	}
	return nil
}

// checkRole parses a role, with a message that lists the roles.
func checkRole(s string) (protocol.Role, error) {
	r, err := protocol.ParseRole(s)
	if err != nil {
		return "", fmt.Errorf("%s is not a role: use \"referral\", \"platform\", \"auditor\" or \"access\"", short(s))
	}
	return r, nil
}

// checkAddr parses a multiaddr and returns it in canonical form. The peer
// ID is configured separately (peer_id, node.key), so an address may not
// carry a /p2p/ part.
func checkAddr(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%s is not valid UTF-8", short(s))
	}
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		// The library's message quotes the address raw.
		return "", fmt.Errorf("%s is not a multiaddr (%s): write it like \"/ip4/127.0.0.1/tcp/4001\"", short(s), oneLine(err.Error()))
	}
	if _, err := a.ValueForProtocol(ma.P_P2P); err == nil {
		return "", fmt.Errorf("%s has a /p2p/ part: remove it; the peer ID is given separately", short(s))
	}
	return a.String(), nil
}

// CheckBootstrap checks bootstrap addresses: multiaddrs that end in the
// member's peer ID (/p2p/12D3KooW...), returned in canonical form.
func CheckBootstrap(ss []string) ([]string, error) {
	var out []string
	for i, s := range ss {
		if !utf8.ValidString(s) {
			return nil, fmt.Errorf("address %d: %s is not valid UTF-8", i+1, short(s))
		}
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("address %d: %s is not a multiaddr (%s): write it like \"/ip4/192.0.2.1/tcp/4001/p2p/12D3KooW...\"", i+1, short(s), oneLine(err.Error()))
		}
		if _, err := peer.AddrInfoFromP2pAddr(a); err != nil {
			return nil, fmt.Errorf("address %d: %s does not end in /p2p/ and the member's peer ID: add it (`staydown status` on that member prints its listen addresses with it)", i+1, short(s))
		}
		out = append(out, a.String())
	}
	return out, nil
}

// CheckAddrs checks a list of multiaddrs and returns them in canonical form.
// Duplicates are refused: listening twice on one address fails at start.
// An empty list is nil.
func CheckAddrs(ss []string) ([]string, error) {
	if len(ss) == 0 {
		return nil, nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		a, err := checkAddr(s)
		if err != nil {
			return nil, fmt.Errorf("address %d: %w", i+1, err)
		}
		if j := slices.Index(out[:i], a); j >= 0 {
			return nil, fmt.Errorf("address %d: %s is a duplicate of address %d: remove one", i+1, short(s), j+1)
		}
		out[i] = a
	}
	return out, nil
}

// checkAPI checks the API's host:port. The API accepts commands for the
// node with its token, so it binds to loopback unless remote is allowed.
func checkAPI(s string, allowRemote bool) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%s is not host:port: write it like \"127.0.0.1:7001\"", short(s))
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("%s: port %s: want a number from 1 to 65535", short(s), short(port))
	}
	if allowRemote || isLoopback(host) {
		return nil
	}
	return fmt.Errorf("%s is not a loopback address: the API takes commands for this node, so it listens on loopback only (e.g. \"127.0.0.1:7001\"); to expose it, also set allow_remote_api = true", short(s))
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

func checkLogLevel(s string) error {
	if slices.Contains(logLevels, s) {
		return nil
	}
	return fmt.Errorf("%s is not a log level: use \"debug\", \"info\", \"warn\" or \"error\"", short(s))
}
