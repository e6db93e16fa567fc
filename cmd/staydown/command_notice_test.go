package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/protocol/report"
)

// The commands build the requests the API documents; the node (tested in
// node/ and integration/) does the rest.
func TestNoticeCommands(t *testing.T) {
	n := startNode(t)
	tests := []struct {
		args []string
		want any
	}{
		{[]string{"notice", "--dir", n.dir, "--to", "platform-a", "--url", "https://v.example/1", "--url", "https://v.example/2",
			"--signal", "sha256:" + sha, "--text", "at 0:42", "--category", "attacker-manifesto", "--basis", "TCO art. 3", "--deadline", "90m", "--order"},
			api.NoticeRequest{To: "platform-a", URLs: []string{"https://v.example/1", "https://v.example/2"},
				Signals: []api.Signal{{Type: "sha256", Value: sha}}, Text: "at 0:42", Category: "attacker-manifesto", Basis: "TCO art. 3", Deadline: "90m", Order: true}},
		{[]string{"notice", "clarify", "--dir", n.dir, target, "--text", "the second clip", "--deadline", "1h"},
			api.NoticeUpdateRequest{Notice: target, Text: "the second clip", Deadline: "1h"}},
		{[]string{"notice", "withdraw", "--dir", n.dir, target}, api.NoticeUpdateRequest{Notice: target, Withdraw: true}},
		{[]string{"reply", "--dir", n.dir, target, "--status", "not-executed", "--reason", "not-hosted", "--text", "not ours"},
			api.ReplyRequest{Notice: target, Status: "not-executed", Reason: "not-hosted", Text: "not ours"}},
		{[]string{"reply", "--dir", n.dir, target, "--status", "removed", "--action-time", "2026-05-01T12:00:00Z"},
			api.ReplyRequest{Notice: target, Status: "removed", ActionTime: "2026-05-01T12:00:00Z"}},
	}
	for i, tt := range tests {
		r := staydown(tt.args...)
		if r.code != exitOK || len(strings.TrimSpace(r.stdout)) != 68 {
			t.Fatalf("%v: exit %d, stdout %q, stderr %q", tt.args[:2], r.code, r.stdout, r.stderr)
		}
		reqs := n.fake.NoticeRequests()
		if len(reqs) != i+1 || !reflect.DeepEqual(reqs[i], tt.want) {
			t.Errorf("%v: sent %#v, want %#v", tt.args[:2], reqs[len(reqs)-1], tt.want)
		}
	}
}

func TestNoticeCommandErrors(t *testing.T) {
	n := startNode(t)
	base := []string{"--to", "platform-a", "--url", "https://v.example/1", "--category", "attacker-manifesto", "--basis", "TCO"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no to", []string{"notice", "--url", "https://v.example/1", "--category", "attacker-manifesto", "--basis", "TCO"}, "notice: --to: required"},
		{"no target", []string{"notice", "--to", "platform-a", "--category", "attacker-manifesto", "--basis", "TCO"}, "no target: give --url or --signal"},
		{"no basis", []string{"notice", "--to", "platform-a", "--url", "https://v.example/1", "--category", "attacker-manifesto"}, "--basis: required"},
		{"bad category", append([]string{"notice"}, append(base[:6], "--category", "cats", "--basis", "x")...), `"cats"`},
		{"bad url", append([]string{"notice"}, append(base, "--url", "ftp://x")...), `--url "ftp://x"`},
		{"bad signal", append([]string{"notice"}, append(base, "--signal", "sha256")...), `--signal "sha256": no type: give TYPE:VALUE`},
		{"bad signal value", append([]string{"notice"}, append(base, "--signal", "sha256:abc")...), "sha256"},
		{"clarify nothing", []string{"notice", "clarify", target}, "nothing to clarify"},
		{"withdraw bad id", []string{"notice", "withdraw", "xyz"}, "entry id"},
		{"reply no status", []string{"reply", target}, "--status: required"},
		{"reply bad status", []string{"reply", target, "--status", "done"}, `--status "done": use one of`},
		{"reply no reason", []string{"reply", target, "--status", "not-executed"}, "--reason: required"},
		{"reply stray reason", []string{"reply", target, "--status", "removed", "--reason", "not-hosted"}, "not-executed only"},
		{"reply bad reason", []string{"reply", target, "--status", "not-executed", "--reason", "lazy"}, `--reason "lazy"`},
		{"reply bad time", []string{"reply", target, "--status", "removed", "--action-time", "noon"}, "RFC 3339"},
		{"notices both", []string{"notices", "--open", "--overdue"}, "exclude each other"},
		{"notices bad box", []string{"notices", "--box", "spam"}, "use in, out or all"},
		{"notices bad at", []string{"notices", "--at", "tomorrow"}, "RFC 3339"},
		{"report bad since", []string{"report", "--since", "2026"}, "RFC 3339"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{tt.args[0], "--dir", n.dir}, tt.args[1:]...)
			wantFailure(t, staydown(args...), tt.want)
			if c := n.calls(); c != 0 {
				t.Fatalf("%d requests reached the node", c)
			}
		})
	}
}

