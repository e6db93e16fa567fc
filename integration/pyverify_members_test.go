package integration

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/audit/audittest"
	"github.com/staydown/staydown/protocol/export/exporttest"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/pb"
)

// memberVerdict is what both verifiers print with --json about the
// membership, as far as they must agree.
type memberVerdict struct {
	Code          int
	OK            bool   `json:"ok"`
	Entries       int    `json:"entries"`
	Logs          int    `json:"logs"`
	Genesis       string `json:"genesis"`
	HeaderGenesis string `json:"header_genesis"`
	Violations    []struct {
		Kind     string   `json:"kind"`
		Message  string   `json:"message"`
		Evidence []string `json:"evidence"`
	} `json:"violations"`
	Voids []struct {
		Entry  string `json:"entry"`
		Reason string `json:"reason"`
	} `json:"void_membership"`
}

// findings are the violations as "kind: evidence ids", sorted, each
// with its evidence ids sorted.
func (v memberVerdict) findings(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, x := range v.Violations {
		var ids []string
		for _, h := range x.Evidence {
			raw, err := hex.DecodeString(h)
			if err != nil {
				t.Fatalf("evidence is not hex: %v", err)
			}
			ids = append(ids, protocol.IDOf(raw).String())
		}
		slices.Sort(ids)
		out = append(out, x.Kind+": "+strings.Join(ids, " "))
	}
	slices.Sort(out)
	return out
}

func (v memberVerdict) voids() []string {
	var out []string
	for _, x := range v.Voids {
		out = append(out, x.Entry)
	}
	slices.Sort(out)
	return out
}

// runMemberVerifier runs a verifier with --json and parses what it prints
// (failing the test on exit 2, when it prints only an error).
func runMemberVerifier(t *testing.T, prog string, args ...string) memberVerdict {
	t.Helper()
	var v memberVerdict
	code, stderr := runJSON(t, &v, prog, args...)
	if code == 2 {
		t.Fatalf("%s %v: exit 2: %s", prog, args, stderr)
	}
	v.Code = code
	return v
}

// transportPeer is the libp2p peer ID of a transport key derived from
// name (a genesis file must hold real ones, of keys other than the
// author keys).
func transportPeer(t *testing.T) func(name string) string {
	return func(name string) string {
		seed := sha256.Sum256([]byte("transport " + name))
		priv, _, err := crypto.KeyPairFromStdKey(ptrTo(ed25519.NewKeyFromSeed(seed[:])))
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		return id.String()
	}
}

func ptrTo[T any](v T) *T { return &v }

