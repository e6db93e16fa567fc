package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/replica"
)

func TestReopenKeepsEverything(t *testing.T) {
	s, _ := richStore(t)
	before := s.physical()
	heads, err := s.Heads()
	if err != nil {
		t.Fatal(err)
	}
	s.mustReopen()
	if d := diff(before, s.physical()); d != "" {
		t.Errorf("reopen changed the file:\n%s", d)
	}
	after, err := s.Heads()
	if err != nil || !slices.Equal(heads, after) {
		t.Errorf("heads %v %v, want %v", after, err, heads)
	}
}

func TestOpen(t *testing.T) {
	s, w := mustOpen(t), newWorld(t)
	s.mustApply(Applied, w.A.next(addition(sha("a"))))

	t.Run("second open of the same file times out", func(t *testing.T) {
		if _, err := Open(s.path); err == nil {
			t.Fatal("opened a file that is already open")
		}
	})

	t.Run("other schema", func(t *testing.T) {
		s.bolt(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(metaSchema, u64(schemaVersion+1)) })
		s.mustClose()
		if _, err := Open(s.path); !errors.Is(err, ErrSchema) {
			t.Errorf("open: %v, want ErrSchema", err)
		}
		db, err := bolt.Open(s.path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(metaSchema, u64(schemaVersion)) }); err != nil {
			t.Fatal(err)
		}
		db.Close()
		s.mustReopen()
		wantHead(t, s, w.A.head)
	})

	t.Run("someone else's bbolt file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "other.db")
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("theirs")); return err }); err != nil {
			t.Fatal(err)
		}
		db.Close()
		if _, err := Open(path); !errors.Is(err, ErrCorrupt) {
			t.Errorf("open: %v, want ErrCorrupt", err)
		}
	})

	t.Run("not a bbolt file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "junk.db")
		if err := os.WriteFile(path, bytes.Repeat([]byte("junk"), 4096), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(path); err == nil {
			t.Error("opened junk")
		}
	})
}

func TestRange(t *testing.T) {
	s, w := mustOpen(t), newWorld(t)
	for _, x := range []string{"1", "2", "3", "4", "5"} {
		w.A.next(addition(sha(x)))
	}
	s.mustApply(Applied, w.A.log...)
	tests := []struct {
		from, to uint64
		want     []uint64
	}{
		{1, 5, []uint64{1, 2, 3, 4, 5}},
		{0, 2, []uint64{1, 2}},
		{3, 3, []uint64{3}},
		{4, 100, []uint64{4, 5}},
		{6, 9, nil},
		{3, 2, nil},
	}
	for _, tt := range tests {
		var got []uint64
		err := s.Range(w.A.key, tt.from, tt.to, func(e *protocol.Entry) error {
			if !bytes.Equal(e.Raw, w.A.log[e.Seq()-1].Raw) {
				t.Errorf("entry %d differs from what was applied", e.Seq())
			}
			got = append(got, e.Seq())
			return nil
		})
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("Range(%d, %d): %v %v, want %v", tt.from, tt.to, got, err, tt.want)
		}
	}
	if err := s.Range(w.B.key, 1, 10, func(*protocol.Entry) error { t.Error("entry of an empty log"); return nil }); err != nil {
		t.Error(err)
	}
	stop := errors.New("enough")
	n := 0
	if err := s.Range(w.A.key, 1, 5, func(*protocol.Entry) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("stopping: %v after %d entries, want %v after 1", err, n, stop)
	}
}

// Entries returned by the store are copies: they outlive the transaction
// and even the open file.
func TestReturnedEntriesOwnTheirBytes(t *testing.T) {
	s, w := richStore(t)
	want := w.B.log[3]
	got, err := s.Get(want.ID)
	if err != nil {
		t.Fatal(err)
	}
	var ranged []*protocol.Entry
	if err := s.Range(w.A.key, 1, 3, func(e *protocol.Entry) error { ranged = append(ranged, e); return nil }); err != nil {
		t.Fatal(err)
	}
	ev, err := s.Evidence()
	if err != nil || len(ev) != 1 {
		t.Fatalf("evidence: %v %v", ev, err)
	}
	s.mustClose() // unmaps the file
	if !bytes.Equal(got.Raw, want.Raw) || got.Body.GetAddition().CaseRef != "case-1" {
		t.Error("Get's entry changed after close")
	}
	for i, e := range ranged {
		if !bytes.Equal(e.Raw, w.A.log[i].Raw) {
			t.Errorf("Range's entry %d changed after close", i+1)
		}
	}
	if !bytes.Equal(ev[0].Stored, w.C.log[1].Raw) {
		t.Error("evidence changed after close")
	}
	s.mustReopen()
	if _, err := s.Get(protocol.IDOf([]byte("nothing"))); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of an unknown id: %v, want ErrNotFound", err)
	}
}