func TestNoticesAndReportOutput(t *testing.T) {
	n := startNode(t)
	rem, tta, yes := 1800.0, 600.0, true
	n.fake.SetNotices(
		api.NoticeView{ID: target, From: "nru", To: "platform-a", State: "open", Deadline: "2026-11-22T12:00:00.000Z", DeadlineMs: 1,
			TimeRemainingS: &rem, Category: "attacker-manifesto", Order: true, Signals: []string{"sha256:" + sha},
			Details: &api.NoticeDetails{URLs: []string{"https://v.example/1"}, Text: "at 0:42"}},
		api.NoticeView{ID: target, From: "nru", To: "platform-a", State: "actioned", TimeToActionS: &tta, WithinDeadline: &yes, Category: "attacker-manifesto"},
	)
	r := staydown("notices", "--dir", n.dir, "--open", "--box", "in", "--at", "2026-11-22T11:00:00Z")
	if r.code != exitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"30m0s", "open", "order", "url: https://v.example/1", "text: at 0:42", "signal: sha256:" + sha, "acted in 10m0s"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("notices output lacks %q:\n%s", want, r.stdout)
		}
	}
	if q := n.fake.NoticeQueries(); len(q) != 1 || !q[0].Open || q[0].Box != "in" || q[0].AtMs != 1795345200000 {
		t.Errorf("query %+v", q)
	}
	r = staydown("notices", "--dir", n.dir, "--json")
	var list []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 2 {
		t.Fatalf("notices --json: %v %q", err, r.stdout)
	}
	for _, k := range []string{"id", "from", "to", "state", "deadline", "time_to_action_s"} {
		if _, ok := list[0][k]; !ok {
			t.Errorf("notices --json lacks %q", k)
		}
	}

	med := 600.0
	n.fake.SetReport(report.Report{Federation: "staydown", Members: []report.Member{{Name: "platform-a", Role: "platform",
		Figures: report.Figures{Signals: 3, NoticesReceived: 2, AnsweredWithinDeadline: 1, Overdue: 1, MedianTimeToActionS: &med, P90TimeToActionS: &med}}}})
	r = staydown("report", "--dir", n.dir, "--since", "2026-01-01T00:00:00Z")
	if r.code != exitOK || !strings.Contains(r.stdout, "since 2026-01-01T00:00:00Z") || !strings.Contains(r.stdout, "platform-a") || !strings.Contains(r.stdout, "10m0s") {
		t.Errorf("report: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = staydown("report", "--dir", n.dir, "--json")
	var rep report.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Members[0].NoticesReceived != 2 {
		t.Errorf("report --json: %v %q", err, r.stdout)
	}
}
