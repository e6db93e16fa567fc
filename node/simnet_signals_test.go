package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/kind"
	"github.com/staydown/staydown/node/matching"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// One signal of a three-signal addition is disputed and another
// retracted (SPEC 6.2, 6.3): every node agrees on each signal's status
// and verdict, and only those two signals change. Withdrawing the
// dispute withdraws exactly the signal it named.
func TestSimPerSignalDisputeAndRetraction(t *testing.T) {
	inSim(t, func(t *testing.T) {
		f := newSimFed(t, simDefaults(5), "nru=referral", "pa=platform", "pb=platform")
		for _, name := range f.names {
			f.start(name)
		}
		f.meshed(time.Minute)
		var x, y, z *pb.Signal
		for i, s := range []**pb.Signal{&x, &y, &z} {
			sum := sha256.Sum256(fmt.Appendf(nil, "clip %d", i))
			var err error
			if *s, err = protocol.ParseSignal("sha256", hex.EncodeToString(sum[:])); err != nil {
				t.Fatal(err)
			}
		}
		ctx := context.Background()
		add, err := f.nodes["nru"].Publish(ctx, &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{
			Signals: []*pb.Signal{x, y, z}, Labels: []*pb.Label{{Slug: "graphic-violence"}}}}})
		if err != nil {
			t.Fatal(err)
		}
		f.converge(time.Minute)
		dispute, err := f.nodes["pa"].Publish(ctx, &pb.Entry{Payload: &pb.Entry_Dispute{Dispute: &pb.Dispute{
			Target: add.ID[:], Reason: "y is a news report", Signals: []*pb.Signal{y}}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.nodes["nru"].Publish(ctx, &pb.Entry{Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{
			Target: add.ID[:], Reason: "z was misfiled", Signals: []*pb.Signal{z}}}}); err != nil {
			t.Fatal(err)
		}
		f.converge(time.Minute)
		// Every node gives each signal the same status and verdict (the
		// default policy: one member's active attestation asks for
		// review; a retracted one is nothing to act on).
		want := func(when string, statuses map[*pb.Signal]store.Status) {
			t.Helper()
			for sig, st := range statuses {
				var verdicts []matching.Verdict
				for _, name := range f.names {
					found, err := f.nodes[name].Match(ctx, []api.Query{{Signal: sig, Quality: api.NoQuality}})
					if err != nil {
						t.Fatal(err)
					}
					if as := found[0].Attestations; len(as) != 1 || as[0].Status != st {
						t.Errorf("%s, %s: %s: %+v, want status %s", when, name, protocol.FormatSignal(sig), found[0], st)
					}
					verdicts = append(verdicts, found[0].Verdict)
				}
				if verdicts[0] != verdicts[1] || verdicts[1] != verdicts[2] {
					t.Errorf("%s: %s: the nodes' verdicts differ: %v", when, protocol.FormatSignal(sig), verdicts)
				}
				if (st == store.StatusRetracted) != (verdicts[0] == matching.VerdictNone) {
					t.Errorf("%s: %s: %s, verdict %s", when, protocol.FormatSignal(sig), st, verdicts[0])
				}
			}
		}
		want("disputed and retracted", map[*pb.Signal]store.Status{x: store.StatusActive, y: store.StatusDisputed, z: store.StatusRetracted})

		// pa's node refuses what could only be a mistake: a signal the
		// addition does not carry, a second dispute of y.
		other := &pb.Signal{Value: &pb.Signal_Pdq{Pdq: make([]byte, 32)}}
		if _, err := f.nodes["pa"].Publish(ctx, &pb.Entry{Payload: &pb.Entry_Dispute{Dispute: &pb.Dispute{
			Target: add.ID[:], Reason: "r", Signals: []*pb.Signal{other}}}}); !errors.Is(err, kind.ErrInvalid) {
			t.Errorf("dispute naming a signal the addition does not carry: %v, want invalid", err)
		}
		if _, err := f.nodes["pa"].Publish(ctx, &pb.Entry{Payload: &pb.Entry_Dispute{Dispute: &pb.Dispute{
			Target: add.ID[:], Reason: "r", Signals: protocol.SortSignals([]*pb.Signal{x, y})}}}); !errors.Is(err, kind.ErrConflict) {
			t.Errorf("second dispute naming y: %v, want conflict", err)
		}
		if _, err := f.nodes["nru"].Publish(ctx, &pb.Entry{Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{
			Target: add.ID[:], Signals: []*pb.Signal{x}}}}); !errors.Is(err, kind.ErrInvalid) {
			t.Errorf("second retraction of the addition: %v, want invalid (the first counts)", err)
		}

		// pa withdraws its dispute: y is active again, z stays retracted.
		if _, err := f.nodes["pa"].Publish(ctx, &pb.Entry{Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{
			Target: dispute.ID[:], Reason: "it was not news"}}}); err != nil {
			t.Fatal(err)
		}
		f.converge(time.Minute)
		want("dispute withdrawn", map[*pb.Signal]store.Status{x: store.StatusActive, y: store.StatusActive, z: store.StatusRetracted})
	})
}