func TestHeads(t *testing.T) {
	s, w := richStore(t)
	heads, err := s.Heads()
	if err != nil {
		t.Fatal(err)
	}
	want := []protocol.Head{w.A.head, w.B.head, w.C.head}
	slices.SortFunc(want, func(x, y protocol.Head) int { return bytes.Compare(x.Author[:], y.Author[:]) })
	if !slices.Equal(heads, want) {
		t.Errorf("heads %v, want %v", heads, want)
	}
	stranger := newAuthor(t, 9).key
	if h, err := s.Head(stranger); err != nil || h != (protocol.Head{Author: stranger}) {
		t.Errorf("head of an empty log: %+v %v", h, err)
	}
	wantCount(t, s, uint64(len(w.A.log)+len(w.B.log)+len(w.C.log)))
}

// A signal key that is a prefix of another (a URL and the same URL with a
// query) finds only its own attestations; every signal type round-trips.
func TestMatchSignalTypes(t *testing.T) {
	s, w := mustOpen(t), newWorld(t)
	parse := func(typ, v string) *pb.Signal {
		sig, err := protocol.ParseSignal(typ, v)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	sigs := []*pb.Signal{
		parse("url", "https://example.com/a"),
		parse("url", "https://example.com/a?b"),
		parse("account", "example.com:user"),
		parse("account", "example.com:user2"),
		parse("md5", "00112233445566778899aabbccddeeff"),
		parse("pdq", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"),
		sha("a"),
	}
	for _, sig := range sigs {
		s.mustApply(Applied, w.A.next(addition(sig)))
	}
	for i, sig := range sigs {
		a := matchOne(t, s, sig)
		if a.EntryID != w.A.log[i].ID || a.Seq != uint64(i+1) || a.CaseRef != "case-1" || a.TimeMs != t0+int64(i+1)*1000 ||
			!slices.Equal(a.Labels, []string{"graphic-violence", "other:test material"}) || a.Status != StatusActive || a.Author != w.A.key {
			t.Errorf("%s: %+v", protocol.FormatSignal(sig), a)
		}
	}
	wantMatches(t, s, parse("url", "https://example.com/"), 0)
	if as, err := s.Match(nil); err != nil || len(as) != 0 {
		t.Errorf("Match(nil): %v %v", as, err)
	}
}

// Match lists every attestation of a signal, by author and seq.
func TestMatchSeveralAuthors(t *testing.T) {
	s, w := mustOpen(t), newWorld(t)
	s.mustApply(Applied,
		w.C.next(addition(sha("a"))), w.B.next(addition(sha("a"))), w.A.next(addition(sha("a"))), w.A.next(addition(sha("b"), sha("a"))))
	as, err := s.Match(key(sha("a")))
	if err != nil || len(as) != 4 {
		t.Fatalf("%d attestations %v, want 4", len(as), err)
	}
	if !slices.IsSortedFunc(as, func(x, y Attestation) int {
		if c := bytes.Compare(x.Author[:], y.Author[:]); c != 0 {
			return c
		}
		return int(x.Seq) - int(y.Seq)
	}) {
		t.Errorf("not sorted by author and seq")
	}
}

func TestPreview(t *testing.T) {
	s, w := mustOpen(t), newWorld(t)
	a1 := w.A.next(addition(sha("a")))
	a2 := w.A.next(addition(sha("b")))
	s.mustApply(Applied, a1, a2)
	fork2 := w.A.sign(2, a1.ID, addition(sha("fork")))
	fork2b := w.A.sign(2, a1.ID, addition(sha("fork, again")))
	cases := []struct {
		name  string
		e     *protocol.Entry
		want  Outcome
		relay bool
	}{
		{"stored", a2, Duplicate, false},
		{"next", w.A.sign(3, a2.ID, addition(sha("c"))), Applied, true},
		{"next, broken link", w.A.sign(3, a1.ID, addition(sha("c"))), Rejected, false},
		{"ahead", w.A.sign(5, a2.ID, addition(sha("c"))), Gap, true},
		{"ahead by MaxGap", w.A.sign(2+replica.MaxGap, a2.ID, addition(sha("c"))), Gap, true},
		{"further ahead", w.A.sign(3+replica.MaxGap, a2.ID, addition(sha("c"))), Gap, false},
		{"new author", w.B.sign(1, protocol.ID{}, addition(sha("c"))), Applied, true},
		{"first conflict", fork2, Equivocation, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := s.physical()
			if got, relay, err := s.Preview(tc.e); err != nil || got != tc.want || relay != tc.relay {
				t.Errorf("Preview = %s, relay %v, %v; want %s, relay %v", got, relay, err, tc.want, tc.relay)
			}
			if d := diff(before, s.physical()); d != "" {
				t.Errorf("Preview changed the file:\n%s", d)
			}
		})
	}
	// Once a conflict at seq 2 is kept, further ones are old news.
	s.mustApply(Equivocation, fork2)
	for _, e := range []*protocol.Entry{fork2, fork2b} {
		if got, relay, err := s.Preview(e); err != nil || got != Duplicate || relay {
			t.Errorf("Preview after evidence = %s, %v; want duplicate", got, err)
		}
	}
}

// RangeRaw hands over exactly the bytes Range decodes, seq by seq, as
// copies the caller may keep.
func TestRangeRawMatchesRange(t *testing.T) {
	s, w := mustOpen(t), newWorld(t)
	var log []*protocol.Entry
	for i := 0; i < 5; i++ {
		log = append(log, w.A.next(addition(shaN(uint64(i)))))
	}
	s.mustApply(Applied, log...)
	var raws [][]byte
	var seqs []uint64
	if err := s.RangeRaw(w.A.key, 2, 9, func(seq uint64, raw []byte) error {
		seqs, raws = append(seqs, seq), append(raws, raw)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seqs, []uint64{2, 3, 4, 5}) {
		t.Fatalf("seqs %v, want 2..5 (the log ends at 5)", seqs)
	}
	for i, raw := range raws {
		if !bytes.Equal(raw, log[i+1].Raw) {
			t.Errorf("seq %d: bytes differ from the stored entry", seqs[i])
		}
	}
	var ids []protocol.ID
	if err := s.Range(w.A.key, 2, 9, func(e *protocol.Entry) error { ids = append(ids, e.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if id != protocol.IDOf(raws[i]) {
			t.Errorf("seq %d: Range and RangeRaw disagree", seqs[i])
		}
	}
}

// ReleaseMapped drops the process's copy of the file's pages; reads go on
// as before.
func TestReleaseMapped(t *testing.T) {
	s, w := mustOpen(t), newWorld(t)
	logs, fork := w.rich()
	s.mustApplyRich(w, interleave(logs)...)
	s.mustApply(Equivocation, fork)
	if err := s.ReleaseMapped(); err != nil {
		t.Fatal(err)
	}
	wantRichState(t, s, w)
}

// A retraction or a dispute that names signals bears on those signals of
// its target only (SPEC 6.2, 6.3, 10); one that names none bears on all.
// Retracting a dispute or an allow entry withdraws it for the signals the
// retraction names.
func TestStatusPerSignal(t *testing.T) {
	s, w := mustOpen(t), newWorld(t)
	a1 := w.A.next(addition(sha("x"), sha("y"), sha("z"), sha("u")))
	al := w.A.next(allow("news", "broadcast", sha("v1"), sha("v2")))
	a3 := w.A.next(addition(sha("v1"), sha("v2")))
	b1 := w.B.next(dispute(a1.ID, "y is a news clip", sha("y")))
	c1 := w.C.next(dispute(a1.ID, "all of it is satire"))
	s.mustApply(Applied, a1, al, a3, b1, c1,
		w.A.next(retraction(a1.ID, "z was misfiled", sha("z"))),
		w.A.next(retraction(al.ID, "v1 is not news", sha("v1"))),
		w.C.next(retraction(c1.ID, "u is not satire after all", sha("u"))),
	)
	status := func(sig string) (Status, []protocol.Kind) {
		t.Helper()
		var as []Attestation
		as, err := s.Match(key(sha(sig)))
		if err != nil {
			t.Fatal(err)
		}
		if len(as) != 1 {
			t.Fatalf("%s: %d attestations", sig, len(as))
		}
		var kinds []protocol.Kind
		for _, r := range as[0].Reasons {
			kinds = append(kinds, r.Kind)
		}
		return as[0].Status, kinds
	}
	for _, tt := range []struct {
		sig     string
		want    Status
		reasons []protocol.Kind
	}{
		{"x", StatusDisputed, []protocol.Kind{protocol.KindDispute}},                           // C's dispute of all
		{"y", StatusDisputed, []protocol.Kind{protocol.KindDispute, protocol.KindDispute}},     // B's and C's
		{"z", StatusRetracted, []protocol.Kind{protocol.KindDispute, protocol.KindRetraction}}, // A retracted z only
		{"u", StatusActive, nil},  // C withdrew its dispute for u
		{"v1", StatusActive, nil}, // the allow withdrawn for v1
		{"v2", StatusAllowlisted, []protocol.Kind{protocol.KindAllow}},
	} {
		got, reasons := status(tt.sig)
		if got != tt.want || !slices.Equal(reasons, tt.reasons) {
			t.Errorf("%s: %s %v, want %s %v", tt.sig, got, reasons, tt.want, tt.reasons)
		}
	}
	// C's dispute still stands (for x, y, z): Disputes lists it.
	ds, err := s.Disputes(a1.ID)
	if err != nil || len(ds) != 2 {
		t.Errorf("disputes of a1: %v %+v, want B's and C's", err, ds)
	}
	// Rebuilt from the logs, the same.
	before := s.snapshot()
	if err := s.Rebuild(); err != nil {
		t.Fatal(err)
	}
	if d := diff(before, s.snapshot()); d != "" {
		t.Errorf("rebuild differs:\n%s", d)
	}
	if got, _ := status("z"); got != StatusRetracted {
		t.Errorf("z after rebuild: %s", got)
	}
	// A second retraction of a1 is void: the first counts.
	s.mustApply(Void, w.A.next(retraction(a1.ID, "and x too", sha("x"))))
	if got, _ := status("x"); got != StatusDisputed {
		t.Errorf("x after a second retraction of a1: %s, want disputed (the second is void)", got)
	}
}
