package integration

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/audit/audittest"
	"github.com/staydown/staydown/protocol/export/exporttest"
	"github.com/staydown/staydown/protocol/pb"
)

// TestPythonDecoderNamedSignals: the Python verifier accepts the test
// vectors (SPEC 14), among them a retraction and a dispute that name
// signals, and rejects as malformed exactly the retractions and disputes
// whose named signals Go rejects (SPEC 6.2, 6.3: valid, in strictly
// increasing index-key order, at most 1,000), and the domain signals Go
// rejects (SPEC 7.7).
func TestPythonDecoderNamedSignals(t *testing.T) {
	t.Parallel()
	py := requirePython(t)
	raw, err := os.ReadFile("../protocol/testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vf struct {
		Vectors []struct {
			Name        string `json:"name"`
			SignedEntry string `json:"signed_entry"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &vf); err != nil {
		t.Fatal(err)
	}
	var records [][]byte
	var bodies []*protocol.Entry
	named := 0
	for _, v := range vf.Vectors {
		b, err := hex.DecodeString(v.SignedEntry)
		if err != nil {
			t.Fatal(err)
		}
		e, err := protocol.Decode(bytes.Clone(b))
		if err != nil {
			t.Fatalf("vector %s: %v", v.Name, err)
		}
		records = append(records, b)
		if sigs, ok := protocol.NamedSignals(e.Body); ok {
			bodies = append(bodies, e)
			if len(sigs) > 0 {
				named++
			}
		}
	}
	if named < 2 {
		t.Fatalf("the vectors hold %d retractions and disputes naming signals, want one of each", named)
	}
	wrap := func(entry, sig []byte) []byte {
		b := protowire.AppendTag(nil, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, entry)
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		return protowire.AppendBytes(b, sig)
	}
	sig := func(typ, v string) *pb.Signal {
		s, err := protocol.ParseSignal(typ, v)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	sha := func(i int) *pb.Signal { return sig("sha256", fmt.Sprintf("%064x", i)) }
	many := func(n int) []*pb.Signal {
		out := make([]*pb.Signal, n)
		for i := range out {
			out[i] = sha(i)
		}
		return out
	}
	dom := func(name string, sub bool) *pb.Signal {
		return &pb.Signal{Value: &pb.Signal_Domain{Domain: &pb.Domain{Name: name, Subdomains: sub}}}
	}
	url := sig("url", "https://x.example/a")
	md5 := sig("md5", strings.Repeat("0e", 16))
	pdq := sig("pdq", strings.Repeat("0f", 32))
	acct := sig("account", "x.example:someone")
	for _, s := range [][]*pb.Signal{
		nil,
		{sha(1)},
		{sha(1), sha(2)},
		{sha(2), sha(1)},
		{sha(1), sha(1)},
		protocol.SortSignals([]*pb.Signal{url, md5, pdq, acct, sha(3)}),
		{url, md5},
		{acct, pdq},
		{{}},
		{{Value: &pb.Signal_Url{Url: "HTTP://x.example"}}},
		{{Value: &pb.Signal_Pdq{Pdq: []byte{1}}}},
		{{Value: &pb.Signal_Account{Account: &pb.Account{Service: "x.example", Id: "b"}}}, {Value: &pb.Signal_Account{Account: &pb.Account{Service: "x.example", Id: "a"}}}},
		many(1000),
		many(1001),
		// SPEC 7.7: the wire rule of domains, without IDNA or the
		// public suffix list (co.uk passes on the wire).
		protocol.SortSignals([]*pb.Signal{url, sig("domain", "example.org"), sig("domain", "*.example.org"), sig("domain", "xn--bcher-kva.example")}),
		{dom("co.uk", true)},
		{dom("Example.org", false)},
		{dom("org", false)},
		{dom("a_b.example", false)},
		{dom("192.0.2.1", false)},
		{dom("-a.example", false)},
		{dom("example.org.", false)},
		{dom("", true)},
	} {
		for _, e := range bodies {
			b := proto.CloneOf(e.Body)
			switch p := b.Payload.(type) {
			case *pb.Entry_Retraction:
				p.Retraction.Signals = s
			case *pb.Entry_Dispute:
				p.Dispute.Signals = s
			}
			m, err := proto.MarshalOptions{Deterministic: true}.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			records = append(records, wrap(m, e.Signature))
		}
	}
	// SPEC 6.9: blocking orders' payload rules, on the vectors' notice.
	for _, v := range vf.Vectors {
		b, _ := hex.DecodeString(v.SignedEntry)
		e, err := protocol.Decode(b)
		if err != nil || e.Body.GetNotice() == nil {
			continue
		}
		ts := e.Body.TimestampMs
		for _, change := range []func(n *pb.Notice){
			func(n *pb.Notice) {
				n.Details, n.Signals, n.Blocking = nil, []*pb.Signal{sig("domain", "*.a.example")}, &pb.Blocking{}
			},
			func(n *pb.Notice) { n.Details, n.Blocking = nil, &pb.Blocking{StartMs: ts + 5, EndMs: ts + 10} },
			func(n *pb.Notice) { n.Signals, n.Blocking = []*pb.Signal{sig("domain", "a.example")}, &pb.Blocking{} },
			func(n *pb.Notice) {
				n.Details, n.Signals, n.Blocking = nil, []*pb.Signal{sig("domain", "a.example")}, &pb.Blocking{StartMs: ts + 5, EndMs: ts + 10}
			},
			func(n *pb.Notice) {
				n.Details, n.Signals, n.Blocking = nil, []*pb.Signal{sig("domain", "a.example")}, &pb.Blocking{StartMs: ts + 5, EndMs: ts + 5}
			},
			func(n *pb.Notice) {
				n.Details, n.Signals, n.Blocking = nil, []*pb.Signal{sig("domain", "a.example")}, &pb.Blocking{EndMs: ts}
			},
			func(n *pb.Notice) { n.Details, n.Signals, n.Blocking = nil, nil, &pb.Blocking{} },
		} {
			body := proto.CloneOf(e.Body)
			change(body.GetNotice())
			m, err := proto.MarshalOptions{Deterministic: true}.Marshal(body)
			if err != nil {
				t.Fatal(err)
			}
			records = append(records, wrap(m, e.Signature))
		}
		for _, st := range []pb.ReplyStatus{pb.ReplyStatus_REPLY_STATUS_BLOCKED, pb.ReplyStatus_REPLY_STATUS_UNBLOCKED, 9} {
			body := proto.CloneOf(e.Body)
			body.Payload = &pb.Entry_NoticeReply{NoticeReply: &pb.NoticeReply{Notice: e.ID[:], Status: st}}
			m, err := proto.MarshalOptions{Deterministic: true}.Marshal(body)
			if err != nil {
				t.Fatal(err)
			}
			records = append(records, wrap(m, e.Signature))
		}
	}
	sc := audittest.New(t, transportPeer(t))
	file, err := exporttest.Encode(sc.Header, nil, records, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path, genesis := filepath.Join(dir, "named.export"), filepath.Join(dir, "genesis.toml")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(genesis, sc.GenesisTOML, 0o600); err != nil {
		t.Fatal(err)
	}
	var want []string // records Go rejects (the header is record 1)
	for i, r := range records {
		if _, err := protocol.Decode(bytes.Clone(r)); err != nil {
			want = append(want, strconv.Itoa(i+2))
		}
	}
	v := runMemberVerifier(t, py, pyVerifier, path, "--genesis", genesis, "--json")
	var got []string
	for _, x := range v.Violations {
		if x.Kind == "malformed" {
			n, _, _ := strings.Cut(strings.TrimPrefix(x.Message, "record "), ":")
			got = append(got, n)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if len(want) == 0 || len(want) == len(records)-len(vf.Vectors) {
		t.Fatalf("the mutations are not a mix: %d of %d malformed", len(want), len(records))
	}
	if !slices.Equal(got, want) {
		t.Errorf("malformed records: Python %v, Go %v\n%s", got, want, memberMessages(v))
	}
}
