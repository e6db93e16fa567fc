package membership

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// Verdict is what the membership says of an entry (SPEC 12.5).
type Verdict int

const (
	// In: the author is a member's key, the entry is within the key's
	// end, and the member's role then may write it.
	In Verdict = iota
	// Unknown: the author is no member's key, as far as this history
	// knows. The entry may become In when an admission passes: hold it.
	Unknown
	// Outside: the entry is past the end of its key (rotated, revoked,
	// removed), by at most OutsideSlack. It is stored, void: no effect.
	Outside
	// Past: the entry is more than OutsideSlack past the end of its key.
	// It is not stored.
	Past
	// Role: the author's role at that seq may not write the entry (or
	// the reply's status), or a notice is not addressed to a platform (a
	// blocking order to an access provider). The entry is void.
	Role
)

var verdictNames = [...]string{In: "in", Unknown: "unknown", Outside: "outside", Past: "past", Role: "role"}

// OutsideSlack is how many entries past the end of its key a log keeps,
// void (SPEC 12.5): enough that every node holds the same log of a
// revoked key, and the votes it cast before the revocation, while a thief
// cannot make every node store its key's log for ever.
const OutsideSlack = 256

func (v Verdict) String() string { return verdictNames[v] }

// Judge says what the membership in force for e makes of it, with a
// reason for every verdict but In.
func (h *History) Judge(author protocol.AuthorKey, seq uint64, body *pb.Entry) (Verdict, string) {
	s := h.now
	ks, ok := s.keys[author]
	if !ok {
		return Unknown, "author " + author.String() + " is not a member's key"
	}
	if seq > ks.End {
		v := Outside
		if seq-ks.End > OutsideSlack {
			v = Past
		}
		if ks.End == 0 {
			return v, ks.Member + "'s key " + short(author) + " " + ks.Why + ": no entry of it counts"
		}
		return v, ks.Member + "'s key " + short(author) + " " + ks.Why + " after seq " + strconv.FormatUint(ks.End, 10)
	}
	m := s.members[ks.Member]
	role := m.roleAt(ks, author, seq)
	k := protocol.KindOf(body)
	if !protocol.MayWrite(role, k) {
		return Role, m.name + " (" + string(role) + ") may not write a " + string(k)
	}
	if n := body.GetNotice(); n != nil {
		var to protocol.AuthorKey
		copy(to[:], n.Addressee)
		a, ok := s.keys[to]
		if n.Blocking != nil {
			if !ok || !s.members[a.Member].hadRole(protocol.RoleAccess) {
				return Role, "blocking order addressed to " + to.String() + ", which is not an access provider's key"
			}
		} else if !ok || !s.members[a.Member].platform {
			return Role, "notice addressed to " + to.String() + ", which is not a platform's key"
		}
	}
	if r := body.GetNoticeReply(); r != nil && !protocol.MayReply(role, r.Status) {
		return Role, m.name + " (" + string(role) + ") may not reply " + protocol.ReplyStatuses[r.Status]
	}
	return In, ""
}

// hadRole reports whether the member has had the role in some roster
// version: admitted with it or given it by an amendment.
func (m *member) hadRole(role protocol.Role) bool {
	if m.admittedRole == role {
		return true
	}
	for _, sg := range m.segs {
		if sg.role == role {
			return true
		}
	}
	return false
}

// roleAt is the member's role for entry seq of key (SPEC 12.3): the role
// it was admitted with, changed by each role amendment that covers the
// entry, in version order.
func (m *member) roleAt(ks KeyState, key protocol.AuthorKey, seq uint64) protocol.Role {
	role := m.admittedRole
	for _, sg := range m.segs {
		if ks.Pos > sg.pos || ks.Pos == sg.pos && (key != sg.key || seq > sg.after) {
			role = sg.role
		}
	}
	return role
}

// Roster is the roster in force: the latest version, with the peer IDs and
// addresses its members last gave.
func (h *History) Roster() *protocol.Roster { return h.Versions[len(h.Versions)-1].Roster }

// Version is the number of the roster version in force.
func (h *History) Version() uint64 { return h.Versions[len(h.Versions)-1].N }

// Key is what the history says of author key k, false if it is no
// member's key.
func (h *History) Key(k protocol.AuthorKey) (KeyState, bool) {
	ks, ok := h.now.keys[k]
	return ks, ok
}