// TestPythonVerifierMembership: the Go auditor and the independent Python
// verifier compute the same membership from a genesis file and the
// membership entries of an export, and judge every entry alike: the
// same genesis hash, the same findings with the same evidence (every
// amendment kind, rotation, peer update; an unknown author, one admitted
// by too few, entries past a revocation, a removal, a rotation, the
// thief's rotated key, a role change, a notice to a non-platform, a
// conflicting approval), the same membership entries without effect.
// Neither needs a network.
func TestPythonVerifierMembership(t *testing.T) {
	t.Parallel()
	py := requirePython(t)
	s := audittest.New(t, transportPeer(t))
	dir := t.TempDir()
	genesisFile := filepath.Join(dir, "genesis.toml")
	if err := os.WriteFile(genesisFile, s.GenesisTOML, 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		t.Helper()
		f := filepath.Join(dir, name+".export")
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}

	// The logs in reverse order: the membership entries come in another
	// order, the findings are the same.
	reversed := s.Reversed(t)
	other, err := membership.NewGenesis(s.Genesis.Roster, membership.Rule{Roles: []protocol.Role{protocol.RoleReferral}, Threshold: 75})
	if err != nil {
		t.Fatal(err)
	}
	hdr := proto.CloneOf(s.Header)
	hdr.Genesis = other.Raw()
	otherGenesis, err := exporttest.Encode(hdr, nil, s.Entries, nil)
	if err != nil {
		t.Fatal(err)
	}
	hdr.Genesis = nil
	noGenesis, err := exporttest.Encode(hdr, nil, s.Entries, nil)
	if err != nil {
		t.Fatal(err)
	}

	wantFindings := func() []string {
		var out []string
		for _, f := range s.Want {
			var ids []string
			for _, id := range f.Evidence {
				ids = append(ids, id.String())
			}
			slices.Sort(ids)
			out = append(out, f.Kind+": "+strings.Join(ids, " "))
		}
		return out
	}
	var wantVoids []string
	for _, id := range s.Voids {
		wantVoids = append(wantVoids, id.String())
	}
	slices.Sort(wantVoids)

	for _, c := range []struct {
		name, file, header string
		extra              []string // findings besides the scenario's
		flag               string
	}{
		{"scenario", write("scenario", s.File), "same", nil, "--genesis"},
		{"logs-reversed", write("reversed", reversed), "same", nil, "--roster"},
		{"other-genesis", write("other-genesis", otherGenesis), "other", []string{"genesis: "}, "--genesis"},
		{"no-genesis", write("no-genesis", noGenesis), "absent", nil, "--genesis"},
	} {
		t.Run(c.name, func(t *testing.T) {
			goV := runMemberVerifier(t, binary, "audit", c.file, c.flag, genesisFile, "--json")
			pyV := runMemberVerifier(t, py, pyVerifier, c.file, c.flag, genesisFile, "--json")
			if goV.Code != 1 || pyV.Code != 1 {
				t.Fatalf("exit codes: go %d, py %d; want 1 (violations)", goV.Code, pyV.Code)
			}
			if goV.Genesis != hex.EncodeToString(hashOf(s.Genesis)) || pyV.Genesis != goV.Genesis {
				t.Errorf("genesis hash: go %s, py %s, want %x", goV.Genesis, pyV.Genesis, s.Genesis.Hash())
			}
			if goV.HeaderGenesis != c.header || pyV.HeaderGenesis != c.header {
				t.Errorf("header genesis: go %q, py %q, want %q", goV.HeaderGenesis, pyV.HeaderGenesis, c.header)
			}
			if goV.Entries != pyV.Entries || goV.Logs != pyV.Logs || goV.Entries != len(s.Entries) {
				t.Errorf("entries, logs: go %d, %d; py %d, %d; want %d entries", goV.Entries, goV.Logs, pyV.Entries, pyV.Logs, len(s.Entries))
			}
			want := slices.Sorted(slices.Values(append(wantFindings(), c.extra...)))
			gf, pf := goV.findings(t), pyV.findings(t)
			t.Logf("%d findings, %d membership entries without effect", len(gf), len(goV.Voids))
			if !slices.Equal(gf, want) {
				t.Errorf("the Go auditor's findings:\n%s\nwant:\n%s", strings.Join(gf, "\n"), strings.Join(want, "\n"))
			}
			if !slices.Equal(pf, gf) {
				t.Errorf("the verifiers disagree:\ngo:\n%s\npy:\n%s\npy says:\n%s", strings.Join(gf, "\n"), strings.Join(pf, "\n"), memberMessages(pyV))
			}
			if gv, pv := goV.voids(), pyV.voids(); !slices.Equal(gv, wantVoids) || !slices.Equal(pv, gv) {
				t.Errorf("membership entries without effect: go %v, py %v, want %v", gv, pv, wantVoids)
			}
		})
	}
}

func hashOf(g *membership.Genesis) []byte { h := g.Hash(); return h[:] }

func memberMessages(v memberVerdict) string {
	var m []string
	for _, x := range v.Violations {
		m = append(m, "["+x.Kind+"] "+x.Message)
	}
	return strings.Join(m, "\n")
}

