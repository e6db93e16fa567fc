package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/status"
)

func TestStatus(t *testing.T) {
	st := api.Status{
		ID: "12D3KooWExample", Name: "nru", Role: "referral", Author: strings.Repeat("aa", 32), Federation: "staydown",
		Peers: 2, TopicPeers: 1, Entries: 17, Heads: map[string]uint64{"nru": 12, "platform-a": 5},
		HeadsDigest: strings.Repeat("d1", 32), Flagged: []string{"platform-a"}, Listen: []string{"/ip4/127.0.0.1/tcp/4001"},
		Genesis: strings.Repeat("9e", 32), RosterVersion: 3, Member: true, Proposals: 2, OwnHeadConfirmed: true,
	}
	tests := []struct {
		name   string
		status api.Status
		json   bool
		want   string
	}{
		{"text", st, false, `member        nru (referral) in federation staydown
author key    ` + strings.Repeat("aa", 32) + `
peer id       12D3KooWExample
listen        /ip4/127.0.0.1/tcp/4001
genesis       ` + strings.Repeat("9e", 32) + `
roster        version 3; 2 proposals wait for votes (staydown member proposals)
peers         2 connected, 1 on the topic
entries       17
sync          caught up
own head      confirmed
heads digest  ` + strings.Repeat("d1", 32) + `
flagged       platform-a
heads         nru         12
              platform-a  5
`},
		{"JSON", st, true, `{"id":"12D3KooWExample","name":"nru","role":"referral","author":"` + strings.Repeat("aa", 32) + `",
			"federation":"staydown","genesis":"` + strings.Repeat("9e", 32) + `","roster_version":3,"member":true,"proposals":2,"peers":2,"topic_peers":1,"entries":17,"heads":{"nru":12,"platform-a":5},
			"heads_digest":"` + strings.Repeat("d1", 32) + `","flagged":["platform-a"],"listen":["/ip4/127.0.0.1/tcp/4001"],"behind":0,"own_head_confirmed":true}`},
		{"text, fresh node", api.Status{Name: "nru", Role: "referral", Federation: "staydown", OwnHeadConfirmed: true}, false, `member        nru (referral) in federation staydown
author key    
peer id       
listen        none (dials out only)
genesis       
roster        version 0; this node is not a member yet: it waits for its admission
peers         0 connected, 0 on the topic
entries       0
sync          caught up
own head      confirmed
heads digest  
flagged       none
`},
		{"text, restored, own head unconfirmed", api.Status{Name: "nru", Role: "referral", Federation: "staydown",
			Restored: &status.Restored{At: "2026-12-03T13:00:00Z", Damaged: "store.db.damaged-20261203T125959Z", From: []string{"platform-a"}, Needed: 2, OwnSeq: 57}}, false, `member        nru (referral) in federation staydown
author key    
peer id       
listen        none (dials out only)
genesis       
roster        version 0; this node is not a member yet: it waits for its admission
peers         0 connected, 0 on the topic
entries       0
sync          caught up
restored      2026-12-03T13:00:00Z from platform-a (2 needed), own head then seq 57; the damaged file is store.db.damaged-20261203T125959Z
own head      NOT confirmed: publishing refused until enough members' nodes have served this node's own log
heads digest  
flagged       none
`},
		{"text, catching up", api.Status{Name: "nru", Role: "referral", Federation: "staydown", Behind: 90000, CatchupRate: 45000, CatchupETASeconds: 2, OwnHeadConfirmed: true}, false, `member        nru (referral) in federation staydown
author key    
peer id       
listen        none (dials out only)
genesis       
roster        version 0; this node is not a member yet: it waits for its admission
peers         0 connected, 0 on the topic
entries       0
sync          catching up: 90000 entries behind, 45000 entries/s, about 2s to go
own head      confirmed
heads digest  
flagged       none
`},
		{"JSON, fresh node", api.Status{Name: "nru"}, true, `{"id":"","name":"nru","role":"","author":"","federation":"","genesis":"","roster_version":0,"member":false,"proposals":0,"peers":0,
			"topic_peers":0,"entries":0,"heads":{},"heads_digest":"","flagged":[],"listen":[],"behind":0,"own_head_confirmed":false}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := startNode(t)
			n.fake.SetStatus(tt.status)
			args := []string{"status", "--dir", n.dir}
			if tt.json {
				args = append(args, "--json")
			}
			r := staydown(args...)
			if r.code != exitOK || r.stderr != "" {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if tt.json {
				wantJSON(t, r.stdout, tt.want)
			} else if r.stdout != tt.want {
				t.Errorf("stdout\n%s\nwant\n%s", r.stdout, tt.want)
			}
		})
	}
	t.Run("node fails", func(t *testing.T) {
		n := startNode(t)
		n.fake.Fail(errors.New("store closed"))
		wantFailure(t, staydown("status", "--dir", n.dir), "staydown: status: the node at "+n.addr+" failed: internal error")
	})
}
