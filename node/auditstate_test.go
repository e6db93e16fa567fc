package node

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/staydown/staydown/node/notices"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/audit"
	"github.com/staydown/staydown/protocol/export"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// The state an offline audit recomputes from a node's export (how every
// attestation stands, what matches, which notices are open) is the state
// the node itself serves.
func TestAuditStateMatchesNode(t *testing.T) {
	inSim(t, func(t *testing.T) {
		f, clock, nru, pfa, pfb, _ := noticeFed(t)
		ctx := context.Background()
		var last []*protocol.Entry
		add := publishAddition(t, nru, []string{"graphic-violence"}, sha256Signal(1), sha256Signal(2))
		gone := publishAddition(t, nru, []string{"graphic-violence"}, sha256Signal(3))
		disputed := publishAddition(t, pfb, []string{"attacker-manifesto"}, sha256Signal(4))
		allowed := publishAddition(t, pfb, []string{"attacker-manifesto"}, sha256Signal(5))
		last = append(last, add, gone, disputed, allowed)
		publish := func(n *Node, body *pb.Entry) *protocol.Entry {
			e, err := n.Publish(ctx, body)
			if err != nil {
				t.Fatal(err)
			}
			last = append(last, e)
			return e
		}
		publish(nru, &pb.Entry{Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{Target: gone.ID[:]}}})
		f.waitFor(time.Minute, "pfa holds the additions it disputes", func() bool {
			_, err := pfa.store.Get(disputed.ID)
			_, err2 := pfa.store.Get(add.ID)
			return err == nil && err2 == nil
		})
		publish(pfa, &pb.Entry{Payload: &pb.Entry_Dispute{Dispute: &pb.Dispute{Target: disputed.ID[:], Reason: "news"}}})
		// A dispute withdrawn: nru's addition stays active.
		mistake := publish(pfa, &pb.Entry{Payload: &pb.Entry_Dispute{Dispute: &pb.Dispute{Target: add.ID[:], Reason: "wrong id"}}})
		publish(pfa, &pb.Entry{Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{Target: mistake.ID[:], Reason: "meant another"}}})
		publish(pfa, &pb.Entry{Payload: &pb.Entry_Allow{Allow: &pb.Allow{Signals: []*pb.Signal{sha256Signal(5)}, Category: "news", Reason: "report"}}})
		actioned, err := nru.IssueNotice(ctx, notices.IssueRequest{To: "pfa", Signals: []*pb.Signal{sha256Signal(6)},
			Category: "attacker-manifesto", Basis: "TCO"})
		if err != nil {
			t.Fatal(err)
		}
		open, err := nru.IssueNotice(ctx, notices.IssueRequest{To: "pfb", URLs: []string{"https://v.example/9"}, Category: "attacker-manifesto", Basis: "TCO"})
		if err != nil {
			t.Fatal(err)
		}
		last = append(last, actioned, open)
		f.waitStored(actioned.ID, pfa)
		last = append(last, func() *protocol.Entry {
			e, err := pfa.ReplyNotice(ctx, notices.ReplyRequest{Notice: actioned.ID.String(), Status: "removed"})
			if err != nil {
				t.Fatal(err)
			}
			return e
		}())
		for _, e := range last {
			f.waitStored(e.ID, pfa)
		}

		var buf bytes.Buffer
		if err := pfa.Export(ctx, &buf, nil); err != nil {
			t.Fatal(err)
		}
		r, err := export.NewReader(&buf)
		if err != nil {
			t.Fatal(err)
		}
		a := audit.New(pfa.Roster())
		if err := auditFeed(r, a); err != nil {
			t.Fatal(err)
		}
		at := clock.now().UnixMilli()
		res := a.Finish(at)
		if len(res.Violations) != 0 {
			t.Fatalf("violations: %v", res.Violations)
		}

		// The node's own view: every stored signal matched, every attestation
		// counted by status.
		var want audit.State
		for _, typ := range protocol.SignalTypes {
			var keys [][]byte
			if err := pfa.store.SignalKeys(typ, func(k []byte) error { keys = append(keys, bytes.Clone(k)); return nil }); err != nil {
				t.Fatal(err)
			}
			slices.SortFunc(keys, bytes.Compare)
			keys = slices.CompactFunc(keys, bytes.Equal)
			for _, k := range keys {
				atts, err := pfa.store.Match(k)
				if err != nil {
					t.Fatal(err)
				}
				matches := false
				for _, at := range atts {
					switch at.Status {
					case store.StatusActive:
						want.Active++
						matches = true
					case store.StatusDisputed:
						want.Disputed++
						matches = true
					case store.StatusRetracted:
						want.Retracted++
					case store.StatusAllowlisted:
						want.Allowlisted++
					}
				}
				if matches {
					want.Matching++
				}
			}
		}
		got := res.State
		if got.Active != want.Active || got.Disputed != want.Disputed || got.Retracted != want.Retracted || got.Allowlisted != want.Allowlisted || got.Matching != want.Matching {
			t.Errorf("audit state %+v, the node says %+v", got, want)
		}
		if want.Active == 0 || want.Disputed == 0 || want.Retracted == 0 || want.Allowlisted == 0 {
			t.Errorf("the fixture does not exercise every status: %+v", want)
		}
		views, err := pfa.ListNotices(ctx, notices.Query{Box: "all", Open: true, AtMs: at})
		if err != nil {
			t.Fatal(err)
		}
		if len(views) != len(got.Open) || len(views) != 1 || views[0].ID != got.Open[0].ID.String() || string(got.Open[0].State) != views[0].State {
			t.Errorf("open notices: audit %+v, node %+v", got.Open, views)
		}
	})
}
