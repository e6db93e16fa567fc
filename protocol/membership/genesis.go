package membership

import (
	"crypto/sha256"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// Rule is the voting rule: members whose role is in Roles vote, and an
// amendment passes when approvals × 100 > voters × Threshold (SPEC 12.3).
type Rule struct {
	Roles     []protocol.Role
	Threshold uint32
}

// DefaultRule is the rule of a genesis that names none: more than half of
// the referral units and platforms.
func DefaultRule() Rule {
	return Rule{Roles: []protocol.Role{protocol.RoleReferral, protocol.RolePlatform}, Threshold: 50}
}

// Votes reports whether members of role r vote under the rule.
func (r Rule) Votes(role protocol.Role) bool { return slices.Contains(r.Roles, role) }

// Needed is how many approvals pass an amendment among voters.
func (r Rule) Needed(voters int) int { return voters*int(r.Threshold)/100 + 1 }

func (r Rule) String() string {
	return fmt.Sprintf("more than %d%% of %v", r.Threshold, r.Roles)
}

func (r Rule) proto() *pb.VotingRule {
	v := &pb.VotingRule{ThresholdPercent: r.Threshold}
	for _, role := range r.Roles {
		v.Roles = append(v.Roles, string(role))
	}
	return v
}

func ruleOf(v *pb.VotingRule) Rule {
	r := Rule{Threshold: v.ThresholdPercent}
	for _, s := range v.Roles {
		r.Roles = append(r.Roles, protocol.Role(s))
	}
	return r
}

// Genesis is a federation's first roster and voting rule. Its hash is part
// of the federation's identity (SPEC 12.1).
type Genesis struct {
	Roster *protocol.Roster
	Rule   Rule
	hash   [32]byte
	raw    []byte
}

// NewGenesis makes the genesis of roster r under rule; a zero rule is
// DefaultRule.
func NewGenesis(r *protocol.Roster, rule Rule) (*Genesis, error) {
	if rule.Roles == nil && rule.Threshold == 0 {
		rule = DefaultRule()
	}
	g := &Genesis{Roster: r, Rule: rule}
	msg := &pb.Genesis{Federation: r.Federation, Rule: rule.proto()}
	for _, m := range r.Members {
		msg.Members = append(msg.Members, Block(m))
	}
	for i, b := range msg.Members {
		if err := protocol.CheckBlock(fmt.Sprintf("genesis.members[%d]", i), b); err != nil {
			return nil, err
		}
	}
	if err := protocol.CheckRule("genesis.rule", msg.Rule); err != nil {
		return nil, err
	}
	if voters(r.Members, rule) == 0 {
		return nil, fmt.Errorf("%w: genesis: no member has a voting role (%v)", protocol.ErrRoster, rule.Roles)
	}
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		return nil, err
	}
	g.raw = raw
	// The identity leaves the addresses out: they are where to dial, not
	// who the founders are, and nodes may each know other ones.
	for _, b := range msg.Members {
		b.Addrs = nil
	}
	bare, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		return nil, err
	}
	g.hash = sha256.Sum256(append([]byte("staydown/v1/genesis\n"), bare...))
	return g, nil
}

// ParseGenesis reads a genesis in its protobuf encoding (as in an export
// header) and checks it.
func ParseGenesis(raw []byte) (*Genesis, error) {
	var msg pb.Genesis
	if err := proto.Unmarshal(raw, &msg); err != nil {
		return nil, fmt.Errorf("%w: genesis: %v", protocol.ErrMalformed, err)
	}
	var members []protocol.Member
	for i, b := range msg.Members {
		if err := protocol.CheckBlock(fmt.Sprintf("genesis.members[%d]", i), b); err != nil {
			return nil, err
		}
		members = append(members, memberOf(b))
	}
	if err := protocol.CheckRule("genesis.rule", msg.Rule); err != nil {
		return nil, err
	}
	r, err := protocol.NewRoster(msg.Federation, members)
	if err != nil {
		return nil, err
	}
	g, err := NewGenesis(r, ruleOf(msg.Rule))
	if err != nil {
		return nil, err
	}
	if string(g.raw) != string(raw) {
		return nil, fmt.Errorf("%w: genesis: not in canonical encoding", protocol.ErrMalformed)
	}
	return g, nil
}

// Hash is SHA-256("staydown/v1/genesis\n" || the genesis encoding with
// every member's addresses left out) (SPEC 12.1).
func (g *Genesis) Hash() [32]byte { return g.hash }

// Raw is the genesis's canonical protobuf encoding.
func (g *Genesis) Raw() []byte { return slices.Clone(g.raw) }

// Block is m as a member block.
func Block(m protocol.Member) *pb.MemberBlock {
	return &pb.MemberBlock{Name: m.Name, Role: string(m.Role), AuthorKey: m.AuthorKey[:], PeerId: m.PeerID, Addrs: slices.Clone(m.Addrs)}
}

func memberOf(b *pb.MemberBlock) protocol.Member {
	var k protocol.AuthorKey
	copy(k[:], b.AuthorKey)
	return protocol.Member{Name: b.Name, Role: protocol.Role(b.Role), AuthorKey: k, PeerID: b.PeerId, Addrs: slices.Clone(b.Addrs)}
}

func voters(ms []protocol.Member, r Rule) int {
	n := 0
	for _, m := range ms {
		if r.Votes(m.Role) {
			n++
		}
	}
	return n
}
