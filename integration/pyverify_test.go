package integration

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/export"
	"github.com/staydown/staydown/protocol/export/exporttest"
	"github.com/staydown/staydown/protocol/pb"
)

// pyVerifier is the independent Python verifier of export files (SPEC.md
// section 19), relative to this package's directory.
const pyVerifier = "pyverify/staydown_verify.py"

// verdict is what both verifiers print with --json, as far as they must
// agree.
type verdict struct {
	Code       int
	OK         bool `json:"ok"`
	Entries    int  `json:"entries"`
	Logs       int  `json:"logs"`
	Violations []struct {
		Kind    string `json:"kind"`
		Message string `json:"message"`
	} `json:"violations"`
}

func (v verdict) kinds() []string {
	k := []string{}
	for _, x := range v.Violations {
		k = append(k, x.Kind)
	}
	slices.Sort(k)
	return k
}

func (v verdict) String() string {
	return fmt.Sprintf("exit %d, ok %v, %d entries, %d logs, kinds %v", v.Code, v.OK, v.Entries, v.Logs, v.kinds())
}

// requirePython fails (not skips) the test when the verifier cannot run.
func requirePython(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is not installed; .ci/run installs python3 and python3-cryptography (apt-get install python3 python3-cryptography): %v", err)
	}
	out, err := exec.Command(py, "-c", "import tomllib\nfrom cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey").CombinedOutput()
	if err != nil {
		t.Fatalf("python3 lacks the cryptography module (or is older than 3.11, without tomllib); .ci/run installs python3-cryptography (apt-get install python3-cryptography): %v\n%s", err, out)
	}
	return py
}