// Fingerprint is a digest of everything Judge reads: two histories with
// the same fingerprint judge every entry alike.
func (h *History) Fingerprint() []byte {
	s := h.now
	d := sha256.New()
	keys := slices.SortedFunc(maps.Keys(s.keys), func(a, b protocol.AuthorKey) int { return bytes.Compare(a[:], b[:]) })
	for _, k := range keys {
		ks := s.keys[k]
		fmt.Fprintf(d, "key %x %s %d %d\n", k[:], ks.Member, ks.Pos, ks.End)
	}
	for _, name := range slices.Sorted(maps.Keys(s.members)) {
		m := s.members[name]
		fmt.Fprintf(d, "member %s %s %t\n", name, m.admittedRole, m.platform)
		for _, sg := range m.segs {
			fmt.Fprintf(d, "role %x %d %d %s\n", sg.key[:], sg.pos, sg.after, sg.role)
		}
	}
	return d.Sum(nil)
}

// Affected reports, for a log of author held up to seq head, whether
// Judge may say something else of one of its entries than old did, in
// the direction that takes effect away: a key's end that moved, a role
// that changed. (Verdicts only turn from void to in through a member
// gaining the platform or access role; a store finds those among its void
// entries.)
// A nil old stands for judging every entry in (a store derived without a
// membership: one of schema 4, or seeded by a tool): a log is affected
// unless its key is a member's, it ends within the key's end, its role
// never changed, and it is no auditor's (auditors wrote nothing before).
func (h *History) Affected(old *History) func(author protocol.AuthorKey, head uint64) bool {
	return func(author protocol.AuthorKey, head uint64) bool {
		if old == nil {
			ks, ok := h.now.keys[author]
			if !ok || ks.End < head {
				return true
			}
			m := h.now.members[ks.Member]
			return len(m.segs) > 0 || m.admittedRole == protocol.RoleAuditor
		}
		now, okNow := h.now.keys[author]
		was, okWas := old.now.keys[author]
		if okNow != okWas {
			return true
		}
		if !okNow {
			return false
		}
		if now.End != was.End && min(now.End, was.End) < head {
			return true
		}
		m, o := h.now.members[now.Member], old.now.members[was.Member]
		return now.Member != was.Member || m.admittedRole != o.admittedRole || !slices.Equal(m.segs, o.segs)
	}
}

// NameOf is the member name of key k, current or past (removed members
// included), or k in hex when no member ever had it.
func (h *History) NameOf(k protocol.AuthorKey) string {
	if ks, ok := h.now.keys[k]; ok {
		return ks.Member
	}
	return k.String()
}

// CanApply says why amendment a cannot apply to the roster version in
// force ("" if it can): what a node checks before it proposes (SPEC 12.3).
func (h *History) CanApply(a *pb.Amendment) string { return h.now.check(a) }

// Votes reports whether member name votes at the version in force.
func (h *History) Votes(name string) bool {
	m, ok := h.now.members[name]
	return ok && !m.removed && h.now.rule.Votes(m.role)
}

// Rule is the voting rule in force.
func (h *History) Rule() Rule { return h.now.rule }

// Voted is the amendment member name's vote at the version in force
// counts for, if it has voted.
func (h *History) Voted(name string) (protocol.ID, bool) {
	for _, p := range h.Pending {
		for _, v := range p.Votes {
			if v.Member == name {
				return p.ID, true
			}
		}
	}
	for _, p := range h.Pending {
		if slices.Contains(p.Elsewise, name) {
			return protocol.ID{}, true // for an amendment not (yet) seen
		}
	}
	return protocol.ID{}, false
}

// Admitted is the roster version that admitted member name (0: the
// genesis), false if it never was a member.
func (h *History) Admitted(name string) (uint64, bool) {
	m, ok := h.now.members[name]
	if !ok {
		return 0, false
	}
	return m.admitted, true
}

// Entry is the membership entry with id, if the history was computed with it.
func (h *History) Entry(id protocol.ID) (*protocol.Entry, bool) {
	if e, ok := h.entries[id]; ok {
		return e, true
	}
	if h.load != nil {
		return h.load(id)
	}
	return nil, false
}
