package audit

import (
	"bytes"
	"crypto/ed25519"
	"slices"
	"strings"
	"testing"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/audit/audittest"
	"github.com/staydown/staydown/protocol/export"
	"github.com/staydown/staydown/protocol/export/exporttest"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/pb"
)

// testGenesis is the genesis of newWorld's federation (its keys are
// fixed), for the headers of the files the tests write.
var testGenesis = func() *membership.Genesis {
	r, err := worldRoster(newSigner(1), newSigner(2))
	if err != nil {
		panic(err)
	}
	g, err := membership.NewGenesis(r, membership.Rule{})
	if err != nil {
		panic(err)
	}
	return g
}()

func worldRoster(nru, pfa *signer) (*protocol.Roster, error) {
	return protocol.NewRoster("f", []protocol.Member{
		{Name: "nru", Role: protocol.RoleReferral, AuthorKey: protocol.AuthorKeyOf(nru.key), PeerID: "a"},
		{Name: "pfa", Role: protocol.RolePlatform, AuthorKey: protocol.AuthorKeyOf(pfa.key), PeerID: "b"},
	})
}

type signer struct {
	key  ed25519.PrivateKey
	head protocol.Head
	log  []*protocol.Entry
}

func newSigner(seed byte) *signer {
	return &signer{key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))}
}

func (s *signer) sign(t testing.TB, seq uint64, prev protocol.ID, body *pb.Entry) *protocol.Entry {
	t.Helper()
	body.Version, body.Federation, body.Seq, body.TimestampMs = protocol.Version, "f", seq, 1_700_000_000_000+int64(seq)*1000
	if seq > 1 {
		body.Prev = prev[:]
	}
	e, err := protocol.Sign(s.key, body)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (s *signer) next(t testing.TB, body *pb.Entry) *protocol.Entry {
	t.Helper()
	e := s.sign(t, s.head.Seq+1, s.head.ID, body)
	s.head = protocol.Head{Author: e.Author, Seq: e.Seq(), ID: e.ID}
	s.log = append(s.log, e)
	return e
}

func addition(label string) *pb.Entry {
	return &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{
		Signals: []*pb.Signal{{Value: &pb.Signal_Pdq{Pdq: bytes.Repeat([]byte{1}, 32)}}},
		Labels:  []*pb.Label{{Slug: "graphic-violence"}}, CaseRef: label}}}
}

type world struct {
	roster   *protocol.Roster
	genesis  *membership.Genesis
	nru, pfa *signer
	stranger *signer
}

func newWorld(t testing.TB) *world {
	w := &world{nru: newSigner(1), pfa: newSigner(2), stranger: newSigner(9)}
	var err error
	w.roster, err = worldRoster(w.nru, w.pfa)
	if err != nil {
		t.Fatal(err)
	}
	if w.genesis, err = membership.NewGenesis(w.roster, membership.Rule{}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		w.nru.next(t, addition(string(rune('a'+i))))
	}
	pfa := protocol.AuthorKeyOf(w.pfa.key)
	n := w.nru.next(t, &pb.Entry{Payload: &pb.Entry_Notice{Notice: &pb.Notice{Addressee: pfa[:],
		Signals:  []*pb.Signal{{Value: &pb.Signal_Pdq{Pdq: bytes.Repeat([]byte{2}, 32)}}},
		Category: &pb.Label{Slug: "attacker-manifesto"}, LegalBasis: "TCO", DeadlineMs: 1_800_000_000_000}}})
	w.pfa.next(t, &pb.Entry{Payload: &pb.Entry_NoticeReply{NoticeReply: &pb.NoticeReply{Notice: n.ID[:], Status: pb.ReplyStatus_REPLY_STATUS_REMOVED}}})
	w.pfa.next(t, addition("p"))
	return w
}

// file writes logs (raw entries in order) and evidence as an export.
func file(t *testing.T, entries, evidence [][]byte) []byte {
	t.Helper()
	return fileOf(t, nil, entries, evidence)
}

