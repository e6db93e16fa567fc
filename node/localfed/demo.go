package localfed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/node"
	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/console"
	"github.com/staydown/staydown/node/notices"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// DemoContent stands in for a file of known terrorist content; the demo
// publishes its sha256.
const DemoContent = "staydown demo: stand-in bytes for a propaganda video"

// Demo creates the default federation in dir, starts it, shows a hash and
// its retraction crossing it, then keeps the nodes running until ctx ends.
// It narrates to w.
func Demo(ctx context.Context, w io.Writer, dir string, basePort int, binary string) error {
	say := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	say("Creating a federation of three nodes in %s:", dir)
	f, err := Create(dir, "staydown-demo", Default, basePort)
	if err != nil {
		return err
	}
	for i, c := range f.Configs {
		say("  %-11s %-9s libp2p %s  API http://%s/", c.Name, Default[i].Role, c.Listen[0], c.API)
	}
	if err := f.Start(ctx, slog.LevelInfo); err != nil {
		f.Close()
		return err
	}
	defer f.Close()
	say("Nodes started (logs: %s/*/node.log). Waiting for the gossip mesh...", dir)
	meshCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = f.WaitMesh(meshCtx)
	cancel()
	if err != nil {
		return err
	}
	say("Mesh formed: every node sees the other two.\n")
	say("Web consoles: open each link once, within %v, to sign in (each node's own console; the demo's", console.TicketTTL)
	say("notices and replies appear live in the inboxes and feeds):")
	for _, c := range f.Configs {
		link, err := SignInLink(ctx, c)
		if err != nil {
			return err
		}
		say("  %-11s %s", c.Name, link)
	}
	say("")

	nru, platforms := f.Nodes[0], f.Nodes[1:]
	sum := sha256.Sum256([]byte(DemoContent))
	hash := hex.EncodeToString(sum[:])
	sig, err := protocol.ParseSignal("sha256", hash)
	if err != nil {
		return err
	}
	say("1. %s publishes sha256:%s", f.Configs[0].Name, hash)
	say("   labelled recruitment-and-instruction, signed with its author key.")
	t0 := time.Now()
	add, err := nru.Publish(ctx, &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{
		Signals: []*pb.Signal{sig}, Labels: []*pb.Label{{Slug: "recruitment-and-instruction"}}, CaseRef: "DEMO-1"}}})
	if err != nil {
		return err
	}
	say("   entry %s (seq %d)", add.ID, add.Seq())
	if err := waitStatus(ctx, f, platforms, sig, add.ID, store.StatusActive, t0, say); err != nil {
		return err
	}

	say("\n2. %s retracts it (a mistake, say).", f.Configs[0].Name)
	t0 = time.Now()
	ret, err := nru.Publish(ctx, &pb.Entry{Payload: &pb.Entry_Retraction{Retraction: &pb.Retraction{
		Target: add.ID[:], Reason: "demo: published in error"}}})
	if err != nil {
		return err
	}
	say("   entry %s (seq %d)", ret.ID, ret.Seq())
	if err := waitStatus(ctx, f, platforms, sig, add.ID, store.StatusRetracted, t0, say); err != nil {
		return err
	}

	say("\n3. The same hash again, published anew, is active again everywhere.")
	t0 = time.Now()
	again, err := nru.Publish(ctx, &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{
		Signals: []*pb.Signal{sig}, Labels: []*pb.Label{{Slug: "recruitment-and-instruction"}}, CaseRef: "DEMO-2"}}})
	if err != nil {
		return err
	}
	if err := waitStatus(ctx, f, platforms, sig, again.ID, store.StatusActive, t0, say); err != nil {
		return err
	}

	if err := demoNotice(ctx, f, say); err != nil {
		return err
	}

	digests, err := f.waitSameHeads(ctx, 10*time.Second)
	if err != nil {
		return err
	}
	if len(digests) == 1 {
		say("\nAll three nodes hold the same logs: heads digest %s.", digests[0])
	} else {
		say("\nThe nodes' heads still differ after 10 s (digests %v): see the node logs.", digests)
	}
	pa := f.Configs[1]
	say("\nThe nodes keep running. In another terminal, try:")
	say("  %s status --dir %s", binary, pa.Dir)
	say("  %s match  --dir %s --type sha256 %s --json", binary, pa.Dir, hash)
	say("  %s add    --dir %s --type url --label attacker-manifesto https://example.org/manifesto", binary, f.Configs[0].Dir)
	say("  %s notices --dir %s", binary, pa.Dir)
	say("  %s notice --dir %s --to %s --url https://video.example/2 --category attacker-manifesto --basis \"TCO art. 3\"", binary, f.Configs[0].Dir, pa.Name)
	say("  %s report --dir %s", binary, f.Configs[0].Dir)
	say("  curl -s http://%s/metrics | grep staydown_", pa.API)
	say("  %s console --dir %s    (a new sign-in link to its web console)", binary, pa.Dir)
	say("API token of %s: %s", pa.Name, filepath.Join(pa.Dir, "api.token"))
	say("\nCtrl-C stops the federation.")
	<-ctx.Done()
	say("Stopping...")
	return nil
}

// SignInLink asks the running node of cfg for a one-time sign-in link
// to its web console, as `staydown console` does: with its api.token,
// over its HTTP API.
func SignInLink(ctx context.Context, cfg *config.Node) (string, error) {
	tok, err := cfg.Token()
	if err != nil {
		return "", err
	}
	base := "http://" + cfg.API
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/console/tickets", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("%s: asking for a console sign-in link: %w", cfg.Name, err)
	}
	defer res.Body.Close()
	var t console.Ticket
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<16)).Decode(&t); err != nil || res.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("%s: asking for a console sign-in link: %s", cfg.Name, res.Status)
	}
	return base + t.Path, nil
}

