package audit_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/audit"
	"github.com/staydown/staydown/protocol/audit/audittest"
	"github.com/staydown/staydown/protocol/export"
	"github.com/staydown/staydown/protocol/export/exporttest"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/pb"
)

// fakePeer is a made-up peer ID of base58 characters (membership checks
// no more).
func fakePeer(name string) string {
	const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	out := []byte("12D3KooW")
	for i := 0; i < len(name); i++ {
		out = append(out, alphabet[int(name[i])%58])
	}
	return string(out)
}

// audit runs an audit of file under g as the CLI does: a pass, the
// second pass the findings need, the result.
func auditFile(t *testing.T, g *membership.Genesis, file []byte) audit.Result {
	t.Helper()
	a := audit.NewUnder(g)
	r, err := export.NewReader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	err = audit.FeedBatches(r, a, 7, func(recs []export.Record) []audit.Decoded {
		out := make([]audit.Decoded, len(recs))
		for i, rec := range recs {
			e, err := audit.Decode(rec)
			out[i] = audit.Decoded{Rec: rec, Entry: e, Err: err}
		}
		return out
	})
	if err != nil {
		t.Fatal(err)
	}
	if a.NeedsBackfill() {
		r, err := export.NewReader(bytes.NewReader(file))
		if err != nil {
			t.Fatal(err)
		}
		a.BackfillFrom(r)
		if a.NeedsBackfill() {
			t.Fatal("the second pass did not give every finding its entries")
		}
	}
	return a.Finish(1_900_000_000_000)
}

// got is a finding as the scenario states them.
func got(t *testing.T, v audit.Violation) audittest.Finding {
	t.Helper()
	f := audittest.Finding{Kind: v.Kind()}
	for i, raw := range v.Evidence() {
		if len(raw) == 0 {
			t.Fatalf("%s: evidence %d is empty: %v", v.Kind(), i, v)
		}
		f.Evidence = append(f.Evidence, protocol.IDOf(raw))
	}
	f.Entry = f.Evidence[0]
	if c, ok := v.(*audit.ConflictingApproval); ok {
		f.Entry = c.Second.ID
	}
	return f
}

func key(f audittest.Finding) string {
	ev := slices.Clone(f.Evidence)
	slices.SortFunc(ev, func(a, b protocol.ID) int { return bytes.Compare(a[:], b[:]) })
	return fmt.Sprintf("%s %s %v", f.Kind, f.Entry, ev)
}

// TestMembershipFindings: every entry of the scenario's export is judged
// against the membership its logs make, whatever order the logs come in:
// each finding with the signed entries that prove it, and the membership
// entries without effect listed apart.
func TestMembershipFindings(t *testing.T) {
	s := audittest.New(t, fakePeer)
	res := auditFile(t, s.Genesis, s.File)
	names := map[protocol.ID]string{}
	for n, e := range s.Named {
		names[e.ID] = n
	}
	var gotKeys, wantKeys []string
	for _, v := range res.Violations {
		f := got(t, v)
		gotKeys = append(gotKeys, key(f))
		if strings.Contains(v.Error(), "seq 0") {
			t.Errorf("message without its entry: %v", v)
		}
		t.Logf("[%s] %s (%s)", v.Kind(), v, names[f.Entry])
	}
	for _, f := range s.Want {
		wantKeys = append(wantKeys, key(f))
	}
	slices.Sort(gotKeys)
	slices.Sort(wantKeys)
	if !slices.Equal(gotKeys, wantKeys) {
		for _, f := range s.Want {
			if !slices.Contains(gotKeys, key(f)) {
				t.Errorf("missing: %s (%s: %s)", f.Kind, names[f.Entry], f.What)
			}
		}
		for _, k := range gotKeys {
			if !slices.Contains(wantKeys, k) {
				t.Errorf("unexpected: %s", k)
			}
		}
	}
	var voids []protocol.ID
	for _, v := range res.VoidMembership {
		voids = append(voids, v.Entry.ID)
		t.Logf("void %s: %s", names[v.Entry.ID], v.Why)
	}
	if !sameIDs(voids, s.Voids) {
		t.Errorf("void membership entries %v, want %v", nameAll(names, voids), nameAll(names, s.Voids))
	}
	if res.Membership.Version() != 6 || len(res.Membership.Pending) != 2 || res.NoHeaderGenesis {
		t.Errorf("membership: version %d, %d pending, no header genesis %v", res.Membership.Version(), len(res.Membership.Pending), res.NoHeaderGenesis)
	}
	// The unknown author x: its admission was approved by too few.
	for _, v := range res.Violations {
		if m, ok := v.(*audit.MemberViolation); ok && m.Entry.ID == s.Named["x1"].ID && !strings.Contains(m.Why, "approved by too few (2 of the 3 votes needed)") {
			t.Errorf("x's entry: %v", m)
		}
	}
	// The report counts what the membership takes in: pf-c's two keys
	// are one member, pf-d's entries before its removal count, the
	// stranger's and x's are left out.
	fig := map[string]int{}
	for _, m := range res.Report.Members {
		fig[m.Name+" additions"] = m.Additions
		fig[m.Name+" void"] = m.VoidEntries
	}
	for k, want := range map[string]int{"pf-c additions": 1, "pf-c void": 1, "pf-d additions": 2, "pf-d void": 4, "pf-e void": 1, "ru-a void": 1} {
		if fig[k] != want {
			t.Errorf("report: %s = %d, want %d", k, fig[k], want)
		}
	}
	if res.Report.Totals.IgnoredEntries != 2 || res.State.Active != 5 {
		t.Errorf("ignored %d (want 2: x's, the stranger's), active attestations %d (want 5: the additions taken in)", res.Report.Totals.IgnoredEntries, res.State.Active)
	}
}

