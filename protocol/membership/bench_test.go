package membership_test

import (
	"testing"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/membership/membershiptest"
	"github.com/staydown/staydown/protocol/pb"
)

// BenchmarkCompute: a 200-member roster with 1,000 amendments in its
// history (100,000 approvals), computed from its entries (issue target:
// under 100 ms to load).
func BenchmarkCompute(b *testing.B) {
	g, es, _ := membershiptest.Big(b, fed, 200, 1000)
	b.ResetTimer()
	for b.Loop() {
		h := membership.Compute(g, es)
		if h.Version() != 1000 {
			b.Fatalf("version %d", h.Version())
		}
	}
	b.ReportMetric(float64(len(es)), "entries")
}

// BenchmarkJudge: the verdict on one entry against that membership (issue
// target: at most 1 µs added to apply).
func BenchmarkJudge(b *testing.B) {
	g, es, keys := membershiptest.Big(b, fed, 200, 1000)
	h := membership.Compute(g, es)
	addition := &pb.Entry{Federation: fed, Payload: &pb.Entry_Addition{Addition: &pb.Addition{}}}
	reply := &pb.Entry{Federation: fed, Payload: &pb.Entry_NoticeReply{NoticeReply: &pb.NoticeReply{}}}
	authors := make([]protocol.AuthorKey, len(keys))
	for i, k := range keys {
		authors[i] = protocol.AuthorKeyOf(k)
	}
	es, keys = nil, nil
	i := 0
	for b.Loop() {
		body := addition
		if i%2 == 1 {
			body = reply // a platform's (odd members are platforms)
		}
		if v, why := h.Judge(authors[i%len(authors)], uint64(i+1), body); v != membership.In {
			b.Fatalf("%v: %s", v, why)
		}
		i++
	}
}
