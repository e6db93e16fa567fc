package config

import (
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
)

// Alerts are the notice alert hooks, the [alerts] table of config.toml:
// where the node tells people of a takedown notice's arrival, of its
// deadline coming close and of its passing (package node/alerts). Local
// to the node; never gossiped.
type Alerts struct {
	Webhooks []Webhook // [[alerts.webhook]]: each gets every alert
	Email    *Email    // [alerts.email]; nil: no email
}

// Webhook is one [[alerts.webhook]] block.
type Webhook struct {
	URL string // http or https
	// Secret keys the HMAC-SHA256 of each request (X-Staydown-Signature);
	// the receiver holds the same.
	Secret string
	Format string // WebhookJSON or WebhookSlack
}

// Webhook formats: our own JSON event, or {"text": ...} as Slack's and
// Matrix's (matrix-hookshot) incoming webhooks take it.
const (
	WebhookJSON  = "json"
	WebhookSlack = "slack"
)

// MinSecret is the shortest webhook secret accepted, in bytes.
const MinSecret = 16

// Email is the [alerts.email] table: alerts sent by SMTP.
type Email struct {
	SMTP string   // host:port of the submission server
	From string   // the envelope and header sender, an address
	To   []string // recipients' addresses, at least one
	// Username and Password, both or neither, are the PLAIN
	// authentication; the node sends them only over TLS (STARTTLS, or
	// TLS from the start).
	Username, Password string
	// TLS is "starttls" (the default: STARTTLS when the server offers
	// it, required when credentials are set) or "implicit" (TLS from the
	// first byte, port 465 usually).
	TLS string
}

// Email TLS modes.
const (
	EmailSTARTTLS = "starttls"
	EmailImplicit = "implicit"
)

var (
	alertsKeys  = []string{"webhook", "email"}
	webhookKeys = []string{"url", "secret", "format"}
	emailKeys   = []string{"smtp", "from", "to", "username", "password", "tls"}
)

// parseAlerts reads the [alerts] table; none is no hooks.
func parseAlerts(file string, m map[string]any) (Alerts, error) {
	var a Alerts
	v, ok := m["alerts"]
	if !ok {
		return a, nil
	}
	am, isTable := v.(map[string]any)
	if !isTable {
		return a, invalid(file, "alerts", "want a table ([[alerts.webhook]] or [alerts.email] blocks), got %s", typeName(v))
	}
	t := table{file: file, path: "alerts", m: am}
	if err := t.checkKeys(alertsKeys); err != nil {
		return a, err
	}
	if v, ok := am["webhook"]; ok {
		blocks, isArr := v.([]map[string]any)
		if !isArr {
			return a, invalid(file, "alerts.webhook", "want [[alerts.webhook]] blocks (url, secret, format), got %s", typeName(v))
		}
		for i, b := range blocks {
			w, err := parseWebhook(table{file: file, path: fmt.Sprintf("alerts.webhook %d", i+1), m: b})
			if err != nil {
				return a, err
			}
			a.Webhooks = append(a.Webhooks, w)
		}
	}
	if v, ok := am["email"]; ok {
		em, isTable := v.(map[string]any)
		if !isTable {
			return a, invalid(file, "alerts.email", "want an [alerts.email] table (smtp, from, to), got %s", typeName(v))
		}
		e, err := parseEmail(table{file: file, path: "alerts.email", m: em})
		if err != nil {
			return a, err
		}
		a.Email = &e
	}
	return a, nil
}

