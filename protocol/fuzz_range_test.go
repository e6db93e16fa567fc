package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/protocol/pb"
)

// fuzzLog is a signed log of nru's, seq 1..n, in the federation of
// checkpointRoster.
func fuzzLog(tb testing.TB, n int) (*Roster, map[string][]byte, []*Entry) {
	r, keys := checkpointRoster(tb)
	var log []*Entry
	var prev ID
	for i := range n {
		e, err := Sign(keys["nru"], addBody("fed", uint64(i+1), prev))
		if err != nil {
			tb.Fatal(err)
		}
		log = append(log, e)
		prev = e.ID
	}
	return r, keys, log
}

func rawsOf(es []*Entry) [][]byte {
	var out [][]byte
	for _, e := range es {
		out = append(out, e.Raw)
	}
	return out
}

// FuzzCheckRange feeds CheckRange a range as a sync batch carries it
// (pb.SyncBatch bytes) and the seq it should start at. It never panics;
// errors wrap ErrForged on one line; what it authenticates is a piece of
// the genuine log (nothing else is signed), starting at from, and it
// authenticates as much as a signature vouches for.
func FuzzCheckRange(f *testing.F) {
	r, keys, log := fuzzLog(f, 6)
	author := AuthorKeyOf(keys["nru"])
	genuine := map[ID]uint64{}
	for _, e := range log {
		genuine[e.ID] = e.Seq()
	}
	batch := func(es ...*Entry) []byte {
		b, err := proto.Marshal(&pb.SyncBatch{Entries: rawsOf(es)})
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	// An entry of the log with its signature broken: in a range it is
	// vouched for by a later entry's signature, alone it is not.
	broken := bytes.Clone(log[2].Raw)
	broken[len(broken)-1] ^= 1
	f.Add(uint64(1), batch(log...))
	f.Add(uint64(3), batch(log[2:5]...))
	f.Add(uint64(2), batch(log[2:5]...))
	f.Add(uint64(1), batch(log[0], log[2]))
	f.Add(uint64(1), batch())
	f.Add(uint64(3), func() []byte {
		b, _ := proto.Marshal(&pb.SyncBatch{Entries: [][]byte{broken, log[3].Raw}})
		return b
	}())
	f.Add(uint64(3), func() []byte {
		b, _ := proto.Marshal(&pb.SyncBatch{Entries: [][]byte{broken}})
		return b
	}())
	f.Fuzz(func(t *testing.T, from uint64, data []byte) {
		var b pb.SyncBatch
		if proto.Unmarshal(data, &b) != nil {
			return
		}
		entries, n, err := CheckRange(r.Federation, author, from, b.Entries)
		if err != nil {
			if !errors.Is(err, ErrForged) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q does not wrap ErrForged on one line", err)
			}
			return
		}
		if len(entries) != len(b.Entries) || n < 0 || n > len(entries) {
			t.Fatalf("%d entries, %d authenticated, of %d given", len(entries), n, len(b.Entries))
		}
		for i, e := range entries {
			if e.Author != author || e.Seq() != from+uint64(i) || !bytes.Equal(e.Raw, b.Entries[i]) {
				t.Fatalf("entry %d is %s seq %d, want %s seq %d", i, e.Author, e.Seq(), author, from+uint64(i))
			}
			if i > 0 && e.Prev() != entries[i-1].ID {
				t.Fatalf("entry %d does not link to entry %d", i, i-1)
			}
		}
		for i, e := range entries[:n] {
			if seq, ok := genuine[e.ID]; !ok || seq != e.Seq() {
				t.Fatalf("authenticated entry %d (seq %d) is not of the signed log", i, e.Seq())
			}
		}
		if n > 0 && entries[n-1].Verify() != nil {
			t.Fatalf("the newest authenticated entry's signature does not verify")
		}
		for i, e := range entries[n:] {
			if e.Verify() == nil {
				t.Fatalf("entry %d has a valid signature but only %d of %d were authenticated", n+i, n, len(entries))
			}
		}
	})
}

