package main

import (
	"os"
	"strings"
	"testing"

	"github.com/staydown/staydown/config"
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
	if r.code != exitNoMatch || !strings.Contains(r.stdout, "Store damaged") || !strings.Contains(r.stdout, store.ErrCorrupt.Error()) {
		t.Fatalf("a damaged store: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
}
