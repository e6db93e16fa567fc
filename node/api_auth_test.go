package node

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/staydown/staydown/internal/testclock"
	"github.com/staydown/staydown/node/apitls"
	"github.com/staydown/staydown/node/apitls/apitlstest"
	"github.com/staydown/staydown/node/tokens"
)

// get sends GET path to the node's API with the bearer token (none when
// ""), on client, and returns the status, the body and the certificate
// the node presented (nil over HTTP).
func get(t *testing.T, client *http.Client, url, token string) (int, string, *x509.Certificate) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var cert *x509.Certificate
	if res.TLS != nil {
		cert = res.TLS.PeerCertificates[0]
	}
	return res.StatusCode, string(body), cert
}

// The API over HTTPS with the configured pair; on Reload (what SIGHUP
// does) a new pair is served to new connections, and a pair that does not
// load is logged and the old one kept.
func TestAPIOverTLS(t *testing.T) {
	f := newFederation(t, "nru=referral")
	cfg := f.cfgs["nru"]
	certFile, keyFile, first := apitlstest.Write(t, cfg.Dir, "api")
	cfg.APITLSCert, cfg.APITLSKey = certFile, keyFile
	n := f.start("nru")
	token, err := cfg.Token()
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + n.APIAddr().String() + "/v1/status"
	// A client that trusts any certificate, to see which one is served;
	// no keep-alive, so that each request is a new handshake.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	code, body, cert := get(t, client, url, token)
	if code != http.StatusOK || !cert.Equal(first) {
		t.Fatalf("status over HTTPS: %d %s; served the configured certificate: %v", code, body, cert.Equal(first))
	}
	// The CLI's pinned config accepts it.
	pinned, err := apitls.Client(certFile)
	if err != nil {
		t.Fatal(err)
	}
	if code, body, _ := get(t, &http.Client{Transport: &http.Transport{TLSClientConfig: pinned}}, url, token); code != http.StatusOK {
		t.Fatalf("pinned client: %d %s", code, body)
	}
	// Plain HTTP is not served.
	if code, body, _ := get(t, http.DefaultClient, "http://"+n.APIAddr().String()+"/v1/status", token); code != http.StatusBadRequest || !strings.Contains(body, "HTTP request to an HTTPS server") {
		t.Errorf("plain HTTP: %d %s", code, body)
	}

	// Renewal: new files, then Reload.
	_, _, second := apitlstest.Write(t, cfg.Dir, "api")
	if _, _, cert := get(t, client, url, token); !cert.Equal(first) {
		t.Fatal("new certificate served before the reload")
	}
	if err := n.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if code, _, cert := get(t, client, url, token); code != http.StatusOK || !cert.Equal(second) {
		t.Fatalf("after Reload: %d, the new certificate: %v", code, cert.Equal(second))
	}
	// The old pin no longer matches: the CLI says so.
	_, err = (&http.Client{Transport: &http.Transport{TLSClientConfig: pinned}}).Get(url)
	if _, ok := errors.AsType[*apitls.OtherCertificateError](err); !ok || !strings.Contains(err.Error(), "a certificate other than the one in "+certFile) {
		t.Errorf("old pin: %v", err)
	}

	// A botched renewal: the certificate file is damaged.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n.Reload(); err == nil || !strings.Contains(err.Error(), "api_tls_cert") {
		t.Errorf("Reload of a damaged pair: %v", err)
	}
	if code, _, cert := get(t, client, url, token); code != http.StatusOK || !cert.Equal(second) {
		t.Fatalf("after a failed Reload: %d, still the previous certificate: %v", code, cert.Equal(second))
	}
}

