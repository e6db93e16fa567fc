package api_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

func importOutcome(t *testing.T, r response) api.ImportOutcome {
	t.Helper()
	var out api.ImportOutcome
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	return out
}

func md5Signal(i int) (string, *pb.Signal) {
	v := fmt.Sprintf("%032x", i)
	s, _ := protocol.ParseSignal("md5", v)
	return v, s
}

// An import batch skips what this member attests, drops repeats, groups
// signals by label set, retracts deleted signals per target entry, and
// leaves other members' attestations alone.
func TestImportBatch(t *testing.T) {
	h := newHarness(t)
	me := h.fake.Author()
	target := protocol.ID{0x12, 0x20, 1, 2, 3} // a sha2-256 multihash
	_, attested := md5Signal(1)
	h.fake.Attest(attested, store.Attestation{Kind: protocol.KindAddition, Author: me, EntryID: protocol.ID{9}, Status: store.StatusActive})
	_, byOther := md5Signal(2)
	h.fake.Attest(byOther, store.Attestation{Kind: protocol.KindAddition, Author: other.AuthorKey, EntryID: protocol.ID{8}, Status: store.StatusActive})
	_, gone := md5Signal(3)
	h.fake.Attest(gone, store.Attestation{Kind: protocol.KindAddition, Author: me, EntryID: target, Status: store.StatusActive})
	_, gone2 := md5Signal(4)
	h.fake.Attest(gone2, store.Attestation{Kind: protocol.KindAddition, Author: me, EntryID: target, Status: store.StatusActive})
	_, retractedBefore := md5Signal(5)
	h.fake.Attest(retractedBefore, store.Attestation{Kind: protocol.KindAddition, Author: me, EntryID: protocol.ID{7}, Status: store.StatusRetracted})

	body := `{"labels":["graphic-violence"],"signals":[
		{"type":"md5","value":"` + fmt.Sprintf("%032x", 1) + `"},
		{"type":"md5","value":"` + fmt.Sprintf("%032x", 2) + `"},
		{"type":"md5","value":"` + fmt.Sprintf("%032x", 2) + `"},
		{"type":"md5","value":"` + fmt.Sprintf("%032x", 6) + `","labels":["attacker-manifesto"]},
		{"type":"md5","value":"` + fmt.Sprintf("%032x", 3) + `","deleted":true},
		{"type":"md5","value":"` + fmt.Sprintf("%032x", 4) + `","deleted":true},
		{"type":"md5","value":"` + fmt.Sprintf("%032x", 5) + `","deleted":true}
	]}`
	dry := importOutcome(t, h.do(t, "POST", "/v1/import", strings.Replace(body, "{", `{"dry_run":true,`, 1)))
	if len(h.fake.Published()) != 0 || len(dry.Entries) != 0 {
		t.Fatalf("a dry run published %d entries", len(h.fake.Published()))
	}
	r := h.do(t, "POST", "/v1/import", body)
	if r.code != 201 {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	out := importOutcome(t, r)
	if out.Added != 2 || out.Skipped != 2 || out.Retracted != 2 || out.NotAttested != 1 {
		t.Fatalf("outcome %+v, want added 2, skipped 2 (attested, repeated), retracted 2, not attested 1", out)
	}
	if dry.Added != out.Added || dry.Skipped != out.Skipped || dry.Retracted != out.Retracted {
		t.Errorf("dry run %+v, import %+v", dry, out)
	}
	pub := h.fake.Published()
	if len(pub) != 3 || len(out.Entries) != 3 {
		t.Fatalf("published %d entries, answered %d; want 3 (two label sets, one retraction)", len(pub), len(out.Entries))
	}
	a1, a2, rt := pub[0].GetAddition(), pub[1].GetAddition(), pub[2].GetRetraction()
	if len(a1.Signals) != 1 || protocol.FormatSignal(a1.Signals[0]) != "md5:"+fmt.Sprintf("%032x", 2) || len(a1.Labels) != 1 {
		t.Errorf("first addition: %v", a1)
	}
	if len(a2.Signals) != 1 || len(a2.Labels) != 2 {
		t.Errorf("second addition (its own label beside the batch's): %v", a2)
	}
	if rt == nil || string(rt.Target) != string(target[:]) || len(rt.Signals) != 2 {
		t.Errorf("retraction: %v", rt)
	}
}

func TestImportBatchErrors(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct{ body, want string }{
		{`{"signals":[]}`, "signals: required"},
		{`{"signals":[{"type":"md5","value":"00"}],"labels":["graphic-violence"]}`, "signals[0].value"},
		{`{"signals":[{"type":"md5","value":"` + strings.Repeat("0", 32) + `"}]}`, "signals[0].labels: no label"},
		{`{"signals":[{"type":"md5","value":"` + strings.Repeat("0", 32) + `","labels":["bogus"]}]}`, "signals[0].labels[0]"},
		{`{"signals":[{"type":"sha1","value":"00"}],"labels":["graphic-violence"]}`, "signals[0].type"},
		{`{"signals":[{"type":"md5","value":"` + strings.Repeat("0", 32) + `"},{"type":"md5","value":"0"}],"labels":["graphic-violence"]}`, "signals[1].value"},
		{`{"signals":[{"type":"md5","value":"` + strings.Repeat("0", 32) + `"}],"labels":[` + otherLabels(0, 17) + `]}`, "signals[0].labels: 17 labels with the batch's, limit 16"},
		{`{"signals":[{"type":"md5","value":"` + strings.Repeat("0", 32) + `"},{"type":"md5","value":"` + strings.Repeat("1", 32) + `","labels":[` + otherLabels(0, 10) + `]}],"labels":[` + otherLabels(10, 17) + `]}`, "signals[1].labels: 17 labels with the batch's, limit 16"},
	} {
		r := h.do(t, "POST", "/v1/import", tc.body)
		if r.code != 400 || !strings.Contains(string(r.body), tc.want) {
			t.Errorf("%s: status %d %s; want 400 with %q", tc.body, r.code, r.body, tc.want)
		}
	}
	if n := len(h.fake.Published()); n != 0 {
		t.Fatalf("%d entries published on bad input", n)
	}
}

// Long URLs fill an entry by size before its count: every addition stays
// within the entry bound.
func TestImportBatchSplitsBySize(t *testing.T) {
	h := newHarness(t)
	var sigs []string
	for i := range 600 {
		sigs = append(sigs, fmt.Sprintf(`{"type":"url","value":"https://x.example/%d/%s"}`, i, strings.Repeat("a", 1000)))
	}
	r := h.do(t, "POST", "/v1/import", `{"labels":["graphic-violence"],"signals":[`+strings.Join(sigs, ",")+`]}`)
	if r.code != 201 {
		t.Fatalf("status %d: %s", r.code, r.body[:min(len(r.body), 300)])
	}
	total := 0
	for _, e := range h.fake.Signed() {
		if len(e.Raw) > protocol.MaxEntrySize {
			t.Errorf("entry of %d bytes", len(e.Raw))
		}
		total += len(e.Body.GetAddition().Signals)
	}
	if total != 600 || len(h.fake.Signed()) < 10 {
		t.Fatalf("%d signals in %d entries", total, len(h.fake.Signed()))
	}
}

// otherLabels is `"other:i", ...` for i in [from, to), JSON list items.
func otherLabels(from, to int) string {
	var l []string
	for i := from; i < to; i++ {
		l = append(l, fmt.Sprintf(`"other:%d"`, i))
	}
	return strings.Join(l, ",")
}
