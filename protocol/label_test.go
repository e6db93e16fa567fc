package protocol

import (
	"crypto/sha256"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/protocol/pb"
)

func TestParseLabel(t *testing.T) {
	good := []struct {
		in     string
		want   *pb.Label
		format string
	}{
		{"imminent-credible-threat", &pb.Label{Slug: "imminent-credible-threat"}, "imminent-credible-threat"},
		{"graphic-violence", &pb.Label{Slug: "graphic-violence"}, "graphic-violence"},
		{"glorification-of-terrorist-acts", &pb.Label{Slug: "glorification-of-terrorist-acts"}, "glorification-of-terrorist-acts"},
		{"recruitment-and-instruction", &pb.Label{Slug: "recruitment-and-instruction"}, "recruitment-and-instruction"},
		{"attacker-manifesto", &pb.Label{Slug: "attacker-manifesto"}, "attacker-manifesto"},
		{"branded-terrorist-publication", &pb.Label{Slug: "branded-terrorist-publication"}, "branded-terrorist-publication"},
		{"other:livestream", &pb.Label{Slug: "other", Text: "livestream"}, "other:livestream"},
		{" other : two words ", &pb.Label{Slug: "other", Text: "two words"}, "other:two words"},
		{"other:a:b", &pb.Label{Slug: "other", Text: "a:b"}, "other:a:b"},
		{"other:" + strings.Repeat("t", MaxLabelText), &pb.Label{Slug: "other", Text: strings.Repeat("t", MaxLabelText)}, "other:" + strings.Repeat("t", MaxLabelText)},
		{"graphic-violence:", &pb.Label{Slug: "graphic-violence"}, "graphic-violence"},
	}
	for _, c := range good {
		t.Run(c.in, func(t *testing.T) {
			l, err := ParseLabel(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(l, c.want) {
				t.Errorf("got %s", describe(l))
			}
			if f := FormatLabel(l); f != c.format {
				t.Errorf("FormatLabel = %q, want %q", f, c.format)
			}
			if again, err := ParseLabel(FormatLabel(l)); err != nil || !proto.Equal(again, l) {
				t.Errorf("round trip: %v", err)
			}
		})
	}
	bad := []struct {
		in      string
		mention []string
	}{
		{"", []string{`""`, "vocabulary", "other:TEXT"}},
		{"terrorism", []string{`"terrorism"`, "vocabulary", strings.Join(Labels, ", ")}},
		{"Graphic-Violence", []string{`"Graphic-Violence"`}},
		{"other", []string{"other", "free text"}},
		{"other:", []string{"free text"}},
		{"other:   ", []string{"free text"}},
		{"graphic-violence:gore", []string{"only \"other\"", `"graphic-violence"`}},
		{"other:" + strings.Repeat("t", MaxLabelText+1), []string{"257 bytes", "limit 256"}},
		// Found by FuzzParseLabel: accepted, then impossible to encode.
		{"other:\xff", []string{"not valid UTF-8"}},
	}
	for _, c := range bad {
		t.Run("bad "+c.in, func(t *testing.T) {
			l, err := ParseLabel(c.in)
			if err == nil {
				t.Fatalf("accepted: %s", describe(l))
			}
			checkErr(t, err, ErrLabel, c.mention...)
		})
	}
	checkErr(t, CheckLabel(nil), ErrLabel, "missing")
}

func TestVocabularies(t *testing.T) {
	if got := strings.Join(Labels, ","); got != "imminent-credible-threat,graphic-violence,glorification-of-terrorist-acts,recruitment-and-instruction,attacker-manifesto,branded-terrorist-publication,other" {
		t.Errorf("Labels = %s (SPEC.md lists them: change both)", got)
	}
	if got := strings.Join(AllowCategories, ","); got != "counter-speech,news,research,other" {
		t.Errorf("AllowCategories = %s (SPEC.md lists them: change both)", got)
	}
	var st, rs []string
	for s := pb.ReplyStatus(1); s <= 8; s++ {
		st = append(st, ReplyStatuses[s])
	}
	for r := pb.NotExecutedReason(1); r <= 4; r++ {
		rs = append(rs, NotExecutedReasons[r])
	}
	if got := strings.Join(st, ","); got != "received,removed,disabled,clarification-requested,not-executed,not-found,blocked,unblocked" || len(ReplyStatuses) != 8 {
		t.Errorf("ReplyStatuses = %s", got)
	}
	if got := strings.Join(rs, ","); got != "force-majeure,manifest-error,insufficient-information,not-hosted" || len(NotExecutedReasons) != 4 {
		t.Errorf("NotExecutedReasons = %s", got)
	}
}

func TestHeadsDigest(t *testing.T) {
	a, b, c := AuthorKeyOf(seedKey(1)), AuthorKeyOf(seedKey(2)), AuthorKeyOf(seedKey(3))
	heads := func() []Head {
		return []Head{
			{Author: a, Seq: 3, ID: IDOf([]byte("a3"))},
			{Author: b, Seq: 1, ID: IDOf([]byte("b1"))},
			{Author: c, Seq: 7, ID: IDOf([]byte("c7"))},
		}
	}
	base := HeadsDigest(heads())

	if HeadsDigest(nil) != sha256.Sum256(nil) || HeadsDigest([]Head{}) != sha256.Sum256(nil) {
		t.Error("empty digest is not sha256 of nothing")
	}
	// The definition, written out: sorted by author key; key, seq
	// (8 bytes big-endian), id.
	sorted := heads()
	sortHeads(sorted)
	var buf []byte
	for _, h := range sorted {
		buf = append(buf, h.Author[:]...)
		buf = append(buf, byte(h.Seq>>56), byte(h.Seq>>48), byte(h.Seq>>40), byte(h.Seq>>32), byte(h.Seq>>24), byte(h.Seq>>16), byte(h.Seq>>8), byte(h.Seq))
		buf = append(buf, h.ID[:]...)
	}
	if base != sha256.Sum256(buf) {
		t.Error("digest differs from its definition")
	}

	// Order-independent: every permutation gives the same digest.
	perms := [][3]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}
	for _, p := range perms {
		h := heads()
		if HeadsDigest([]Head{h[p[0]], h[p[1]], h[p[2]]}) != base {
			t.Errorf("permutation %v changes the digest", p)
		}
	}
	// Any change of a seq, an id or the set of authors changes it.
	for i := range 3 {
		h := heads()
		h[i].Seq++
		if HeadsDigest(h) == base {
			t.Errorf("seq of head %d changed, digest did not", i)
		}
		h = heads()
		h[i].ID[33] ^= 1
		if HeadsDigest(h) == base {
			t.Errorf("id of head %d changed, digest did not", i)
		}
		h = heads()
		if HeadsDigest(append(h[:i:i], h[i+1:]...)) == base {
			t.Errorf("head %d dropped, digest did not change", i)
		}
	}
}

