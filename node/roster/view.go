// Package roster is what a node says of the federation's membership (SPEC
// 12) and how it turns a moderator's request into an amendment or an
// approval: the views of GET /v1/members and /v1/proposals, the request
// of POST /v1/proposals, and the checks a node makes before it signs a
// vote. It reads a membership.History and nothing else: no I/O, so the
// node (node/members_api.go) supplies the history in force, this node's
// identity and its view of a log's head.
package roster

import (
	"encoding/hex"
	"slices"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/pb"
)

// View is the membership as a node holds it: the body of GET /v1/members
// and of `staydown member list --json`.
type View struct {
	Federation string `json:"federation"`
	Genesis    string `json:"genesis"` // SHA-256 of the genesis, hex (SPEC 12.1)
	Version    uint64 `json:"version"` // the roster version in force (SPEC 12.3)
	Rule       Rule   `json:"rule"`    // the voting rule in force
	// Voters is how many members vote under the rule in force; Needed how
	// many approvals pass an amendment of this version.
	Voters    int        `json:"voters"`
	Needed    int        `json:"needed"`
	Proposals int        `json:"proposals"` // amendments of this version that wait for votes
	Members   []Member   `json:"members"`   // in admission order
	Removed   []Removed  `json:"removed"`   // in the order of their removal
	Conflicts []Conflict `json:"conflicts"`
	History   []Version  `json:"history"` // version 0 (the genesis) first
}

// Rule is a voting rule: members of these roles vote, and an amendment
// passes with more than threshold_percent of their votes.
type Rule struct {
	Roles            []string `json:"roles"`
	ThresholdPercent uint32   `json:"threshold_percent"`
}

// Member is a member of the roster in force.
type Member struct {
	Name      string   `json:"name"`
	Role      string   `json:"role"`
	Votes     bool     `json:"votes"`      // under the rule in force
	AuthorKey string   `json:"author_key"` // the key it signs with now, hex
	Keys      []Key    `json:"keys"`       // its chain of keys, the admitted one first (SPEC 12.4)
	PeerID    string   `json:"peer_id"`
	Addrs     []string `json:"addrs"`
	Since     uint64   `json:"since"` // the roster version that admitted it (0: a founder)
}

// Key is one key of a member's chain.
type Key struct {
	Key string `json:"key"` // hex
	// End is the last seq of the key's log that counts; null while the
	// key is open, 0 when none does.
	End *uint64 `json:"end"`
	Why string  `json:"why,omitempty"` // rotated, revoked, removed, replaced
}

// Removed is a member a passed amendment removed.
type Removed struct {
	Name    string `json:"name"`
	Version uint64 `json:"version"` // the version that removed it
}

// Conflict is a member that voted for two amendments of one version:
// evidence against it, like an equivocation (SPEC 12.3). The first entry's
// vote is the one that counts.
type Conflict struct {
	Member string `json:"member"`
	Base   uint64 `json:"base"`
	First  string `json:"first"`  // entry id, hex
	Second string `json:"second"` // entry id, hex
}

// Version is one roster version of the history.
type Version struct {
	N        uint64   `json:"n"`
	Proposal string   `json:"proposal,omitempty"` // the amendment that made it; absent for the genesis
	Proposer string   `json:"proposer,omitempty"`
	Change   string   `json:"change"`
	Votes    []string `json:"votes"` // members whose approvals counted
	Voters   int      `json:"voters"`
	Needed   int      `json:"needed"`
}

// ProposalList is the body of GET /v1/proposals: the amendments of the
// version in force that wait for votes.
type ProposalList struct {
	Version   uint64     `json:"version"`
	Proposals []Proposal `json:"proposals"`
}

// Proposal is an amendment and its votes: pending at the version in
// force, or passed.
type Proposal struct {
	ID        string    `json:"id"` // entry id of the amendment, hex
	Base      uint64    `json:"base"`
	Proposer  string    `json:"proposer"`
	Change    string    `json:"change"` // what it changes, for people
	Amendment Amendment `json:"amendment"`
	Votes     []string  `json:"votes"` // members whose vote counts for it
	Voters    int       `json:"voters"`
	Needed    int       `json:"needed"`
	// Missing are the voters that have not voted at its base (for a
	// passed amendment, those whose vote did not count for it);
	// Elsewhere those whose vote went to another amendment of its base.
	Missing   []string `json:"missing"`
	Elsewhere []string `json:"elsewhere"`
	// Passed: it made roster version Version.
	Passed  bool   `json:"passed"`
	Version uint64 `json:"version,omitempty"`
	// Void, when set, says why the amendment has no effect (another
	// amendment of its base passed first).
	Void string `json:"void,omitempty"`
}