// fileOf writes checkpoints, then logs and evidence, as an export.
func fileOf(t *testing.T, checkpoints, entries, evidence [][]byte) []byte {
	t.Helper()
	b, err := exporttest.Encode(&pb.ExportHeader{Federation: "f", Genesis: testGenesis.Raw()}, checkpoints, entries, evidence)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func raws(es ...*protocol.Entry) [][]byte {
	out := make([][]byte, len(es))
	for i, e := range es {
		out[i] = e.Raw
	}
	return out
}

// feed hands every record of r to a, decoding one at a time.
func feed(r *export.Reader, a *Auditor) error {
	return FeedBatches(r, a, 1, func(recs []export.Record) []Decoded {
		out := make([]Decoded, len(recs))
		for i, rec := range recs {
			e, err := Decode(rec)
			out[i] = Decoded{rec, e, err}
		}
		return out
	})
}

// run audits a file the way the CLI does, with the backfill pass.
func run(t *testing.T, g *membership.Genesis, b []byte) Result {
	t.Helper()
	a := NewUnder(g)
	r, err := export.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := feed(r, a); err != nil {
		t.Fatal(err)
	}
	if a.NeedsBackfill() {
		r, _ := export.NewReader(bytes.NewReader(b))
		a.BackfillFrom(r)
	}
	return a.Finish(1_900_000_000_000)
}

func kinds(r Result) []string {
	var out []string
	for _, v := range r.Violations {
		out = append(out, v.Kind())
	}
	return out
}

func TestCleanExport(t *testing.T) {
	w := newWorld(t)
	r := run(t, w.genesis, file(t, raws(append(slices.Clone(w.nru.log), w.pfa.log...)...), nil))
	if len(r.Violations) != 0 || r.Entries != 8 || r.Logs != 2 {
		t.Fatalf("clean export: %d entries, %d logs, violations %v", r.Entries, r.Logs, r.Violations)
	}
	if r.Report.Totals.Additions != 6 || r.Report.Totals.NoticesReceived != 1 || r.Report.Totals.Actioned != 1 {
		t.Errorf("report totals %+v", r.Report.Totals)
	}
}

// Each tampered export is caught, with the right typed violation and the
// signed entries that prove it.
func TestTamperedExports(t *testing.T) {
	w := newWorld(t)
	nru, pfa := w.nru.log, w.pfa.log
	all := func(mod func([]*protocol.Entry) []*protocol.Entry) [][]byte {
		return raws(append(mod(slices.Clone(nru)), pfa...)...)
	}

	flipped := bytes.Clone(nru[2].Raw)
	flipped[bytes.Index(flipped, bytes.Repeat([]byte{1}, 32))] ^= 0x80 // a bit of the PDQ hash
	flippedFile := bytes.Clone(file(t, raws(append(slices.Clone(nru), pfa...)...), nil))
	i := bytes.Index(flippedFile, nru[2].Raw)
	copy(flippedFile[i:], flipped)

	stranger := w.stranger.next(t, addition("x"))
	roleBreach := w.pfa.sign(t, 3, pfa[1].ID, &pb.Entry{Payload: &pb.Entry_Notice{Notice: &pb.Notice{
		Addressee: pfa[0].Author[:], Signals: []*pb.Signal{{Value: &pb.Signal_Pdq{Pdq: make([]byte, 32)}}},
		Category: &pb.Label{Slug: "attacker-manifesto"}, LegalBasis: "none", DeadlineMs: 1_800_000_000_000}}})
	fork := w.nru.sign(t, 3, nru[1].ID, addition("fork"))

	cases := []struct {
		name     string
		file     []byte
		want     []string
		evidence int // raw entries in the first violation's evidence
	}{
		{"flipped byte in a payload, trailer recomputed", file(t, all(func(l []*protocol.Entry) []*protocol.Entry {
			e := *l[2]
			e.Raw = flipped
			l[2] = &e
			return l
		}), nil), []string{"bad-signature", "broken-link"}, 1},
		{"flipped byte in a payload, file as it is", flippedFile, []string{"bad-signature", "broken-link", "file"}, 1},
		{"entry removed in the middle", file(t, all(func(l []*protocol.Entry) []*protocol.Entry { return slices.Delete(l, 2, 3) }), nil), []string{"gap"}, 2},
		{"log reordered", file(t, all(func(l []*protocol.Entry) []*protocol.Entry { l[2], l[3] = l[3], l[2]; return l }), nil), []string{"gap", "reordered"}, 2},
		{"key not in the roster", file(t, append(all(func(l []*protocol.Entry) []*protocol.Entry { return l }), stranger.Raw), nil), []string{"unknown-author"}, 1},
		{"payload the role may not write", file(t, append(all(func(l []*protocol.Entry) []*protocol.Entry { return l }), roleBreach.Raw), nil), []string{"role"}, 1},
		{"two forks of one log, as evidence", file(t, all(func(l []*protocol.Entry) []*protocol.Entry { return l }), [][]byte{fork.Raw}), []string{"equivocation"}, 2},
		{"two forks of one log, in the log", file(t, all(func(l []*protocol.Entry) []*protocol.Entry { return slices.Insert(l, 3, fork) }), nil), []string{"equivocation"}, 2},
		{"a badly signed entry for a seq already taken", file(t, all(func(l []*protocol.Entry) []*protocol.Entry {
			bad := *fork
			bad.Raw = bytes.Clone(fork.Raw)
			bad.Raw[len(bad.Raw)-1] ^= 1
			return slices.Insert(l, 3, &bad)
		}), nil), []string{"bad-signature"}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, w.genesis, c.file)
			if got := kinds(r); !slices.Equal(got, c.want) {
				t.Fatalf("violations %v (%v), want %v", got, r.Violations, c.want)
			}
			ev := r.Violations[0].Evidence()
			if len(ev) != c.evidence {
				t.Fatalf("evidence: %d entries, want %d", len(ev), c.evidence)
			}
			for _, raw := range ev {
				if len(raw) == 0 {
					t.Fatal("empty evidence")
				}
				if _, err := protocol.Decode(bytes.Clone(raw)); err != nil {
					t.Errorf("evidence does not decode: %v", err)
				}
			}
		})
	}
}

