package roster

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/node/kind"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/pb"
)

// ProposeRequest is the body of POST /v1/proposals: exactly one change
// to the roster version in force.
//
//   - admit: a member block (all of name, role, author_key, peer_id;
//     addrs may be empty);
//   - remove: member; key defaults to the member's current key, after_seq
//     to this node's head of that key's log;
//   - role: member and role, defaults as for remove;
//   - revoke: member and after_seq (required: the last entry of the key
//     that still counts); key defaults to the current key; new_key, if
//     set, is the member's key from then on;
//   - rule: roles (1 to 3) and threshold_percent (50 to 99).
type ProposeRequest struct {
	Admit  *Block      `json:"admit,omitempty"`
	Remove *Removal    `json:"remove,omitempty"`
	Role   *RoleChange `json:"role,omitempty"`
	Revoke *Revocation `json:"revoke,omitempty"`
	Rule   *Rule       `json:"rule,omitempty"`
}

// fieldError is a problem with one field of a request: 400.
type fieldError struct {
	field string // JSON path, e.g. "admit.peer_id"
	msg   string
}

func (e *fieldError) Error() string { return e.field + ": " + e.msg }
func (e *fieldError) Unwrap() error { return kind.ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &fieldError{field: field, msg: fmt.Sprintf(format, args...)}
}

// refusal is a well-formed request the membership in force does not
// allow: its kind is kind.ErrForbidden, kind.ErrNotFound or
// kind.ErrConflict. The message is the whole story, without the kind's
// name in front.
type refusal struct {
	kind error
	msg  string
}

func (e *refusal) Error() string { return e.msg }
func (e *refusal) Unwrap() error { return e.kind }

func refuse(k error, format string, args ...any) error {
	return &refusal{kind: k, msg: fmt.Sprintf(format, args...)}
}

// Check validates the request as far as that needs no membership:
// exactly one change, names, roles, hex keys, the block's peer ID (an
// ed25519 transport key's, not the author key's) and multiaddrs, the
// rule's roles and threshold. Errors name the field as a JSON path and
// quote the value; they wrap kind.ErrInvalid.
func (r ProposeRequest) Check() error {
	var given []string
	for name, set := range map[string]bool{"admit": r.Admit != nil, "remove": r.Remove != nil, "role": r.Role != nil, "revoke": r.Revoke != nil, "rule": r.Rule != nil} {
		if set {
			given = append(given, name)
		}
	}
	slices.Sort(given)
	switch len(given) {
	case 0:
		return invalid("body", "give one change: admit, remove, role, revoke or rule")
	case 1:
	default:
		return invalid("body", "give one change per proposal, got %s", strings.Join(given, " and "))
	}
	switch {
	case r.Admit != nil:
		_, err := r.Admit.member()
		return err
	case r.Remove != nil:
		if err := checkMember("remove.member", r.Remove.Member); err != nil {
			return err
		}
		_, err := optionalKey("remove.key", r.Remove.Key)
		return err
	case r.Role != nil:
		if err := checkMember("role.member", r.Role.Member); err != nil {
			return err
		}
		if _, err := checkRole("role.role", r.Role.Role); err != nil {
			return err
		}
		_, err := optionalKey("role.key", r.Role.Key)
		return err
	case r.Revoke != nil:
		return r.Revoke.check()
	default:
		_, err := r.Rule.rule()
		return err
	}
}

func checkMember(field, name string) error {
	if name == "" {
		return invalid(field, "required: a member name")
	}
	if err := config.CheckName(name); err != nil {
		return invalid(field, "%v", err)
	}
	return nil
}

func checkRole(field, role string) (protocol.Role, error) {
	r, err := protocol.ParseRole(role)
	if err != nil {
		return "", invalid(field, "%q is not a role: use referral, platform, auditor or access", role)
	}
	return r, nil
}

// optionalKey parses a hex author key; "" is the zero key.
func optionalKey(field, s string) (protocol.AuthorKey, error) {
	if s == "" {
		return protocol.AuthorKey{}, nil
	}
	return parseKey(field, s)
}