// waitStatus waits until every platform reports want for the attestation
// id of sig, and says how long each took. Gossip is best effort: it gives
// up after 10 s and says so.
func waitStatus(ctx context.Context, f *Federation, platforms []*node.Node, sig *pb.Signal, id protocol.ID, want store.Status, t0 time.Time, say func(string, ...any)) error {
	for i, p := range platforms {
		name := f.Configs[i+1].Name
		deadline := time.Now().Add(10 * time.Second)
		for {
			res, err := p.Match(ctx, []api.Query{{Signal: sig, Quality: api.NoQuality}})
			if err != nil {
				return err
			}
			if statusOf(res[0].Attestations, id) == want {
				say("   %s: match says %q after %v", name, want, time.Since(t0).Round(time.Millisecond))
				break
			}
			if time.Now().After(deadline) {
				say("   %s: not seen within 10 s (gossip is best effort; see its node.log)", name)
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(2 * time.Millisecond):
			}
		}
	}
	return nil
}

func statusOf(atts []api.FoundAttestation, id protocol.ID) store.Status {
	for _, a := range atts {
		if a.EntryID == id {
			return a.Status
		}
	}
	return ""
}

// waitSameHeads waits until every node reports the same heads digest, or
// the bound passes, and returns the distinct digests seen last.
func (f *Federation) waitSameHeads(ctx context.Context, bound time.Duration) ([]string, error) {
	deadline := time.Now().Add(bound)
	for {
		seen := map[string]bool{}
		var distinct []string
		for _, n := range f.Nodes {
			st, err := n.Status(ctx)
			if err != nil {
				return nil, err
			}
			if !seen[st.HeadsDigest] {
				seen[st.HeadsDigest] = true
				distinct = append(distinct, st.HeadsDigest)
			}
		}
		if len(distinct) == 1 || time.Now().After(deadline) {
			return distinct, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// DemoNoticeContent stands in for a video a referral unit wants taken down.
const DemoNoticeContent = "staydown demo: stand-in bytes for a video to take down"

// demoNotice shows a takedown notice crossing the federation: readable by
// its addressee only, answered, actioned everywhere, its signal kept down.
func demoNotice(ctx context.Context, f *Federation, say func(string, ...any)) error {
	nru, pa, pb2 := f.Nodes[0], f.Nodes[1], f.Nodes[2]
	sum := sha256.Sum256([]byte(DemoNoticeContent))
	hash := hex.EncodeToString(sum[:])
	say("\n4. %s sends %s a takedown notice (a binding removal order, one hour):", f.Configs[0].Name, f.Configs[1].Name)
	say("   URL https://video.example/watch?v=demo (sealed to %s), content hash sha256:%s (public).", f.Configs[1].Name, hash[:16]+"…")
	signal, err := protocol.ParseSignal("sha256", hash)
	if err != nil {
		return err
	}
	t0 := time.Now()
	n, err := nru.IssueNotice(ctx, notices.IssueRequest{To: f.Configs[1].Name, URLs: []string{"https://video.example/watch?v=demo"},
		Signals: []*pb.Signal{signal}, Category: "attacker-manifesto",
		Basis: "Regulation (EU) 2021/784, art. 3", Order: true})
	if err != nil {
		return err
	}
	view := func(on *node.Node, state string) (api.NoticeView, error) {
		var v api.NoticeView
		deadline := time.Now().Add(10 * time.Second)
		for {
			var err error
			v, err = on.GetNotice(ctx, n.ID, 0)
			if err == nil && v.State == state {
				return v, nil
			}
			if time.Now().After(deadline) {
				return v, fmt.Errorf("notice %s not %s on a node after 10 s (is gossip working? see the node logs)", n.ID, state)
			}
			select {
			case <-ctx.Done():
				return v, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	va, err := view(pa, "open")
	if err != nil {
		return err
	}
	say("   %s has it after %v: state %s, deadline %s, reads %v", f.Configs[1].Name, time.Since(t0).Round(time.Millisecond), va.State, va.Deadline, va.Details.URLs)
	vb, err := view(pb2, "open")
	if err != nil {
		return err
	}
	say("   %s sees the envelope only: from %s to %s, %s, sealed=%v, details=%v", f.Configs[2].Name, vb.From, vb.To, vb.Category, vb.Sealed, vb.Details)

	say("\n5. %s answers: removed.", f.Configs[1].Name)
	if _, err := pa.ReplyNotice(ctx, api.ReplyRequest{Notice: n.ID.String(), Status: "removed"}); err != nil {
		return err
	}
	for i, on := range []*node.Node{nru, pb2} {
		v, err := view(on, "actioned")
		if err != nil {
			return err
		}
		say("   %s: actioned in %.1f s, within the deadline: %v", f.Configs[[]int{0, 2}[i]].Name, *v.TimeToActionS, *v.WithinDeadline)
	}
	sig, err := protocol.ParseSignal("sha256", hash)
	if err != nil {
		return err
	}
	found, err := pb2.Match(ctx, []api.Query{{Signal: sig, Quality: api.NoQuality}})
	if err != nil {
		return err
	}
	say("   Stay down: on %s the content's hash now matches (verdict %s), attested by the notice.", f.Configs[2].Name, found[0].Verdict)
	return nil
}
