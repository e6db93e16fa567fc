package membership

import (
	"bytes"
	"slices"

	"github.com/staydown/staydown/protocol"
)

// Everyone is every member the history has admitted, removed ones
// included, in admission order, as a roster that names every author key
// the history knows: each member with its role now (at its removal, for
// a removed member), its current key (the last of its chain that can
// still sign), and every key it has had, its chain in order first, then
// the keys that left the chain. A member not removed has its peer ID and
// addresses; a removed one has none (another member may hold its peer ID
// now). Its Version is the version in force.
//
// A transparency report or an audit names authors by it: the entries a
// removed member signed before its removal still count, and so do those
// of a key it has rotated away from.
func (h *History) Everyone() *protocol.Roster {
	r, err := h.everyone()
	if err != nil {
		// Keys are unique across members and peer IDs across the members
		// not removed (Compute checks both before it admits or rotates;
		// UnmarshalSnapshot builds this once); a failure here is a bug in
		// this package.
		panic("membership: everyone: " + err.Error())
	}
	return r
}

func (h *History) everyone() (*protocol.Roster, error) {
	s := h.now
	var ms []protocol.Member
	// Each member's keys, by member: one pass over the keys, not one a
	// member.
	held := map[string][]protocol.AuthorKey{}
	for k, ks := range s.keys {
		held[ks.Member] = append(held[ks.Member], k)
	}
	for _, name := range s.order {
		m := s.members[name]
		cur := m.first
		keys := slices.Clone(m.chain)
		for _, k := range m.chain {
			if s.keys[k].End != 0 {
				cur = k
			}
		}
		var gone []protocol.AuthorKey
		for _, k := range held[name] {
			if !slices.Contains(keys, k) {
				gone = append(gone, k)
			}
		}
		slices.SortFunc(gone, func(a, b protocol.AuthorKey) int { return bytes.Compare(a[:], b[:]) })
		mem := protocol.Member{Name: name, Role: m.role, AuthorKey: cur, Keys: append(keys, gone...)}
		if !m.removed {
			mem.PeerID, mem.Addrs = m.peer, slices.Clone(m.addrs)
		}
		ms = append(ms, mem)
	}
	r, err := protocol.NewRoster(h.Genesis.Roster.Federation, ms)
	if err != nil {
		return nil, err
	}
	r.Version = s.version
	return r, nil
}