func parseKey(field, s string) (protocol.AuthorKey, error) {
	var k protocol.AuthorKey
	if len(s) != 2*len(k) {
		return k, invalid(field, "want %d hex characters (an ed25519 public key), got %d: %s", 2*len(k), len(s), quote(s))
	}
	if _, err := hex.Decode(k[:], []byte(s)); err != nil {
		return k, invalid(field, "%s is not hex", quote(s))
	}
	if k == (protocol.AuthorKey{}) {
		return k, invalid(field, "all zeros: not a key")
	}
	return k, nil
}

// quote is %q of s, cut to a readable length.
func quote(s string) string {
	const max = 80
	if len(s) > max {
		return fmt.Sprintf("%q…", s[:max])
	}
	return fmt.Sprintf("%q", s)
}

// member is the block as a roster member, checked as config checks a
// genesis block (config.CheckMember), peer ID and addresses canonical.
func (b *Block) member() (protocol.Member, error) {
	for _, f := range []struct{ name, value string }{{"name", b.Name}, {"role", b.Role}, {"author_key", b.AuthorKey}, {"peer_id", b.PeerID}} {
		if f.value == "" {
			return protocol.Member{}, invalid("admit."+f.name, "required: copy it from the [[member]] block `staydown init` printed for the node")
		}
	}
	if err := checkMember("admit.name", b.Name); err != nil {
		return protocol.Member{}, err
	}
	role, err := checkRole("admit.role", b.Role)
	if err != nil {
		return protocol.Member{}, err
	}
	k, err := parseKey("admit.author_key", b.AuthorKey)
	if err != nil {
		return protocol.Member{}, err
	}
	m, err := config.CheckMember(protocol.Member{Name: b.Name, Role: role, AuthorKey: k, PeerID: b.PeerID, Addrs: b.Addrs})
	if err != nil {
		// config names the key: "peer_id: ...", "addrs: address 2: ...".
		key, msg, _ := strings.Cut(err.Error(), ": ")
		return protocol.Member{}, &fieldError{field: "admit." + key, msg: msg}
	}
	if len(m.Addrs) > protocol.MaxAddrs {
		return protocol.Member{}, invalid("admit.addrs", "%d addresses, limit %d", len(m.Addrs), protocol.MaxAddrs)
	}
	return m, nil
}

func (r *Revocation) check() error {
	if err := checkMember("revoke.member", r.Member); err != nil {
		return err
	}
	if r.AfterSeq == nil {
		return invalid("revoke.after_seq", "required: the seq of the key's last entry that still counts (the entries after it are the thief's); 0 voids them all")
	}
	k, err := optionalKey("revoke.key", r.Key)
	if err != nil {
		return err
	}
	nk, err := optionalKey("revoke.new_key", r.NewKey)
	if err != nil {
		return err
	}
	if nk != (protocol.AuthorKey{}) && nk == k {
		return invalid("revoke.new_key", "is the revoked key")
	}
	return nil
}

func (r *Rule) rule() (*pb.VotingRule, error) {
	if len(r.Roles) == 0 || len(r.Roles) > 3 {
		return nil, invalid("rule.roles", "want 1 to 3 roles (referral, platform, auditor), got %d", len(r.Roles))
	}
	for i, s := range r.Roles {
		field := fmt.Sprintf("rule.roles[%d]", i)
		if _, err := checkRole(field, s); err != nil {
			return nil, err
		}
		if slices.Contains(r.Roles[:i], s) {
			return nil, invalid(field, "%q is listed twice", s)
		}
	}
	if r.ThresholdPercent < protocol.MinThreshold || r.ThresholdPercent > protocol.MaxThreshold {
		return nil, invalid("rule.threshold_percent", "want %d to %d (an amendment passes with more than this share of the voters), got %d",
			protocol.MinThreshold, protocol.MaxThreshold, r.ThresholdPercent)
	}
	return &pb.VotingRule{Roles: slices.Clone(r.Roles), ThresholdPercent: r.ThresholdPercent}, nil
}

