package node

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/staydown/staydown/protocol/membership"
)

// logLines are the lines of member name's log that contain what.
func (f *simFed) logLines(name, what string) []string {
	f.trace.mu.Lock()
	defer f.trace.mu.Unlock()
	var out []string
	for _, l := range f.trace.nodes[name] {
		if strings.Contains(l, "log: ") && strings.Contains(l, what) {
			out = append(out, l)
		}
	}
	return out
}

// A node whose roster names its peers while theirs does not name it (pf,
// which waits for its admission) is refused by each of them right after
// every handshake: on TCP its dial succeeds and the peer closes the
// connection. It dials each peer a few times, backing off to minutes, not
// hundreds of times (#13 item 6: 500 reconnections a second); it says at
// WARN, once a minute, that no member is reachable and why, and its
// status names the members that refuse it. Once admitted, the peers dial
// it, and its status shows them connected and no longer refusing.
func TestSimRefusedNodeBacksOff(t *testing.T) {
	inSim(t, func(t *testing.T) {
		opts := simDefaults(21)
		opts.late = []string{"pf"}
		f := newSimFed(t, opts, "nru=referral", "pa=platform", "pb=platform", "pf=platform")
		peers := f.names[:3]
		for _, name := range peers {
			f.start(name)
		}
		f.meshed(time.Minute)
		pf := f.start("pf")
		// 1 s doubling to 5 min: 10 dials in 10 min at most, fewer with
		// the jitter. Looked at every second, so that a storm fails the
		// test at once.
		const span, most = 10 * time.Minute, 11
		for elapsed := time.Second; elapsed <= span; elapsed += time.Second {
			f.settle(time.Second)
			for _, p := range peers {
				if got := f.dialCount("pf", p); got > most {
					t.Fatalf("pf dialled %s %d times in %v, want at most %d in %v", p, got, elapsed, most, span)
				}
			}
		}
		for _, p := range peers {
			t.Logf("pf dialled %s %d times in %v", p, f.dialCount("pf", p), span)
			if got := f.dialCount("pf", p); got < 2 {
				t.Errorf("pf dialled %s %d times in %v, want a few", p, got, span)
			}
			if got, refusals := f.dialCount("pf", p), len(f.logLines("pf", "refuses this node's connections\" member="+p+" ")); refusals > got || refusals == 0 {
				t.Errorf("pf logged %d refusals by %s for %d dials, want one a dial", refusals, p, got)
			}
		}
		st, err := pf.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Members) != len(peers) {
			t.Fatalf("pf's status lists %d members, want %d: %+v", len(st.Members), len(peers), st.Members)
		}
		for i, m := range st.Members {
			if m.Name != peers[i] || m.PeerID != f.ids[peers[i]].String() || m.Connected || m.OnTopic || m.LastSeen != "" ||
				!strings.Contains(m.Refusing, "closed the connection right after the handshake") {
				t.Errorf("pf's status of %s: %+v, want it refusing pf, never seen", peers[i], m)
			}
		}
		warns := f.logLines("pf", "no member reachable")
		if want := int(span / time.Minute); len(warns) < want-1 || len(warns) > want {
			t.Errorf("pf said %d times in %v that no member is reachable, want once a minute:\n%s", len(warns), span, strings.Join(warns, "\n"))
		} else if !strings.Contains(warns[0], "pa refuses this node: closed the connection") {
			t.Errorf("the warning does not say why pa is unreachable: %s", warns[0])
		}

		p := f.propose("nru", membership.Block(f.members["pf"]))
		f.approve("pa", p)
		f.approve("pb", p)
		f.atVersion(time.Minute, 1)
		f.waitFor(time.Minute, "pf to see every member connected and not refusing", func() bool {
			st, err := pf.Status(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range st.Members {
				if !m.Connected || m.Refusing != "" || m.LastSeen == "" {
					return false
				}
			}
			return len(st.Members) == len(peers)
		})
		warned := len(f.logLines("pf", "no member reachable"))
		f.settle(3 * time.Minute)
		if again := len(f.logLines("pf", "no member reachable")); again != warned {
			t.Errorf("pf said %d more times that no member is reachable while connected", again-warned)
		}
	})
}