// Amendment is an amendment's content: its base and exactly one change.
type Amendment struct {
	Base   uint64      `json:"base"`
	Admit  *Block      `json:"admit,omitempty"`
	Remove *Removal    `json:"remove,omitempty"`
	Role   *RoleChange `json:"role,omitempty"`
	Revoke *Revocation `json:"revoke,omitempty"`
	Rule   *Rule       `json:"rule,omitempty"`
}

// Block is a member block: the [[member]] block `staydown init` printed.
type Block struct {
	Name      string   `json:"name"`
	Role      string   `json:"role"`
	AuthorKey string   `json:"author_key"` // hex
	PeerID    string   `json:"peer_id"`
	Addrs     []string `json:"addrs"`
}

// Removal removes a member: its key (hex) ends after AfterSeq.
type Removal struct {
	Member   string  `json:"member"`
	Key      string  `json:"key,omitempty"`
	AfterSeq *uint64 `json:"after_seq,omitempty"`
}

// RoleChange gives a member a new role for the entries of its key after
// AfterSeq.
type RoleChange struct {
	Member   string  `json:"member"`
	Role     string  `json:"role"`
	Key      string  `json:"key,omitempty"`
	AfterSeq *uint64 `json:"after_seq,omitempty"`
}

// Revocation ends a member's key after AfterSeq (a stolen key); NewKey,
// if set, is its key from then on.
type Revocation struct {
	Member   string  `json:"member"`
	Key      string  `json:"key,omitempty"`
	AfterSeq *uint64 `json:"after_seq,omitempty"`
	NewKey   string  `json:"new_key,omitempty"`
}

// Describe is the view of the membership h, the one in force.
func Describe(h *membership.History) View {
	r := h.Roster()
	gh := h.Genesis.Hash()
	v := View{
		Federation: r.Federation, Genesis: hex.EncodeToString(gh[:]), Version: h.Version(),
		Rule: ruleView(h.Rule()), Proposals: len(h.Pending),
		Members: []Member{}, Removed: []Removed{}, Conflicts: []Conflict{}, History: []Version{},
	}
	for _, m := range r.Members {
		since, _ := h.Admitted(m.Name)
		votes := h.Votes(m.Name)
		if votes {
			v.Voters++
		}
		mv := Member{Name: m.Name, Role: string(m.Role), Votes: votes, AuthorKey: m.AuthorKey.String(),
			PeerID: m.PeerID, Addrs: nonNil(m.Addrs), Since: since}
		keys := m.Keys
		if len(keys) == 0 {
			keys = []protocol.AuthorKey{m.AuthorKey}
		}
		for _, k := range keys {
			kv := Key{Key: k.String()}
			if ks, ok := h.Key(k); ok {
				kv.Why = ks.Why
				if ks.End != membership.Open {
					kv.End = ptr(ks.End)
				}
			}
			mv.Keys = append(mv.Keys, kv)
		}
		v.Members = append(v.Members, mv)
	}
	v.Needed = h.Rule().Needed(v.Voters)
	for i, ver := range h.Versions {
		vv := Version{N: ver.N, Proposer: ver.Proposer, Change: ver.Change, Votes: voteNames(ver.Votes), Voters: ver.Voters, Needed: ver.Needed}
		if i > 0 {
			vv.Proposal = ver.Proposal.String()
			if ver.Removed != "" {
				v.Removed = append(v.Removed, Removed{Name: ver.Removed, Version: ver.N})
			}
		}
		v.History = append(v.History, vv)
	}
	for _, c := range h.Conflicts {
		v.Conflicts = append(v.Conflicts, Conflict{Member: c.Member, Base: c.Base, First: c.First.ID.String(), Second: c.Second.ID.String()})
	}
	return v
}

// Pending is the list of the amendments of the version in force.
func Pending(h *membership.History) ProposalList {
	l := ProposalList{Version: h.Version(), Proposals: []Proposal{}}
	for _, p := range h.Pending {
		l.Proposals = append(l.Proposals, pendingView(p))
	}
	return l
}

