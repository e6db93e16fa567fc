package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/staydown/staydown/node/api"
)

// noticesOf runs `staydown notices --json` with extra flags on n.
func noticesOf(t *testing.T, n *node, extra ...string) []api.NoticeView {
	t.Helper()
	out := mustCLI(t, append([]string{"notices", "--dir", n.dir, "--json"}, extra...)...)
	var list []api.NoticeView
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("notices --json on %s: %v: %q", n.name, err, out)
	}
	return list
}

func findNotice(list []api.NoticeView, id string) *api.NoticeView {
	for i := range list {
		if list[i].ID == id {
			return &list[i]
		}
	}
	return nil
}

// waitNotice waits until n holds notice id in the given state.
func waitNotice(t *testing.T, n *node, id, state string) api.NoticeView {
	t.Helper()
	var v *api.NoticeView
	waitFor(t, deliveryBound, n.name+" sees notice "+id[:12]+" "+state, func() bool {
		v = findNotice(noticesOf(t, n, "--box", "all"), id)
		return v != nil && v.State == state
	})
	return *v
}

// sseStream reads a node's /v1/events.
type sseStream struct {
	events chan sseEvent
	cancel context.CancelFunc
}

type sseEvent struct {
	id   uint64
	typ  string
	data api.Event
	at   time.Time
}

func subscribe(t *testing.T, n *node, lastID uint64) *sseStream {
	t.Helper()
	c := apiOf(t, n)
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	// A position, 0 included: without one a stream starts from now.
	req.Header.Set("Last-Event-ID", strconv.FormatUint(lastID, 10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("events on %s: %s %s", n.name, resp.Status, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{events: make(chan sseEvent, 64), cancel: cancel}
	go func() {
		defer resp.Body.Close()
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.typ != "" {
					ev.at = time.Now()
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id, _ = strconv.ParseUint(line[4:], 10, 64)
			case strings.HasPrefix(line, "event: "):
				ev.typ = line[7:]
			case strings.HasPrefix(line, "data: "):
				json.Unmarshal([]byte(line[6:]), &ev.data)
			}
		}
	}()
	t.Cleanup(cancel)
	return s
}

// next returns the next event of type typ, skipping others, within bound.
func (s *sseStream) next(t *testing.T, typ string, bound time.Duration) sseEvent {
	t.Helper()
	timeout := time.After(bound)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatalf("event stream ended waiting for a %s event", typ)
			}
			if ev.typ == typ {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event within %v", typ, bound)
		}
	}
}

