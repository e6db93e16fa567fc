package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/staydown/staydown/protocol/pb"

	"github.com/transparency-dev/merkle/testonly"
)

// The reference roots of the RFC 6962 test tree, sizes 0 to 8 (from the
// transparency-dev/merkle module, computed by its own reference code).
func TestMerkleRootReference(t *testing.T) {
	inputs := testonly.LeafInputs()
	roots := testonly.RootHashes()
	var leaves [][]byte
	for i, in := range inputs {
		leaves = append(leaves, hasher.HashLeaf(in))
		if got := MerkleRoot(leaves); !bytes.Equal(got, roots[i+1]) {
			t.Errorf("size %d: root %x, want %x", i+1, got, roots[i+1])
		}
	}
	if !bytes.Equal(MerkleRoot(nil), testonly.EmptyRootHash()) {
		t.Error("empty root")
	}
}

func ids(n int) []ID {
	out := make([]ID, n)
	for i := range out {
		out[i] = IDOf([]byte{byte(i), byte(i >> 8)})
	}
	return out
}

// The incremental tree, the recursive root and the library's inclusion
// proof verifier agree at every size and index up to 70.
func TestTreeAndProofs(t *testing.T) {
	all := ids(70)
	tree := NewTree()
	if !bytes.Equal(tree.Root(), MerkleRoot(nil)) {
		t.Fatal("empty tree root")
	}
	var leaves [][]byte
	for n, id := range all {
		tree.Append(id)
		leaves = append(leaves, LeafHash(id))
		root := MerkleRoot(leaves)
		if tree.Size() != uint64(n+1) || !bytes.Equal(tree.Root(), root) {
			t.Fatalf("size %d: tree root %x, want %x", n+1, tree.Root(), root)
		}
		for i := range n + 1 {
			p, err := InclusionProof(leaves, uint64(i))
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyInclusion(all[i], uint64(i), uint64(n+1), p, root); err != nil {
				t.Fatalf("inclusion %d in %d: %v", i, n+1, err)
			}
			if err := VerifyInclusion(all[(i+1)%len(all)], uint64(i), uint64(n+1), p, root); err == nil && n > 0 {
				t.Fatalf("inclusion of the wrong entry at %d in %d verified", i, n+1)
			}
		}
	}
}

