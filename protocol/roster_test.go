package protocol

import (
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"
)

type rosterFixture struct {
	roster *Roster
	keys   map[Role]ed25519.PrivateKey
	// platform is the roster's platform; referral2 a second referral unit.
	platform, referral2 AuthorKey
}

func newRosterFixture(t testing.TB) rosterFixture {
	t.Helper()
	f := rosterFixture{keys: map[Role]ed25519.PrivateKey{
		RoleReferral: seedKey(0x01),
		RolePlatform: seedKey(0x41),
		RoleAuditor:  seedKey(0x61),
	}}
	f.platform = AuthorKeyOf(f.keys[RolePlatform])
	f.referral2 = AuthorKeyOf(seedKey(0x21))
	ms := []Member{
		{Name: "iru", Role: RoleReferral, AuthorKey: AuthorKeyOf(f.keys[RoleReferral]), PeerID: "peer-iru"},
		{Name: "iru-2", Role: RoleReferral, AuthorKey: f.referral2, PeerID: "peer-iru-2"},
		{Name: "video", Role: RolePlatform, AuthorKey: f.platform, PeerID: "peer-video"},
		{Name: "ngo", Role: RoleAuditor, AuthorKey: AuthorKeyOf(f.keys[RoleAuditor])},
	}
	r, err := NewRoster("test", ms)
	if err != nil {
		t.Fatal(err)
	}
	f.roster = r
	return f
}

// The role rule, written out independently of roster.go.
var roleTable = map[Role][]Kind{
	RoleReferral: {KindAddition, KindRetraction, KindDispute, KindAllow, KindNotice, KindNoticeUpdate},
	RolePlatform: {KindAddition, KindRetraction, KindDispute, KindAllow, KindNoticeReply},
	RoleAuditor:  {},
}

func TestRosterRoles(t *testing.T) {
	f := newRosterFixture(t)
	for _, role := range []Role{RoleReferral, RolePlatform, RoleAuditor} {
		allowed := map[Kind]bool{}
		for _, k := range roleTable[role] {
			allowed[k] = true
		}
		for _, k := range allKinds {
			t.Run(fmt.Sprintf("%s writes %s", role, k), func(t *testing.T) {
				e, err := Sign(f.keys[role], validBody(k, f.platform))
				if err != nil {
					t.Fatal(err)
				}
				if MayWrite(role, k) != allowed[k] {
					t.Errorf("MayWrite(%s, %s) = %v", role, k, !allowed[k])
				}
				err = f.roster.Check(e)
				if allowed[k] {
					if err != nil {
						t.Fatalf("rejected: %v", err)
					}
					return
				}
				checkErr(t, err, ErrRole, string(role), string(k))
			})
		}
	}
	if MayWrite("", KindAddition) || MayWrite("admin", KindAddition) {
		t.Error("an unknown role may write")
	}
}

func TestRosterCheck(t *testing.T) {
	f := newRosterFixture(t)
	ref := f.keys[RoleReferral]

	t.Run("unknown author", func(t *testing.T) {
		stranger := seedKey(0x99)
		e, err := Sign(stranger, validBody(KindAddition, f.platform))
		if err != nil {
			t.Fatal(err)
		}
		checkErr(t, f.roster.Check(e), ErrUnknownAuthor, AuthorKeyOf(stranger).String())
	})
	t.Run("wrong federation", func(t *testing.T) {
		b := validBody(KindAddition, f.platform)
		b.Federation = "other"
		e, err := Sign(ref, b)
		if err != nil {
			t.Fatal(err)
		}
		checkErr(t, f.roster.Check(e), ErrFederation, `"other"`, `"test"`)
	})
	t.Run("wrong federation and unknown author", func(t *testing.T) {
		b := validBody(KindAddition, f.platform)
		b.Federation = "other"
		e, err := Sign(seedKey(0x99), b)
		if err != nil {
			t.Fatal(err)
		}
		checkErr(t, f.roster.Check(e), ErrFederation)
	})
	for _, c := range []struct {
		name string
		to   AuthorKey
	}{
		{"notice to a referral unit", f.referral2},
		{"notice to its own author", AuthorKeyOf(ref)},
		{"notice to an auditor", AuthorKeyOf(f.keys[RoleAuditor])},
		{"notice to an unknown key", AuthorKeyOf(seedKey(0x99))},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, err := Sign(ref, validBody(KindNotice, c.to))
			if err != nil {
				t.Fatal(err)
			}
			checkErr(t, f.roster.Check(e), ErrRole, c.to.String(), "not a platform")
		})
	}
	t.Run("notice to the platform", func(t *testing.T) {
		e, err := Sign(ref, validBody(KindNotice, f.platform))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.roster.Check(e); err != nil {
			t.Fatal(err)
		}
	})
}

