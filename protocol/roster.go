package protocol

import (
	"fmt"
	"slices"
	"strings"

	"github.com/staydown/staydown/protocol/pb"
)

// Role is a member's role in the federation.
type Role string

const (
	RoleReferral Role = "referral"
	RolePlatform Role = "platform"
	RoleAuditor  Role = "auditor"
	// RoleAccess is an internet access provider: it receives blocking
	// orders and answers them (SPEC.md 6.9).
	RoleAccess Role = "access"
)

// ParseRole parses a role name.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleReferral, RolePlatform, RoleAuditor, RoleAccess:
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q; use referral, platform, auditor or access", s)
}

// mayWrite is the role rule: which role may write which payload kind.
// Auditors write nothing in v1 (checkpoints come in a later version).
var mayWrite = map[Role]map[Kind]bool{
	RoleReferral: {KindAddition: true, KindRetraction: true, KindDispute: true, KindAllow: true, KindNotice: true, KindNoticeUpdate: true, KindAmendment: true, KindApproval: true, KindRotation: true, KindPeerUpdate: true},
	RolePlatform: {KindAddition: true, KindRetraction: true, KindDispute: true, KindAllow: true, KindNoticeReply: true, KindAmendment: true, KindApproval: true, KindRotation: true, KindPeerUpdate: true},
	// Auditors keep their own keys and addresses, and vote if the
	// voting rule says so (membership decides who votes, SPEC 12.3).
	RoleAuditor: {KindAmendment: true, KindApproval: true, KindRotation: true, KindPeerUpdate: true},
	RoleAccess:  {KindNoticeReply: true, KindAmendment: true, KindApproval: true, KindRotation: true, KindPeerUpdate: true},
}

// MayWrite reports whether role may write payloads of kind k.
func MayWrite(role Role, k Kind) bool { return mayWrite[role][k] }

// Member is one organisation in the federation's roster.
type Member struct {
	Name      string
	Role      Role
	AuthorKey AuthorKey
	PeerID    string   // libp2p peer ID of its node (transport identity)
	Addrs     []string // multiaddrs to dial
	// Keys is every author key the member has signed with, in order,
	// AuthorKey among them (SPEC 12.4); empty means just AuthorKey.
	Keys []AuthorKey
}

// Roster is the federation's membership, loaded identically by every node.
// It is read-only once built.
type Roster struct {
	Federation string
	Members    []Member
	// Version is the roster version (SPEC 12.3): 0 for a genesis.
	Version uint64
	byKey   map[AuthorKey]int
	byName  map[string]int
}

// NewRoster builds a roster and checks that names, author keys and peer IDs
// are unique.
func NewRoster(federation string, members []Member) (*Roster, error) {
	if err := CheckFederation(federation); err != nil {
		return nil, fmt.Errorf("%w: federation name: %v", ErrRoster, err)
	}
	// The roster owns its members: a caller changing its slice afterwards
	// must not desynchronise the lookups.
	members = slices.Clone(members)
	for i := range members {
		members[i].Addrs = slices.Clone(members[i].Addrs)
		members[i].Keys = slices.Clone(members[i].Keys)
	}
	r := &Roster{Federation: federation, Members: members, byKey: map[AuthorKey]int{}, byName: map[string]int{}}
	peers := map[string]int{}
	for i, m := range members {
		if _, err := ParseRole(string(m.Role)); err != nil {
			return nil, fmt.Errorf("%w: member %d (%q): %v", ErrRoster, i+1, m.Name, err)
		}
		if m.AuthorKey == (AuthorKey{}) {
			return nil, fmt.Errorf("%w: member %d (%q): author key is all zeros", ErrRoster, i+1, m.Name)
		}
		if j, dup := r.byName[m.Name]; dup {
			return nil, fmt.Errorf("%w: member %d and member %d are both named %q", ErrRoster, j+1, i+1, m.Name)
		}
		for _, k := range append([]AuthorKey{m.AuthorKey}, m.Keys...) {
			if j, dup := r.byKey[k]; dup && j != i {
				return nil, fmt.Errorf("%w: members %q and %q have the same author key", ErrRoster, members[j].Name, m.Name)
			}
			r.byKey[k] = i
		}
		if j, dup := peers[m.PeerID]; dup && m.PeerID != "" {
			return nil, fmt.Errorf("%w: members %q and %q have the same peer ID", ErrRoster, members[j].Name, m.Name)
		}
		r.byName[m.Name], peers[m.PeerID] = i, i
	}
	return r, nil
}