// FuzzAudit: any record bytes, as entries or evidence, give findings,
// never a panic.
func FuzzAudit(f *testing.F) {
	w := newWorld(f)
	for _, e := range append(slices.Clone(w.nru.log), w.pfa.log...) {
		f.Add(e.Raw, false)
	}
	// Membership entries, of another federation: decoded, and refused.
	for _, raw := range audittest.New(f, func(name string) string { return "12D3KooW" + strings.ReplaceAll(name, "-", "z") }).Entries {
		f.Add(raw, false)
	}
	f.Add([]byte{}, true)
	f.Fuzz(func(t *testing.T, raw []byte, evidence bool) {
		a := New(w.roster)
		for _, e := range w.nru.log[:2] {
			a.Add(export.Record{Kind: export.KindEntry, Raw: e.Raw}, e, nil)
		}
		rec := export.Record{Kind: export.KindEntry, Raw: raw, Index: 3}
		if evidence {
			rec.Kind = export.KindEvidence
		}
		e, err := Decode(rec)
		a.Add(rec, e, err)
		if a.NeedsBackfill() {
			a.Backfill(rec)
		}
		a.Finish(0)
	})
}

// fileWith writes checkpoints, then the logs, as an export.
func fileWith(t *testing.T, checkpoints [][]byte, entries [][]byte) []byte {
	t.Helper()
	return fileOf(t, checkpoints, entries, nil)
}

func TestCheckpointsAudited(t *testing.T) {
	w := newWorld(t)
	nru := w.nru.log
	signer, err := protocol.NoteSigner("nru", w.nru.key)
	if err != nil {
		t.Fatal(err)
	}
	witness, err := protocol.NoteSigner("pfa", w.pfa.key)
	if err != nil {
		t.Fatal(err)
	}
	origin := protocol.CheckpointOrigin("f", protocol.AuthorKeyOf(w.nru.key))
	tree := protocol.NewTree()
	for _, e := range nru[:4] {
		tree.Append(e.ID)
	}
	sign := func(c protocol.Checkpoint) []byte {
		m, err := protocol.SignCheckpoint(c, signer)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	good := sign(protocol.Checkpoint{Origin: origin, Size: 4, Root: tree.Root()})
	sc, err := protocol.OpenCheckpoint(good, w.roster)
	if err != nil {
		t.Fatal(err)
	}
	cosigned, err := protocol.Cosign(sc.Note, witness)
	if err != nil {
		t.Fatal(err)
	}
	other := sign(protocol.Checkpoint{Origin: origin, Size: 4, Root: bytes.Repeat([]byte{9}, 32)})
	forged := bytes.Replace(bytes.Clone(good), []byte("\n4\n"), []byte("\n3\n"), 1)
	entries := raws(append(slices.Clone(nru), w.pfa.log...)...)

	r := run(t, w.genesis, fileWith(t, [][]byte{cosigned}, entries))
	if len(r.Violations) != 0 || r.Checkpoints != 1 || r.Checked != 1 {
		t.Fatalf("clean: %v, %d checkpoints, %d checked", r.Violations, r.Checkpoints, r.Checked)
	}
	cases := []struct {
		name     string
		ckpts    [][]byte
		want     []string
		evidence int
	}{
		{"two contradicting checkpoints", [][]byte{good, other}, []string{"checkpoint-conflict", "checkpoint-conflict"}, 2},
		{"a checkpoint that is not of the log", [][]byte{other}, []string{"checkpoint-conflict"}, 2},
		{"a checkpoint whose signature does not verify", [][]byte{forged}, []string{"checkpoint"}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, w.genesis, fileWith(t, c.ckpts, entries))
			if got := kinds(r); !slices.Equal(got, c.want) {
				t.Fatalf("violations %v (%v), want %v", got, r.Violations, c.want)
			}
			if n := len(r.Violations[0].Evidence()); n != c.evidence {
				t.Errorf("evidence: %d items, want %d", n, c.evidence)
			}
		})
	}
}
