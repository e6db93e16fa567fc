package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/staydown/staydown/internal/smtpsink"
	"github.com/staydown/staydown/node/alerts"
)

const alertSecret = "integration-alert-secret-0123456789"

// TestNoticeAlerts (#13 item 9): a platform node run as a process, with a
// webhook and email configured in its config.toml, receives a notice
// from the referral unit; a webhook receiver, which verifies the
// signature as a receiver should, and an SMTP server both get the
// arrival alert. A broken hook config stops `staydown run` with exit 2
// and a one-line error naming the key.
func TestNoticeAlerts(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "nru=referral", "platform-a=platform")
	nru, a := c.nodes["nru"], c.nodes["platform-a"]

	got := make(chan alerts.Event, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := alerts.Verify([]byte(alertSecret), r.Header.Get(alerts.TimestampHeader), r.Header.Get(alerts.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("webhook: %v", err)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var e alerts.Event
		if err := json.Unmarshal(body, &e); err != nil {
			t.Errorf("webhook body %q: %v", body, err)
		}
		got <- e
	}))
	defer hook.Close()
	sink, err := smtpsink.Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()

	cfgPath := filepath.Join(a.dir, "config.toml")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// A bad URL first: the node refuses to start.
	bad := string(cfg) + "\n[[alerts.webhook]]\nurl = \"hooks.example.org/x\"\nsecret = \"" + alertSecret + "\"\n"
	if err := os.WriteFile(cfgPath, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errs, code := cli(t, "run", "--dir", a.dir)
	if code != 2 || !strings.Contains(errs, `alerts.webhook 1: url: "hooks.example.org/x": want an http:// or https:// URL`) || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Fatalf("run with a bad webhook URL: exit %d, stderr %q", code, errs)
	}
	good := string(cfg) + fmt.Sprintf(`
[[alerts.webhook]]
url = %q
secret = %q

[alerts.email]
smtp = %q
from = "staydown@platform-a.example"
to = ["oncall@platform-a.example"]
`, hook.URL+"/staydown", alertSecret, sink.Addr())
	if err := os.WriteFile(cfgPath, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}

	c.startAll()
	c.waitMesh(nru, a)
	id := strings.TrimSpace(mustCLI(t, "notice", "--dir", nru.dir, "--to", "platform-a", "--url", "https://video.example/watch?v=7",
		"--category", "attacker-manifesto", "--basis", "Regulation (EU) 2021/784, art. 3", "--deadline", "1h"))
	select {
	case e := <-got:
		if e.Event != alerts.Received || e.Notice != id || e.From != "nru" || e.To != "platform-a" || e.Status != "open" || e.Deadline == "" {
			t.Fatalf("webhook alert %+v, want notice-received of %s", e, id)
		}
	case <-time.After(deliveryBound):
		t.Fatalf("no webhook alert within %v", deliveryBound)
	}
	msgs := sink.Wait(1, deliveryBound)
	if len(msgs) != 1 || msgs[0].To[0] != "oncall@platform-a.example" || !strings.Contains(msgs[0].Data, "takedown notice received "+id[:16]+" from nru to platform-a") {
		t.Fatalf("mails: %+v", msgs)
	}
	// The node logs a delivery once the hook's answer is back, which
	// may be after the test's handler and sink have seen the alert.
	waitFor(t, deliveryBound, "platform-a's log saying the alerts were delivered", func() bool {
		return strings.Count(a.log(t), "alert delivered") >= 2
	})
}
