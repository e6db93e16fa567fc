package node

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pubsubpb "github.com/libp2p/go-libp2p-pubsub/pb"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/audit"
	"github.com/staydown/staydown/protocol/export"
)

// Every node witnesses the others' logs: a checkpoint of the referral
// unit's log comes back to it cosigned by both platforms and the auditor
// (whose node publishes nothing else), and every node ends up holding
// that fully cosigned checkpoint.
func TestCheckpointsAreWitnessed(t *testing.T) {
	inSim(t, func(t *testing.T) {
		f := newSimFed(t, simDefaults(41), "nru=referral", "pfa=platform", "pfb=platform", "aud=auditor")
		for _, cfg := range f.cfgs {
			cfg.CheckpointInterval = 100 * time.Millisecond
		}
		// The auditor is linked to the referral unit only: the platforms'
		// cosignatures reach it, and its own reaches them, through nru.
		f.partition([]string{"aud"}, []string{"pfa", "pfb"})
		nru, pfa, pfb, aud := f.start("nru"), f.start("pfa"), f.start("pfb"), f.start("aud")
		// Connected, and gossipsub's meshes grafted (at its first
		// heartbeat, a second in), before anything is published. Without
		// the mesh a relay forwards nothing it did not publish itself:
		// aud, which hears the platforms only through nru, would miss
		// their cosignatures, and nru's republication of the merged
		// checkpoint does not help when a platform published those very
		// bytes first: pubsub drops it as already seen, for the two to
		// three minutes its seen-cache keeps a message id. (A witness
		// that gets a checkpoint before the entries it covers cosigns it
		// at its next tick: checkpoints.TestWitnessCosignsWhatItCouldNotCheckBefore.)
		f.meshed(time.Minute)
		f.settle(2 * time.Second)
		var last *protocol.Entry
		for i := range 5 {
			last = publishAddition(t, nru, []string{"graphic-violence"}, sha256Signal(uint64(i)))
		}
		for _, n := range []*Node{nru, pfa, pfb, aud} {
			f.waitFor(45*time.Second, n.me.Name+" holds nru's checkpoint at seq 5, cosigned by both platforms and the auditor", func() bool {
				msg := n.LatestCheckpoint(nru.me.AuthorKey)
				if msg == nil {
					return false
				}
				sc, err := protocol.OpenCheckpoint(msg, n.Roster())
				if err != nil {
					t.Fatalf("%s holds a checkpoint that does not open: %v", n.me.Name, err)
				}
				return sc.Size == 5 && slices.Contains(sc.Cosigners, pfa.me.AuthorKey) && slices.Contains(sc.Cosigners, pfb.me.AuthorKey) &&
					slices.Contains(sc.Cosigners, aud.me.AuthorKey)
			})
		}
		// The root is the root of the log every node holds.
		sc, _ := protocol.OpenCheckpoint(pfb.LatestCheckpoint(nru.me.AuthorKey), pfb.Roster())
		tree := protocol.NewTree()
		if err := pfb.store.Range(nru.me.AuthorKey, 1, last.Seq(), func(e *protocol.Entry) error { tree.Append(e.ID); return nil }); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(tree.Root(), sc.Root) {
			t.Errorf("cosigned root %x, the log's %x", sc.Root, tree.Root())
		}
		if c := pfa.CheckpointConflicts(); len(c) != 0 {
			t.Errorf("conflicts on an honest federation: %v", c)
		}

		// An inclusion proof of the last entry, against the cosigned
		// checkpoint, checks out with nothing but the roster.
		p, err := pfb.Proof(context.Background(), last.ID)
		if err != nil {
			t.Fatal(err)
		}
		proven, err := protocol.VerifyEntryProof(p, pfb.Roster())
		if err != nil || proven.Entry.ID != last.ID || len(proven.Checkpoint.Cosigners) != 3 {
			t.Errorf("proof: %v, %+v", err, proven)
		}

		// Exported with the logs, the checkpoints audit clean against them.
		var buf bytes.Buffer
		if err := pfb.Export(context.Background(), &buf, nil); err != nil {
			t.Fatal(err)
		}
		r, err := export.NewReader(&buf)
		if err != nil {
			t.Fatal(err)
		}
		a := audit.New(pfb.Roster())
		if err := auditFeed(r, a); err != nil {
			t.Fatal(err)
		}
		if res := a.Finish(0); len(res.Violations) != 0 || res.Checked == 0 {
			t.Errorf("audit of pfb's export: %v, %d of %d checkpoints checked", res.Violations, res.Checked, res.Checkpoints)
		}

		// Kept across a restart.
		pfa = f.restart("pfa")
		if sc, err := protocol.OpenCheckpoint(pfa.LatestCheckpoint(nru.me.AuthorKey), pfa.Roster()); err != nil || sc.Size != 5 {
			t.Errorf("after a restart: %v, %+v", err, sc)
		}
	})
}

