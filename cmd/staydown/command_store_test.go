package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/store"
)

// TestStoreCheck: `store check` says a sound store holds, and reports a
// damaged one with exit 1 instead of crashing (#12 item 8).
func TestStoreCheck(t *testing.T) {
	n := stoppedNode(t)
	r := staydown("store", "check", "--dir", n.dir)
	if r.code != exitOK || !strings.Contains(r.stdout, "every invariant checked") {
		t.Fatalf("a new store: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	cfg, err := config.Load(n.dir)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(cfg.StorePath)
	if err != nil {
		t.Fatal(err)
	}
	page := os.Getpagesize()
	clear(data[2*page:]) // every page but the two meta pages
	if err := os.WriteFile(cfg.StorePath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	r = staydown("store", "check", "--dir", n.dir)
	if r.code != exitNoMatch || !strings.Contains(r.stdout, "Store damaged") || !strings.Contains(r.stdout, store.ErrCorrupt.Error()) ||
		!strings.Contains(r.stdout, "staydown store restore --dir "+n.dir) {
		t.Fatalf("a damaged store: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestStoreRestoreRefuses: a restore refuses, in one line and changing
// nothing, a store that is sound, and a federation with no other member
// to restore from (#12 item 8).
func TestStoreRestoreRefuses(t *testing.T) {
	n := &testNode{dir: filepath.Join(t.TempDir(), "nru")}
	_, block, err := config.Init(config.InitOptions{Dir: n.dir, Name: "nru", Role: protocol.RoleReferral, API: "127.0.0.1:1", Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.dir, "roster.toml"), []byte(block), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := staydown("store", "check", "--dir", n.dir); r.code != exitOK {
		t.Fatalf("store check: exit %d: %s", r.code, r.stderr)
	}
	cfg, err := config.Load(n.dir)
	if err != nil {
		t.Fatal(err)
	}
	r := staydown("store", "restore", "--dir", n.dir, "--timeout", "1s")
	wantFailure(t, r, "opens and checks clean: nothing to restore (--force")
	data, err := os.ReadFile(cfg.StorePath)
	if err != nil {
		t.Fatal(err)
	}
	clear(data[2*os.Getpagesize():])
	if err := os.WriteFile(cfg.StorePath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	r = staydown("store", "restore", "--dir", n.dir, "--timeout", "1s")
	wantFailure(t, r, `the roster in force has no member but "nru": no peer holds its log`)
	if strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("more than one line: %q", r.stderr)
	}
	after, err := os.ReadFile(cfg.StorePath)
	if err != nil || !bytes.Equal(after, data) {
		t.Errorf("a refused restore changed the store (%v)", err)
	}
	if m, _ := filepath.Glob(cfg.StorePath + ".*"); len(m) != 0 {
		t.Errorf("a refused restore left %v", m)
	}
}
