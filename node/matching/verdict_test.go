package matching

import (
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/prototest"
	"github.com/staydown/staydown/protocol/replica"
	"github.com/staydown/staydown/store"
)

// TestVerdictTrust enumerates, on a real store, every combination of
// whether the node trusts the attesters, who wrote an allow entry naming
// the signal (nobody, a trusted member, an untrusted one, a member
// trusted only for other labels, or a trusted member who then retracted
// it) and who disputes one of the attestations (nobody, a trusted
// member, an untrusted one). It checks the verdict against the rule of
// README "Verdicts: the node's local policy", stated here in the terms
// of the combination, and that every attestation keeps the status the
// protocol gives it (replica.StatusOf), whatever the policy.
func TestVerdictTrust(t *testing.T) {
	names := []string{"attester-1", "attester-2", "trusted", "untrusted", "other-label"}
	keys := map[string]ed25519.PrivateKey{}
	logs := map[string]*prototest.Log{}
	var members []protocol.Member
	for i, n := range names {
		seed := make([]byte, ed25519.SeedSize)
		seed[0] = byte(i + 1)
		keys[n] = ed25519.NewKeyFromSeed(seed)
		logs[n] = prototest.NewLog(keys[n], "test")
		members = append(members, protocol.Member{Name: n, Role: protocol.RolePlatform, AuthorKey: protocol.AuthorKeyOf(keys[n])})
	}
	roster, err := protocol.NewRoster("test", members)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	write := func(author string, body *pb.Entry) *protocol.Entry {
		t.Helper()
		e := logs[author].Next(t, body)
		res, err := st.Apply([]*protocol.Entry{e})
		if err != nil || res[0].Outcome != store.Applied {
			t.Fatalf("apply %s's %s: %v %v", author, e.Kind(), res, err)
		}
		return e
	}

	// Who wrote the allow entry, and who the dispute.
	const (
		nobody     = "nobody"
		trusted    = "trusted"
		untrusted  = "untrusted"
		otherLabel = "other-label" // trusted, but not for graphic-violence
		retracted  = "trusted, retracted"
	)
	type combo struct {
		attestersTrusted bool
		allow, dispute   string
		sig              *pb.Signal
	}
	var combos []combo
	for _, attestersTrusted := range []bool{true, false} {
		for _, allow := range []string{nobody, trusted, untrusted, otherLabel, retracted} {
			for _, dispute := range []string{nobody, trusted, untrusted} {
				combos = append(combos, combo{attestersTrusted, allow, dispute, prototest.SHA256(t, uint64(len(combos)+1))})
			}
		}
	}
	// Every combination has its own signal in the one store: both
	// attesters add it (labelled graphic-violence), then the allow entry
	// and the dispute of attester-2's addition are written.
	for _, c := range combos {
		write("attester-1", prototest.Addition(c.sig))
		add2 := write("attester-2", prototest.Addition(c.sig))
		allowBody := func() *pb.Entry {
			return &pb.Entry{Payload: &pb.Entry_Allow{Allow: &pb.Allow{Signals: []*pb.Signal{c.sig}, Category: "news", Reason: "a broadcaster's report"}}}
		}
		switch c.allow {
		case trusted, untrusted, otherLabel:
			write(c.allow, allowBody())
		case retracted:
			a := write(trusted, allowBody())
			write(trusted, &pb.Entry{Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{Target: a.ID[:], Reason: "wrong signal"}}})
		}
		if c.dispute != nobody {
			write(c.dispute, &pb.Entry{Payload: &pb.Entry_Dispute{Dispute: &pb.Dispute{Target: add2.ID[:], Reason: "a film still"}}})
		}
	}

	for _, attestersTrusted := range []bool{true, false} {
		policy := config.DefaultPolicy()
		policy.Trust = map[string][]string{"trusted": {"*"}, "other-label": {"attacker-manifesto"}}
		if attestersTrusted {
			policy.Trust["attester-1"] = []string{"graphic-violence"}
			policy.Trust["attester-2"] = []string{"*"}
		}
		m, err := New(st, func() *protocol.Roster { return roster }, policy, dir, prometheus.NewRegistry(), slog.New(slog.DiscardHandler), time.Now)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range combos {
			if c.attestersTrusted != attestersTrusted {
				continue
			}
			name := fmt.Sprintf("attesters trusted %v, allow by %s, dispute by %s", c.attestersTrusted, c.allow, c.dispute)
			t.Run(name, func(t *testing.T) {
				// The rule. Attester-1's attestation is active for the
				// verdict in every combination; attester-2's is disputed
				// for it when the node trusts the dispute's author.
				// Members the node does not trust (for the attestation's
				// labels) neither dispute nor allowlist for it.
				allowBears := c.allow == trusted
				disputeBears := c.dispute == trusted
				counted := 0
				if c.attestersTrusted {
					counted = 1 // attester-1
					if !disputeBears {
						counted++ // attester-2
					}
				}
				want := VerdictReview // someone attests actively: never none
				if counted >= policy.BlockMinAttesters && !allowBears {
					want = VerdictBlock
				}

				found, err := m.Match([]Query{{Signal: c.sig, Quality: NoQuality}})
				if err != nil {
					t.Fatal(err)
				}
				f := found[0]
				if f.Verdict != want {
					t.Errorf("verdict %s, want %s", f.Verdict, want)
				}
				// The statuses are the protocol's, whatever the policy.
				allowInForce := c.allow == trusted || c.allow == untrusted || c.allow == otherLabel
				if len(f.Attestations) != 2 {
					t.Fatalf("%d attestations, want 2", len(f.Attestations))
				}
				for _, a := range f.Attestations {
					disputed := c.dispute != nobody && roster.NameOf(a.Author) == "attester-2"
					if want := replica.StatusOf(false, allowInForce, disputed); a.Status != want {
						t.Errorf("%s's attestation is %s, want %s", roster.NameOf(a.Author), a.Status, want)
					}
					// Each allow or dispute by a member not trusted for
					// graphic-violence is shown as ignored by the verdict.
					if a.Ignored != nil && len(a.Ignored) != len(a.Reasons) {
						t.Fatalf("%d ignored flags for %d reasons", len(a.Ignored), len(a.Reasons))
					}
					for i, r := range a.Reasons {
						who := roster.NameOf(r.Author)
						want := (r.Kind == protocol.KindAllow || r.Kind == protocol.KindDispute) && (who == untrusted || who == otherLabel)
						if got := a.Ignored != nil && a.Ignored[i]; got != want {
							t.Errorf("%s by %s on %s's attestation: ignored %v, want %v", r.Kind, who, roster.NameOf(a.Author), got, want)
						}
					}
				}
			})
		}
		m.Close()
	}
}