func sortHeads(h []Head) {
	for i := range h {
		for j := i + 1; j < len(h); j++ {
			if string(h[j].Author[:]) < string(h[i].Author[:]) {
				h[i], h[j] = h[j], h[i]
			}
		}
	}
}

func TestKeysAndIDs(t *testing.T) {
	k := AuthorKeyOf(seedKey(1))
	if got, err := ParseAuthorKey(k.String()); err != nil || got != k {
		t.Errorf("ParseAuthorKey(String()) = %v, %v", got, err)
	}
	if got, err := ParseAuthorKey(strings.ToUpper(k.String())); err != nil || got != k {
		t.Errorf("upper-case author key: %v", err)
	}
	if pub := k.Public(); string(pub) != string(k[:]) {
		t.Error("Public() differs")
	}
	_, err := ParseAuthorKey(k.String()[:63])
	checkErr(t, err, ErrKey, "author key", "want 64 hex characters, got 63")
	_, err = ParseAuthorKey("zz" + k.String()[2:])
	checkErr(t, err, ErrKey, "author key", "not hex")

	id := IDOf([]byte("x"))
	if id[0] != 0x12 || id[1] != 0x20 || sha256.Sum256([]byte("x")) != [32]byte(id[2:]) {
		t.Errorf("IDOf is not the sha2-256 multihash: %s", id)
	}
	if len(id.String()) != 68 || id.IsZero() || !(ID{}).IsZero() {
		t.Error("String/IsZero")
	}
	if got, err := ParseID(id.String()); err != nil || got != id {
		t.Errorf("ParseID(String()) = %v, %v", got, err)
	}
	_, err = ParseID(id.String()[4:])
	checkErr(t, err, ErrKey, "entry id", "want 68 hex characters, got 64")
	_, err = ParseID("1320" + id.String()[4:])
	checkErr(t, err, ErrKey, "entry id", "sha2-256")
	_, err = ParseID("zz" + id.String()[2:])
	checkErr(t, err, ErrKey, "entry id", "not hex")
}