func TestNewRoster(t *testing.T) {
	k1, k2, k3 := AuthorKeyOf(seedKey(1)), AuthorKeyOf(seedKey(2)), AuthorKeyOf(seedKey(3))
	cases := []struct {
		name    string
		fed     string
		members []Member
		mention []string // nil: valid
	}{
		{"valid", "f", []Member{{Name: "a", Role: RoleReferral, AuthorKey: k1, PeerID: "p1"}, {Name: "b", Role: RolePlatform, AuthorKey: k2, PeerID: "p2"}}, nil},
		{"empty", "f", nil, nil},
		{"two members without peer ID", "f", []Member{{Name: "a", Role: RolePlatform, AuthorKey: k1}, {Name: "b", Role: RolePlatform, AuthorKey: k2}}, nil},
		{"duplicate name", "f", []Member{{Name: "a", Role: RolePlatform, AuthorKey: k1, PeerID: "p1"}, {Name: "b", Role: RolePlatform, AuthorKey: k2, PeerID: "p2"}, {Name: "a", Role: RolePlatform, AuthorKey: k3, PeerID: "p3"}},
			[]string{"member 1 and member 3", `"a"`}},
		{"duplicate author key", "f", []Member{{Name: "a", Role: RolePlatform, AuthorKey: k1, PeerID: "p1"}, {Name: "b", Role: RolePlatform, AuthorKey: k1, PeerID: "p2"}},
			[]string{`"a" and "b"`, "author key"}},
		{"duplicate peer ID", "f", []Member{{Name: "a", Role: RolePlatform, AuthorKey: k1, PeerID: "p1"}, {Name: "b", Role: RolePlatform, AuthorKey: k2, PeerID: "p1"}},
			[]string{`"a" and "b"`, "peer ID"}},
		{"empty federation", "", nil, []string{"federation", "got 0"}},
		{"federation too long", string(make([]byte, MaxFederationLen+1)), nil, []string{"federation", "got 65"}},
		{"federation upper case", "EU", nil, []string{"federation", "not a lower-case letter"}},
		{"unknown role", "f", []Member{{Name: "a", Role: "moderator", AuthorKey: k1}}, []string{"member 1", "unknown role"}},
		{"zero author key", "f", []Member{{Name: "a", Role: RolePlatform}}, []string{"member 1", "all zeros"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := NewRoster(c.fed, c.members)
			if c.mention == nil {
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range c.members {
					if got, ok := r.ByKey(m.AuthorKey); !ok || got.Name != m.Name {
						t.Errorf("ByKey(%s) = %v, %v", m.AuthorKey, got.Name, ok)
					}
					if got, ok := r.ByName(m.Name); !ok || got.AuthorKey != m.AuthorKey {
						t.Errorf("ByName(%s) = %v, %v", m.Name, got.Name, ok)
					}
				}
				if _, ok := r.ByName("nobody"); ok {
					t.Error("ByName(nobody) found someone")
				}
				if _, ok := r.ByKey(AuthorKeyOf(seedKey(9))); ok {
					t.Error("ByKey(stranger) found someone")
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, m := range c.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
	in := []Member{{Name: "a", Role: RolePlatform, AuthorKey: k1}, {Name: "b", Role: RolePlatform, AuthorKey: k2}}
	r, _ := NewRoster("f", in)
	if r.Names() != "a, b" {
		t.Errorf("Names() = %q", r.Names())
	}
	// The roster keeps its own copy: the caller's slice can change.
	in[0].Name = "changed"
	if m, ok := r.ByName("a"); !ok || r.Members[0].Name != "a" || m.AuthorKey != k1 {
		t.Errorf("roster changed with the caller's slice: %+v", r.Members)
	}
}

func TestParseRole(t *testing.T) {
	for _, s := range []string{"referral", "platform", "auditor", "access"} {
		if r, err := ParseRole(s); err != nil || string(r) != s {
			t.Errorf("ParseRole(%q) = %q, %v", s, r, err)
		}
	}
	for _, s := range []string{"", "Referral", "admin"} {
		if _, err := ParseRole(s); err == nil || !strings.Contains(err.Error(), "referral, platform, auditor or access") {
			t.Errorf("ParseRole(%q): %v", s, err)
		}
	}
}
