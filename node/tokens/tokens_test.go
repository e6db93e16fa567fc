package tokens

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/staydown/staydown/internal/testclock"
	"github.com/staydown/staydown/node/kind"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func TestScopeAllows(t *testing.T) {
	want := map[Scope][]Scope{Match: {Match}, Read: {Read}, Publish: {Match, Read, Publish}, Admin: {Match, Read, Publish, Admin}, 0: nil}
	for has, allowed := range want {
		for _, need := range append(Scopes, 0, 9) {
			got := has.Allows(need)
			exp := false
			for _, a := range allowed {
				exp = exp || a == need
			}
			if got != exp {
				t.Errorf("%v.Allows(%v) = %v", has, need, got)
			}
		}
	}
	if _, err := ParseScope("root"); err == nil || err.Error() != `"root" is not a scope: use match, read, publish, admin` {
		t.Errorf("ParseScope(root): %v", err)
	}
}

func TestAddListRevoke(t *testing.T) {
	dir := t.TempDir()
	tok, a, err := Add(dir, Publish, "uploader", t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 64 || a.Scope != Publish || a.Name != "uploader" || !a.Created.Equal(t0) || len(a.ID) != 8 {
		t.Fatalf("Add: %q %+v", tok, a)
	}
	_, b, err := Add(dir, Read, "", t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(Path(dir))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode: %v %v", fi.Mode(), err)
	}
	data, _ := os.ReadFile(Path(dir))
	if bytes.Contains(data, []byte(tok)) {
		t.Error("the token itself is in the file")
	}
	if _, _, err := Add(dir, Match, "uploader", t0); err == nil || !strings.Contains(err.Error(), `a token named "uploader" exists`) {
		t.Errorf("duplicate name: %v", err)
	}
	if _, _, err := Add(dir, Match, "Bad Name", t0); err == nil || !strings.Contains(err.Error(), `name: "Bad Name" has 'B'`) {
		t.Errorf("bad name: %v", err)
	}
	if _, _, err := Add(dir, Match, "0123abcd", t0); err == nil || !strings.Contains(err.Error(), "looks like a token id") {
		t.Errorf("id-like name: %v", err)
	}
	ts, err := List(dir)
	if err != nil || len(ts) != 2 || ts[0] != a || ts[1] != b {
		t.Fatalf("List: %+v %v", ts, err)
	}
	if _, err := Revoke(dir, "nobody"); err == nil || err.Error() != `no token with id or name "nobody" (see staydown token list)` {
		t.Errorf("revoke unknown: %v", err)
	}
	if got, err := Revoke(dir, "uploader"); err != nil || got != a {
		t.Fatalf("revoke by name: %+v %v", got, err)
	}
	if got, err := Revoke(dir, b.ID); err != nil || got != b {
		t.Fatalf("revoke by id: %+v %v", got, err)
	}
	if ts, err := List(dir); err != nil || len(ts) != 0 {
		t.Fatalf("after revoking all: %+v %v", ts, err)
	}
	if _, err := os.Stat(Path(dir) + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}
}

// A command that finds api.tokens.tmp does not touch the file: another
// command may be writing it.
func TestUpdateLocked(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := Add(dir, Read, "a", t0); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(Path(dir))
	if err := os.WriteFile(Path(dir)+".tmp", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Add(dir, Read, "b", t0); err == nil || !strings.Contains(err.Error(), "another staydown token command is running") {
		t.Errorf("Add with the lock taken: %v", err)
	}
	if _, err := os.Stat(Path(dir) + ".tmp"); err != nil {
		t.Error("the other command's file was removed")
	}
	if after, _ := os.ReadFile(Path(dir)); !bytes.Equal(before, after) {
		t.Error("file changed")
	}
}

func TestParseErrors(t *testing.T) {
	h := strings.Repeat("ab", 32)
	tests := []struct{ text, err string }{
		{"0123abcd read 2026-05-01T12:00:00Z " + h + "\n", ""},
		{"0123abcd read 2026-05-01T12:00:00Z " + h + " ci\n# c\n\n", ""},
		{"0123abcd read 2026-05-01T12:00:00Z\n", "f:1: want ID SCOPE CREATED SHA256 [NAME], got 3 fields"},
		{"0123ABCD read 2026-05-01T12:00:00Z " + h + "\n", `f:1: id "0123ABCD": want 8 lower-case hex characters`},
		{"0123abcd root 2026-05-01T12:00:00Z " + h + "\n", `f:1: "root" is not a scope`},
		{"0123abcd read yesterday " + h + "\n", `f:1: created "yesterday"`},
		{"0123abcd read 2026-05-01T12:00:00Z " + h[:62] + "\n", `f:1: hash "` + h[:62] + `": want 64`},
		{"0123abcd read 2026-05-01T12:00:00Z " + h + " A\n", `f:1: name: "A" has 'A'`},
		{"0123abcd read 2026-05-01T12:00:00Z " + h + "\n0123abcd read 2026-05-01T12:00:00Z " + strings.Repeat("cd", 32) + "\n", `f:2: id "0123abcd" is also on line 1`},
		{"0123abcd read 2026-05-01T12:00:00Z " + h + "\n0123abce read 2026-05-01T12:00:00Z " + h + "\n", "f:2: the token of line 1 again"},
		{"0123abcd read 2026-05-01T12:00:00Z " + h + " x\n0123abce read 2026-05-01T12:00:00Z " + strings.Repeat("cd", 32) + " x\n", `f:2: name "x" is also on line 1`},
	}
	for _, tt := range tests {
		_, err := Parse("f", []byte(tt.text))
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%q: %v", tt.text, err)
		case tt.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.err)):
			t.Errorf("%q: error %v, want %s", tt.text, err, tt.err)
		}
	}
}

