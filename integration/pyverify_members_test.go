package integration

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/audit/audittest"
	"github.com/staydown/staydown/protocol/export/exporttest"
	"github.com/staydown/staydown/protocol/membership"
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
	cmd := exec.Command(prog, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var v memberVerdict
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		v.Code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s %v: %v", prog, args, err)
	}
	if v.Code == 2 {
		t.Fatalf("%s %v: exit 2: %s", prog, args, errb.String())
	}
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatalf("%s %v: exit %d: output is not JSON: %v\nstdout: %s\nstderr: %s", prog, args, v.Code, err, out.String(), errb.String())
	}
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
	var logs [][][]byte
	for _, raw := range s.Entries {
		e, err := protocol.Decode(bytes.Clone(raw))
		if err != nil {
			t.Fatal(err)
		}
		if e.Seq() == 1 {
			logs = append(logs, nil)
		}
		logs[len(logs)-1] = append(logs[len(logs)-1], raw)
	}
	slices.Reverse(logs)
	reversed, err := exporttest.Encode(s.Header, nil, slices.Concat(logs...), nil)
	if err != nil {
		t.Fatal(err)
	}
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
