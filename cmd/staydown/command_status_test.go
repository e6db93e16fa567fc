package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/apitls"
	"github.com/staydown/staydown/node/apitls/apitlstest"
	"github.com/staydown/staydown/node/status"
	"github.com/staydown/staydown/protocol"
)

func TestStatus(t *testing.T) {
	st := api.Status{
		ID: "12D3KooWExample", Name: "nru", Role: "referral", Author: strings.Repeat("aa", 32), Federation: "staydown",
		Peers: 2, TopicPeers: 1, Entries: 17, Heads: map[string]uint64{"nru": 12, "platform-a": 5},
		HeadsDigest: strings.Repeat("d1", 32), Flagged: []string{"platform-a"}, Listen: []string{"/ip4/127.0.0.1/tcp/4001"},
		Genesis: strings.Repeat("9e", 32), RosterVersion: 3, Member: true, Proposals: 2, StoreWritable: true, OwnHeadConfirmed: true,
		Members: []api.Peer{
			{Name: "platform-a", PeerID: "12D3KooWpa", Connected: true, OnTopic: true, LastSeen: "2026-12-03T13:05:00Z"},
			{Name: "platform-b", PeerID: "12D3KooWpb", Connected: true, LastSeen: "2026-12-03T13:05:00Z"},
			{Name: "auditor", PeerID: "12D3KooWau", Refusing: "closed the connection right after the handshake"},
		},
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
members       NAME        CONNECTED  TOPIC  LAST SEEN             REFUSING
              platform-a  yes        yes    2026-12-03T13:05:00Z  -
              platform-b  yes        no     2026-12-03T13:05:00Z  -
              auditor     no         no     never                 closed the connection right after the handshake
entries       17
store         writable
sync          caught up
own head      confirmed
heads digest  ` + strings.Repeat("d1", 32) + `
flagged       platform-a
heads         nru         12
              platform-a  5
`},
		{"JSON", st, true, `{"id":"12D3KooWExample","name":"nru","role":"referral","author":"` + strings.Repeat("aa", 32) + `",
			"federation":"staydown","genesis":"` + strings.Repeat("9e", 32) + `","roster_version":3,"member":true,"proposals":2,"peers":2,
			"members":[{"name":"platform-a","peer_id":"12D3KooWpa","connected":true,"on_topic":true,"refusing":"","last_seen":"2026-12-03T13:05:00Z"},
			           {"name":"platform-b","peer_id":"12D3KooWpb","connected":true,"on_topic":false,"refusing":"","last_seen":"2026-12-03T13:05:00Z"},
			           {"name":"auditor","peer_id":"12D3KooWau","connected":false,"on_topic":false,"refusing":"closed the connection right after the handshake","last_seen":""}],
			"topic_peers":1,"entries":17,"heads":{"nru":12,"platform-a":5},
			"heads_digest":"` + strings.Repeat("d1", 32) + `","flagged":["platform-a"],"listen":["/ip4/127.0.0.1/tcp/4001"],"store_writable":true,"behind":0,"own_head_confirmed":true}`},
		{"text, fresh node", api.Status{Name: "nru", Role: "referral", Federation: "staydown", StoreWritable: true, OwnHeadConfirmed: true}, false, `member        nru (referral) in federation staydown
author key    
peer id       
listen        none (dials out only)
genesis       
roster        version 0; this node is not a member yet: it waits for its admission
peers         0 connected, 0 on the topic
members       none but this node in the roster
entries       0
store         writable
sync          caught up
own head      confirmed
heads digest  
flagged       none
`},
		{"text, restored, own head unconfirmed", api.Status{Name: "nru", Role: "referral", Federation: "staydown",
			Restored: &status.Restored{At: "2026-12-03T13:00:00Z", Damaged: "store.db.damaged-20261203T125959Z", From: []string{"platform-a"}, Needed: 2, OwnSeq: 57}, StoreWritable: true}, false, `member        nru (referral) in federation staydown
author key    
peer id       
listen        none (dials out only)
genesis       
roster        version 0; this node is not a member yet: it waits for its admission
peers         0 connected, 0 on the topic
members       none but this node in the roster
entries       0
store         writable
sync          caught up
restored      2026-12-03T13:00:00Z from platform-a (2 needed), own head then seq 57; the damaged file is store.db.damaged-20261203T125959Z
own head      NOT confirmed: publishing refused until enough members' nodes have served this node's own log
heads digest  
flagged       none
`},
		{"text, catching up", api.Status{Name: "nru", Role: "referral", Federation: "staydown", Behind: 90000, CatchupRate: 45000, CatchupETASeconds: 2, StoreWritable: true, OwnHeadConfirmed: true}, false, `member        nru (referral) in federation staydown
author key    
peer id       
listen        none (dials out only)
genesis       
roster        version 0; this node is not a member yet: it waits for its admission
peers         0 connected, 0 on the topic
members       none but this node in the roster
entries       0
store         writable
sync          catching up: 90000 entries behind, 45000 entries/s, about 2s to go
own head      confirmed
heads digest  
flagged       none
`},
		{"JSON, fresh node", api.Status{Name: "nru"}, true, `{"id":"","name":"nru","role":"","author":"","federation":"","genesis":"","roster_version":0,"member":false,"proposals":0,"peers":0,"members":[],
			"topic_peers":0,"entries":0,"heads":{},"heads_digest":"","flagged":[],"listen":[],"store_writable":false,"behind":0,"own_head_confirmed":false}`},
		{"text, clash", api.Status{Name: "nru", Role: "referral", Federation: "staydown", Member: true, StoreWritable: true, OwnHeadConfirmed: true,
			Clash: &api.Clash{How: "liveness", Member: "pa", Peer: "12D3KooWpa", Remote: "/ip4/192.0.2.9/tcp/4001", OtherInstance: "00ff", OtherStarted: "2026-12-04T14:00:00Z",
				OtherAddrs: []string{"/ip4/192.0.2.9/tcp/4001"}, FirstAt: "2026-12-04T14:00:01Z", LastAt: "2026-12-04T14:05:00Z", Count: 3}}, false, `member        nru (referral) in federation staydown
author key    
peer id       
listen        none (dials out only)
genesis       
roster        version 0
peers         0 connected, 0 on the topic
members       none but this node in the roster
entries       0
store         writable
sync          caught up
own head      confirmed
clash         ANOTHER PROCESS RUNS THIS NODE'S IDENTITY: member pa's node saw it connect from /ip4/192.0.2.9/tcp/4001 (process 00ff started 2026-12-04T14:00:00Z, listening on /ip4/192.0.2.9/tcp/4001); last 2026-12-04T14:05:00Z, 3 times, first 2026-12-04T14:00:01Z. Stop it (a restored backup), or give it an identity of its own with staydown init (a cloned machine)
heads digest  
flagged       none
`},
		{"text, disk full", api.Status{Name: "nru", Role: "referral", Federation: "staydown", Member: true, StoreWritable: false, OwnHeadConfirmed: true}, false, `member        nru (referral) in federation staydown
author key    
peer id       
listen        none (dials out only)
genesis       
roster        version 0
peers         0 connected, 0 on the topic
members       none but this node in the roster
entries       0
store         CANNOT WRITE: no space (disk full, quota or file-size limit); API writes answer 507 until space is freed
sync          caught up
own head      confirmed
heads digest  
flagged       none
`},
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

// startTLSNode is startNode for a node directory whose config names a
// certificate and key (api_tls_cert, api_tls_key, relative to it): the
// API is served over HTTPS with them, as the node does.
func startTLSNode(t *testing.T) (*testNode, *apitls.Certs) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &testNode{dir: initDir(t, ln.Addr().String()), addr: ln.Addr().String()}
	certFile, keyFile, _ := apitlstest.Write(t, n.dir, "api")
	f, err := os.OpenFile(filepath.Join(n.dir, config.ConfigFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "api_tls_cert = %q\napi_tls_key = %q\n", "api.crt", "api.key")
	f.Close()
	certs, err := apitls.Load(certFile, keyFile, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	n.serve(t, tls.NewListener(ln, certs.Config()), []protocol.Member{other})
	return n, certs
}

// staydown status against a node that serves HTTPS: the CLI reads
// api_tls_cert from the directory and trusts that certificate, and no
// other.
func TestStatusOverTLS(t *testing.T) {
	n, certs := startTLSNode(t)
	n.fake.SetStatus(api.Status{Name: "nru", Role: "referral", Federation: "staydown"})
	r := staydown("status", "--dir", n.dir)
	if r.code != exitOK || !strings.HasPrefix(r.stdout, "member        nru (referral) in federation staydown\n") {
		t.Fatalf("status over TLS: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	// The node's certificate renewed on disk but not reloaded: the CLI
	// trusts only the file's, and says what is wrong.
	apitlstest.Write(t, n.dir, "api")
	wantFailure(t, staydown("status", "--dir", n.dir), "the node at "+n.addr+": the node presented a certificate other than the one in "+filepath.Join(n.dir, "api.crt")+" (was the file replaced without a SIGHUP to the node")
	if err := certs.Reload(); err != nil {
		t.Fatal(err)
	}
	if r := staydown("status", "--dir", n.dir); r.code != exitOK {
		t.Errorf("after the reload: %s", r.stderr)
	}
}

// A directory whose config names a certificate while the node serves
// plain HTTP: the message says so.
func TestStatusTLSMismatch(t *testing.T) {
	n := startNode(t)
	apitlstest.Write(t, n.dir, "api")
	f, err := os.OpenFile(filepath.Join(n.dir, config.ConfigFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "api_tls_cert = %q\napi_tls_key = %q\n", "api.crt", "api.key")
	f.Close()
	wantFailure(t, staydown("status", "--dir", n.dir), "the node at "+n.addr+" does not speak HTTPS though config.toml sets api_tls_cert: restart it with this config")
}
