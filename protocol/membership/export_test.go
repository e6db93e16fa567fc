package membership

import (
	"fmt"
	"reflect"
)

// DecodeSnapshot is UnmarshalSnapshot past its checksum: what the fuzz
// target reaches, which random bytes with a bad checksum would not.
var DecodeSnapshot = decodeSnapshot

// Differs says where a and b differ ("" if nowhere), the caches left
// out: the entries a history holds or loads (compare with Entry), and
// the state's list of voters (computed when asked).
func Differs(a, b *History) string {
	sa, sb := *a.now, *b.now
	sa.voting, sb.voting = nil, nil
	for _, f := range []struct {
		name string
		a, b any
	}{
		{"Genesis", a.Genesis, b.Genesis}, {"Versions", a.Versions, b.Versions},
		{"Pending", a.Pending, b.Pending}, {"Conflicts", a.Conflicts, b.Conflicts},
		{"Voids", a.Voids, b.Voids}, {"voidSet", a.voidSet, b.voidSet},
		{"state.version", sa.version, sb.version}, {"state.rule", sa.rule, sb.rule},
		{"state.members", sa.members, sb.members}, {"state.order", sa.order, sb.order},
		{"state.cuts", sa.cuts, sb.cuts}, {"state.succ", sa.succ, sb.succ},
		{"state.keys", sa.keys, sb.keys}, {"state.declared", sa.declared, sb.declared},
		{"state.byName", sa.byName, sb.byName}, {"state.admittedPeers", sa.admittedPeers, sb.admittedPeers},
	} {
		if !reflect.DeepEqual(f.a, f.b) {
			return fmt.Sprintf("%s: %+v\nwant %+v", f.name, f.a, f.b)
		}
	}
	if !reflect.DeepEqual(sa, sb) {
		return "state: a field Differs does not name"
	}
	return ""
}