// FuzzVerifyEntryProof feeds VerifyEntryProof the JSON `staydown proof`
// reads. It never panics; errors wrap a sentinel of the package on one
// line; a proof that verifies proves a genuine entry of the signed log,
// at its seq, against the root of the log at the checkpoint's size.
func FuzzVerifyEntryProof(f *testing.F) {
	r, keys, log := fuzzLog(f, 9)
	var ids []ID
	roots := map[uint64][]byte{}
	tree := NewTree()
	for _, e := range log {
		ids = append(ids, e.ID)
		tree.Append(e.ID)
		roots[tree.Size()] = tree.Root()
	}
	genuine := map[ID]uint64{}
	for _, e := range log {
		genuine[e.ID] = e.Seq()
	}
	author := AuthorKeyOf(keys["nru"])
	msg := mustSignTB(f, Checkpoint{Origin: CheckpointOrigin("fed", author), Size: 9, Root: tree.Root()}, "nru", keys["nru"])
	ws, err := NoteSigner("aud", keys["aud"])
	if err != nil {
		f.Fatal(err)
	}
	sc, err := OpenCheckpoint(msg, r)
	if err != nil {
		f.Fatal(err)
	}
	cosigned, err := Cosign(sc.Note, ws)
	if err != nil {
		f.Fatal(err)
	}
	small := mustSignTB(f, Checkpoint{Origin: CheckpointOrigin("fed", author), Size: 4, Root: roots[4]}, "nru", keys["nru"])
	for _, tc := range []struct {
		seq uint64
		cp  []byte
		ids []ID
	}{{1, msg, ids}, {9, msg, ids}, {5, cosigned, ids}, {4, small, ids[:4]}, {2, small, ids[:4]}} {
		p, err := MakeEntryProof(log[tc.seq-1].Raw, tc.seq, tc.ids, tc.cp, roots[uint64(len(tc.ids))])
		if err != nil {
			f.Fatal(err)
		}
		b, err := json.Marshal(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"entry":"zz","leaf_index":0,"tree_size":0,"proof":null,"checkpoint":""}`))
	all := append(slices.Clone(sentinels), ErrCheckpoint, ErrForged, ErrSealed, ErrRoster)
	f.Fuzz(func(t *testing.T, data []byte) {
		var p EntryProof
		if json.Unmarshal(data, &p) != nil {
			return
		}
		got, err := VerifyEntryProof(p, r)
		if err != nil {
			if !slices.ContainsFunc(all, func(s error) bool { return errors.Is(err, s) }) {
				t.Fatalf("error %q (%T) wraps no sentinel of the package", err, err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q is not one line", err)
			}
			return
		}
		e := got.Entry
		if seq, ok := genuine[e.ID]; !ok || seq != e.Seq() || e.Verify() != nil {
			t.Fatalf("proved entry %s (seq %d) is not of the signed log", e.ID, e.Seq())
		}
		if got.Checkpoint.Author != author || got.Checkpoint.Size < e.Seq() || p.LeafIndex != e.Seq()-1 || p.TreeSize != got.Checkpoint.Size {
			t.Fatalf("proof of seq %d at leaf %d against a checkpoint of size %d (tree size %d)", e.Seq(), p.LeafIndex, got.Checkpoint.Size, p.TreeSize)
		}
		if want, ok := roots[got.Checkpoint.Size]; !ok || !bytes.Equal(got.Checkpoint.Root, want) {
			t.Fatalf("checkpoint of size %d has a root that is not the log's", got.Checkpoint.Size)
		}
	})
}

// FuzzParseCheckpoint: ParseCheckpoint never panics, errors wrap
// ErrCheckpoint on one line, and what it accepts reads the same from its
// Text: the origin and size lines exactly, the root as the same bytes (its
// base64 may differ in the padding bits, which the decoder ignores).
func FuzzParseCheckpoint(f *testing.F) {
	root := base64Root(bytes.Repeat([]byte{7}, 32))
	for _, s := range []string{
		"staydown/fed/" + strings.Repeat("ab", 32) + "\n9\n" + root + "\n",
		"o\n0\n" + root + "\n", "o\n01\n" + root + "\n", "o\n1\n" + root, "o\n1\n" + root + "\n\n", "\n1\n" + root + "\n",
		"o\n18446744073709551616\n" + root + "\n",
		// Nonzero padding bits: the same root, so accepted (base64's
		// decoder is not strict), though the text is not Text's.
		"o\n1\n" + root[:len(root)-2] + "d=\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		c, err := ParseCheckpoint(text)
		if err != nil {
			if !errors.Is(err, ErrCheckpoint) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q does not wrap ErrCheckpoint on one line", err)
			}
			return
		}
		c2, err := ParseCheckpoint(c.Text())
		if err != nil {
			t.Fatalf("Text %q of an accepted checkpoint does not parse: %v", c.Text(), err)
		}
		if c2.Origin != c.Origin || c2.Size != c.Size || !bytes.Equal(c2.Root, c.Root) {
			t.Fatalf("round trip changed %+v to %+v", c, c2)
		}
		lines, again := strings.Split(text, "\n"), strings.Split(c.Text(), "\n")
		if lines[0] != again[0] || lines[1] != again[1] {
			t.Fatalf("accepted %q, which reads back as %q", text, c.Text())
		}
	})
}

func mustSignTB(tb testing.TB, c Checkpoint, name string, key []byte) []byte {
	tb.Helper()
	s, err := NoteSigner(name, key)
	if err != nil {
		tb.Fatal(err)
	}
	m, err := SignCheckpoint(c, s)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}
