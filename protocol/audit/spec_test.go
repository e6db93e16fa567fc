package audit_test

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/audit"
	"github.com/staydown/staydown/protocol/export/exporttest"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/prototest"
)

// TestSpecAdmitRemovedPeerID: SPEC 12.3 says an admission can apply when
// "the name, author key and peer ID are no member's of S's history
// (removed members' too ...)": an admission with a removed member's peer
// ID is void, and the entries of the key it names are by an unknown
// author. (The reference once compared with the members in force only;
// the Python verifier, written from the SPEC, found it.)
func TestSpecAdmitRemovedPeerID(t *testing.T) {
	const fed = "spec"
	keys := map[string]*prototest.Log{}
	logs := map[string][][]byte{}
	var ms []protocol.Member
	for i, n := range []string{"a", "b", "c", "d"} {
		k := prototest.NewLog(keyOf(byte(i+1)), fed)
		keys[n] = k
		if n != "d" {
			role := protocol.RoleReferral
			if n == "c" {
				role = protocol.RolePlatform
			}
			ms = append(ms, protocol.Member{Name: n, Role: role, AuthorKey: k.Head.Author, PeerID: fakePeer(n)})
		}
	}
	r, err := protocol.NewRoster(fed, ms)
	if err != nil {
		t.Fatal(err)
	}
	g, err := membership.NewGenesis(r, membership.Rule{})
	if err != nil {
		t.Fatal(err)
	}
	next := func(n string, body *pb.Entry) *protocol.Entry {
		e := keys[n].Next(t, body)
		logs[n] = append(logs[n], e.Raw)
		return e
	}
	c := keys["c"].Head.Author
	rem := next("a", prototest.Amend(0, &pb.Removal{Member: "c", Key: c[:], AfterSeq: 0}))
	next("b", prototest.Approve(0, rem.ID))
	d := keys["d"].Head.Author
	adm := next("a", prototest.Amend(1, &pb.MemberBlock{Name: "d", Role: "platform", AuthorKey: d[:], PeerId: fakePeer("c")}))
	next("b", prototest.Approve(1, adm.ID))
	entry := next("d", prototest.Addition(prototest.SHA256(t, 1)))
	raws := append(append(logs["a"], logs["b"]...), logs["d"]...)
	file, err := exporttest.Encode(&pb.ExportHeader{Federation: fed, Genesis: g.Raw()}, nil, raws, nil)
	if err != nil {
		t.Fatal(err)
	}
	res := auditFile(t, g, file)
	if len(res.Violations) == 1 {
		if m, ok := res.Violations[0].(*audit.MemberViolation); ok && m.Entry.ID == entry.ID && m.Kind() == "unknown-author" {
			return
		}
	}
	t.Fatalf("d, admitted with the peer ID of the removed c, writes in: version %d, violations %v", res.Membership.Version(), res.Violations)
}

func keyOf(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}
