package api_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/api/apitest"
	"github.com/staydown/staydown/node/tokens"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/prototest"
)

// newFederation is a harness whose fake is the referral unit bka in a
// federation with two platforms that can vote (apitest.Sign) and an
// auditor: three voters, two approvals pass an amendment.
func newFederation(t *testing.T) *harness {
	t.Helper()
	h := &harness{log: &lockedBuffer{}, fake: apitest.New("bka", protocol.RoleReferral,
		apitest.Member("pa", protocol.RolePlatform), apitest.Member("pb", protocol.RolePlatform), apitest.Member("aud", protocol.RoleAuditor))}
	h.srv = httptest.NewServer(api.NewServer(h.fake, tokens.Static(token), slog.New(slog.NewTextHandler(h.log, nil))))
	t.Cleanup(h.srv.Close)
	return h
}

// joiner is the block of a platform that asks to join.
func joinerBlock() string {
	j := apitest.Member("pc", protocol.RolePlatform)
	return `{"name":"pc","role":"platform","author_key":"` + j.AuthorKey.String() + `","peer_id":"` + j.PeerID + `","addrs":["/ip4/192.0.2.7/tcp/4001"]}`
}

func keyOf(name string) string { return protocol.AuthorKeyOf(apitest.Key(name)).String() }

// An admission through the API: proposed by this node, listed, approved
// by another member, and then in force.
func TestAdmissionOverAPI(t *testing.T) {
	h := newFederation(t)
	g, err := membership.NewGenesis(h.fake.Roster(), membership.Rule{})
	if err != nil {
		t.Fatal(err)
	}
	gh := g.Hash()
	member := func(name, role string, votes bool, since int) string {
		v := "false"
		if votes {
			v = "true"
		}
		return `{"name":"` + name + `","role":"` + role + `","votes":` + v + `,"author_key":"` + keyOf(name) + `",
			"keys":[{"key":"` + keyOf(name) + `","end":null}],"peer_id":"` + apitest.PeerID(name) + `","addrs":ADDRS,"since":` + string(rune('0'+since)) + `}`
	}
	members := strings.ReplaceAll(member("bka", "referral", true, 0), "ADDRS", `[]`) + "," +
		strings.ReplaceAll(member("pa", "platform", true, 0), "ADDRS", `["/ip4/127.0.0.1/tcp/4001"]`) + "," +
		strings.ReplaceAll(member("pb", "platform", true, 0), "ADDRS", `["/ip4/127.0.0.1/tcp/4001"]`) + "," +
		strings.ReplaceAll(member("aud", "auditor", false, 0), "ADDRS", `["/ip4/127.0.0.1/tcp/4001"]`)
	r := h.do(t, "GET", "/v1/members", "")
	if r.code != http.StatusOK {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	wantJSON(t, r.body, `{"federation":"staydown","genesis":"`+hex.EncodeToString(gh[:])+`","version":0,
		"rule":{"roles":["referral","platform"],"threshold_percent":50},"voters":3,"needed":2,"proposals":0,
		"members":[`+members+`],"removed":[],"conflicts":[],
		"history":[{"n":0,"change":"genesis","votes":[],"voters":3,"needed":0}]}`)

	r = h.do(t, "POST", "/v1/proposals", `{"admit":`+joinerBlock()+`}`)
	if r.code != http.StatusCreated {
		t.Fatalf("propose: status %d: %s", r.code, r.body)
	}
	signed := h.fake.Signed()
	if len(signed) != 1 || signed[0].Kind() != protocol.KindAmendment {
		t.Fatalf("published %v", signed)
	}
	id := signed[0].ID
	proposal := `{"id":"` + id.String() + `","base":0,"proposer":"bka","change":"admit pc (platform)",
		"amendment":{"base":0,"admit":` + joinerBlock() + `},"votes":["bka"],"voters":3,"needed":2,
		"missing":["pa","pb"],"elsewhere":[],"passed":false}`
	wantJSON(t, r.body, proposal)
	r = h.do(t, "GET", "/v1/proposals", "")
	wantJSON(t, r.body, `{"version":0,"proposals":[`+proposal+`]}`)

	// A second amendment of this version would be a conflicting vote.
	r = h.do(t, "POST", "/v1/proposals", `{"rule":{"roles":["platform"],"threshold_percent":60}}`)
	wantError(t, r, http.StatusConflict, "bka voted at roster version 0 already, for proposal "+id.String()+" (admit pc (platform)): a second amendment of one version is a conflicting vote")
	r = h.do(t, "POST", "/v1/proposals/"+id.String()+"/approvals", "")
	wantError(t, r, http.StatusConflict, "bka already approved proposal "+id.String())
	if n := len(h.fake.Signed()); n != 1 {
		t.Fatalf("%d entries signed after refusals, want 1", n)
	}

	if _, err := h.fake.Sign("pa", prototest.Approve(0, id)); err != nil {
		t.Fatal(err)
	}
	r = h.do(t, "GET", "/v1/members", "")
	var v api.MembersView
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatal(err)
	}
	if v.Version != 1 || len(v.Members) != 5 || v.Members[4].Name != "pc" || v.Members[4].Since != 1 || v.Voters != 4 || v.Needed != 3 ||
		len(v.History) != 2 || v.History[1].Proposal != id.String() || strings.Join(v.History[1].Votes, ",") != "bka,pa" {
		t.Errorf("after the admission: %s", r.body)
	}
	r = h.do(t, "POST", "/v1/proposals/"+id.String()+"/approvals", "")
	wantError(t, r, http.StatusConflict, "proposal "+id.String()+" passed already: it made roster version 1 (admit pc (platform))")
}

