package main

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/node/api/apitest"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/prototest"
)

// startFederation is a node (nru, a referral unit) whose fake's roster
// has two platforms that can vote (apitest.Sign) and an auditor: three
// voters, two approvals pass an amendment.
func startFederation(t *testing.T) *testNode {
	t.Helper()
	return startNodeWith(t, apitest.Member("pa", protocol.RolePlatform), apitest.Member("pb", protocol.RolePlatform),
		apitest.Member("aud", protocol.RoleAuditor))
}

// joinerBlock is what `staydown init` printed for a platform pc, in a
// file, and pc's member.
func joinerBlock(t *testing.T) (string, protocol.Member) {
	t.Helper()
	r := staydown("init", "--dir", filepath.Join(t.TempDir(), "pc"), "--name", "pc", "--role", "platform", "--listen", "/ip4/192.0.2.7/tcp/4001")
	if r.code != exitOK {
		t.Fatalf("init: %s", r.stderr)
	}
	file := filepath.Join(t.TempDir(), "pc.toml")
	if err := os.WriteFile(file, []byte(r.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := config.ParseMemberBlock(file, []byte(r.stdout))
	if err != nil {
		t.Fatal(err)
	}
	return file, m
}

func key(name string) protocol.AuthorKey { return protocol.AuthorKeyOf(apitest.Key(name)) }

func keyBytes(name string) []byte { k := key(name); return k[:] }

// amendedOnce checks that exactly one amendment was published and
// returns it with its id.
func (n *testNode) amendedOnce(t *testing.T, r result) (*pb.Amendment, string) {
	t.Helper()
	if r.code != exitOK {
		t.Fatalf("exit %d; stderr %q", r.code, r.stderr)
	}
	signed := n.fake.Signed()
	if len(signed) != 1 || signed[0].Kind() != protocol.KindAmendment {
		t.Fatalf("published %v, want one amendment", signed)
	}
	return signed[0].Body.GetAmendment(), signed[0].ID.String()
}

func TestMemberPropose(t *testing.T) {
	block, pc := joinerBlock(t)
	newKey := strings.Repeat("5a", 32)
	tests := []struct {
		name   string
		args   []string // after member propose, --dir D added
		want   *pb.Amendment
		change string
	}{
		{"admit", []string{"admit", "--block", block},
			&pb.Amendment{Change: &pb.Amendment_Admit{Admit: membership.Block(pc)}}, "admit pc (platform)"},
		{"remove", []string{"remove", "pa"},
			&pb.Amendment{Change: &pb.Amendment_Remove{Remove: &pb.Removal{Member: "pa", Key: keyBytes("pa"), AfterSeq: 0}}}, "remove pa after seq 0"},
		{"remove after a seq", []string{"remove", "pa", "--after-seq", "12"},
			&pb.Amendment{Change: &pb.Amendment_Remove{Remove: &pb.Removal{Member: "pa", Key: keyBytes("pa"), AfterSeq: 12}}}, "remove pa after seq 12"},
		{"role", []string{"role", "pb", "auditor", "--after-seq", "5"},
			&pb.Amendment{Change: &pb.Amendment_Role{Role: &pb.RoleChange{Member: "pb", Key: keyBytes("pb"), AfterSeq: 5, Role: "auditor"}}}, "role of pb: auditor after seq 5"},
		{"revoke", []string{"revoke", "pa", "--after-seq", "3", "--new-key", strings.ToUpper(newKey)},
			&pb.Amendment{Change: &pb.Amendment_Revoke{Revoke: &pb.Revocation{Member: "pa", Key: keyBytes("pa"), AfterSeq: 3, NewKey: mustHex(t, newKey)}}},
			"revoke pa's key " + key("pa").String()[:16] + " after seq 3"},
		{"revoke another key", []string{"revoke", "pa", "--after-seq", "0", "--key", key("pa").String()},
			&pb.Amendment{Change: &pb.Amendment_Revoke{Revoke: &pb.Revocation{Member: "pa", Key: keyBytes("pa")}}}, "revoke pa's key"},
		{"rule", []string{"rule", "--roles", "referral,platform", "--roles", "auditor", "--threshold", "66"},
			&pb.Amendment{Change: &pb.Amendment_Rule{Rule: &pb.VotingRule{Roles: []string{"referral", "platform", "auditor"}, ThresholdPercent: 66}}},
			"voting rule: more than 66% of [referral platform auditor]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := startFederation(t)
			r := staydown(append([]string{"member", "propose", "--dir", n.dir}, tt.args...)...)
			got, id := n.amendedOnce(t, r)
			if !proto.Equal(got, tt.want) {
				t.Errorf("published %v, want %v", got, tt.want)
			}
			for _, want := range []string{
				"proposed    " + id + "\n",
				"change      " + tt.change,
				"base        roster version 0, proposed by nru\n",
				"votes       1 of 2 needed (3 voters): nru\n",
				"missing     pa, pb\n",
				"to approve  staydown member approve --dir DIR " + id + "\n",
			} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("stdout\n%s\nwant %q in it", r.stdout, want)
				}
			}
		})
	}
	t.Run("JSON", func(t *testing.T) {
		n := startFederation(t)
		r := staydown("member", "propose", "remove", "pb", "--after-seq", "7", "--dir", n.dir, "--json")
		_, id := n.amendedOnce(t, r)
		wantJSON(t, r.stdout, `{"id":"`+id+`","base":0,"proposer":"nru","change":"remove pb after seq 7",
			"amendment":{"base":0,"remove":{"member":"pb","key":"`+key("pb").String()+`","after_seq":7}},
			"votes":["nru"],"voters":3,"needed":2,"missing":["pa","pb"],"elsewhere":[],"passed":false}`)
	})
	t.Run("passes at once", func(t *testing.T) {
		n := startNodeWith(t, apitest.Member("aud", protocol.RoleAuditor)) // nru is the only voter
		r := staydown("member", "propose", "role", "aud", "platform", "--dir", n.dir)
		_, id := n.amendedOnce(t, r)
		want := "proposed  " + id + "\nchange    role of aud: platform after seq 0\nbase      roster version 0, proposed by nru\n" +
			"votes     1 of 1 needed (1 voters): nru\npassed    roster version 1\n"
		if r.stdout != want {
			t.Errorf("stdout\n%s\nwant\n%s", r.stdout, want)
		}
	})
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMemberProposeErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	block, _ := joinerBlock(t)
	text, err := os.ReadFile(block)
	if err != nil {
		t.Fatal(err)
	}
	twice := write("twice.toml", string(text)+"\n"+strings.Replace(string(text), `name = "pc"`, `name = "pd"`, 1))
	broken := write("broken.toml", "[[member]\nname = \"pc\"\n")
	badKey := write("badkey.toml", strings.Replace(string(text), "author_key = \"", "author_key = \"zz", 1))
	tests := []struct {
		name string
		args []string // after member propose; D is the node's directory
		want string
	}{
		{"admit without block", []string{"admit", "--dir", "D"}, "staydown: member propose admit: --block: required"},
		{"admit a missing file", []string{"admit", "--dir", "D", "--block", filepath.Join(dir, "none.toml")}, "--block: open " + filepath.Join(dir, "none.toml") + ": no such file or directory"},
		{"admit two blocks", []string{"admit", "--dir", "D", "--block", twice}, twice + ": want exactly one [[member]] block"},
		{"admit a broken file", []string{"admit", "--dir", "D", "--block", broken}, broken + ":2:9: not valid TOML"},
		{"admit a bad key", []string{"admit", "--dir", "D", "--block", badKey}, `member 1 ("pc"): author_key: want 64 hex characters, got 66`},
		{"remove without name", []string{"remove", "--dir", "D"}, "staydown: member propose remove: missing NAME"},
		{"remove a bad name", []string{"remove", "--dir", "D", "Platform A"}, `staydown: member propose remove: NAME: "Platform A" has 'P' at byte 1`},
		{"remove after a bad seq", []string{"remove", "--dir", "D", "pa", "--after-seq", "-1"}, `--after-seq "-1": want a seq, a whole number from 0`},
		{"role without role", []string{"role", "--dir", "D", "pa"}, "missing NAME and ROLE"},
		{"bad role", []string{"role", "--dir", "D", "pa", "admin"}, `staydown: member propose role: ROLE "admin" is not a role: use referral, platform, auditor or access`},
		{"revoke without after-seq", []string{"revoke", "--dir", "D", "pa"}, "staydown: member propose revoke: --after-seq: required"},
		{"revoke with a short new key", []string{"revoke", "--dir", "D", "pa", "--after-seq", "1", "--new-key", "abc"}, `--new-key "abc": want 64 hex characters (an ed25519 public key), got 3`},
		{"revoke with a new key not hex", []string{"revoke", "--dir", "D", "pa", "--after-seq", "1", "--new-key", strings.Repeat("zz", 32)}, `--new-key "zzzz`},
		{"revoke to the same key", []string{"revoke", "--dir", "D", "pa", "--after-seq", "1", "--key", key("pa").String(), "--new-key", key("pa").String()}, "revoke.new_key: is the revoked key"},
		{"rule without roles", []string{"rule", "--dir", "D", "--threshold", "60"}, "staydown: member propose rule: --roles: required"},
		{"rule with a bad role", []string{"rule", "--dir", "D", "--roles", "platform,ngo", "--threshold", "60"}, `--roles: "ngo" is not a role`},
		{"rule without threshold", []string{"rule", "--dir", "D", "--roles", "platform"}, "--threshold: required"},
		{"rule with threshold 100", []string{"rule", "--dir", "D", "--roles", "platform", "--threshold", "100"}, `--threshold "100": want a whole percentage from 50 to 99`},
		{"rule with threshold 49", []string{"rule", "--dir", "D", "--roles", "platform", "--threshold", "49"}, `--threshold "49": want a whole percentage from 50 to 99`},
		{"rule with a role twice", []string{"rule", "--dir", "D", "--roles", "platform,platform", "--threshold", "60"}, `rule.roles[1]: "platform" is listed twice`},
	}
	n := startFederation(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantFailure(t, staydown(append([]string{"member", "propose"}, n.expand(tt.args)...)...), tt.want)
			if c := n.calls(); c != 0 {
				t.Fatalf("%d requests reached the node", c)
			}
		})
	}
	// The node's refusals, with its message; nothing is published.
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown member", []string{"remove", "nobody"}, `staydown: member propose remove: no member "nobody" in roster version 0 (members: `},
		{"role it has", []string{"role", "pa", "platform"}, `staydown: member propose role: cannot apply to roster version 0: it gives "pa" the role it has (platform)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantFailure(t, staydown(append([]string{"member", "propose", "--dir", n.dir}, tc.args...)...), tc.want)
			if s := n.fake.Signed(); len(s) != 0 {
				t.Fatalf("published %v", s)
			}
		})
	}
	t.Run("second vote", func(t *testing.T) {
		n := startFederation(t)
		_, id := n.amendedOnce(t, staydown("member", "propose", "remove", "pa", "--dir", n.dir))
		wantFailure(t, staydown("member", "propose", "remove", "pb", "--dir", n.dir),
			"staydown: member propose remove: nru voted at roster version 0 already, for proposal "+id+" (remove pa after seq 0): a second amendment of one version is a conflicting vote, evidence against nru")
		if s := n.fake.Signed(); len(s) != 1 {
			t.Fatalf("published %d entries", len(s))
		}
	})
}

func TestMemberApprove(t *testing.T) {
	n := startFederation(t)
	e, err := n.fake.Sign("pa", prototest.Amend(0, &pb.Removal{Member: "pb", Key: keyBytes("pb"), AfterSeq: 4}))
	if err != nil {
		t.Fatal(err)
	}
	id := e.ID.String()
	r := staydown("member", "proposals", "--dir", n.dir)
	want := "proposal    " + id + "\nchange      remove pb after seq 4\nbase        roster version 0, proposed by pa\n" +
		"votes       1 of 2 needed (3 voters): pa\nmissing     nru, pb\nto approve  staydown member approve --dir DIR " + id + "\n" +
		"            (each voting member, on its own node: DIR is that node's directory)\n"
	if r.code != exitOK || r.stdout != want {
		t.Errorf("proposals: exit %d stdout\n%s\nwant\n%s\nstderr %s", r.code, r.stdout, want, r.stderr)
	}

	r = staydown("member", "approve", "--dir", n.dir, strings.ToUpper(id))
	want = "approved  " + id + "\nchange    remove pb after seq 4\nbase      roster version 0, proposed by pa\n" +
		"votes     2 of 2 needed (3 voters): nru, pa\npassed    roster version 1\n"
	if r.code != exitOK || r.stdout != want {
		t.Errorf("approve: exit %d stdout\n%s\nwant\n%s\nstderr %s", r.code, r.stdout, want, r.stderr)
	}
	signed := n.fake.Signed()
	if len(signed) != 1 || !proto.Equal(signed[0].Body.GetApproval(), &pb.Approval{Proposal: e.ID[:], Base: 0}) {
		t.Fatalf("published %v", signed)
	}
	wantFailure(t, staydown("member", "approve", "--dir", n.dir, id),
		"staydown: member approve: proposal "+id+" passed already: it made roster version 1 (remove pb after seq 4)")

	r = staydown("member", "proposals", "--dir", n.dir)
	if r.code != exitOK || r.stdout != "no amendment of roster version 1 waits for votes\n" {
		t.Errorf("proposals after: %q %q", r.stdout, r.stderr)
	}
	r = staydown("member", "proposals", "--dir", n.dir, "--json")
	wantJSON(t, r.stdout, `{"version":1,"proposals":[]}`)

	for _, tc := range []struct {
		name, id, want string
	}{
		{"short id", "1220ab", `staydown: member approve: PROPOSAL_ID "1220ab": bad key: entry id: want 68 hex characters, got 6`},
		{"not hex", strings.Repeat("zz", 34), `PROPOSAL_ID "zzzz`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := n.calls()
			wantFailure(t, staydown("member", "approve", "--dir", n.dir, tc.id), tc.want)
			if n.calls() != before {
				t.Error("the request reached the node")
			}
		})
	}
	t.Run("unknown proposal", func(t *testing.T) {
		unknown := "1220" + strings.Repeat("77", 32)
		wantFailure(t, staydown("member", "approve", "--dir", n.dir, unknown),
			"staydown: member approve: no pending proposal "+unknown+" at roster version 1")
	})
	t.Run("approving a second amendment", func(t *testing.T) {
		n := startFederation(t)
		n.amendedOnce(t, staydown("member", "propose", "remove", "pa", "--dir", n.dir))
		other, err := n.fake.Sign("pb", prototest.Amend(0, &pb.VotingRule{Roles: []string{"platform"}, ThresholdPercent: 60}))
		if err != nil {
			t.Fatal(err)
		}
		wantFailure(t, staydown("member", "approve", "--dir", n.dir, other.ID.String()),
			"approving a second amendment of one version is a conflicting vote, evidence against nru")
		if s := n.fake.Signed(); len(s) != 1 {
			t.Errorf("published %d entries", len(s))
		}
	})
}