func checkpointRoster(t testing.TB) (*Roster, map[string][]byte) {
	keys := map[string][]byte{"nru": seedKey(1), "pfa": seedKey(2), "aud": seedKey(3)}
	r, err := NewRoster("fed", []Member{
		{Name: "nru", Role: RoleReferral, AuthorKey: AuthorKeyOf(keys["nru"]), PeerID: "a"},
		{Name: "pfa", Role: RolePlatform, AuthorKey: AuthorKeyOf(keys["pfa"]), PeerID: "b"},
		{Name: "aud", Role: RoleAuditor, AuthorKey: AuthorKeyOf(keys["aud"]), PeerID: "c"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return r, keys
}

func TestCheckpointNotes(t *testing.T) {
	r, keys := checkpointRoster(t)
	nru := AuthorKeyOf(keys["nru"])
	tree := NewTree()
	for _, id := range ids(5) {
		tree.Append(id)
	}
	c := Checkpoint{Origin: CheckpointOrigin("fed", nru), Size: tree.Size(), Root: tree.Root()}
	signer, err := NoteSigner("nru", keys["nru"])
	if err != nil {
		t.Fatal(err)
	}
	msg, err := SignCheckpoint(c, signer)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := OpenCheckpoint(msg, r)
	if err != nil {
		t.Fatalf("open: %v\n%s", err, msg)
	}
	if sc.Author != nru || sc.Size != 5 || !bytes.Equal(sc.Root, c.Root) || len(sc.Cosigners) != 0 {
		t.Fatalf("opened %+v", sc)
	}
	// Two witnesses cosign; the note still opens, naming them.
	for _, w := range []string{"pfa", "aud"} {
		ws, err := NoteSigner(w, keys[w])
		if err != nil {
			t.Fatal(err)
		}
		if msg, err = Cosign(sc.Note, ws); err != nil {
			t.Fatal(err)
		}
		if sc, err = OpenCheckpoint(msg, r); err != nil {
			t.Fatal(err)
		}
	}
	if len(sc.Cosigners) != 2 {
		t.Fatalf("cosigners %v", sc.Cosigners)
	}

	bad := map[string][]byte{
		"root changed":      bytes.Replace(msg, []byte(base64Root(c.Root)), []byte(base64Root(make([]byte, 32))), 1),
		"unsigned":          []byte(c.Text()),
		"signed by another": mustSign(t, c, "pfa", keys["pfa"]),
		"other federation":  mustSign(t, Checkpoint{Origin: CheckpointOrigin("other", nru), Size: 5, Root: c.Root}, "nru", keys["nru"]),
		"stranger's origin": mustSign(t, Checkpoint{Origin: CheckpointOrigin("fed", AuthorKeyOf(seedKey(9))), Size: 5, Root: c.Root}, "nru", keys["nru"]),
	}
	for name, m := range bad {
		if _, err := OpenCheckpoint(m, r); !errors.Is(err, ErrCheckpoint) {
			t.Errorf("%s: %v", name, err)
		}
	}
	other := c
	other.Root = bytes.Repeat([]byte{1}, 32)
	if !Contradict(c, other) || Contradict(c, c) {
		t.Error("Contradict")
	}
}

func TestParseCheckpoint(t *testing.T) {
	for _, text := range []string{"", "o\n1\n", "o\n01\n" + base64Root(make([]byte, 32)) + "\n", "o\n1\nnot base64\n", "o\n1\n" + base64Root(make([]byte, 31)) + "\n",
		"\n1\n" + base64Root(make([]byte, 32)) + "\n", "o\n1\n" + base64Root(make([]byte, 32)) + "\nextension\n"} {
		if _, err := ParseCheckpoint(text); !errors.Is(err, ErrCheckpoint) {
			t.Errorf("%q: %v", text, err)
		}
	}
}

func base64Root(b []byte) string {
	return Checkpoint{Root: b}.Text()[2 : len(Checkpoint{Root: b}.Text())-1]
}

func mustSign(t *testing.T, c Checkpoint, name string, key []byte) []byte {
	s, err := NoteSigner(name, key)
	if err != nil {
		t.Fatal(err)
	}
	m, err := SignCheckpoint(c, s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// FuzzOpenCheckpoint: any bytes open or fail with ErrCheckpoint on one
// line; what opens is the checkpoint its author signed (nothing else is
// signed here), and its cosigners are other members of the roster.
func FuzzOpenCheckpoint(f *testing.F) {
	r, keys := checkpointRoster(f)
	nru := AuthorKeyOf(keys["nru"])
	c := Checkpoint{Origin: CheckpointOrigin("fed", nru), Size: 3, Root: make([]byte, 32)}
	m := mustSignTB(f, c, "nru", keys["nru"])
	f.Add(m)
	sc, err := OpenCheckpoint(m, r)
	if err != nil {
		f.Fatal(err)
	}
	for _, w := range []string{"pfa", "aud"} {
		ws, err := NoteSigner(w, keys[w])
		if err != nil {
			f.Fatal(err)
		}
		if m, err = Cosign(sc.Note, ws); err != nil {
			f.Fatal(err)
		}
		f.Add(m)
		if sc, err = OpenCheckpoint(m, r); err != nil {
			f.Fatal(err)
		}
	}
	f.Add(mustSignTB(f, c, "pfa", keys["pfa"]))
	f.Fuzz(func(t *testing.T, b []byte) {
		sc, err := OpenCheckpoint(b, r)
		if err != nil {
			if !errors.Is(err, ErrCheckpoint) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q does not wrap ErrCheckpoint on one line", err)
			}
			return
		}
		if sc.Author != nru || sc.Origin != c.Origin || sc.Size != c.Size || !bytes.Equal(sc.Root, c.Root) {
			t.Fatalf("opened %+v, which nobody signed", sc.Checkpoint)
		}
		for _, k := range sc.Cosigners {
			if _, ok := r.ByKey(k); !ok || k == sc.Author {
				t.Fatalf("cosigner %s is not another member", k)
			}
		}
	})
}

func TestEntryProof(t *testing.T) {
	r, keys := checkpointRoster(t)
	var log []*Entry
	var prev ID
	for i := range 9 {
		e, err := Sign(keys["nru"], addBody("fed", uint64(i+1), prev))
		if err != nil {
			t.Fatal(err)
		}
		log = append(log, e)
		prev = e.ID
	}
	var idList []ID
	tree := NewTree()
	for _, e := range log {
		idList = append(idList, e.ID)
		tree.Append(e.ID)
	}
	msg := mustSign(t, Checkpoint{Origin: CheckpointOrigin("fed", AuthorKeyOf(keys["nru"])), Size: 9, Root: tree.Root()}, "nru", keys["nru"])
	for seq := uint64(1); seq <= 9; seq++ {
		p, err := MakeEntryProof(log[seq-1].Raw, seq, idList, msg, tree.Root())
		if err != nil {
			t.Fatal(err)
		}
		got, err := VerifyEntryProof(p, r)
		if err != nil || got.Entry.ID != log[seq-1].ID || got.Checkpoint.Size != 9 {
			t.Fatalf("seq %d: %v", seq, err)
		}
		// Another entry with this proof, or a changed path, fails.
		bad := p
		bad.Entry = hexOf(log[seq%9].Raw)
		if _, err := VerifyEntryProof(bad, r); err == nil {
			t.Errorf("seq %d: another entry verified", seq)
		}
		if len(p.Proof) > 0 {
			bad = p
			bad.Proof = append([]string{hexOf(make([]byte, 32))}, p.Proof[1:]...)
			if _, err := VerifyEntryProof(bad, r); err == nil {
				t.Errorf("seq %d: a changed path verified", seq)
			}
		}
	}
	if _, err := MakeEntryProof(log[0].Raw, 1, idList[:8], msg, tree.Root()); !errors.Is(err, ErrCheckpoint) {
		t.Errorf("a log that does not give the root: %v", err)
	}
}

func hexOf(b []byte) string { return fmt.Sprintf("%x", b) }

func addBody(fed string, seq uint64, prev ID) *pb.Entry {
	b := &pb.Entry{Version: Version, Federation: fed, Seq: seq, TimestampMs: int64(seq),
		Payload: &pb.Entry_Addition{Addition: &pb.Addition{
			Signals: []*pb.Signal{{Value: &pb.Signal_Pdq{Pdq: bytes.Repeat([]byte{byte(seq)}, 32)}}},
			Labels:  []*pb.Label{{Slug: "graphic-violence"}}}}}
	if seq > 1 {
		b.Prev = prev[:]
	}
	return b
}