// This node approves another member's proposal, and that passes it.
func TestApproveOverAPI(t *testing.T) {
	for _, body := range []string{"", "{}"} {
		h := newFederation(t)
		e, err := h.fake.Sign("pa", prototest.Amend(0, &pb.VotingRule{Roles: []string{"referral", "platform", "auditor"}, ThresholdPercent: 60}))
		if err != nil {
			t.Fatal(err)
		}
		r := h.do(t, "POST", "/v1/proposals/"+strings.ToUpper(e.ID.String())+"/approvals", body)
		if r.code != http.StatusCreated {
			t.Fatalf("approve with body %q: status %d: %s", body, r.code, r.body)
		}
		var p api.ProposalView
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatal(err)
		}
		if !p.Passed || p.Version != 1 || p.ID != e.ID.String() || strings.Join(p.Votes, ",") != "bka,pa" || p.Change != "voting rule: more than 60% of [referral platform auditor]" ||
			p.Amendment.Rule == nil || p.Amendment.Rule.ThresholdPercent != 60 {
			t.Errorf("approved: %s", r.body)
		}
		if a := h.fake.Signed(); len(a) != 1 || a[0].Kind() != protocol.KindApproval {
			t.Errorf("published %v", a)
		}
	}
}

// Requests the membership in force refuses reach the node, which
// publishes nothing.
func TestMembershipRefusals(t *testing.T) {
	unknown := "1220" + strings.Repeat("77", 32)
	tests := []struct {
		name   string
		self   protocol.Role
		method string
		path   string
		body   string
		code   int
		want   string
	}{
		{"unknown member", protocol.RoleReferral, "POST", "/v1/proposals", `{"remove":{"member":"nobody"}}`, 404, `no member "nobody" in roster version 0 (members: `},
		{"role it has", protocol.RoleReferral, "POST", "/v1/proposals", `{"role":{"member":"pa","role":"platform"}}`, 409, `cannot apply to roster version 0: it gives "pa" the role it has (platform)`},
		{"name in use", protocol.RoleReferral, "POST", "/v1/proposals", `{"admit":` + strings.Replace(joinerBlock(), `"name":"pc"`, `"name":"pa"`, 1) + `}`, 409, `it admits "pa", a name already in the roster's history`},
		{"auditor proposes", protocol.RoleAuditor, "POST", "/v1/proposals", `{"remove":{"member":"pa"}}`, 403, "bka (auditor) does not vote under the rule in force"},
		{"auditor approves", protocol.RoleAuditor, "POST", "/v1/proposals/" + unknown + "/approvals", ``, 403, "bka (auditor) does not vote"},
		{"unknown proposal", protocol.RoleReferral, "POST", "/v1/proposals/" + unknown + "/approvals", ``, 404, "no pending proposal " + unknown + " at roster version 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &harness{log: &lockedBuffer{}, fake: apitest.New("bka", tt.self, apitest.Member("pa", protocol.RolePlatform))}
			h.srv = httptest.NewServer(api.NewServer(h.fake, tokens.Static(token), slog.New(slog.NewTextHandler(h.log, nil))))
			defer h.srv.Close()
			r := h.do(t, tt.method, tt.path, tt.body)
			wantError(t, r, tt.code, tt.want)
			if n := len(h.fake.Signed()); n != 0 {
				t.Errorf("%d entries published", n)
			}
			if n := h.fake.Calls(); n != 1 {
				t.Errorf("backend called %d times, want 1", n)
			}
		})
	}
}