// The keeper sees a token added, and stops accepting one revoked, at its
// next check (CheckEvery later), without a reload; api.token stays admin.
func TestKeeperFollowsTheFile(t *testing.T) {
	dir := t.TempDir()
	c := testclock.New(t0)
	k, err := Open(dir, "admin-token", c.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := k.Check("Bearer admin-token"); err != nil || tok.Scope != Admin {
		t.Fatalf("api.token: %+v %v", tok, err)
	}
	secret, _, err := Add(dir, Match, "pipeline", t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Check("Bearer " + secret); !errors.Is(err, kind.ErrUnauthorized) {
		t.Fatalf("new token accepted before the next check: %v", err)
	}
	c.Add(CheckEvery)
	tok, err := k.Check("Bearer " + secret)
	if err != nil || tok.Scope != Match || tok.Name != "pipeline" {
		t.Fatalf("added token: %+v %v", tok, err)
	}
	if _, err := k.Authorize("Bearer "+secret, Read, "GET /v1/status"); !errors.Is(err, kind.ErrForbidden) ||
		err.Error() != "GET /v1/status needs a token with scope read; this token's scope is match" {
		t.Errorf("match token on a read route: %v", err)
	}
	if _, err := Revoke(dir, "pipeline"); err != nil {
		t.Fatal(err)
	}
	c.Add(CheckEvery)
	if _, err := k.Check("Bearer " + secret); !errors.Is(err, kind.ErrUnauthorized) || err.Error() != "wrong token (unknown or revoked)" {
		t.Errorf("revoked token: %v", err)
	}
	// Reload sees a change at once.
	secret, _, _ = Add(dir, Read, "", t0)
	if err := k.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Check("Bearer " + secret); err != nil {
		t.Errorf("after Reload: %v", err)
	}
}

// A damaged file revokes every token of it until it is fixed: a broken
// file must not keep a revoked token alive. api.token still works.
func TestKeeperDamagedFile(t *testing.T) {
	dir := t.TempDir()
	c := testclock.New(t0)
	secret, _, err := Add(dir, Read, "", t0)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	k, err := Open(dir, "admin-token", c.Now, slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(Path(dir))
	if err := os.WriteFile(Path(dir), append(good, "garbage\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Add(CheckEvery)
	if _, err := k.Check("Bearer " + secret); !errors.Is(err, kind.ErrUnauthorized) {
		t.Errorf("token of a damaged file accepted: %v", err)
	}
	if _, err := k.Check("Bearer admin-token"); err != nil {
		t.Errorf("api.token: %v", err)
	}
	if !strings.Contains(log.String(), "only api.token is accepted") {
		t.Errorf("not logged: %s", log.String())
	}
	if _, err := Open(dir, "admin-token", c.Now, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "api.tokens:") {
		t.Errorf("Open of a damaged file: %v", err)
	}
	if err := os.Chmod(Path(dir), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := List(dir); err == nil || !strings.Contains(err.Error(), "permissions 0644 are too open") {
		t.Errorf("open file: %v", err)
	}
}

func TestStaticEmptyRefusesAll(t *testing.T) {
	k := Static("")
	for _, h := range []string{"", "Bearer", "Bearer ", "Bearer x", "Basic x"} {
		if _, err := k.Check(h); !errors.Is(err, kind.ErrUnauthorized) {
			t.Errorf("%q: %v", h, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	h := strings.Repeat("ab", 32)
	f.Add([]byte("0123abcd read 2026-05-01T12:00:00Z " + h + " ci\n"))
	f.Add([]byte(header + "0123abcd admin 2026-05-01T12:00:00+02:00 " + h + "\n"))
	f.Add([]byte("0123abcd admin 0000-01-01T00:00:00Z " + h + "\n"))
	f.Add([]byte("0123abcd read 2026-05-01T12:00:00Z " + h + "\n0123abcd read 2026-05-01T12:00:00Z " + h + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, err := Parse("f", data)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error of more than one line: %q", err)
			}
			return
		}
		// What parses formats to text that parses to the same tokens.
		again, err := Parse("f", Format(ts))
		if err != nil {
			t.Fatalf("formatted tokens do not parse: %v", err)
		}
		if len(again) != len(ts) {
			t.Fatalf("%d tokens, %d after a round trip", len(ts), len(again))
		}
		for i := range ts {
			a, b := again[i], ts[i]
			if a.ID != b.ID || a.Scope != b.Scope || a.Hash != b.Hash || a.Name != b.Name || !a.Created.Equal(b.Created) {
				t.Fatalf("token %d: %+v, after a round trip %+v", i, ts[i], again[i])
			}
		}
	})
}
