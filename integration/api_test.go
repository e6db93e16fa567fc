package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/node/api"
)

// apiClient calls a node's HTTP API directly, as the CLI does but without a
// process per call: tests that publish hundreds of entries or poll status
// while a catch-up runs use it. Final checks still go through the CLI.
type apiClient struct {
	name  string
	base  string // http://HOST:PORT
	token string
	http  *http.Client
}

var apiClients sync.Map // node dir -> *apiClient

// apiOf returns the API client of n, reading the address and token from
// its directory once.
func apiOf(t *testing.T, n *node) *apiClient {
	t.Helper()
	if c, ok := apiClients.Load(n.dir); ok {
		return c.(*apiClient)
	}
	cfg, err := config.Load(n.dir)
	if err != nil {
		t.Fatal(err)
	}
	token, err := cfg.Token()
	if err != nil {
		t.Fatal(err)
	}
	c := &apiClient{name: n.name, base: "http://" + cfg.API, token: token, http: &http.Client{Timeout: 30 * time.Second}}
	apiClients.Store(n.dir, c)
	return c
}

// call sends in as JSON (unless nil) and decodes a 2xx answer into out.
func (c *apiClient) call(method, path string, in, out any) error {
	code, data, err := c.send(method, path, in)
	if err != nil {
		return err
	}
	if code/100 != 2 {
		return fmt.Errorf("%s %s on %s: %d %s: %s", method, path, c.name, code, http.StatusText(code), bytes.TrimSpace(data))
	}
	return json.Unmarshal(data, out)
}

// send sends in as JSON (unless nil) and returns the answer's status
// code and body.
func (c *apiClient) send(method, path string, in any) (int, []byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// status is GET /v1/status.
func (c *apiClient) status() (api.Status, error) {
	var s api.Status
	err := c.call(http.MethodGet, "/v1/status", nil, &s)
	return s, err
}

// add publishes one addition of a sha256 signal and returns the new
// entry's id and seq.
func (c *apiClient) add(hash string) (api.Published, error) {
	var p api.Published
	err := c.call(http.MethodPost, "/v1/additions", api.AdditionRequest{
		Signals: []api.Signal{{Type: "sha256", Value: hash}},
		Labels:  []string{"graphic-violence"},
	}, &p)
	return p, err
}

// attested returns, for each sha256 hash, the ids of the attestations the
// node holds for it (one POST /v1/match per 500 hashes).
func (c *apiClient) attested(hashes []string) ([][]string, error) {
	out := make([][]string, 0, len(hashes))
	for lo := 0; lo < len(hashes); lo += 500 {
		hi := min(lo+500, len(hashes))
		req := api.MatchRequest{}
		for _, h := range hashes[lo:hi] {
			req.Signals = append(req.Signals, api.Signal{Type: "sha256", Value: h})
		}
		var res api.MatchResults
		if err := c.call(http.MethodPost, "/v1/match", req, &res); err != nil {
			return nil, err
		}
		if len(res.Results) != hi-lo {
			return nil, fmt.Errorf("match on %s: %d results for %d signals", c.name, len(res.Results), hi-lo)
		}
		for _, r := range res.Results {
			var ids []string
			for _, a := range r.Attestations {
				ids = append(ids, a.ID)
			}
			out = append(out, ids)
		}
	}
	return out, nil
}

// mustStatus is status, failing the test on error.
func (c *apiClient) mustStatus(t *testing.T) api.Status {
	t.Helper()
	s, err := c.status()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
