package alerts

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/smtp"
	"strings"
	"time"

	"github.com/staydown/staydown/config"
)

// email sends alerts by SMTP (net/smtp of the standard library: it does
// what is needed here, EHLO, STARTTLS, AUTH PLAIN, one message, and is
// frozen, not abandoned).
type email struct {
	cfg  config.Email
	now  func() time.Time
	host string // for TLS and PLAIN: the name in cfg.SMTP
	// tls is the TLS configuration; nil: the system's roots, for host.
	// Tests set it to trust their server.
	tls *tls.Config
}

// ErrCleartext: the server offers no TLS and credentials are configured.
var ErrCleartext = errors.New("the SMTP server offers no STARTTLS: refusing to send the password in clear text")

func newEmail(cfg config.Email, now func() time.Time) *email {
	host, _, _ := net.SplitHostPort(cfg.SMTP)
	return &email{cfg: cfg, now: now, host: host}
}

func (m *email) name() string { return "email via " + m.cfg.SMTP }

func (m *email) tlsConfig() *tls.Config {
	if m.tls != nil {
		return m.tls.Clone()
	}
	return &tls.Config{ServerName: m.host, MinVersion: tls.VersionTLS12}
}

func (m *email) send(ctx context.Context, e Event) (err error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.cfg.SMTP)
	if err != nil {
		return err
	}
	// The whole conversation is bounded; net/smtp takes no context.
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(sendTimeout)
	}
	_ = conn.SetDeadline(deadline)
	// A node that closes does not wait for a slow server.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	secure := false
	if m.cfg.TLS == config.EmailImplicit {
		conn, secure = tls.Client(conn, m.tlsConfig()), true
	}
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if !secure {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(m.tlsConfig()); err != nil {
				return fmt.Errorf("STARTTLS: %w", err)
			}
			secure = true
		}
	}
	if m.cfg.Username != "" {
		if !secure {
			return permanent(ErrCleartext)
		}
		// smtp.PlainAuth checks again that the connection is TLS.
		if err := c.Auth(smtp.PlainAuth("", m.cfg.Username, m.cfg.Password, m.host)); err != nil {
			return permanent(fmt.Errorf("AUTH: %w", err))
		}
	}
	if err := c.Mail(m.cfg.From); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	for _, to := range m.cfg.To {
		if err := c.Rcpt(to); err != nil {
			return fmt.Errorf("RCPT TO %s: %w", to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(m.message(e)); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	return c.Quit()
}

// message is the mail: headers and a plain-text body, CRLF line ends.
// Every header value is ours or a validated address; the subject is
// encoded as RFC 2047 if it is not ASCII.
func (m *email) message(e Event) []byte {
	var b strings.Builder
	hdr := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	hdr("From", m.cfg.From)
	hdr("To", strings.Join(m.cfg.To, ", "))
	hdr("Subject", mime.QEncoding.Encode("utf-8", oneLine(e.Summary())))
	hdr("Date", m.now().Format(time.RFC1123Z))
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "8bit")
	hdr("X-Staydown-Event", string(e.Event))
	hdr("X-Staydown-Notice", e.Notice)
	b.WriteString("\r\n")
	b.WriteString(strings.ReplaceAll(e.Text(), "\n", "\r\n"))
	return []byte(b.String())
}

// oneLine keeps a header value on its line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}
