package main

import (
	"bytes"
	"crypto/ed25519"
	"path/filepath"
	"strings"
	"testing"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/export"
	"github.com/staydown/staydown/protocol/export/exporttest"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/prototest"
	"github.com/staydown/staydown/store"
)

// log import takes a clean export whole: its checkpoints are checked and
// counted, its entries stored. Regression (#13 item 1): every checkpoint
// record was decoded as an entry and refused ("expected field 1 (entry)
// as bytes"), and the import exited 1.
func TestImportFileWithCheckpoints(t *testing.T) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))
	author := protocol.AuthorKeyOf(key)
	roster, err := protocol.NewRoster("test", []protocol.Member{{Name: "nru", Role: protocol.RoleReferral, AuthorKey: author}})
	if err != nil {
		t.Fatal(err)
	}
	entries := prototest.Additions(t, key, "test", 3)
	tree := protocol.NewTree()
	var raws [][]byte
	for _, e := range entries {
		tree.Append(e.ID)
		raws = append(raws, e.Raw)
	}
	signer, err := protocol.NoteSigner("nru", key)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := protocol.SignCheckpoint(protocol.Checkpoint{Origin: protocol.CheckpointOrigin("test", author), Size: 3, Root: tree.Root()}, signer)
	if err != nil {
		t.Fatal(err)
	}
	forged := bytes.Replace(cp, []byte("nru"), []byte("xyz"), 1) // a signature line of nobody in the roster
	file, err := exporttest.Encode(&pb.ExportHeader{Version: export.Version, Federation: "test"}, [][]byte{cp, forged}, raws, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := export.NewReader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	res, err := importFile(r, roster, "test", st)
	if err != nil {
		t.Fatal(err)
	}
	if res.applied != 3 || res.checkpoints != 1 || len(res.refused) != 1 || !strings.Contains(res.refused[0], "record 3") {
		t.Errorf("imported %d entries, %d checkpoints, refused %q; want 3, 1 and the forged checkpoint (record 3)", res.applied, res.checkpoints, res.refused)
	}
}