// TestPythonDecoderMembership: the Python verifier's strict decoder and
// shape rules accept exactly the membership entries protocol.Decode
// accepts (SPEC 2.3, 12.2): the scenario's membership entries mutated at
// random (bytes flipped, inserted, deleted) and field by field (each
// shape rule broken, and kept), all in one export, must be reported
// malformed on the same records by both.
func TestPythonDecoderMembership(t *testing.T) {
	t.Parallel()
	py := requirePython(t)
	s := audittest.New(t, transportPeer(t))
	var bodies []*pb.Entry
	var sigs [][]byte
	for _, raw := range s.Entries {
		e, err := protocol.Decode(bytes.Clone(raw))
		if err != nil {
			t.Fatal(err)
		}
		if e.Kind().IsMembership() {
			bodies = append(bodies, e.Body)
			sigs = append(sigs, e.Signature)
		}
	}
	wrap := func(entry, sig []byte) []byte {
		b := protowire.AppendTag(nil, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, entry)
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		return protowire.AppendBytes(b, sig)
	}
	marshal := func(b *pb.Entry) []byte {
		out, err := proto.MarshalOptions{Deterministic: true}.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	var records [][]byte
	// Field by field: each change breaks a shape rule of SPEC 12.2, or
	// keeps to it at its limit.
	long := strings.Repeat("a", 65)
	key31, zero := bytes.Repeat([]byte{7}, 31), make([]byte, 32)
	for i, body := range bodies {
		var changes []func(*pb.Entry)
		switch p := body.Payload.(type) {
		case *pb.Entry_Amendment:
			changes = append(changes,
				func(b *pb.Entry) { b.GetAmendment().Change = nil },
				func(b *pb.Entry) { b.GetAmendment().Base = 1 << 40 })
			switch p.Amendment.Change.(type) {
			case *pb.Amendment_Admit:
				for _, f := range []func(*pb.MemberBlock){
					func(m *pb.MemberBlock) { m.Name = "" }, func(m *pb.MemberBlock) { m.Name = "Upper" },
					func(m *pb.MemberBlock) { m.Name = long }, func(m *pb.MemberBlock) { m.Name = long[:64] },
					func(m *pb.MemberBlock) { m.Role = "king" }, func(m *pb.MemberBlock) { m.Role = "auditor" },
					func(m *pb.MemberBlock) { m.AuthorKey = key31 }, func(m *pb.MemberBlock) { m.AuthorKey = zero },
					func(m *pb.MemberBlock) { m.PeerId = "" }, func(m *pb.MemberBlock) { m.PeerId = "12D3KooW0" },
					func(m *pb.MemberBlock) { m.PeerId = strings.Repeat("z", 129) }, func(m *pb.MemberBlock) { m.PeerId = strings.Repeat("z", 128) },
					func(m *pb.MemberBlock) { m.Addrs = nil }, func(m *pb.MemberBlock) { m.Addrs = []string{""} },
					func(m *pb.MemberBlock) { m.Addrs = []string{"ip4"} }, func(m *pb.MemberBlock) { m.Addrs = []string{"/ip4 x"} },
					func(m *pb.MemberBlock) { m.Addrs = []string{"/" + strings.Repeat("a", 255)} },
					func(m *pb.MemberBlock) { m.Addrs = []string{"/" + strings.Repeat("a", 256)} },
					func(m *pb.MemberBlock) { m.Addrs = slices.Repeat([]string{"/a"}, 16) },
					func(m *pb.MemberBlock) { m.Addrs = slices.Repeat([]string{"/a"}, 17) },
					func(m *pb.MemberBlock) { m.Addrs = []string{"/é"} },
				} {
					changes = append(changes, func(b *pb.Entry) { f(b.GetAmendment().GetAdmit()) })
				}
			case *pb.Amendment_Remove:
				changes = append(changes,
					func(b *pb.Entry) { b.GetAmendment().GetRemove().Member = "" },
					func(b *pb.Entry) { b.GetAmendment().GetRemove().Key = key31 },
					func(b *pb.Entry) { b.GetAmendment().GetRemove().Key = zero },
					func(b *pb.Entry) { b.GetAmendment().GetRemove().AfterSeq = 0 })
			case *pb.Amendment_Role:
				changes = append(changes,
					func(b *pb.Entry) { b.GetAmendment().GetRole().Role = "" },
					func(b *pb.Entry) { b.GetAmendment().GetRole().Role = "Platform" },
					func(b *pb.Entry) { b.GetAmendment().GetRole().Member = "a b" },
					func(b *pb.Entry) { b.GetAmendment().GetRole().Key = nil })
			case *pb.Amendment_Revoke:
				changes = append(changes,
					func(b *pb.Entry) { r := b.GetAmendment().GetRevoke(); r.NewKey = r.Key },
					func(b *pb.Entry) { b.GetAmendment().GetRevoke().NewKey = zero },
					func(b *pb.Entry) { b.GetAmendment().GetRevoke().NewKey = key31 },
					func(b *pb.Entry) { b.GetAmendment().GetRevoke().NewKey = nil },
					func(b *pb.Entry) { b.GetAmendment().GetRevoke().Key = zero })
			case *pb.Amendment_Rule:
				for _, f := range []func(*pb.VotingRule){
					func(r *pb.VotingRule) { r.Roles = nil }, func(r *pb.VotingRule) { r.Roles = []string{"platform", "platform"} },
					func(r *pb.VotingRule) { r.Roles = []string{"referral", "platform", "auditor"} },
					func(r *pb.VotingRule) { r.Roles = []string{"referral", "platform", "auditor", "referral"} },
					func(r *pb.VotingRule) { r.Roles = []string{"x"} }, func(r *pb.VotingRule) { r.Roles = []string{""} },
					func(r *pb.VotingRule) { r.ThresholdPercent = 49 }, func(r *pb.VotingRule) { r.ThresholdPercent = 50 },
					func(r *pb.VotingRule) { r.ThresholdPercent = 99 }, func(r *pb.VotingRule) { r.ThresholdPercent = 100 },
					func(r *pb.VotingRule) { r.ThresholdPercent = 0 },
				} {
					changes = append(changes, func(b *pb.Entry) { f(b.GetAmendment().GetRule()) })
				}
			}
		case *pb.Entry_Approval:
			changes = append(changes,
				func(b *pb.Entry) { b.GetApproval().Proposal = b.GetApproval().Proposal[:33] },
				func(b *pb.Entry) {
					b.GetApproval().Proposal = append([]byte{0x12, 0x21}, b.GetApproval().Proposal[2:]...)
				},
				func(b *pb.Entry) { b.GetApproval().Proposal = nil },
				func(b *pb.Entry) { b.GetApproval().Base = 0 })
		case *pb.Entry_Rotation:
			changes = append(changes,
				func(b *pb.Entry) { b.GetRotation().NewKey = b.Author },
				func(b *pb.Entry) { b.GetRotation().NewKey = zero },
				func(b *pb.Entry) { b.GetRotation().NewKey = nil })
		case *pb.Entry_PeerUpdate:
			changes = append(changes,
				func(b *pb.Entry) { b.GetPeerUpdate().PeerId = "" },
				func(b *pb.Entry) { b.GetPeerUpdate().PeerId = "Il0O" },
				func(b *pb.Entry) { b.GetPeerUpdate().Addrs = []string{"/x", ""} },
				func(b *pb.Entry) { b.GetPeerUpdate().Addrs = slices.Repeat([]string{"/a"}, 17) })
		}
		for _, change := range changes {
			b := proto.CloneOf(body)
			change(b)
			records = append(records, wrap(marshal(b), sigs[i]))
		}
	}
	// At random: the Entry bytes with a byte flipped, set, inserted or
	// deleted.
	rng := rand.New(rand.NewPCG(11, 12))
	for range 2500 {
		i := rng.IntN(len(bodies))
		m := marshal(bodies[i])
		j := rng.IntN(len(m))
		switch rng.IntN(4) {
		case 0:
			m[j] ^= 1 << rng.IntN(8)
		case 1:
			m[j] = byte(rng.IntN(256))
		case 2:
			m = slices.Insert(m, j, byte(rng.IntN(256)))
		default:
			m = slices.Delete(m, j, j+1)
		}
		records = append(records, wrap(m, sigs[i]))
	}
	file, err := exporttest.Encode(s.Header, nil, records, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "mutated.export")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	genesisFile := filepath.Join(t.TempDir(), "genesis.toml")
	if err := os.WriteFile(genesisFile, s.GenesisTOML, 0o600); err != nil {
		t.Fatal(err)
	}
	// What protocol.Decode says of each record (the header is record 1).
	var want []string
	for i, raw := range records {
		if _, err := protocol.Decode(bytes.Clone(raw)); err != nil {
			want = append(want, fmt.Sprint(i+2))
		}
	}
	malformed := func(v memberVerdict) []string {
		var out []string
		for _, x := range v.Violations {
			if x.Kind == "malformed" {
				n, _, _ := strings.Cut(strings.TrimPrefix(x.Message, "record "), ":")
				out = append(out, n)
			}
		}
		return out
	}
	pyV := runMemberVerifier(t, py, pyVerifier, path, "--genesis", genesisFile, "--json")
	got := malformed(pyV)
	slices.Sort(got)
	slices.Sort(want)
	t.Logf("%d records, %d malformed", len(records), len(want))
	if len(want) < len(records)/2 || len(want) == len(records) {
		t.Fatalf("the mutations are not a mix: %d of %d malformed", len(want), len(records))
	}
	if !slices.Equal(got, want) {
		for _, n := range want {
			if !slices.Contains(got, n) {
				i, _ := strconv.Atoi(n)
				_, err := protocol.Decode(bytes.Clone(records[i-2]))
				t.Errorf("record %s: Go rejects it (%v), Python accepts it", n, err)
			}
		}
		for _, n := range got {
			if !slices.Contains(want, n) {
				t.Errorf("record %s: Python rejects it, Go accepts it", n)
			}
		}
	}
}

// TestPythonVerifierRandomMembership: on federations whose membership
// changes at random (audittest.Random), the two verifiers compute the
// same membership and reach the same findings, with the same evidence,
// and the same membership entries without effect.
func TestPythonVerifierRandomMembership(t *testing.T) {
	t.Parallel()
	py := requirePython(t)
	dir := t.TempDir()
	kinds := map[string]int{}
	for seed := range uint64(16) {
		s := audittest.Random(t, seed, transportPeer(t))
		genesisFile := filepath.Join(dir, fmt.Sprintf("genesis-%d.toml", seed))
		file := filepath.Join(dir, fmt.Sprintf("random-%d.export", seed))
		if err := os.WriteFile(genesisFile, s.GenesisTOML, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, s.File, 0o600); err != nil {
			t.Fatal(err)
		}
		goV := runMemberVerifier(t, binary, "audit", file, "--genesis", genesisFile, "--json")
		pyV := runMemberVerifier(t, py, pyVerifier, file, "--genesis", genesisFile, "--json")
		if goV.Genesis != pyV.Genesis || goV.Code != pyV.Code {
			t.Errorf("seed %d: genesis %s / %s, exit %d / %d", seed, goV.Genesis, pyV.Genesis, goV.Code, pyV.Code)
		}
		gf, pf := goV.findings(t), pyV.findings(t)
		if !slices.Equal(gf, pf) {
			t.Errorf("seed %d: the verifiers disagree:\ngo:\n%s\npy:\n%s\ngo says:\n%s\npy says:\n%s", seed,
				strings.Join(gf, "\n"), strings.Join(pf, "\n"), memberMessages(goV), memberMessages(pyV))
		}
		if gv, pv := goV.voids(), pyV.voids(); !slices.Equal(gv, pv) {
			t.Errorf("seed %d: membership entries without effect: go %v, py %v", seed, gv, pv)
		}
		for _, v := range goV.Violations {
			kinds[v.Kind]++
		}
		kinds["void membership"] += len(goV.Voids)
	}
	t.Logf("findings over every seed: %v", kinds)
	for _, k := range []string{"unknown-author", "outside", "role", "conflicting-approval", "void membership"} {
		if kinds[k] == 0 {
			t.Errorf("no seed gave a %s: the random federations miss a case", k)
		}
	}
}