// A node whose API may be reached from other hosts does not start without
// TLS unless told to, nor with a key others may read, nor with a pair
// that does not load; nothing is left open.
func TestAPITransportRefusals(t *testing.T) {
	f := newFederation(t, "nru=referral")
	cfg := f.cfgs["nru"]
	start := func() error {
		n, err := StartWith(context.Background(), cfg, testLogger(t, "nru"), withAPI(testLogger(t, "nru")))
		if err == nil {
			n.Close()
		}
		return err
	}
	cfg.AllowRemoteAPI = true
	err := start()
	if err == nil || err.Error() != cfg.Dir+"/config.toml: allow_remote_api: the API would take bearer tokens in clear text from other hosts: set api_tls_cert and api_tls_key (HTTPS), or allow_remote_api_without_tls = true if a proxy in front does TLS" {
		t.Errorf("remote API without TLS: %v", err)
	}
	cfg.AllowRemoteAPIWithoutTLS = true
	if err := start(); err != nil {
		t.Errorf("remote API without TLS, allowed: %v", err)
	}
	cfg.AllowRemoteAPIWithoutTLS = false
	cfg.APITLSCert, cfg.APITLSKey, _ = apitlstest.Write(t, cfg.Dir, "api")
	if err := start(); err != nil {
		t.Errorf("remote API with TLS: %v", err)
	}
	if err := os.Chmod(cfg.APITLSKey, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := start(); err == nil || !strings.Contains(err.Error(), "permissions 0640 are too open") {
		t.Errorf("key readable by the group: %v", err)
	}
	if err := os.WriteFile(cfg.APITLSKey, []byte("no key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := start(); err == nil || !strings.Contains(err.Error(), "api_tls_key") {
		t.Errorf("damaged key: %v", err)
	}
}

// Tokens made and revoked (as staydown token does) while the node runs
// take effect at its next look at api.tokens, without a restart; /metrics
// with metrics_token wants a token of scope read.
func TestTokensWhileRunning(t *testing.T) {
	f := newFederation(t, "nru=referral")
	cfg := f.cfgs["nru"]
	clock := testclock.New(time.Now())
	cfg.Clock = clock.Now
	cfg.MetricsToken = true
	n := f.start("nru")
	base := "http://" + n.APIAddr().String()
	admin, err := cfg.Token()
	if err != nil {
		t.Fatal(err)
	}
	dash, _, err := tokens.Add(cfg.Dir, tokens.Read, "dashboard", clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	pipe, _, err := tokens.Add(cfg.Dir, tokens.Match, "pipeline", clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if code, _, _ := get(t, http.DefaultClient, base+"/v1/status", dash); code != http.StatusUnauthorized {
		t.Fatalf("token accepted before the node looked at the file: %d", code)
	}
	clock.Add(tokens.CheckEvery)
	if code, body, _ := get(t, http.DefaultClient, base+"/v1/status", dash); code != http.StatusOK {
		t.Fatalf("read token added while running: %d %s", code, body)
	}
	if code, body, _ := get(t, http.DefaultClient, base+"/v1/status", pipe); code != http.StatusForbidden ||
		!strings.Contains(body, "GET /v1/status needs a token with scope read; this token's scope is match") {
		t.Errorf("match token on status: %d %s", code, body)
	}
	// /metrics: read (and admin) yes, match no, none no.
	for _, c := range []struct {
		token string
		code  int
		body  string
	}{{"", 401, "authorization: missing"}, {pipe, 403, "GET /metrics needs a token with scope read; this token's scope is match"}, {dash, 200, "staydown_"}, {admin, 200, "staydown_"}} {
		if code, body, _ := get(t, http.DefaultClient, base+"/metrics", c.token); code != c.code || !strings.Contains(body, c.body) {
			t.Errorf("metrics with %q: %d %.100s", c.token, code, body)
		}
	}
	if _, err := tokens.Revoke(cfg.Dir, "dashboard"); err != nil {
		t.Fatal(err)
	}
	clock.Add(tokens.CheckEvery)
	if code, body, _ := get(t, http.DefaultClient, base+"/v1/status", dash); code != http.StatusUnauthorized || !strings.Contains(body, "wrong token (unknown or revoked)") {
		t.Errorf("revoked token: %d %s", code, body)
	}
	if code, _, _ := get(t, http.DefaultClient, base+"/v1/status", admin); code != http.StatusOK {
		t.Errorf("api.token: %d", code)
	}
}

// Without metrics_token /metrics stays open, as before.
func TestMetricsOpenByDefault(t *testing.T) {
	f := newFederation(t, "nru=referral")
	n := f.start("nru")
	if code, body, _ := get(t, http.DefaultClient, "http://"+n.APIAddr().String()+"/metrics", ""); code != http.StatusOK || !bytes.Contains([]byte(body), []byte("staydown_")) {
		t.Errorf("metrics: %d %.100s", code, body)
	}
}