// ByKey finds a member by author key.
func (r *Roster) ByKey(k AuthorKey) (Member, bool) {
	i, ok := r.byKey[k]
	if !ok {
		return Member{}, false
	}
	return r.Members[i], true
}

// ByName finds a member by name.
// NameOf is the member name of k, or k in hex when it is not in the
// roster.
func (r *Roster) NameOf(k AuthorKey) string {
	if m, ok := r.ByKey(k); ok {
		return m.Name
	}
	return k.String()
}

func (r *Roster) ByName(name string) (Member, bool) {
	i, ok := r.byName[name]
	if !ok {
		return Member{}, false
	}
	return r.Members[i], true
}

// CheckFederationOf checks that e is an entry of the federation named
// federation (SPEC 9.1, "wrong federation").
func CheckFederationOf(federation string, e *Entry) error {
	if e.Body.Federation != federation {
		return fmt.Errorf("%w: entry %s is for %q, this is %q", ErrFederation, e.ID, e.Body.Federation, federation)
	}
	return nil
}

// Check applies the roster rules to a decoded entry: right federation,
// author in the roster, role allowed to write the payload, and a notice
// addressed to a platform of the roster. It does not verify the signature.
func (r *Roster) Check(e *Entry) error {
	if err := CheckFederationOf(r.Federation, e); err != nil {
		return err
	}
	m, ok := r.ByKey(e.Author)
	if !ok {
		return fmt.Errorf("%w: entry %s by %s", ErrUnknownAuthor, e.ID, e.Author)
	}
	if k := e.Kind(); !MayWrite(m.Role, k) {
		return fmt.Errorf("%w: %s (%s) may not write a %s", ErrRole, m.Name, m.Role, k)
	}
	if n := e.Body.GetNotice(); n != nil {
		var to AuthorKey
		copy(to[:], n.Addressee)
		want := AddresseeRole(n)
		if a, ok := r.ByKey(to); !ok || a.Role != want {
			return fmt.Errorf("%w: notice %s is addressed to %s, which is not a %s of the roster", ErrRole, e.ID, to, want)
		}
	}
	if p := e.Body.GetNoticeReply(); p != nil && !MayReply(m.Role, p.Status) {
		return fmt.Errorf("%w: %s (%s) may not reply %s", ErrRole, m.Name, m.Role, ReplyStatuses[p.Status])
	}
	return nil
}

// Names lists member names, for error messages.
func (r *Roster) Names() string {
	n := make([]string, len(r.Members))
	for i, m := range r.Members {
		n[i] = m.Name
	}
	return strings.Join(n, ", ")
}

// AddresseeRole is the role a notice's addressee must have had: access
// for a blocking order, platform for any other notice (SPEC.md 9.1).
func AddresseeRole(n *pb.Notice) Role {
	if n.GetBlocking() != nil {
		return RoleAccess
	}
	return RolePlatform
}

// MayReply reports whether a member of the role may write a reply with
// this status (SPEC.md 9.1): blocked and unblocked are access providers'
// answers to blocking orders, removed and disabled platforms' answers to
// takedown notices; the others are anyone's who may reply.
func MayReply(role Role, s pb.ReplyStatus) bool {
	switch s {
	case pb.ReplyStatus_REPLY_STATUS_BLOCKED, pb.ReplyStatus_REPLY_STATUS_UNBLOCKED:
		return role == RoleAccess
	case pb.ReplyStatus_REPLY_STATUS_REMOVED, pb.ReplyStatus_REPLY_STATUS_DISABLED:
		return role == RolePlatform
	}
	return true
}