func parseWebhook(t table) (Webhook, error) {
	var w Webhook
	if err := t.checkKeys(webhookKeys); err != nil {
		return w, err
	}
	var err error
	if w.URL, _, err = t.str("url", `url = "https://hooks.example.org/staydown", where alerts are POSTed`); err != nil {
		return w, err
	}
	if err := checkWebhookURL(w.URL); err != nil {
		return w, invalid(t.file, t.key("url"), "%s: %v", short(w.URL), err)
	}
	if w.Secret, _, err = t.str("secret", `secret = "...", at least 16 characters the receiver also holds: the key of the X-Staydown-Signature HMAC`); err != nil {
		return w, err
	}
	if len(w.Secret) < MinSecret {
		return w, invalid(t.file, t.key("secret"), "%d bytes is too short: want at least %d (e.g. the output of `openssl rand -hex 32`)", len(w.Secret), MinSecret)
	}
	f, ok, err := t.str("format", "")
	switch {
	case err != nil:
		return w, err
	case !ok:
		f = WebhookJSON
	case f != WebhookJSON && f != WebhookSlack:
		return w, invalid(t.file, t.key("format"), "%s: want \"json\" (Staydown's event) or \"slack\" ({\"text\": ...}, for Slack and Matrix hookshot)", short(f))
	}
	w.Format = f
	return w, nil
}

// checkWebhookURL wants an absolute http or https URL with a host and
// no user information (the secret is the credential).
func checkWebhookURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("want an http:// or https:// URL")
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("no host")
	case u.User != nil:
		return fmt.Errorf("remove the user:password@ part: the request is signed with the secret")
	case u.Fragment != "":
		return fmt.Errorf("remove the #fragment")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not 1 to 65535", p)
		}
	}
	return nil
}

func parseEmail(t table) (Email, error) {
	var e Email
	if err := t.checkKeys(emailKeys); err != nil {
		return e, err
	}
	var err error
	if e.SMTP, _, err = t.str("smtp", `smtp = "mail.example.org:587", the SMTP submission server`); err != nil {
		return e, err
	}
	if err := checkHostPort(e.SMTP); err != nil {
		return e, invalid(t.file, t.key("smtp"), "%s: %v", short(e.SMTP), err)
	}
	if e.From, _, err = t.str("from", `from = "staydown@example.org", the sender address`); err != nil {
		return e, err
	}
	if err := checkAddress(e.From); err != nil {
		return e, invalid(t.file, t.key("from"), "%s: %v", short(e.From), err)
	}
	if e.To, _, err = t.strs("to", `to = ["oncall@example.org"], the recipients`); err != nil {
		return e, err
	}
	if len(e.To) == 0 {
		return e, invalid(t.file, t.key("to"), "no recipients: list at least one address")
	}
	for i, a := range e.To {
		if err := checkAddress(a); err != nil {
			return e, invalid(t.file, t.key("to"), "element %d, %s: %v", i+1, short(a), err)
		}
	}
	var hasUser, hasPass bool
	if e.Username, hasUser, err = t.str("username", ""); err != nil {
		return e, err
	}
	if e.Password, hasPass, err = t.str("password", ""); err != nil {
		return e, err
	}
	switch {
	case hasUser && !hasPass:
		return e, invalid(t.file, t.key("password"), "missing: username is set, so add password (or remove both)")
	case hasPass && !hasUser:
		return e, invalid(t.file, t.key("username"), "missing: password is set, so add username (or remove both)")
	case hasUser && e.Username == "":
		return e, invalid(t.file, t.key("username"), "empty: give the account name, or remove username and password")
	}
	tlsMode, ok, err := t.str("tls", "")
	switch {
	case err != nil:
		return e, err
	case !ok:
		tlsMode = EmailSTARTTLS
	case tlsMode != EmailSTARTTLS && tlsMode != EmailImplicit:
		return e, invalid(t.file, t.key("tls"), "%s: want \"starttls\" (STARTTLS when offered, required with credentials) or \"implicit\" (TLS from the start, port 465)", short(tlsMode))
	}
	e.TLS = tlsMode
	return e, nil
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want host:port, e.g. \"mail.example.org:587\"")
	}
	if host == "" {
		return fmt.Errorf("no host")
	}
	if strings.ContainsAny(host, " \t\r\n/") {
		return fmt.Errorf("host %q is not a host name or address", host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not 1 to 65535", port)
	}
	return nil
}

// checkAddress wants a bare address (user@host): it goes into SMTP
// commands and mail headers as it is.
func checkAddress(s string) error {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return fmt.Errorf("not an email address such as oncall@example.org")
	}
	if strings.ContainsAny(s, "\r\n<>") {
		return fmt.Errorf("not an email address such as oncall@example.org")
	}
	return nil
}