// A referral unit, two platforms: a notice crosses, is readable only by
// its addressee, answered, actioned everywhere, keeps its signal down;
// another goes overdue; the live feed delivers and resumes; the report is
// the same on every node.
func TestNotices(t *testing.T) {
	t.Parallel()
	c, nru, a, b := threeNodes(t)
	feed := subscribe(t, a, 0)
	hash := randomSHA256(t)

	// Platforms issue no notices.
	if _, errs, code := cli(t, "notice", "--dir", b.dir, "--to", "platform-a", "--url", "https://v.example/x",
		"--category", "attacker-manifesto", "--basis", "TCO"); code != 2 || !strings.Contains(errs, "only referral units") {
		t.Fatalf("a platform issued a notice: exit %d: %s", code, errs)
	}

	published := time.Now()
	n1 := strings.TrimSpace(mustCLI(t, "notice", "--dir", nru.dir, "--to", "platform-a",
		"--url", "https://Video.Example/watch?v=42", "--signal", "sha256:"+hash, "--text", "the speech at 0:42",
		"--category", "attacker-manifesto", "--basis", "Regulation (EU) 2021/784, art. 3", "--order"))
	ev := feed.next(t, api.EventNotice, deliveryBound)
	t.Logf("SSE: the notice reached platform-a's event stream %v after the CLI was started", ev.at.Sub(published).Round(time.Millisecond))
	if ev.data.ID != n1 || ev.data.Notice == nil || ev.data.Notice.Details == nil || ev.data.Notice.Details.URLs[0] != "https://video.example/watch?v=42" {
		t.Fatalf("notice event: %+v", ev.data)
	}

	// Readable by its addressee and its issuer; platform-b sees the
	// envelope: who, whom, category, deadline, signals, but no URL.
	va := waitNotice(t, a, n1, "open")
	if va.Details == nil || va.Details.Text != "the speech at 0:42" || !va.Order || va.From != "nru" {
		t.Errorf("platform-a's view: %+v", va)
	}
	if vn := findNotice(noticesOf(t, nru), n1); vn == nil || vn.Details == nil {
		t.Errorf("nru's outbox lacks its readable notice: %+v", vn)
	}
	vb := waitNotice(t, b, n1, "open")
	if vb.Details != nil || !vb.Sealed || vb.To != "platform-a" || len(vb.Signals) != 1 || vb.Deadline == "" {
		t.Errorf("platform-b's view: %+v", vb)
	}
	if len(noticesOf(t, b)) != 0 {
		t.Errorf("platform-b's inbox is not empty")
	}
	// Only the addressee replies.
	if _, errs, code := cli(t, "reply", "--dir", b.dir, n1, "--status", "removed"); code != 2 || !strings.Contains(errs, "only its addressee replies") {
		t.Fatalf("platform-b replied: exit %d: %s", code, errs)
	}

	// Received, then removed: actioned on every node, and the signal now
	// matches everywhere with the notice as its attestation.
	mustCLI(t, "reply", "--dir", a.dir, n1, "--status", "received")
	mustCLI(t, "reply", "--dir", a.dir, n1, "--status", "removed", "--text", "removed worldwide")
	for _, n := range []*node{nru, a, b} {
		v := waitNotice(t, n, n1, "actioned")
		if v.TimeToActionS == nil || v.WithinDeadline == nil || !*v.WithinDeadline || len(v.Replies) != 2 {
			t.Errorf("%s: %+v", n.name, v)
		}
		r, code := c.match(n, "sha256", hash)
		if !acted(code) || len(r.Attestations) != 1 || r.Attestations[0].ID != n1 {
			t.Errorf("%s: stay down: exit %d, %+v", n.name, code, r)
		}
	}

	// A second notice, to platform-b, unanswered: overdue once its
	// deadline has passed (asked at a later time, not waited for).
	n2 := strings.TrimSpace(mustCLI(t, "notice", "--dir", nru.dir, "--to", "platform-b", "--url", "https://other.example/p/7",
		"--category", "attacker-manifesto", "--basis", "TCO art. 3", "--deadline", "1h"))
	waitNotice(t, b, n2, "open")
	later := time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)
	if over := noticesOf(t, b, "--overdue", "--at", later); len(over) != 1 || over[0].ID != n2 {
		t.Errorf("platform-b overdue at +2h: %+v", over)
	}
	if over := noticesOf(t, b, "--overdue"); len(over) != 0 {
		t.Errorf("platform-b overdue now: %+v", over)
	}
	if open := noticesOf(t, a, "--open"); len(open) != 0 {
		t.Errorf("platform-a has open notices: %+v", open)
	}

	// The feed resumes after the last event seen: the first notice is not
	// sent again, the next one arrives.
	feed.cancel()
	resumed := subscribe(t, a, ev.id)
	n3 := strings.TrimSpace(mustCLI(t, "notice", "--dir", nru.dir, "--to", "platform-a", "--url", "https://v.example/3",
		"--category", "attacker-manifesto", "--basis", "TCO"))
	if ev3 := resumed.next(t, api.EventNotice, deliveryBound); ev3.data.ID != n3 || ev3.id <= ev.id {
		t.Errorf("resumed stream: %+v (id %d after %d), want %s", ev3.data, ev3.id, ev.id, n3)
	}

	// The report: the same figures on every node, as computed by hand.
	waitNotice(t, a, n3, "open")
	waitNotice(t, b, n3, "open")
	at := time.Now().Add(3 * time.Hour).UTC().Format(time.RFC3339)
	var first string
	for _, n := range []*node{nru, a, b} {
		out := mustCLI(t, "report", "--dir", n.dir, "--json", "--at", at)
		if first == "" {
			first = out
		} else if out != first {
			t.Errorf("%s's report differs:\n%s\nnru's:\n%s", n.name, out, first)
		}
	}
	var rep struct {
		Members []struct {
			Name             string
			Notices_issued   int `json:"notices_issued"`
			Notices_received int `json:"notices_received"`
			Within           int `json:"answered_within_deadline"`
			Overdue          int `json:"overdue"`
		} `json:"members"`
	}
	if err := json.Unmarshal([]byte(first), &rep); err != nil {
		t.Fatal(err)
	}
	want := map[string][4]int{"nru": {3, 0, 0, 0}, "platform-a": {0, 2, 1, 1}, "platform-b": {0, 1, 0, 1}}
	for _, m := range rep.Members {
		if got := [4]int{m.Notices_issued, m.Notices_received, m.Within, m.Overdue}; got != want[m.Name] {
			t.Errorf("report for %s: issued, received, within, overdue = %v, want %v", m.Name, got, want[m.Name])
		}
	}
}

// SIGTERM with clients reading /v1/events shuts the node down cleanly
// and at once (#13 item 19: it took 5 s and exited 2, "run: context
// deadline exceeded"). The issue asks for 1 s; the bound here is 4 s, under
// the old 5 s, so that a loaded machine running the race detector does
// not fail it; the time taken is logged.
func TestSIGTERMWithEventStreamsOpen(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "nru=referral")
	nru := c.nodes["nru"]
	c.start(nru)
	for range 3 {
		subscribe(t, nru, 0)
	}
	start := time.Now()
	nru.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-nru.exited:
		took := time.Since(start)
		t.Logf("exited %v after SIGTERM with 3 event streams open", took.Round(time.Millisecond))
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, nru.log(t))
		}
		if took > 4*time.Second {
			t.Errorf("took %v to shut down", took)
		}
	case <-time.After(15 * time.Second):
		nru.cmd.Process.Kill()
		t.Fatal("still running 15 s after SIGTERM")
	}
	nru.cmd = nil
}