func sameIDs(a, b []protocol.ID) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	cmp := func(x, y protocol.ID) int { return bytes.Compare(x[:], y[:]) }
	slices.SortFunc(a, cmp)
	slices.SortFunc(b, cmp)
	return slices.Equal(a, b)
}

func nameAll(names map[protocol.ID]string, ids []protocol.ID) []string {
	var out []string
	for _, id := range ids {
		out = append(out, names[id])
	}
	slices.Sort(out)
	return out
}

// TestMembershipOrder: the findings do not depend on where the logs are in
// the file (the membership entries come in any order).
func TestMembershipOrder(t *testing.T) {
	s := audittest.New(t, fakePeer)
	want := findingKeys(t, auditFile(t, s.Genesis, s.File))
	file := s.Reversed(t)
	if got := findingKeys(t, auditFile(t, s.Genesis, file)); !slices.Equal(got, want) {
		t.Fatalf("logs reversed:\n%v\nwant\n%v", got, want)
	}
}

func findingKeys(t *testing.T, r audit.Result) []string {
	var out []string
	for _, v := range r.Violations {
		out = append(out, key(got(t, v)))
	}
	slices.Sort(out)
	return out
}

// TestHeaderGenesis: an export whose header names another genesis is a
// finding with both hashes; one with none is noted.
func TestHeaderGenesis(t *testing.T) {
	s := audittest.New(t, fakePeer)
	other, err := membership.NewGenesis(s.Genesis.Roster, membership.Rule{Roles: []protocol.Role{protocol.RoleReferral}, Threshold: 60})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		genesis []byte
		finding bool
		absent  bool
	}{{"same", s.Genesis.Raw(), false, false}, {"other", other.Raw(), true, false}, {"absent", nil, false, true}} {
		t.Run(c.name, func(t *testing.T) {
			hdr := &pb.ExportHeader{Federation: audittest.Federation, Genesis: c.genesis}
			file, err := exporttest.Encode(hdr, nil, s.Entries, nil)
			if err != nil {
				t.Fatal(err)
			}
			r := auditFile(t, s.Genesis, file)
			var gen []audit.Violation
			for _, v := range r.Violations {
				if v.Kind() == "genesis" {
					gen = append(gen, v)
				}
			}
			if (len(gen) == 1) != c.finding || r.NoHeaderGenesis != c.absent {
				t.Fatalf("genesis findings %v, no header genesis %v", gen, r.NoHeaderGenesis)
			}
			if c.finding {
				h, w := other.Hash(), s.Genesis.Hash()
				if msg := gen[0].Error(); !strings.Contains(msg, fmt.Sprintf("%x", h)) || !strings.Contains(msg, fmt.Sprintf("%x", w)) {
					t.Errorf("the message does not give both hashes: %s", msg)
				}
			}
		})
	}
}

