package protocol

import (
	"crypto/ed25519"
	"fmt"
	"slices"

	"github.com/staydown/staydown/protocol/pb"
)

// Limits on membership payloads (SPEC 12.2).
const (
	MaxPeerIDLen = 128
	MaxAddrs     = 16
	MaxAddrLen   = 256
	// MinThreshold and MaxThreshold bound VotingRule.threshold_percent:
	// at least half, so that two conflicting amendments cannot both pass.
	MinThreshold = 50
	MaxThreshold = 99
)

// CheckName checks a member name: the federation name's rule (1 to 64 bytes
// of a-z, 0-9, '-', '_' and '.').
func CheckName(name string) error { return CheckFederation(name) }

func checkKey(field string, k []byte) error {
	if len(k) != ed25519.PublicKeySize {
		return malformed(field, "want a %d-byte author key, got %d bytes", ed25519.PublicKeySize, len(k))
	}
	if allZero(k) {
		return malformed(field, "all zeros")
	}
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// CheckPeer checks a peer ID and dial addresses as far as the protocol
// does (SPEC 12.2): a peer ID of 1 to 128 base58 characters, at most 16
// addresses of 1 to 256 printable ASCII bytes starting with '/'. Nodes
// parse them further; one that does not parse is never dialled.
func CheckPeer(field, peerID string, addrs []string) error {
	if peerID == "" || len(peerID) > MaxPeerIDLen {
		return malformed(field+".peer_id", "want 1 to %d characters, got %d", MaxPeerIDLen, len(peerID))
	}
	for i := 0; i < len(peerID); i++ {
		if c := peerID[i]; !isBase58(c) {
			return malformed(field+".peer_id", "%q: byte %d is not base58", peerID, i+1)
		}
	}
	if len(addrs) > MaxAddrs {
		return malformed(field+".addrs", "want at most %d, got %d", MaxAddrs, len(addrs))
	}
	for i, a := range addrs {
		if a == "" || len(a) > MaxAddrLen || a[0] != '/' {
			return malformed(fmt.Sprintf("%s.addrs[%d]", field, i), "want a multiaddr of 1 to %d bytes starting with '/'", MaxAddrLen)
		}
		for j := 0; j < len(a); j++ {
			if a[j] <= ' ' || a[j] > '~' {
				return malformed(fmt.Sprintf("%s.addrs[%d]", field, i), "byte %d is not printable ASCII", j+1)
			}
		}
	}
	return nil
}

func isBase58(c byte) bool {
	return '1' <= c && c <= '9' || 'A' <= c && c <= 'Z' && c != 'I' && c != 'O' || 'a' <= c && c <= 'z' && c != 'l'
}

// CheckBlock checks a member block's shape (SPEC 12.2).
func CheckBlock(field string, m *pb.MemberBlock) error {
	if m == nil {
		return malformed(field, "missing")
	}
	if err := CheckName(m.Name); err != nil {
		return malformed(field+".name", "%v", err)
	}
	if _, err := ParseRole(m.Role); err != nil {
		return malformed(field+".role", "%v", err)
	}
	if err := checkKey(field+".author_key", m.AuthorKey); err != nil {
		return err
	}
	return CheckPeer(field, m.PeerId, m.Addrs)
}

// CheckRule checks a voting rule's shape (SPEC 12.3).
func CheckRule(field string, r *pb.VotingRule) error {
	if r == nil {
		return malformed(field, "missing")
	}
	if len(r.Roles) == 0 || len(r.Roles) > 3 {
		return malformed(field+".roles", "want 1 to 3 roles, got %d", len(r.Roles))
	}
	for i, s := range r.Roles {
		if _, err := ParseRole(s); err != nil {
			return malformed(fmt.Sprintf("%s.roles[%d]", field, i), "%v", err)
		}
		if slices.Contains(r.Roles[:i], s) {
			return malformed(fmt.Sprintf("%s.roles[%d]", field, i), "%q repeated", s)
		}
	}
	if r.ThresholdPercent < MinThreshold || r.ThresholdPercent > MaxThreshold {
		return malformed(field+".threshold_percent", "want %d to %d, got %d", MinThreshold, MaxThreshold, r.ThresholdPercent)
	}
	return nil
}

func checkAmendment(a *pb.Amendment) error {
	switch c := a.GetChange().(type) {
	case *pb.Amendment_Admit:
		return CheckBlock("amendment.admit", c.Admit)
	case *pb.Amendment_Remove:
		if c.Remove == nil {
			return malformed("amendment.remove", "missing")
		}
		return checkCut("amendment.remove", c.Remove.Member, c.Remove.Key)
	case *pb.Amendment_Role:
		if c.Role == nil {
			return malformed("amendment.role", "missing")
		}
		if _, err := ParseRole(c.Role.Role); err != nil {
			return malformed("amendment.role.role", "%v", err)
		}
		return checkCut("amendment.role", c.Role.Member, c.Role.Key)
	case *pb.Amendment_Revoke:
		if c.Revoke == nil {
			return malformed("amendment.revoke", "missing")
		}
		if err := checkCut("amendment.revoke", c.Revoke.Member, c.Revoke.Key); err != nil {
			return err
		}
		if len(c.Revoke.NewKey) > 0 {
			if err := checkKey("amendment.revoke.new_key", c.Revoke.NewKey); err != nil {
				return err
			}
			if string(c.Revoke.NewKey) == string(c.Revoke.Key) {
				return malformed("amendment.revoke.new_key", "is the revoked key")
			}
		}
		return nil
	case *pb.Amendment_Rule:
		return CheckRule("amendment.rule", c.Rule)
	}
	return malformed("amendment.change", "missing or of an unknown type")
}

func checkCut(field, member string, key []byte) error {
	if err := CheckName(member); err != nil {
		return malformed(field+".member", "%v", err)
	}
	return checkKey(field+".key", key)
}
