package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/export/exporttest"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/prototest"
)

// TestAuditDirEquivocation: `audit --dir` of a node whose log holds an
// equivocation before its last entry prints the full evidence, both
// signed entries, as the audit of an exported file does: it reads the
// node's export a second time for the logged entry (#12 item 14: it
// printed "seq 0" and "0 bytes").
func TestAuditDirEquivocation(t *testing.T) {
	n := startNode(t)
	cfg, err := config.Load(n.dir)
	if err != nil {
		t.Fatal(err)
	}
	key, err := cfg.AuthorKey()
	if err != nil {
		t.Fatal(err)
	}
	nodeKey, err := cfg.NodeKey()
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(nodeKey)
	if err != nil {
		t.Fatal(err)
	}
	roster := fmt.Sprintf("[[member]]\nname = %q\nrole = \"referral\"\nauthor_key = %q\npeer_id = %q\naddrs = []\n",
		cfg.Name, protocol.AuthorKeyOf(key).String(), id.String())
	if err := os.WriteFile(cfg.RosterPath, []byte(roster), 0o644); err != nil {
		t.Fatal(err)
	}
	log := prototest.NewLog(key, cfg.Federation)
	a1 := log.Next(t, prototest.Addition(prototest.SHA256(t, 1)))
	a2 := log.Next(t, prototest.Addition(prototest.SHA256(t, 2)))
	a3 := log.Next(t, prototest.Addition(prototest.SHA256(t, 3)))
	fork := prototest.NewLog(key, cfg.Federation)
	fork.Head, fork.TimeMs = protocol.Head{Author: a1.Author, Seq: 1, ID: a1.ID}, log.TimeMs
	f2 := fork.Next(t, prototest.Addition(prototest.SHA256(t, 99)))
	file, err := exporttest.Encode(&pb.ExportHeader{Version: 1, Federation: cfg.Federation}, nil,
		[][]byte{a1.Raw, a2.Raw, a3.Raw}, [][]byte{f2.Raw})
	if err != nil {
		t.Fatal(err)
	}
	n.fake.SetExport(file)
	r := staydown("audit", "--dir", n.dir)
	if r.code != exitNoMatch || !strings.Contains(r.stdout, "[equivocation]") {
		t.Fatalf("exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, e := range []*protocol.Entry{a2, f2} {
		if want := e.ID.String(); !strings.Contains(r.stdout, want) {
			t.Errorf("the evidence does not name entry %s:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "seq 0") || strings.Contains(r.stdout, " 0 bytes") || strings.Contains(r.stdout, "lacks the logged entry") {
		t.Errorf("incomplete evidence:\n%s", r.stdout)
	}
}
