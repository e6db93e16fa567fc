package main

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/staydown/staydown/node/tokens"
)

// request sends method path with token to the test node and returns the
// status and body.
func (n *testNode) request(t *testing.T, method, path, body, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+n.addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var e struct{ Error string }
	json.NewDecoder(res.Body).Decode(&e)
	return res.StatusCode, e.Error
}

var tokenLine = regexp.MustCompile(`^[0-9a-f]{64}\n$`)

// Tokens made, listed and revoked with the commands while the node runs:
// each works (or is refused by scope) at the node's next look at
// api.tokens, without a restart.
func TestToken(t *testing.T) {
	n := startNode(t)
	addition := `{"signals":[{"type":"sha256","value":"` + sha + `"}],"labels":["graphic-violence"]}`

	r := staydown("token", "add", "--dir", n.dir, "--scope", "publish", "--name", "uploader")
	if r.code != exitOK || !tokenLine.MatchString(r.stdout) || !strings.Contains(r.stderr, "(scope publish) added; it is shown only now") {
		t.Fatalf("token add: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	publisher := strings.TrimSpace(r.stdout)
	r = staydown("token", "add", "--dir", n.dir, "--scope", "read", "--json")
	var dash tokenJSON
	if r.code != exitOK || json.Unmarshal([]byte(r.stdout), &dash) != nil || dash.Scope != "read" || len(dash.Token) != 64 || dash.Name != "" {
		t.Fatalf("token add --json: exit %d %q %q", r.code, r.stdout, r.stderr)
	}

	if code, _ := n.request(t, "POST", "/v1/additions", addition, publisher); code != http.StatusUnauthorized {
		t.Fatalf("token accepted before the node looked at api.tokens: %d", code)
	}
	n.clock.Add(tokens.CheckEvery)
	if code, msg := n.request(t, "POST", "/v1/additions", addition, publisher); code != http.StatusCreated {
		t.Fatalf("publish token: %d %s", code, msg)
	}
	if code, msg := n.request(t, "POST", "/v1/additions", addition, dash.Token); code != http.StatusForbidden ||
		msg != "authorization: POST /v1/additions needs a token with scope publish; this token's scope is read" {
		t.Errorf("read token publishing: %d %s", code, msg)
	}
	if code, msg := n.request(t, "GET", "/v1/status", "", dash.Token); code != http.StatusOK {
		t.Errorf("read token on status: %d %s", code, msg)
	}

	const created = `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`
	r = staydown("token", "list", "--dir", n.dir)
	list := regexp.MustCompile(`^ID +SCOPE +CREATED +NAME\n[0-9a-f]{8} +publish +` + created + ` +uploader\n` + dash.ID + ` +read +` + created + ` +\n$`)
	if r.code != exitOK || !list.MatchString(r.stdout) || strings.Contains(r.stdout, publisher) {
		t.Errorf("token list: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = staydown("token", "list", "--dir", n.dir, "--json")
	var listed []tokenJSON
	if r.code != exitOK || json.Unmarshal([]byte(r.stdout), &listed) != nil || len(listed) != 2 || listed[1] != (tokenJSON{ID: dash.ID, Scope: "read", Created: dash.Created}) {
		t.Errorf("token list --json: %s %s", r.stdout, r.stderr)
	}

	r = staydown("token", "revoke", "--dir", n.dir, "uploader")
	if r.code != exitOK || !regexp.MustCompile(`^revoked token [0-9a-f]{8} \(uploader\) of scope publish: the node refuses it within a second\n$`).MatchString(r.stdout) {
		t.Errorf("revoke by name: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = staydown("token", "revoke", "--dir", n.dir, dash.ID)
	if r.code != exitOK || r.stdout != "revoked token "+dash.ID+" of scope read: the node refuses it within a second\n" {
		t.Errorf("revoke by id: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	n.clock.Add(tokens.CheckEvery)
	for _, tok := range []string{publisher, dash.Token} {
		if code, msg := n.request(t, "GET", "/v1/status", "", tok); code != http.StatusUnauthorized || msg != "authorization: wrong token (unknown or revoked)" {
			t.Errorf("revoked token: %d %s", code, msg)
		}
	}
	// api.token, the commands' own, is untouched.
	if r := staydown("status", "--dir", n.dir); r.code != exitOK {
		t.Errorf("status with api.token: %s", r.stderr)
	}
	if r := staydown("token", "list", "--dir", n.dir); r.stdout != "no tokens besides api.token (admin); make one with: staydown token add --dir D --scope SCOPE\n" {
		t.Errorf("empty list: %q", r.stdout)
	}
}

func TestTokenErrors(t *testing.T) {
	dir := initDir(t, "127.0.0.1:7001")
	if r := staydown("token", "add", "--dir", dir, "--scope", "read", "--name", "dash"); r.code != exitOK {
		t.Fatal(r.stderr)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"token", "add", "--dir", dir}, "staydown: token add: --scope: required: match, read, publish or admin"},
		{[]string{"token", "add", "--dir", dir, "--scope", "root"}, `staydown: token add: --scope: "root" is not a scope: use match, read, publish, admin`},
		{[]string{"token", "add", "--dir", dir, "--scope", "read", "--name", "Dash Board"}, `staydown: token add: name: "Dash Board" has 'D' at byte 1`},
		{[]string{"token", "add", "--dir", dir, "--scope", "read", "--name", "dash"}, `staydown: token add: a token named "dash" exists (id `},
		{[]string{"token", "add", "--scope", "read"}, "staydown: token add: --dir: required"},
		{[]string{"token", "revoke", "--dir", dir, "nobody"}, `staydown: token revoke: no token with id or name "nobody" (see staydown token list)`},
		{[]string{"token", "revoke", "--dir", dir}, "staydown: token revoke: missing ID or NAME"},
		{[]string{"token", "list", "--dir", dir, "extra"}, `staydown: token list: unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			wantFailure(t, staydown(tt.args...), tt.want)
		})
	}
	if r := staydown("token", "list", "--dir", dir); r.code != exitOK || strings.Count(r.stdout, "\n") != 2 {
		t.Errorf("after the failures: %q %q", r.stdout, r.stderr)
	}
}