// TestPythonVerifier runs a real federation, exports its logs, and
// requires the Go auditor and the independent Python verifier to agree on
// the clean export and on tampered copies of it.
func TestPythonVerifier(t *testing.T) {
	t.Parallel()
	py := requirePython(t)
	c, nru, a, b := threeNodes(t)

	h1, h2, h3 := randomSHA256(t), randomSHA256(t), randomSHA256(t)
	add1 := strings.TrimSpace(mustCLI(t, "add", "--dir", nru.dir, "--type", "sha256", "--label", "attacker-manifesto", "--case", "IRU-1", h1, h2))
	mustCLI(t, "add", "--dir", nru.dir, "--type", "url", "--label", "other:livestream", "HTTPS://Video.Example:443/watch?v=ä b#t=1")
	add3 := strings.TrimSpace(mustCLI(t, "add", "--dir", a.dir, "--type", "account", "--label", "recruitment-and-instruction", "video.example:some_channel"))
	mustCLI(t, "retract", "--dir", nru.dir, add1, "--reason", "wrong file", "--signal", "sha256:"+h1) // h2 stays
	dispute(t, b, add3, "news footage")
	mustCLI(t, "allow", "--dir", b.dir, "--type", "sha256", "--category", "news", "--reason", "a broadcaster's report", h3)
	n1 := strings.TrimSpace(mustCLI(t, "notice", "--dir", nru.dir, "--to", "platform-a", "--url", "https://v.example/1",
		"--signal", "sha256:"+h2, "--category", "attacker-manifesto", "--basis", "TCO art. 3"))
	waitNotice(t, a, n1, "open")
	mustCLI(t, "reply", "--dir", a.dir, n1, "--status", "clarification-requested", "--text", "which video?")
	waitNotice(t, nru, n1, "clarification-requested")
	mustCLI(t, "notice", "clarify", "--dir", nru.dir, n1, "--text", "the one at 0:42")
	waitNotice(t, a, n1, "open")
	mustCLI(t, "reply", "--dir", a.dir, n1, "--status", "removed", "--text", "removed worldwide")
	waitFor(t, deliveryBound, "identical heads digests", func() bool {
		d := c.status(nru).HeadsDigest
		return c.status(a).HeadsDigest == d && c.status(b).HeadsDigest == d
	})

	dir := t.TempDir()
	clean := filepath.Join(dir, "clean.export")
	mustCLI(t, "log", "export", "--dir", a.dir, "--out", clean)
	hdr, logs, order := readExport(t, clean)

	keyOf := func(n *node) ed25519.PrivateKey {
		t.Helper()
		cfg, err := config.Load(n.dir)
		if err != nil {
			t.Fatal(err)
		}
		k, err := cfg.AuthorKey()
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	nruKey, aKey, bKey := keyOf(nru), keyOf(a), keyOf(b)
	nruAK, aAK, bAK := protocol.AuthorKeyOf(nruKey), protocol.AuthorKeyOf(aKey), protocol.AuthorKeyOf(bKey)
	if len(logs[nruAK]) != 5 || len(logs[aAK]) != 3 || len(logs[bAK]) != 2 {
		t.Fatalf("export holds %d, %d, %d entries for nru, platform-a, platform-b; want 5, 3, 2", len(logs[nruAK]), len(logs[aAK]), len(logs[bAK]))
	}
	head := func(k protocol.AuthorKey) *protocol.Entry {
		l := logs[k]
		e, err := protocol.Decode(slices.Clone(l[len(l)-1]))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	sign := func(priv ed25519.PrivateKey, fed string, seq uint64, prev *protocol.Entry, payload any) []byte {
		t.Helper()
		body := &pb.Entry{Version: protocol.Version, Federation: fed, Seq: seq, TimestampMs: 1767225600000 + int64(seq)}
		if prev != nil {
			body.Prev = prev.ID[:]
		}
		switch p := payload.(type) {
		case *pb.Addition:
			body.Payload = &pb.Entry_Addition{Addition: p}
		case *pb.Notice:
			body.Payload = &pb.Entry_Notice{Notice: p}
		default:
			t.Fatalf("payload %T", payload)
		}
		e, err := protocol.Sign(priv, body)
		if err != nil {
			t.Fatal(err)
		}
		return e.Raw
	}
	addition := func() *pb.Addition {
		s, err := protocol.ParseSignal("sha256", randomSHA256(t))
		if err != nil {
			t.Fatal(err)
		}
		return &pb.Addition{Signals: []*pb.Signal{s}, Labels: []*pb.Label{{Slug: "graphic-violence"}}}
	}
	fed := hdr.Federation
	nru1, err := protocol.Decode(slices.Clone(logs[nruAK][0]))
	if err != nil {
		t.Fatal(err)
	}

	// Entries written with write(entriesOf(...)) keep the file's order of
	// logs unless a fixture changes it.
	type fixture struct {
		name string
		file string
		want []string // kinds that must be among the findings (sanity of the fixture)
		code int      // expected exit code of both
	}
	var fixtures []fixture
	add := func(name string, code int, want []string, data []byte) {
		f := filepath.Join(dir, name+".export")
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
		fixtures = append(fixtures, fixture{name, f, want, code})
	}
	// write builds an export file with a freshly computed trailer.
	write := func(entries, evidence [][]byte) []byte {
		t.Helper()
		b, err := exporttest.Encode(hdr, nil, entries, evidence)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// entriesOf lists the logs in the file's order, with log k replaced.
	entriesOf := func(replace map[protocol.AuthorKey][][]byte) [][]byte {
		var all [][]byte
		for _, k := range order {
			l := logs[k]
			if r, ok := replace[k]; ok {
				l = r
			}
			all = append(all, l...)
		}
		return all
	}
	cleanData, err := os.ReadFile(clean)
	if err != nil {
		t.Fatal(err)
	}
	fixtures = append(fixtures, fixture{"clean", clean, nil, 0})
	add("rewritten", 0, nil, write(entriesOf(nil), nil))

	// A flipped byte inside a payload (the first addition's first hash),
	// the trailer left alone.
	flipped := slices.Clone(cleanData)
	i := bytes.Index(flipped, mustHex(t, h1))
	if i < 0 {
		t.Fatal("the hash is not in the export")
	}
	flipped[i+5] ^= 0x10
	add("flipped-byte", 1, []string{"bad-signature", "file"}, flipped)

	// An entry removed from the middle of a log, the trailer recomputed.
	nruLog := logs[nruAK]
	add("removed-entry", 1, []string{"gap"}, write(entriesOf(map[protocol.AuthorKey][][]byte{
		nruAK: append(slices.Clone(nruLog[:2]), nruLog[3:]...)}), nil))

	// A log out of order: seqs 1 3 2 4 5.
	add("reordered", 1, []string{"reordered"}, write(entriesOf(map[protocol.AuthorKey][][]byte{
		nruAK: {nruLog[0], nruLog[2], nruLog[1], nruLog[3], nruLog[4]}}), nil))

	// A log split in two places of the file.
	var split [][]byte
	for _, k := range order {
		if k != nruAK {
			split = append(split, logs[k]...)
		}
	}
	split = append(append(slices.Clone(nruLog[:2]), split...), nruLog[2:]...)
	add("split-log", 1, []string{"reordered"}, write(split, nil))

	// A log of an author not in the roster.
	_, stranger, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	add("unknown-author", 1, []string{"unknown-author"}, write(append(entriesOf(nil), sign(stranger, fed, 1, nil, addition())), nil))

	// An entry of another federation, by a member.
	add("wrong-federation", 1, []string{"wrong-federation"}, write(entriesOf(map[protocol.AuthorKey][][]byte{
		nruAK: append(slices.Clone(nruLog), sign(nruKey, "elsewhere", 6, head(nruAK), addition()))}), nil))

	// A notice by a platform, which its role may not write, continuing its
	// log correctly.
	notice := &pb.Notice{Addressee: bAK[:], Signals: addition().Signals, Category: &pb.Label{Slug: "graphic-violence"},
		LegalBasis: "none", DeadlineMs: 1767225600000 + 3600000}
	add("role", 1, []string{"role"}, write(entriesOf(map[protocol.AuthorKey][][]byte{
		aAK: append(slices.Clone(logs[aAK]), sign(aKey, fed, uint64(len(logs[aAK])+1), head(aAK), notice))}), nil))

	// A notice addressed to a referral unit.
	toReferral := &pb.Notice{Addressee: nruAK[:], Signals: addition().Signals, Category: &pb.Label{Slug: "graphic-violence"},
		LegalBasis: "none", DeadlineMs: 1767225600000 + 3600000}
	add("notice-to-referral", 1, []string{"role"}, write(entriesOf(map[protocol.AuthorKey][][]byte{
		nruAK: append(slices.Clone(nruLog), sign(nruKey, fed, 6, head(nruAK), toReferral))}), nil))

	// Two forks of nru's log at seq 2: one logged, one as evidence.
	fork := sign(nruKey, fed, 2, nru1, addition())
	add("equivocation-evidence", 1, []string{"equivocation"}, write(entriesOf(nil), [][]byte{fork}))
	// The fork inside the log itself, after the entry it conflicts with.
	add("equivocation-in-log", 1, []string{"equivocation"}, write(entriesOf(map[protocol.AuthorKey][][]byte{
		nruAK: append(slices.Clone(nruLog[:2]), append([][]byte{fork}, nruLog[2:]...)...)}), nil))
	// Evidence that repeats the logged entry proves nothing.
	add("evidence-repeats", 1, []string{"malformed"}, write(entriesOf(nil), [][]byte{nruLog[1]}))

	// A validly signed entry that is not in canonical encoding: an unknown
	// field appended to the Entry.
	body := slices.Clone(mustSigned(t, head(bAK)))
	body = protowire.AppendTag(body, 99, protowire.VarintType)
	body = protowire.AppendVarint(body, 1)
	body = protowire.AppendTag(body, 6, protowire.VarintType) // a second timestamp, out of order
	body = protowire.AppendVarint(body, 7)
	noncanon := signRaw(bKey, body)
	add("non-canonical", 1, []string{"malformed"}, write(append(entriesOf(nil), noncanon), nil))

	// A video (vpdq) addition continuing nru's log: both accept it. The
	// same value with its two frames swapped is not canonical (SPEC 7.6):
	// both refuse it.
	vsig, err := protocol.ParseSignal("vpdq", `["`+strings.Repeat("a5", 32)+`,100,0.0", "`+strings.Repeat("5a", 32)+`,49,1.0"]`)
	if err != nil {
		t.Fatal(err)
	}
	vadd := &pb.Addition{Signals: []*pb.Signal{vsig}, Labels: []*pb.Label{{Slug: "graphic-violence"}}}
	add("vpdq-addition", 0, nil, write(entriesOf(map[protocol.AuthorKey][][]byte{
		nruAK: append(slices.Clone(nruLog), sign(nruKey, fed, 6, head(nruAK), vadd))}), nil))
	v := vsig.GetVpdq()
	swapped := append(slices.Clone(v[protocol.VPDQFrameSize:]), v[:protocol.VPDQFrameSize]...)
	vbody := &pb.Entry{Version: protocol.Version, Federation: fed, Seq: 6, Prev: head(nruAK).ID[:], TimestampMs: 1767225600000 + 6,
		Author: nruAK[:], Payload: &pb.Entry_Addition{Addition: &pb.Addition{
			Signals: []*pb.Signal{{Value: &pb.Signal_Vpdq{Vpdq: swapped}}}, Labels: vadd.Labels}}}
	vraw, err := proto.MarshalOptions{Deterministic: true}.Marshal(vbody)
	if err != nil {
		t.Fatal(err)
	}
	add("vpdq-not-canonical", 1, []string{"malformed"}, write(entriesOf(map[protocol.AuthorKey][][]byte{
		nruAK: append(slices.Clone(nruLog), signRaw(nruKey, vraw))}), nil))

	// A badly signed entry continuing a log: counted, and the log goes on.
	bad := slices.Clone(sign(bKey, fed, uint64(len(logs[bAK])+1), head(bAK), addition()))
	bad[len(bad)-1] ^= 1
	add("bad-signature", 1, []string{"bad-signature"}, write(entriesOf(map[protocol.AuthorKey][][]byte{
		bAK: append(slices.Clone(logs[bAK]), bad)}), nil))

	// Checkpoints of nru's log: one cosigned by platform-a that matches,
	// one of the same size with another root, one whose signature is
	// broken.
	writeWith := func(checkpoints [][]byte, entries [][]byte) []byte {
		t.Helper()
		b, err := exporttest.Encode(hdr, checkpoints, entries, nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tree := protocol.NewTree()
	for _, raw := range nruLog {
		tree.Append(protocol.IDOf(raw))
	}
	noteSign := func(name string, key ed25519.PrivateKey, cp protocol.Checkpoint) []byte {
		t.Helper()
		s, err := protocol.NoteSigner(name, key)
		if err != nil {
			t.Fatal(err)
		}
		m, err := protocol.SignCheckpoint(cp, s)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	origin := protocol.CheckpointOrigin(fed, nruAK)
	good := noteSign("nru", nruKey, protocol.Checkpoint{Origin: origin, Size: uint64(len(nruLog)), Root: tree.Root()})
	opened, err := protocol.OpenCheckpoint(good, c.rosterOf(t, fed))
	if err != nil {
		t.Fatal(err)
	}
	aSigner, err := protocol.NoteSigner("platform-a", aKey)
	if err != nil {
		t.Fatal(err)
	}
	cosigned, err := protocol.Cosign(opened.Note, aSigner)
	if err != nil {
		t.Fatal(err)
	}
	otherRoot := noteSign("nru", nruKey, protocol.Checkpoint{Origin: origin, Size: uint64(len(nruLog)), Root: bytes.Repeat([]byte{7}, 32)})
	brokenSig := bytes.Replace(slices.Clone(good), []byte("\n5\n"), []byte("\n4\n"), 1)
	add("checkpoint-cosigned", 0, nil, writeWith([][]byte{cosigned}, entriesOf(nil)))
	add("checkpoints-contradict", 1, []string{"checkpoint-conflict"}, writeWith([][]byte{good, otherRoot}, entriesOf(nil)))
	add("checkpoint-not-of-log", 1, []string{"checkpoint-conflict"}, writeWith([][]byte{otherRoot}, entriesOf(nil)))
	add("checkpoint-bad-signature", 1, []string{"checkpoint"}, writeWith([][]byte{brokenSig}, entriesOf(nil)))

	// A badly signed fork inside the log: a bad signature, no equivocation.
	badFork := slices.Clone(fork)
	badFork[len(badFork)-1] ^= 1
	add("bad-fork-in-log", 1, []string{"bad-signature"}, write(entriesOf(map[protocol.AuthorKey][][]byte{
		nruAK: append(slices.Clone(nruLog[:2]), append([][]byte{badFork}, nruLog[2:]...)...)}), nil))
	// The header's length written in more bytes than it needs: the file
	// cannot be read.
	longPrefix := append(append([]byte(export.Magic), cleanData[len(export.Magic)]|0x80, 0x00), cleanData[len(export.Magic)+1:]...)
	add("long-prefix", 2, nil, longPrefix)

	// The file cut short: no trailer.
	add("truncated", 1, []string{"file"}, cleanData[:len(cleanData)-10])
	// Not an export at all.
	add("bad-magic", 2, nil, append([]byte("staydown export v2\n"), cleanData[19:]...))

	for _, f := range fixtures {
		goV := runVerifier(t, binary, "audit", f.file, "--roster", c.roster, "--json")
		pyV := runVerifier(t, py, pyVerifier, f.file, "--roster", c.roster, "--json")
		t.Logf("%-22s go: %v", f.name, goV)
		t.Logf("%-22s py: %v", f.name, pyV)
		if goV.Code != f.code {
			t.Errorf("%s: the Go auditor exits %d, want %d", f.name, goV.Code, f.code)
		}
		for _, k := range f.want {
			if !slices.Contains(goV.kinds(), k) {
				t.Errorf("%s: the Go auditor does not report %q: %v", f.name, k, goV)
			}
		}
		if goV.Code != pyV.Code || goV.OK != pyV.OK || goV.Entries != pyV.Entries || goV.Logs != pyV.Logs ||
			!slices.Equal(goV.kinds(), pyV.kinds()) {
			t.Errorf("%s: the verifiers disagree:\n  go: %v\n  py: %v\n  go says: %s\n  py says: %s", f.name, goV, pyV, messages(goV), messages(pyV))
		}
	}
}

func messages(v verdict) string {
	var m []string
	for _, x := range v.Violations {
		m = append(m, "["+x.Kind+"] "+x.Message)
	}
	return strings.Join(m, "; ")
}

// runVerifier runs a verifier with --json and parses what it prints (not
// on exit 2, when it prints only an error).
func runVerifier(t *testing.T, prog string, args ...string) verdict {
	t.Helper()
	var v verdict
	code, stderr := runJSON(t, &v, prog, args...)
	v.Code = code
	if code == 2 && stderr == "" {
		t.Errorf("%s %v: exit 2 without a message", prog, args)
	}
	return v
}

// runJSON runs prog with args and decodes what it prints into v, unless
// it exits 2 (when it prints only an error). It returns the exit code and
// what it wrote to stderr.
func runJSON(t *testing.T, v any, prog string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(prog, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s %v: %v", prog, args, err)
	}
	if code == 2 {
		return code, errb.String()
	}
	if err := json.Unmarshal(out.Bytes(), v); err != nil {
		t.Fatalf("%s %v: exit %d: output is not JSON: %v\nstdout: %s\nstderr: %s", prog, args, code, err, out.String(), errb.String())
	}
	return code, errb.String()
}

// readExport returns an export's header, its logs (SignedEntry bytes by
// author, in seq order) and the order of the logs in the file.
func readExport(t *testing.T, path string) (*pb.ExportHeader, map[protocol.AuthorKey][][]byte, []protocol.AuthorKey) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := export.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	logs := map[protocol.AuthorKey][][]byte{}
	var order []protocol.AuthorKey
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Kind != export.KindEntry {
			t.Fatalf("the clean export holds a record of kind %d", rec.Kind)
		}
		e, err := protocol.Decode(slices.Clone(rec.Raw))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := logs[e.Author]; !ok {
			order = append(order, e.Author)
		}
		logs[e.Author] = append(logs[e.Author], rec.Raw)
	}
	return r.Header, logs, order
}

// mustSigned returns the Entry bytes of e (what its author signed).
func mustSigned(t *testing.T, e *protocol.Entry) []byte {
	t.Helper()
	if len(e.Signed) == 0 {
		t.Fatal("entry without signed bytes")
	}
	return e.Signed
}

// signRaw signs arbitrary Entry bytes and wraps them in a SignedEntry,
// without the checks of protocol.Sign (to build malformed entries).
func signRaw(priv ed25519.PrivateKey, entry []byte) []byte {
	sig := ed25519.Sign(priv, append([]byte(protocol.SignatureContext), entry...))
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, entry)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	return protowire.AppendBytes(b, sig)
}

// rosterOf loads the cluster's roster for federation fed.
func (c *cluster) rosterOf(t *testing.T, fed string) *protocol.Roster {
	t.Helper()
	r, err := config.LoadRoster(c.roster, fed)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestPythonURLVectors: the Python verifier's url rule agrees with the
// table of SPEC 7.4 (protocol/testdata/url_vectors.json): it takes every
// v1 and v2 normal form there and makes of each input what the table says
// Go's net/url made of it (url_vectors.py says why it needs no v2 form).
func TestPythonURLVectors(t *testing.T) {
	t.Parallel()
	py := requirePython(t)
	vectors, err := filepath.Abs("../protocol/testdata/url_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "url_vectors.py", vectors)
	cmd.Dir = filepath.Dir(pyVerifier)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("url_vectors.py: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), ", 0 disagreements") {
		t.Fatalf("url_vectors.py:\n%s", out)
	}
}