// A checkpoint signed by the author but naming a root the witness's copy
// of the log does not have is evidence: not cosigned, kept, the author
// flagged. A checkpoint that does not verify is rejected.
func TestCheckpointConflict(t *testing.T) {
	inSim(t, func(t *testing.T) {
		f := newSimFed(t, simDefaults(42), "nru=referral", "pfa=platform")
		nru, pfa := f.start("nru"), f.start("pfa")
		for i := range 3 {
			e := publishAddition(t, nru, []string{"graphic-violence"}, sha256Signal(uint64(i)))
			f.waitFor(45*time.Second, "entry on pfa", func() bool { _, err := pfa.store.Get(e.ID); return err == nil })
		}
		signer, err := protocol.NoteSigner("nru", f.key("nru"))
		if err != nil {
			t.Fatal(err)
		}
		other := protocol.Checkpoint{Origin: protocol.CheckpointOrigin("test", nru.me.AuthorKey), Size: 3, Root: bytes.Repeat([]byte{7}, 32)}
		msg, err := protocol.SignCheckpoint(other, signer)
		if err != nil {
			t.Fatal(err)
		}
		sc, err := protocol.OpenCheckpoint(msg, pfa.Roster())
		if err != nil {
			t.Fatal(err)
		}
		cosign, err := pfa.ckpt.Receive(sc, msg)
		if err != nil || cosign != nil {
			t.Fatalf("a contradicting checkpoint was cosigned (%v)", err)
		}
		c := pfa.CheckpointConflicts()
		if len(c) != 1 || c[0].Author != nru.me.AuthorKey || c[0].Size != 3 || !bytes.Equal(c[0].Note, msg) {
			t.Fatalf("conflicts %+v", c)
		}
		st, err := pfa.Status(context.Background())
		if err != nil || !slices.Contains(st.Flagged, "nru") {
			t.Errorf("status flagged %v (%v), want nru", st.Flagged, err)
		}

		// Two checkpoints of one size, neither held yet: the second is
		// evidence against the first.
		ahead := protocol.Checkpoint{Origin: other.Origin, Size: 9, Root: bytes.Repeat([]byte{1}, 32)}
		for i, root := range [][]byte{ahead.Root, bytes.Repeat([]byte{2}, 32)} {
			ahead.Root = root
			m, err := protocol.SignCheckpoint(ahead, signer)
			if err != nil {
				t.Fatal(err)
			}
			sc, _ := protocol.OpenCheckpoint(m, pfa.Roster())
			if _, err := pfa.ckpt.Receive(sc, m); err != nil {
				t.Fatal(err)
			}
			if got := len(pfa.CheckpointConflicts()); got != 1+i {
				t.Fatalf("after checkpoint %d of size 9: %d conflicts", i+1, got)
			}
		}

		forged := bytes.Replace(msg, []byte("\n3\n"), []byte("\n2\n"), 1)
		res := pfa.ckpt.Validate(context.Background(), nru.host.ID(), &pubsub.Message{Message: &pubsubpb.Message{Data: forged}})
		if res != pubsub.ValidationReject {
			t.Errorf("a checkpoint with a broken signature: %v, want reject", res)
		}
	})
}

// auditFeed hands every record of r to a, decoding one at a time.
func auditFeed(r *export.Reader, a *audit.Auditor) error {
	return audit.FeedBatches(r, a, 1, func(recs []export.Record) []audit.Decoded {
		out := make([]audit.Decoded, len(recs))
		for i, rec := range recs {
			e, err := audit.Decode(rec)
			out[i] = audit.Decoded{Rec: rec, Entry: e, Err: err}
		}
		return out
	})
}
