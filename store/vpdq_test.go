package store

import (
	"strings"
	"testing"

	"github.com/staydown/staydown/protocol"
)

// A video (vpdq) addition (SPEC 7.6) is stored and found by its index key
// like any signal, and survives a reopen; a retraction marks it retracted.
func TestApplyVPDQAddition(t *testing.T) {
	s, w := mustOpen(t), newWorld(t)
	sig, err := protocol.ParseSignal("vpdq", `["`+strings.Repeat("a5", 32)+`,100,0.0", "`+strings.Repeat("5a", 32)+`,90,1.0"]`)
	if err != nil {
		t.Fatal(err)
	}
	a1 := w.A.next(addition(sig, sha("the same video's file")))
	s.mustApply(Applied, a1)
	wantMatches(t, s, sig, 1)
	s.mustReopen()
	wantMatches(t, s, sig, 1)
	s.mustApply(Applied, w.A.next(retraction(a1.ID, "wrong video")))
	as, err := s.Match(key(sig))
	if err != nil || len(as) != 1 || as[0].Status != StatusRetracted || as[0].EntryID != a1.ID {
		t.Fatalf("after the retraction: %+v %v", as, err)
	}
}