func TestMemberList(t *testing.T) {
	n := startFederation(t)
	block, pc := joinerBlock(t)
	_, id := n.amendedOnce(t, staydown("member", "propose", "admit", "--block", block, "--dir", n.dir))
	pid, err := protocol.ParseID(id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.fake.Sign("pa", prototest.Approve(0, pid)); err != nil {
		t.Fatal(err)
	}
	// pb votes twice at version 1: evidence.
	a, _ := n.fake.Sign("pb", prototest.Amend(1, &pb.VotingRule{Roles: []string{"platform"}, ThresholdPercent: 60}))
	b, _ := n.fake.Sign("pa", prototest.Amend(1, &pb.VotingRule{Roles: []string{"referral"}, ThresholdPercent: 60}))
	second, _ := n.fake.Sign("pb", prototest.Approve(1, b.ID))
	g, err := membership.NewGenesis(n.fake.Roster(), membership.Rule{})
	if err != nil {
		t.Fatal(err)
	}
	gh := g.Hash()
	peer := func(name string) string { return apitest.PeerID(name) }
	pad := func(s string, n int) string { return s + strings.Repeat(" ", n-len(s)) }
	row := func(name, role, votes, since, author, peerID, addrs string) string {
		return pad(name, 6) + pad(role, 10) + pad(votes, 7) + pad(since, 7) + pad(author, 66) + pad(peerID, 54) + addrs + "\n"
	}
	want := "federation  staydown\ngenesis     " + hex.EncodeToString(gh[:]) + "\nversion     1\n" +
		"voting      more than 50% of referral, platform: 4 voters, 3 approvals pass an amendment\n" +
		"proposals   2 wait for votes (staydown member proposals)\n" +
		"conflicts   pb voted for two amendments of version 1: " + a.ID.String() + ", then " + second.ID.String() + "\n\n" +
		row("NAME", "ROLE", "VOTES", "SINCE", "AUTHOR KEY", "PEER ID", "ADDRS") +
		row("nru", "referral", "yes", "0", n.fake.Author().String(), peer("nru"), "-") +
		row("pa", "platform", "yes", "0", key("pa").String(), peer("pa"), "/ip4/127.0.0.1/tcp/4001") +
		row("pb", "platform", "yes", "0", key("pb").String(), peer("pb"), "/ip4/127.0.0.1/tcp/4001") +
		row("aud", "auditor", "no", "0", key("aud").String(), peer("aud"), "/ip4/127.0.0.1/tcp/4001") +
		row("pc", "platform", "yes", "1", pc.AuthorKey.String(), pc.PeerID, "/ip4/192.0.2.7/tcp/4001") + "\n" +
		"VERSION  CHANGE               PROPOSER  VOTES                       PROPOSAL\n" +
		"0        genesis              -         -                           -\n" +
		"1        admit pc (platform)  nru       2 of 3 (2 needed): nru, pa  " + id + "\n"
	r := staydown("member", "list", "--dir", n.dir)
	if r.code != exitOK || r.stdout != want {
		t.Errorf("exit %d stdout\n%s\nwant\n%s\nstderr %s", r.code, r.stdout, want, r.stderr)
	}

	r = staydown("member", "list", "--dir", n.dir, "--json")
	if r.code != exitOK || !strings.Contains(r.stdout, `"conflicts": [`) || !strings.Contains(r.stdout, `"since": 1`) || !strings.Contains(r.stdout, `"version": 1,`) {
		t.Errorf("JSON: %s %s", r.stdout, r.stderr)
	}
}

// Every member command says clearly when the node is not running.
func TestMemberNodeNotRunning(t *testing.T) {
	n := stoppedNode(t)
	for _, args := range [][]string{
		{"member", "list"},
		{"member", "proposals"},
		{"member", "propose", "remove", "pa"},
		{"member", "approve", "1220" + strings.Repeat("77", 32)},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			path := strings.Join(args[:len(args)-1], " ")
			if args[1] == "list" || args[1] == "proposals" {
				path = strings.Join(args, " ")
			}
			wantFailure(t, staydown(append(args, "--dir", n.dir)...), "staydown: "+path+": cannot reach the node at "+n.addr)
		})
	}
}
