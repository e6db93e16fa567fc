package alerts

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/staydown/staydown/config"
)

// Webhook request headers. The signature is HMAC-SHA256, keyed with the
// hook's secret, over the timestamp, a full stop and the body:
//
//	X-Staydown-Signature: sha256=hex(HMAC-SHA256(secret, timestamp + "." + body))
//
// where timestamp is X-Staydown-Timestamp, Unix seconds. A receiver
// recomputes it over the raw body, compares in constant time, and
// refuses a timestamp more than a few minutes from its clock (a replayed
// request): see Verify.
const (
	SignatureHeader = "X-Staydown-Signature"
	TimestampHeader = "X-Staydown-Timestamp"
	EventHeader     = "X-Staydown-Event" // the alert's kind
)

// Sign is the X-Staydown-Signature value of body sent at timestamp ts
// (Unix seconds, as X-Staydown-Timestamp writes it).
func Sign(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Errors of Verify.
var (
	ErrSignature = errors.New("bad signature")
	ErrStale     = errors.New("timestamp too far from now")
)

// Verify checks a webhook request as its receiver should: sig is the
// X-Staydown-Signature header, ts X-Staydown-Timestamp, body the raw
// body; a timestamp more than skew from now is ErrStale (a replay).
func Verify(secret []byte, ts, sig string, body []byte, now time.Time, skew time.Duration) error {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q is not Unix seconds", ErrSignature, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > skew || d < -skew {
		return fmt.Errorf("%w: %s is %v from now", ErrStale, ts, d.Round(time.Second))
	}
	if !hmac.Equal([]byte(Sign(secret, ts, body)), []byte(sig)) {
		return ErrSignature
	}
	return nil
}

// webhook posts alerts to one URL.
type webhook struct {
	cfg    config.Webhook
	client *http.Client
	now    func() time.Time
}

func newWebhook(cfg config.Webhook, now func() time.Time) *webhook {
	return &webhook{cfg: cfg, now: now, client: &http.Client{
		// No redirects: a signed alert goes where it was configured to.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (w *webhook) name() string { return "webhook " + redact(w.cfg.URL) }

// redact is a URL without its path and query, which often hold a token
// (Slack's and Matrix hookshot's URLs do): what log lines show.
func redact(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return "?"
	}
	host, _, _ := strings.Cut(rest, "/")
	host, _, _ = strings.Cut(host, "?")
	return scheme + "://" + host + "/..."
}

// body is the request body of e in the hook's format.
func (w *webhook) body(e Event) ([]byte, error) {
	if w.cfg.Format == config.WebhookSlack {
		return json.Marshal(struct {
			Text string `json:"text"`
		}{e.Summary()})
	}
	return json.Marshal(e)
}

func (w *webhook) send(ctx context.Context, e Event) error {
	body, err := w.body(e)
	if err != nil {
		return permanent(err)
	}
	ts := strconv.FormatInt(w.now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "staydown-alerts")
	req.Header.Set(TimestampHeader, ts)
	req.Header.Set(SignatureHeader, Sign([]byte(w.cfg.Secret), ts, body))
	req.Header.Set(EventHeader, string(e.Event))
	resp, err := w.client.Do(req)
	if err != nil {
		// Without the URL, which may hold a token.
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			return ue.Err
		}
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return nil
	case c >= 400 && c < 500 && c != http.StatusRequestTimeout && c != http.StatusTooManyRequests:
		// The receiver refuses it (a wrong secret, a removed hook): trying
		// again will not help.
		return permanent(fmt.Errorf("%s: %q", resp.Status, msg))
	default:
		return fmt.Errorf("%s: %q", resp.Status, msg)
	}
}