// Find is the amendment with this id as h has it: pending at the version
// in force, passed, or void (with why). false if h does not hold it as
// any of these (an id of no amendment, or one never logged).
func Find(h *membership.History, id protocol.ID) (Proposal, bool) {
	for _, p := range h.Pending {
		if p.ID == id {
			return pendingView(p), true
		}
	}
	for i, ver := range h.Versions {
		if i == 0 || ver.Proposal != id {
			continue
		}
		e, ok := h.Entry(id)
		if !ok {
			break
		}
		a := e.Body.GetAmendment()
		prev := h.Versions[i-1]
		p := Proposal{ID: id.String(), Base: prev.N, Proposer: ver.Proposer, Change: ver.Change, Amendment: amendmentView(a),
			Votes: voteNames(ver.Votes), Voters: ver.Voters, Needed: ver.Needed, Missing: []string{}, Elsewhere: []string{},
			Passed: true, Version: ver.N}
		p.Missing = append(p.Missing, ver.Missing...)
		return p, true
	}
	for _, v := range h.Voids {
		a := v.Entry.Body.GetAmendment()
		if v.Entry.ID != id || a == nil {
			continue
		}
		return Proposal{ID: id.String(), Base: a.Base, Proposer: h.NameOf(v.Entry.Author), Change: membership.Describe(a),
			Amendment: amendmentView(a), Votes: []string{}, Missing: []string{}, Elsewhere: []string{}, Void: v.Why}, true
	}
	return Proposal{}, false
}

func pendingView(p membership.Proposal) Proposal {
	return Proposal{
		ID: p.ID.String(), Base: p.Base, Proposer: p.Proposer, Change: p.Change, Amendment: amendmentView(p.Body),
		Votes: voteNames(p.Votes), Voters: p.Voters, Needed: p.Needed,
		Missing: nonNil(p.Missing), Elsewhere: nonNil(p.Elsewise),
	}
}

func amendmentView(a *pb.Amendment) Amendment {
	out := Amendment{Base: a.GetBase()}
	switch c := a.GetChange().(type) {
	case *pb.Amendment_Admit:
		b := c.Admit
		out.Admit = &Block{Name: b.Name, Role: b.Role, AuthorKey: hex.EncodeToString(b.AuthorKey), PeerID: b.PeerId, Addrs: nonNil(b.Addrs)}
	case *pb.Amendment_Remove:
		out.Remove = &Removal{Member: c.Remove.Member, Key: hex.EncodeToString(c.Remove.Key), AfterSeq: ptr(c.Remove.AfterSeq)}
	case *pb.Amendment_Role:
		out.Role = &RoleChange{Member: c.Role.Member, Role: c.Role.Role, Key: hex.EncodeToString(c.Role.Key), AfterSeq: ptr(c.Role.AfterSeq)}
	case *pb.Amendment_Revoke:
		out.Revoke = &Revocation{Member: c.Revoke.Member, Key: hex.EncodeToString(c.Revoke.Key), AfterSeq: ptr(c.Revoke.AfterSeq),
			NewKey: hex.EncodeToString(c.Revoke.NewKey)}
	case *pb.Amendment_Rule:
		out.Rule = &Rule{Roles: nonNil(c.Rule.Roles), ThresholdPercent: c.Rule.ThresholdPercent}
	}
	return out
}

func ruleView(r membership.Rule) Rule {
	out := Rule{Roles: []string{}, ThresholdPercent: r.Threshold}
	for _, role := range r.Roles {
		out.Roles = append(out.Roles, string(role))
	}
	return out
}

func voteNames(vs []membership.Vote) []string {
	out := []string{}
	for _, v := range vs {
		out = append(out, v.Member)
	}
	return out
}

// nonNil is ss, or an empty slice: JSON [] rather than null.
func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return slices.Clone(ss)
}

func ptr(v uint64) *uint64 { return &v }

// PeerRequest is the body of POST /v1/members/peer: the addresses to
// announce (none: those the node listens on).
type PeerRequest struct {
	Addrs []string `json:"addrs"`
}

// Check validates the addresses: at most 16 multiaddrs, each without a
// /p2p/ part (the peer ID is the node's). Errors wrap kind.ErrInvalid.
func (r PeerRequest) Check() error {
	if len(r.Addrs) > protocol.MaxAddrs {
		return invalid("addrs", "%d addresses, at most %d", len(r.Addrs), protocol.MaxAddrs)
	}
	if _, err := config.CheckAddrs(r.Addrs); err != nil {
		return invalid("addrs", "%v", err)
	}
	return nil
}

// PeerAnnounced is what a node announced of its own peer (SPEC 12.4).
type PeerAnnounced struct {
	ID     string   `json:"id"` // the peer-update entry
	PeerID string   `json:"peer_id"`
	Addrs  []string `json:"addrs"`
}
