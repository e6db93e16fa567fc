package node

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/staydown/staydown/node/kind"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// rogue is a roster member whose node is a bare libp2p host with the same
// gossipsub configuration as a real node but no validator: it publishes
// whatever bytes a test gives it, as a buggy or malicious peer would.
type rogue struct {
	topic *pubsub.Topic
}

func newRogue(t *testing.T, f *federation, name string, target *Node) *rogue {
	t.Helper()
	return &rogue{topic: joinTopic(t, memberHost(t, f, name, target.Roster()), target)}
}

func (r *rogue) send(t *testing.T, data []byte) {
	t.Helper()
	if err := r.topic.Publish(context.Background(), data); err != nil {
		t.Fatalf("rogue publish: %v", err)
	}
}

func addition(t *testing.T, key ed25519.PrivateKey, fed string, seq uint64, prev protocol.ID, content string) *protocol.Entry {
	t.Helper()
	sum := sha256.Sum256([]byte(content))
	sig, err := protocol.ParseSignal("sha256", fmt.Sprintf("%x", sum))
	if err != nil {
		t.Fatal(err)
	}
	body := &pb.Entry{Version: 1, Federation: fed, Seq: seq, TimestampMs: 1_700_000_000_000 + int64(seq),
		Payload: &pb.Entry_Addition{Addition: &pb.Addition{Signals: []*pb.Signal{sig},
			Labels: []*pb.Label{{Slug: "graphic-violence"}}}}}
	if seq > 1 {
		body.Prev = prev[:]
	}
	e, err := protocol.Sign(key, body)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestValidatorRejects sends one bad message per case from a rogue member
// to a real node and checks that the node rejects it for the right reason
// and stores nothing. Each case has a fresh node and rogue, because a
// rejected message costs the rogue its standing (peer score) on the node.
func TestValidatorRejects(t *testing.T) {
	cases := []struct {
		name   string
		reason string
		data   func(f *federation) []byte
	}{
		{"garbage", "malformed", func(*federation) []byte { return []byte("not an entry at all") }},
		{"too large", "too_large", func(*federation) []byte { return make([]byte, protocol.MaxEntrySize+100) }},
		{"bad signature", "bad_signature", func(f *federation) []byte {
			e := addition(t, f.key("nru"), "test", 1, protocol.ID{}, "x")
			raw := append([]byte(nil), e.Raw...)
			raw[len(raw)-1] ^= 1
			return raw
		}},
		{"wrong federation", "wrong_federation", func(f *federation) []byte {
			return addition(t, f.key("nru"), "other-federation", 1, protocol.ID{}, "x").Raw
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFederation(t, "nru=referral", "rogue=platform")
			n := f.start("nru")
			r := newRogue(t, f, "rogue", n)
			r.send(t, tc.data(f))
			waitUntil(t, 10*time.Second, "rejection "+tc.reason, func() bool {
				return testutil.ToFloat64(n.metrics.rejected.WithLabelValues(tc.reason)) == 1
			})
			if c, _ := n.store.Count(); c != 0 {
				t.Errorf("store holds %d entries after a rejected message", c)
			}
		})
	}
}

// TestValidatorMembership: what the membership decides (SPEC 12.5) costs
// the relaying peer nothing. An entry by a key no member has is held, not
// stored, not relayed; an entry the author's role may not write is
// stored void (the author signed it; the log goes on).
func TestValidatorMembership(t *testing.T) {
	f := newFederation(t, "nru=referral", "rogue=platform")
	n := f.start("nru")
	r := newRogue(t, f, "rogue", n)

	stranger := ed25519.NewKeyFromSeed(make([]byte, 32))
	r.send(t, addition(t, stranger, "test", 1, protocol.ID{}, "x").Raw)
	waitUntil(t, 10*time.Second, "the stranger's entry ignored", func() bool { return testutil.ToFloat64(n.metrics.ignored) == 1 })

	// A platform may not issue a notice.
	to := protocol.AuthorKeyOf(f.key("rogue"))
	notice, err := protocol.Sign(f.key("rogue"), &pb.Entry{Version: 1, Federation: "test", Seq: 1, TimestampMs: 1,
		Payload: &pb.Entry_Notice{Notice: &pb.Notice{Addressee: to[:], Signals: []*pb.Signal{{Value: &pb.Signal_Pdq{Pdq: make([]byte, 32)}}},
			Category: &pb.Label{Slug: "graphic-violence"}, LegalBasis: "TCO Art. 3", DeadlineMs: 3_600_001}}})
	if err != nil {
		t.Fatal(err)
	}
	r.send(t, notice.Raw)
	waitUntil(t, 10*time.Second, "the platform's notice stored void", func() bool {
		why, err := n.store.VoidReason(notice.ID)
		return err == nil && strings.Contains(why, "may not write a notice")
	})
	if c, _ := n.store.Count(); c != 1 {
		t.Errorf("store holds %d entries, want the void notice alone", c)
	}
	for _, reason := range []string{"unknown_author", "role", "malformed", "bad_signature"} {
		if got := testutil.ToFloat64(n.metrics.rejected.WithLabelValues(reason)); got != 0 {
			t.Errorf("rejected %v for %s: the membership's verdicts are nobody's fault", got, reason)
		}
	}
}

// TestValidatorIgnoresAndAccepts covers the paths that do not penalise:
// a valid entry is stored; entries that arrive out of order are buffered
// and applied; an entry the node already stored (here: put there directly,
// as sync would) is ignored; a second entry for a seq is kept as evidence.
func TestValidatorIgnoresAndAccepts(t *testing.T) {
	f := newFederation(t, "nru=referral", "rogue=platform")
	n := f.start("nru")
	r := newRogue(t, f, "rogue", n)
	key := f.key("rogue")
	author := protocol.AuthorKeyOf(key)

	e1 := addition(t, key, "test", 1, protocol.ID{}, "one")
	e2 := addition(t, key, "test", 2, e1.ID, "two")
	e3 := addition(t, key, "test", 3, e2.ID, "three")

	// Out of order: 2 before 1.
	r.send(t, e2.Raw)
	waitUntil(t, 10*time.Second, "seq 2 buffered", func() bool { return testutil.ToFloat64(n.metrics.pending) == 1 })
	r.send(t, e1.Raw)
	waitUntil(t, 10*time.Second, "seq 1 and 2 applied", func() bool {
		h, _ := n.store.Head(author)
		return h.Seq == 2
	})

	// Already stored (by another path): ignored, no penalty.
	if res, err := n.store.Apply([]*protocol.Entry{e3}); err != nil || res[0].Outcome.String() != "applied" {
		t.Fatalf("direct apply: %v %v", res, err)
	}
	ignored := testutil.ToFloat64(n.metrics.ignored)
	r.send(t, e3.Raw)
	waitUntil(t, 10*time.Second, "duplicate ignored", func() bool { return testutil.ToFloat64(n.metrics.ignored) == ignored+1 })

	// Equivocation: a different entry for seq 3.
	fork := addition(t, key, "test", 3, e2.ID, "three, differently")
	r.send(t, fork.Raw)
	waitUntil(t, 10*time.Second, "equivocation recorded", func() bool { return testutil.ToFloat64(n.metrics.equivocations) == 1 })
	flagged, err := n.store.Flagged()
	if err != nil || len(flagged) != 1 || flagged[0] != author {
		t.Fatalf("flagged = %v, %v; want the rogue", flagged, err)
	}
	if h, _ := n.store.Head(author); h.ID != e3.ID {
		t.Errorf("head changed to %s after equivocation, want %s kept", h.ID, e3.ID)
	}
	// A second conflict for seq 3 is old news: ignored.
	ignored = testutil.ToFloat64(n.metrics.ignored)
	r.send(t, addition(t, key, "test", 3, e2.ID, "three, a third way").Raw)
	waitUntil(t, 10*time.Second, "second conflict ignored", func() bool { return testutil.ToFloat64(n.metrics.ignored) == ignored+1 })

	// seq 4 chained to the fork, not to the head we hold: ignored.
	r.send(t, addition(t, key, "test", 4, fork.ID, "four on the fork").Raw)
	waitUntil(t, 10*time.Second, "broken link ignored", func() bool { return testutil.ToFloat64(n.metrics.ignored) == ignored+2 })

	// seq 4 retracting an entry that is not the rogue's: stored, void.
	nruEntry, err := n.Publish(context.Background(), &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{
		Signals: []*pb.Signal{{Value: &pb.Signal_Pdq{Pdq: make([]byte, 32)}}}, Labels: []*pb.Label{{Slug: "graphic-violence"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	void, err := protocol.Sign(key, &pb.Entry{Version: 1, Federation: "test", Seq: 4, Prev: e3.ID[:], TimestampMs: 1,
		Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{Target: nruEntry.ID[:], Reason: "not mine"}}})
	if err != nil {
		t.Fatal(err)
	}
	r.send(t, void.Raw)
	waitUntil(t, 10*time.Second, "void entry stored", func() bool { return testutil.ToFloat64(n.metrics.void) == 1 })
	if h, _ := n.store.Head(author); h.ID != void.ID {
		t.Errorf("head %s, want the void entry %s", h.ID, void.ID)
	}
	if atts, _ := n.store.Match(protocol.SignalKey(&pb.Signal{Value: &pb.Signal_Pdq{Pdq: make([]byte, 32)}})); len(atts) != 1 || atts[0].Status != "active" {
		t.Errorf("a void retraction changed the target: %+v", atts)
	}

	// None of this was a rejection.
	for _, reason := range []string{"malformed", "bad_signature", "unknown_author", "role", "chain"} {
		if v := testutil.ToFloat64(n.metrics.rejected.WithLabelValues(reason)); v != 0 {
			t.Errorf("rejected[%s] = %v, want 0", reason, v)
		}
	}
}

// TestPeerScoreInStatus: a member that relays an invalid message loses
// standing with the node (gossipsub's peer score, SPEC 13), and status
// shows it by member name (#12 item 17).
func TestPeerScoreInStatus(t *testing.T) {
	f := newFederation(t, "nru=referral", "rogue=platform")
	n := f.start("nru")
	r := newRogue(t, f, "rogue", n)
	r.send(t, []byte("not an entry at all"))
	waitUntil(t, 10*time.Second, "a negative score for rogue in status", func() bool {
		st, err := n.Status(context.Background())
		return err == nil && st.PeerScores["rogue"] < 0
	})
}

// TestFloodingMemberIsGraylisted: a member that floods the topic with
// invalid messages falls below the graylist threshold (pubsub drops its
// messages unread from then on), and the node goes on taking honest
// members' entries (#12 item 17).
func TestFloodingMemberIsGraylisted(t *testing.T) {
	f := newFederation(t, "nru=referral", "pfa=platform", "rogue=platform")
	n := f.start("nru")
	pfa := f.start("pfa")
	if err := pfa.Connect(context.Background(), peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	r := newRogue(t, f, "rogue", n)
	for i := range 500 {
		r.send(t, fmt.Appendf(nil, "garbage %d", i))
	}
	waitUntil(t, 20*time.Second, "rogue below the graylist threshold (-300)", func() bool {
		st, err := n.Status(context.Background())
		return err == nil && st.PeerScores["rogue"] < -300
	})
	e := publishAddition(t, pfa, []string{"graphic-violence"}, sha256Signal(7))
	waitUntil(t, 20*time.Second, "pfa's entry stored on nru after the flood", func() bool {
		_, err := n.store.Get(e.ID)
		return err == nil
	})
}

// A dispute stays in the log even once withdrawn, so the node refuses to
// sign one that can only be a mistake (#13 item 4): of an entry it does
// not hold, of one that is no addition or notice, of the member's own
// addition, or a second by the same member.
func TestDisputeChecksItsTarget(t *testing.T) {
	f := newFederation(t, "nru=referral", "pfa=platform")
	nru, pfa := f.start("nru"), f.start("pfa")
	ctx := context.Background()
	theirs := publishAddition(t, nru, []string{"graphic-violence"}, sha256Signal(1))
	retraction, err := nru.Publish(ctx, &pb.Entry{Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{Target: theirs.ID[:]}}})
	if err != nil {
		t.Fatal(err)
	}
	other := publishAddition(t, nru, []string{"graphic-violence"}, sha256Signal(2))
	for _, e := range []*protocol.Entry{theirs, retraction, other} {
		if res, err := pfa.writer.Apply([]*protocol.Entry{e}); err != nil || res[0].Outcome != store.Applied {
			t.Fatalf("apply on pfa: %v %v", res, err)
		}
	}
	own := publishAddition(t, pfa, []string{"graphic-violence"}, sha256Signal(3))
	dispute := func(target protocol.ID) error {
		_, err := pfa.Publish(ctx, &pb.Entry{Payload: &pb.Entry_Dispute{Dispute: &pb.Dispute{Target: target[:], Reason: "news"}}})
		return err
	}
	for _, c := range []struct {
		name   string
		target protocol.ID
		kind   error
		want   string
	}{
		{"an entry not held", protocol.IDOf([]byte("nothing")), kind.ErrNotFound, "not in this node's store"},
		{"a retraction", retraction.ID, kind.ErrInvalid, "is a retraction; a dispute names an addition or a notice"},
		{"its own addition", own.ID, kind.ErrInvalid, "own addition: retract it"},
		{"another member's addition", other.ID, nil, ""},
		{"the same again", other.ID, kind.ErrConflict, "disputed entry " + other.ID.String() + " already"},
	} {
		err := dispute(c.target)
		if c.kind == nil {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if !errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %v naming %q", c.name, err, c.kind, c.want)
		}
	}
	if head, _ := pfa.store.Head(pfa.me.AuthorKey); head.Seq != 2 {
		t.Errorf("pfa's log has %d entries, want its addition and one dispute", head.Seq)
	}
}

// A member does not attest a signal twice (#13 item 5: two active
// attestations by one member inflated the report): an addition carrying
// a signal the member attests already is refused, naming it; once the
// earlier entry is retracted, the signal can be added again.
func TestAdditionRefusesSignalsAttestedAlready(t *testing.T) {
	f := newFederation(t, "nru=referral")
	n := f.start("nru")
	ctx := context.Background()
	first := publishAddition(t, n, []string{"graphic-violence"}, sha256Signal(1))
	add := func(sigs ...*pb.Signal) error {
		_, err := n.Publish(ctx, &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{Signals: sigs, Labels: []*pb.Label{{Slug: "attacker-manifesto"}}}}})
		return err
	}
	err := add(sha256Signal(2), sha256Signal(1))
	if !errors.Is(err, kind.ErrConflict) || !strings.Contains(err.Error(), protocol.FormatSignal(sha256Signal(1))+" (entry "+first.ID.String()+")") ||
		strings.Contains(err.Error(), protocol.FormatSignal(sha256Signal(2))) {
		t.Fatalf("adding a signal attested already: %v; want a conflict naming it and its entry, and only it", err)
	}
	if head, _ := n.store.Head(n.me.AuthorKey); head.Seq != 1 {
		t.Fatalf("the refused addition was signed: head %d", head.Seq)
	}
	if err := add(sha256Signal(2)); err != nil {
		t.Fatalf("a new signal: %v", err)
	}
	if _, err := n.Publish(ctx, &pb.Entry{Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{Target: first.ID[:]}}}); err != nil {
		t.Fatal(err)
	}
	if err := add(sha256Signal(1)); err != nil {
		t.Fatalf("a signal whose attestation was retracted: %v", err)
	}
}