// Amend builds the amendment req asks for, of the version in force in
// h. A removal's, role change's or revocation's key defaults to the
// member's current key; a removal's or role change's after_seq to
// head(key), this node's head of that key's log, so that entries the
// member signs after the proposal do not count (SPEC 12.3). Errors wrap
// kind.ErrInvalid (the request's shape: Check), kind.ErrNotFound (no such
// member) or kind.ErrConflict (the amendment cannot apply to the version
// in force: a name or key in use, a removed member, the last voter...);
// an error of head is returned as it is.
func Amend(h *membership.History, req ProposeRequest, head func(protocol.AuthorKey) (uint64, error)) (*pb.Amendment, error) {
	if err := req.Check(); err != nil {
		return nil, err
	}
	a := &pb.Amendment{Base: h.Version()}
	switch {
	case req.Admit != nil:
		m, err := req.Admit.member()
		if err != nil {
			return nil, err
		}
		a.Change = &pb.Amendment_Admit{Admit: membership.Block(m)}
	case req.Remove != nil:
		c := req.Remove
		key, after, err := cut(h, c.Member, c.Key, c.AfterSeq, head)
		if err != nil {
			return nil, err
		}
		a.Change = &pb.Amendment_Remove{Remove: &pb.Removal{Member: c.Member, Key: key[:], AfterSeq: after}}
	case req.Role != nil:
		c := req.Role
		key, after, err := cut(h, c.Member, c.Key, c.AfterSeq, head)
		if err != nil {
			return nil, err
		}
		a.Change = &pb.Amendment_Role{Role: &pb.RoleChange{Member: c.Member, Key: key[:], AfterSeq: after, Role: c.Role}}
	case req.Revoke != nil:
		c := req.Revoke
		key, after, err := cut(h, c.Member, c.Key, c.AfterSeq, head)
		if err != nil {
			return nil, err
		}
		rv := &pb.Revocation{Member: c.Member, Key: key[:], AfterSeq: after}
		if c.NewKey != "" {
			nk, _ := parseKey("revoke.new_key", c.NewKey) // Check parsed it
			if nk == key {
				return nil, invalid("revoke.new_key", "is the revoked key")
			}
			rv.NewKey = nk[:]
		}
		a.Change = &pb.Amendment_Revoke{Revoke: rv}
	default:
		r, err := req.Rule.rule()
		if err != nil {
			return nil, err
		}
		a.Change = &pb.Amendment_Rule{Rule: r}
	}
	// What every peer checks on receipt; the checks above should have
	// caught everything first.
	if err := protocol.CheckPayload(&pb.Entry{Payload: &pb.Entry_Amendment{Amendment: a}}); err != nil {
		return nil, fmt.Errorf("%w: %w", kind.ErrInvalid, err)
	}
	if why := h.CanApply(a); why != "" {
		return nil, refuse(kind.ErrConflict, "cannot apply to roster version %d: it %s", h.Version(), why)
	}
	return a, nil
}

// cut resolves the member, key and after_seq of a removal, role change or
// revocation.
func cut(h *membership.History, name, keyHex string, afterSeq *uint64, head func(protocol.AuthorKey) (uint64, error)) (protocol.AuthorKey, uint64, error) {
	var key protocol.AuthorKey
	m, ok := h.Roster().ByName(name)
	if !ok {
		if v, was := h.Admitted(name); was {
			return key, 0, refuse(kind.ErrConflict, "member %q (admitted at roster version %d) was removed: roster version %d has no such member", name, v, h.Version())
		}
		return key, 0, refuse(kind.ErrNotFound, "no member %q in roster version %d (members: %s)", name, h.Version(), h.Roster().Names())
	}
	key = m.AuthorKey
	if keyHex != "" {
		key, _ = parseKey("key", keyHex) // Check parsed it
	}
	if afterSeq != nil {
		return key, *afterSeq, nil
	}
	after, err := head(key)
	return key, after, err
}

// CheckVoter refuses (kind.ErrForbidden) a node that does not vote at the
// version in force: name with key is no member of the roster in force
// (not admitted yet, removed, or the key rotated away), or its role has
// no vote under the rule in force.
func CheckVoter(h *membership.History, name string, key protocol.AuthorKey) error {
	m, ok := h.Roster().ByName(name)
	if !ok || m.AuthorKey != key {
		return refuse(kind.ErrForbidden, "%s is not a member of roster version %d with this node's author key: only voting members propose and approve amendments", name, h.Version())
	}
	if !h.Votes(name) {
		return refuse(kind.ErrForbidden, "%s (%s) does not vote under the rule in force (%s)", name, m.Role, h.Rule())
	}
	return nil
}

