package audit

import (
	"slices"
	"strings"
	"testing"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// A retraction or a dispute bears on the signals it names (SPEC 6.2,
// 6.3): the state counts attestations per signal. A named signal its
// target does not carry concerns nothing: a note, not a violation.
func TestAuditNamedSignals(t *testing.T) {
	w := newWorld(t)
	sig := func(s string) *pb.Signal {
		v, err := protocol.ParseSignal("sha256", strings.Repeat(s, 64))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	x, y, z, other := sig("1"), sig("2"), sig("3"), sig("4")
	a := w.nru.next(t, &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{
		Signals: []*pb.Signal{x, y, z}, Labels: []*pb.Label{{Slug: "graphic-violence"}}}}})
	w.nru.next(t, &pb.Entry{Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{
		Target: a.ID[:], Signals: protocol.SortSignals([]*pb.Signal{x, other})}}})
	d := w.pfa.next(t, &pb.Entry{Payload: &pb.Entry_Dispute{Dispute: &pb.Dispute{
		Target: a.ID[:], Reason: "news", Signals: []*pb.Signal{y, z}}}})
	w.pfa.next(t, &pb.Entry{Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{
		Target: d.ID[:], Signals: []*pb.Signal{z}}}})
	r := run(t, w.genesis, file(t, raws(append(slices.Clone(w.nru.log), w.pfa.log...)...), nil))
	if len(r.Violations) != 0 {
		t.Fatalf("violations: %v", r.Violations)
	}
	// newWorld: 6 active attestations (5 additions, pfa's; the notice's
	// signal is the same PDQ hash as the additions'). Here: x retracted,
	// y disputed, z active again (the dispute withdrawn for z).
	if st := r.State; st.Retracted != 1 || st.Disputed != 1 || st.Active != 8 {
		t.Errorf("state: %+v, want 1 retracted (x), 1 disputed (y), 8 active (z and newWorld's 7)", st)
	}
	if len(r.State.Notes) != 1 {
		t.Fatalf("notes: %+v, want one", r.State.Notes)
	}
	n := r.State.Notes[0]
	if n.Kind != NoteNamedElsewhere || n.Target != a.ID || !slices.Equal(n.Signals, []string{protocol.FormatSignal(other)}) || n.Index == 0 {
		t.Errorf("note: %+v, want named_elsewhere of %s naming %s", n, a.ID, protocol.FormatSignal(other))
	}
	if got := r.Report.Totals; got.SignalsRetracted != 1 || got.SignalsDisputed != 1 {
		t.Errorf("report: %d signals retracted, %d disputed, want 1 and 1", got.SignalsRetracted, got.SignalsDisputed)
	}
}