// Malformed membership requests are answered 400 before the node sees
// them.
func TestMembershipBadRequest(t *testing.T) {
	block := func(field, value string) string {
		j := apitest.Member("pc", protocol.RolePlatform)
		m := map[string]any{"name": "pc", "role": "platform", "author_key": j.AuthorKey.String(), "peer_id": j.PeerID, "addrs": []string{}}
		m[field] = value
		b, _ := json.Marshal(map[string]any{"admit": m})
		return string(b)
	}
	tests := []struct {
		name, method, path, body, want string
	}{
		{"empty body", "POST", "/v1/proposals", ``, "body: empty; want a JSON object"},
		{"no change", "POST", "/v1/proposals", `{}`, "body: give one change: admit, remove, role, revoke or rule"},
		{"null change", "POST", "/v1/proposals", `{"admit":null}`, "body: give one change"},
		{"two changes", "POST", "/v1/proposals", `{"remove":{"member":"pa"},"role":{"member":"pa","role":"auditor"}}`, "body: give one change per proposal, got remove and role"},
		{"unknown change", "POST", "/v1/proposals", `{"expel":{"member":"pa"}}`, "expel: unknown field"},
		{"unknown field of a block", "POST", "/v1/proposals", `{"admit":{"name":"pc","nick":"x"}}`, "admit.nick: unknown field"},
		{"block not an object", "POST", "/v1/proposals", `{"admit":"[[member]]"}`, "admit: want an object, got a string"},
		{"block without peer id", "POST", "/v1/proposals", block("peer_id", ""), "admit.peer_id: required"},
		{"block with a short key", "POST", "/v1/proposals", block("author_key", "abcdef"), `admit.author_key: want 64 hex characters (an ed25519 public key), got 6: "abcdef"`},
		{"block with a bad peer id", "POST", "/v1/proposals", block("peer_id", "QmNotAPeer"), `admit.peer_id: "QmNotAPeer" is not the libp2p peer ID of an ed25519 key`},
		{"block with a bad role", "POST", "/v1/proposals", block("role", "ngo"), `admit.role: "ngo" is not a role: use referral, platform, auditor or access`},
		{"block with a bad name", "POST", "/v1/proposals", block("name", "P C"), `admit.name: "P C" has 'P' at byte 1`},
		{"addrs not a list", "POST", "/v1/proposals", `{"admit":{"addrs":"/ip4/1.2.3.4/tcp/1"}}`, "admit.addrs: want an array, got a string"},
		{"remove without member", "POST", "/v1/proposals", `{"remove":{}}`, "remove.member: required: a member name"},
		{"negative after_seq", "POST", "/v1/proposals", `{"remove":{"member":"pa","after_seq":-1}}`, "remove.after_seq: want an integer from 0 to 18446744073709551615, got -1"},
		{"after_seq as text", "POST", "/v1/proposals", `{"remove":{"member":"pa","after_seq":"3"}}`, "remove.after_seq: want an integer, got a string"},
		{"bad role", "POST", "/v1/proposals", `{"role":{"member":"pa","role":"moderator"}}`, `role.role: "moderator" is not a role`},
		{"revoke without after_seq", "POST", "/v1/proposals", `{"revoke":{"member":"pa"}}`, "revoke.after_seq: required"},
		{"revoke with a bad new key", "POST", "/v1/proposals", `{"revoke":{"member":"pa","after_seq":3,"new_key":"xyz"}}`, `revoke.new_key: want 64 hex characters (an ed25519 public key), got 3: "xyz"`},
		{"threshold too low", "POST", "/v1/proposals", `{"rule":{"roles":["platform"],"threshold_percent":40}}`, "rule.threshold_percent: want 50 to 99 (an amendment passes with more than this share of the voters), got 40"},
		{"threshold too high", "POST", "/v1/proposals", `{"rule":{"roles":["platform"],"threshold_percent":100}}`, "rule.threshold_percent: want 50 to 99"},
		{"threshold huge", "POST", "/v1/proposals", `{"rule":{"roles":["platform"],"threshold_percent":5000000000}}`, "rule.threshold_percent: want an integer from 0 to 4294967295, got 5000000000"},
		{"rule without roles", "POST", "/v1/proposals", `{"rule":{"threshold_percent":60}}`, "rule.roles: want 1 to 3 roles"},
		{"non-hex proposal id", "POST", "/v1/proposals/" + strings.Repeat("zz", 34) + "/approvals", ``, "id: bad key: entry id: not hex"},
		{"short proposal id", "POST", "/v1/proposals/1220ab/approvals", ``, "id: bad key: entry id: want 68 hex characters, got 6"},
		{"approval with a body", "POST", "/v1/proposals/" + target + "/approvals", `{"base":3}`, "base: unknown field"},
		{"approval with bad JSON", "POST", "/v1/proposals/" + target + "/approvals", `yes`, "body: not valid JSON"},
		{"members with a parameter", "GET", "/v1/members?name=pa", ``, "name: unknown query parameter"},
		{"proposals with a parameter", "GET", "/v1/proposals?all=1", ``, "all: unknown query parameter"},
	}
	h := newFederation(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, h.do(t, tt.method, tt.path, tt.body), http.StatusBadRequest, tt.want)
			if n := h.fake.Calls(); n != 0 {
				t.Fatalf("backend called %d times for a bad request", n)
			}
		})
	}
}