// CheckFirstVote refuses (kind.ErrConflict) a new amendment by member
// name when it has voted at the version in force already: its amendment
// would be a second vote at one version, a conflicting approval that
// every node keeps as evidence against it (SPEC 12.3).
func CheckFirstVote(h *membership.History, name string) error {
	id, voted := h.Voted(name)
	if !voted {
		return nil
	}
	return refuse(kind.ErrConflict, "%s voted at roster version %d already, %s: a second amendment of one version is a conflicting vote, evidence against %s; approve that proposal, or wait until the version moves",
		name, h.Version(), votedFor(h, id), name)
}

func votedFor(h *membership.History, id protocol.ID) string {
	if id == (protocol.ID{}) {
		return "for an amendment this node does not hold"
	}
	if p, ok := Find(h, id); ok {
		return fmt.Sprintf("for proposal %s (%s)", id, p.Change)
	}
	return "for proposal " + id.String()
}

// Approval is member name's approval of proposal id, which must be
// pending at the version in force. Errors wrap kind.ErrNotFound (no such
// pending proposal) or kind.ErrConflict (it passed already; name voted at
// this version already, for it or for another).
func Approval(h *membership.History, name string, id protocol.ID) (*pb.Approval, error) {
	p, ok := Find(h, id)
	switch {
	case ok && p.Passed:
		return nil, refuse(kind.ErrConflict, "proposal %s passed already: it made roster version %d (%s)", id, p.Version, p.Change)
	case ok && p.Void != "":
		return nil, refuse(kind.ErrNotFound, "no pending proposal %s at roster version %d: it is void (%s)", id, h.Version(), p.Void)
	case !ok:
		return nil, refuse(kind.ErrNotFound, "no pending proposal %s at roster version %d (staydown member proposals lists them)", id, h.Version())
	}
	if got, voted := h.Voted(name); voted {
		if got == id {
			return nil, refuse(kind.ErrConflict, "%s already approved proposal %s", name, id)
		}
		return nil, refuse(kind.ErrConflict, "%s voted at roster version %d already, %s: approving a second amendment of one version is a conflicting vote, evidence against %s",
			name, h.Version(), votedFor(h, got), name)
	}
	return &pb.Approval{Proposal: id[:], Base: p.Base}, nil
}

// Propose is the amendment a voting member (name, signing with key)
// proposes at the version in force in h: Check, then CheckVoter,
// CheckFirstVote and Amend, in that order. The caller signs it as the
// member's next entry, holding its lock on the member's votes from the
// reading of h to the signing: two amendments of one version would be
// evidence against it.
func Propose(h *membership.History, name string, key protocol.AuthorKey, req ProposeRequest, head func(protocol.AuthorKey) (uint64, error)) (*pb.Amendment, error) {
	if err := req.Check(); err != nil {
		return nil, err
	}
	if err := CheckVoter(h, name, key); err != nil {
		return nil, err
	}
	if err := CheckFirstVote(h, name); err != nil {
		return nil, err
	}
	return Amend(h, req, head)
}

// Approve is voting member name's approval of proposal id, pending at
// the version in force in h: CheckVoter, then Approval. The caller signs
// it under the same lock as Propose's.
func Approve(h *membership.History, name string, key protocol.AuthorKey, id protocol.ID) (*pb.Approval, error) {
	if err := CheckVoter(h, name, key); err != nil {
		return nil, err
	}
	return Approval(h, name, id)
}

// Published is the amendment with entry id as h has it once published:
// pending, passed or void. A history that does not hold it yet (its
// computation failed after the commit: the node logged it) gives the
// amendment a as its proposer's one vote, so that the caller, whose entry
// is signed and stored, never answers with an error and is asked again.
func Published(h *membership.History, id protocol.ID, proposer string, a *pb.Amendment) Proposal {
	if p, ok := Find(h, id); ok {
		return p
	}
	return Proposal{ID: id.String(), Base: a.Base, Proposer: proposer, Change: membership.Describe(a), Amendment: amendmentView(a),
		Votes: []string{proposer}, Missing: []string{}, Elsewhere: []string{}}
}