// TestPastSlack: an entry more than OutsideSlack past its key's end is
// outside too, and says that nodes do not store it.
func TestPastSlack(t *testing.T) {
	s := audittest.New(t, fakePeer)
	// aud's key ends at seq 1 and its log has 2 entries: carry it on.
	var audLog [][]byte
	aud := s.Keys["aud"]
	var rest [][]byte
	for _, raw := range s.Entries {
		if e, _ := protocol.Decode(bytes.Clone(raw)); e.Author == aud {
			audLog = append(audLog, raw)
		} else {
			rest = append(rest, raw)
		}
	}
	// seq 2 to 1 + OutsideSlack are stored void; the one after is not.
	more := audittest.Extend(t, "aud", audLog, membership.OutsideSlack)
	file, err := exporttest.Encode(s.Header, nil, append(rest, append(audLog, more...)...), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := auditFile(t, s.Genesis, file)
	var outside, past int
	for _, v := range r.Violations {
		if m, ok := v.(*audit.MemberViolation); ok && m.Entry.Author == aud {
			outside++
			if m.Verdict == membership.Past {
				past++
				if !strings.Contains(m.Why, "nodes do not store it") || m.Kind() != "outside" {
					t.Errorf("past the slack: %v (%s)", m, m.Kind())
				}
			}
		}
	}
	if outside != 1+membership.OutsideSlack || past != 1 {
		t.Fatalf("aud: %d outside, %d of them past the slack; want %d, 1", outside, past, 1+membership.OutsideSlack)
	}
}

// FuzzAuditMembership: any selection of the scenario's entries, in any
// order, repeated or missing, audits without a panic; every membership
// finding gets its entry from the second pass, and names a record of the
// file.
func FuzzAuditMembership(f *testing.F) {
	s := audittest.New(f, fakePeer)
	all := make([]byte, len(s.Entries))
	for i := range all {
		all[i] = byte(i)
	}
	f.Add(all)
	f.Add([]byte{})
	f.Add([]byte{3, 2, 1, 0, 40, 41, 42})
	f.Fuzz(func(t *testing.T, pick []byte) {
		if len(pick) > 300 {
			pick = pick[:300]
		}
		a := audit.NewUnder(s.Genesis)
		a.Header(s.Header)
		var recs []export.Record
		for i, p := range pick {
			raw := s.Entries[int(p)%len(s.Entries)]
			rec := export.Record{Kind: export.KindEntry, Raw: raw, Index: uint64(i + 2), Offset: int64(i)}
			recs = append(recs, rec)
			e, err := audit.Decode(rec)
			a.Add(rec, e, err)
		}
		if a.NeedsBackfill() {
			for _, rec := range recs {
				a.Backfill(rec)
			}
		}
		if a.NeedsBackfill() {
			t.Fatal("a finding lacks its entry after the second pass")
		}
		res := a.Finish(1_900_000_000_000)
		for _, v := range res.Violations {
			m, ok := v.(*audit.MemberViolation)
			if !ok {
				continue
			}
			if m.Index < 2 || m.Index >= uint64(len(recs)+2) || !bytes.Equal(recs[m.Index-2].Raw, m.Entry.Raw) {
				t.Fatalf("finding %v names record %d, which does not hold its entry", m, m.Index)
			}
		}
	})
}

// TestRandomMembership: federations whose membership changes at random
// audit with every finding complete, and do change: amendments pass.
func TestRandomMembership(t *testing.T) {
	versions := 0
	for seed := range uint64(24) {
		s := audittest.Random(t, seed, fakePeer)
		res := auditFile(t, s.Genesis, s.File)
		versions += int(res.Membership.Version())
		for _, v := range res.Violations {
			for _, raw := range v.Evidence() {
				if len(raw) == 0 {
					t.Fatalf("seed %d: %s without its evidence: %v", seed, v.Kind(), v)
				}
			}
		}
	}
	t.Logf("%d versions over 24 seeds", versions)
	if versions < 24 {
		t.Errorf("the random federations hardly change: %d versions over 24 seeds", versions)
	}
}
