package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const goodAlerts = `
[[alerts.webhook]]
url = "https://hooks.example.org/staydown"
secret = "0123456789abcdef0123"

[[alerts.webhook]]
url = "http://127.0.0.1:9000/hooks/x"
secret = "another secret, long enough"
format = "slack"

[alerts.email]
smtp = "mail.example.org:587"
from = "staydown@example.org"
to = ["oncall@example.org", "legal@example.org"]
username = "staydown"
password = "pw"
`

func TestParseAlerts(t *testing.T) {
	n, err := ParseNode("d/config.toml", []byte(goodConfig+goodAlerts))
	if err != nil {
		t.Fatal(err)
	}
	want := Alerts{
		Webhooks: []Webhook{
			{URL: "https://hooks.example.org/staydown", Secret: "0123456789abcdef0123", Format: WebhookJSON},
			{URL: "http://127.0.0.1:9000/hooks/x", Secret: "another secret, long enough", Format: WebhookSlack},
		},
		Email: &Email{SMTP: "mail.example.org:587", From: "staydown@example.org", To: []string{"oncall@example.org", "legal@example.org"},
			Username: "staydown", Password: "pw", TLS: EmailSTARTTLS},
	}
	if !reflect.DeepEqual(n.Alerts, want) {
		t.Fatalf("alerts:\n got %+v\nwant %+v", n.Alerts, want)
	}
	n, err = ParseNode("d/config.toml", []byte(goodConfig))
	if err != nil || n.Alerts.Webhooks != nil || n.Alerts.Email != nil {
		t.Fatalf("no [alerts]: %+v, %v", n, err)
	}
}

func TestParseAlertsErrors(t *testing.T) {
	hook := func(lines ...string) string {
		return goodConfig + "[[alerts.webhook]]\n" + strings.Join(lines, "\n") + "\n"
	}
	email := func(lines ...string) string {
		return goodConfig + "[alerts.email]\n" + strings.Join(lines, "\n") + "\n"
	}
	const url, secret = `url = "https://h.example/x"`, `secret = "0123456789abcdef"`
	const smtp, from, to = `smtp = "mail.example.org:587"`, `from = "s@example.org"`, `to = ["o@example.org"]`
	tests := []struct {
		name, text string
		want       []string
	}{
		{"alerts not a table", goodConfig + "alerts = 1\n", []string{"alerts: want a table"}},
		{"unknown alerts key", goodConfig + "[alerts]\nwebhok = 1\n", []string{`unknown key "webhok"`, "did you mean webhook?"}},
		{"webhook a table", goodConfig + "[alerts.webhook]\nurl = \"x\"\n", []string{"alerts.webhook: want [[alerts.webhook]] blocks"}},
		{"no url", hook(secret), []string{"alerts.webhook 1: url: missing"}},
		{"bad url", hook(`url = "ftp://h.example/x"`, secret), []string{`alerts.webhook 1: url: "ftp://h.example/x": want an http:// or https:// URL`}},
		{"url no host", hook(`url = "https:///x"`, secret), []string{`url: "https:///x": no host`}},
		{"url not a url", hook(`url = "http://a b/%zz"`, secret), []string{`url: "http://a b/%zz": not a URL`}},
		{"url with user", hook(`url = "https://u:p@h.example/x"`, secret), []string{"remove the user:password@ part"}},
		{"url bad port", hook(`url = "https://h.example:99999/x"`, secret), []string{`port "99999"`}},
		{"no secret", hook(url), []string{"alerts.webhook 1: secret: missing"}},
		{"short secret", hook(url, `secret = "short"`), []string{"secret: 5 bytes is too short"}},
		{"bad format", hook(url, secret, `format = "teams"`), []string{`format: "teams": want "json"`}},
		{"unknown webhook key", hook(url, secret, `sekret = "x"`), []string{`unknown key "sekret"`}},
		{"email not a table", goodConfig + "[alerts]\nemail = \"x\"\n", []string{"alerts.email: want an [alerts.email] table"}},
		{"no smtp", email(from, to), []string{"alerts.email: smtp: missing"}},
		{"smtp no port", email(`smtp = "mail.example.org"`, from, to), []string{`smtp: "mail.example.org": want host:port`}},
		{"smtp bad port", email(`smtp = "mail.example.org:0"`, from, to), []string{`smtp: "mail.example.org:0": port "0"`}},
		{"smtp no host", email(`smtp = ":25"`, from, to), []string{`smtp: ":25": no host`}},
		{"no from", email(smtp, to), []string{"alerts.email: from: missing"}},
		{"bad from", email(smtp, `from = "Staydown <s@example.org>"`, to), []string{`from: "Staydown <s@example.org>": not an email address`}},
		{"no to", email(smtp, from), []string{"alerts.email: to: missing"}},
		{"empty to", email(smtp, from, `to = []`), []string{"to: no recipients"}},
		{"bad to", email(smtp, from, `to = ["o@example.org", "nobody"]`), []string{`to: element 2, "nobody": not an email address`}},
		{"header injection", email(smtp, from, `to = ["o@example.org\r\nBcc: x@example.org"]`), []string{"to: element 1", "not an email address"}},
		{"user without password", email(smtp, from, to, `username = "u"`), []string{"password: missing: username is set"}},
		{"password without user", email(smtp, from, to, `password = "p"`), []string{"username: missing: password is set"}},
		{"bad tls", email(smtp, from, to, `tls = "none"`), []string{`tls: "none": want "starttls"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const file = "d/config.toml"
			_, err := ParseNode(file, []byte(tc.text))
			if err == nil {
				t.Fatal("parsed")
			}
			checkFailure(t, file, err)
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v is not ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
