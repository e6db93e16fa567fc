package node

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/kind"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/prototest"
)

var _ api.BatchPublisher = (*Node)(nil)

// TestPublishAll: PublishAll publishes its bodies in order, as the next
// entries of the node's log, after checking every one as Publish does: a
// body that fails a check (no payload, a signal this member attests
// already, a retraction of an entry not held) fails the call before
// anything is signed, and the error names the body.
func TestPublishAll(t *testing.T) {
	f := newFederation(t, "nru=referral")
	n := f.start("nru")
	ctx := context.Background()
	bodies := []*pb.Entry{prototest.Addition(prototest.SHA256(t, 1)), prototest.Addition(prototest.SHA256(t, 2), prototest.SHA256(t, 3))}
	es, err := n.PublishAll(ctx, bodies)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range es {
		if e.Seq() != uint64(i+1) || len(e.Body.GetAddition().GetSignals()) != len(bodies[i].GetAddition().GetSignals()) {
			t.Fatalf("entry %d: seq %d with %d signals", i, e.Seq(), len(e.Body.GetAddition().GetSignals()))
		}
	}
	count := func() uint64 {
		t.Helper()
		c, err := n.store.Count()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		name   string
		bodies []*pb.Entry
		is     error
		says   string
	}{
		{"attested already", []*pb.Entry{prototest.Addition(prototest.SHA256(t, 4)), prototest.Addition(prototest.SHA256(t, 5), prototest.SHA256(t, 2))},
			kind.ErrConflict, "this member attests sha256:" + strings.Repeat("0", 63) + "2 (entry " + es[1].ID.String() + ") already"},
		{"no payload", []*pb.Entry{prototest.Addition(prototest.SHA256(t, 4)), {}},
			kind.ErrInvalid, "entry 2 of 2: invalid request: no payload"},
		{"retraction of an entry not held", []*pb.Entry{prototest.Addition(prototest.SHA256(t, 4)),
			{Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{Target: make([]byte, 34), Reason: "test"}}}},
			kind.ErrNotFound, "entry 2 of 2: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := count()
			es, err := n.PublishAll(ctx, tc.bodies)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("got %v, want %v saying %q", err, tc.is, tc.says)
			}
			for i, e := range es {
				if e != nil {
					t.Errorf("body %d published as %s", i, e.ID)
				}
			}
			if after := count(); after != before {
				t.Fatalf("%d entries stored, want %d: a refused call published some", after, before)
			}
		})
	}
	// And the log goes on from there.
	e, err := n.Publish(ctx, prototest.Addition(prototest.SHA256(t, 4)))
	if err != nil || e.Seq() != 3 {
		t.Fatalf("publish after: %v %v", e, err)
	}
}