func TestMembershipPaths(t *testing.T) {
	tests := []struct {
		method, path string
		code         int
		allow, want  string
	}{
		{"GET", "/v1/proposals/" + target + "/approvals", 405, "POST", "method GET not allowed on /v1/proposals/" + target + "/approvals; use POST"},
		{"POST", "/v1/members", 405, "GET", "not allowed"},
		{"DELETE", "/v1/proposals", 405, "GET, POST", "use GET or POST"},
		{"POST", "/v1/proposals/" + target, 404, "", "no endpoint /v1/proposals/" + target},
		{"POST", "/v1/proposals//approvals", 404, "", "no endpoint"},
		{"POST", "/v1/proposals/a/b/approvals", 404, "", "no endpoint"},
	}
	h := newFederation(t)
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := h.do(t, tt.method, tt.path, "")
			wantError(t, r, tt.code, tt.want)
			if got := r.header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow %q, want %q", got, tt.allow)
			}
		})
	}
	if n := h.fake.Calls(); n != 0 {
		t.Errorf("backend called %d times", n)
	}
}

// POST /v1/members/peer publishes a peer update; bad addresses are
// refused before the node is asked, and nothing is published.
func TestAnnouncePeerOverAPI(t *testing.T) {
	h := newFederation(t)
	r := h.do(t, "POST", "/v1/members/peer", `{"addrs":["/ip4/192.0.2.7/tcp/4001"]}`)
	if r.code != http.StatusCreated {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	var p api.PeerAnnounced
	if err := json.Unmarshal(r.body, &p); err != nil || len(p.Addrs) != 1 || p.Addrs[0] != "/ip4/192.0.2.7/tcp/4001" || len(p.ID) != 68 {
		t.Fatalf("announced %s (%v)", r.body, err)
	}
	if s := h.fake.Signed(); len(s) != 1 || s[0].Kind() != protocol.KindPeerUpdate {
		t.Fatalf("published %v", s)
	}
	for _, body := range []string{`{"addrs":["not an address"]}`, `{"addrs":["/ip4/192.0.2.7/tcp/4001/p2p/12D3KooWAcme"]}`, `{"addr":[]}`} {
		r := h.do(t, "POST", "/v1/members/peer", body)
		if r.code != http.StatusBadRequest || bytes.Contains(r.body, []byte("\n")) && len(bytes.TrimSpace(r.body)) != len(r.body)-1 {
			t.Errorf("%s: status %d: %s", body, r.code, r.body)
		}
	}
	if s := h.fake.Signed(); len(s) != 1 {
		t.Errorf("bad requests published %d entries", len(s)-1)
	}
}
