package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/apitls"
)

// requestTimeout bounds one API call; matching a thousand signals on a
// loaded node stays well under it.
const requestTimeout = 60 * time.Second

// maxResponse bounds what is read of an answer: a thousand results with
// many attestations each.
const maxResponse = 256 << 20

// client calls the HTTP API of the node in one directory.
type client struct {
	http      *http.Client
	base      string // "http://HOST:PORT"
	addr      string // HOST:PORT as configured, for messages
	dir       string // --dir as given, for messages
	token     string
	tokenFile string
}

// client finds the node of --dir and its token.
func (c *cli) client() (*client, error) {
	cfg, err := c.config()
	if err != nil {
		return nil, err
	}
	token, err := cfg.Token()
	if err != nil {
		return nil, err
	}
	// A node with api_tls_cert serves HTTPS; the CLI trusts exactly the
	// certificate in that file of the node's directory.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	scheme := "http://"
	if cfg.APITLSCert != "" {
		if transport.TLSClientConfig, err = apitls.Client(cfg.APITLSCert); err != nil {
			return nil, err
		}
		scheme = "https://"
	}
	return &client{
		http:      &http.Client{Timeout: requestTimeout, Transport: transport},
		base:      scheme + dialAddr(cfg.API),
		addr:      cfg.API,
		dir:       c.dir,
		token:     token,
		tokenFile: filepath.Join(cfg.Dir, config.TokenFile),
	}, nil
}

// dialAddr is where to reach an API that listens on addr: a node that
// listens on every interface (0.0.0.0, ::) is reached on loopback.
func dialAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		if ip != nil && ip.To4() == nil {
			return net.JoinHostPort("::1", port)
		}
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

// call sends in (if not nil) as JSON and decodes a 2xx answer into out.
// Error answers become errors carrying the node's message.
func (cl *client) call(ctx context.Context, method, path string, in, out any) error {
	if in == nil {
		return cl.do(ctx, method, path, nil, "", out)
	}
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return cl.do(ctx, method, path, bytes.NewReader(b), "application/json", out)
}

// do sends body (of contentType, if any) and decodes a JSON answer into
// out, turning the node's errors into messages that say what to do.
func (cl *client) do(ctx context.Context, method, path string, body io.Reader, contentType string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, cl.base+path, body)
	if err != nil {
		return err
	}
	if s, ok := body.(sizedReader); ok {
		req.ContentLength = s.size
	}
	req.Header.Set("Authorization", "Bearer "+cl.token)
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := cl.http.Do(req)
	if err != nil {
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			return fmt.Errorf("the node at %s did not answer within %v", cl.addr, cl.http.Timeout)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return cl.unreachable(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("reading the answer of the node at %s: %w", cl.addr, err)
	}
	if res.StatusCode/100 == 2 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("the node at %s answered something that is not the expected JSON: %v", cl.addr, err)
		}
		return nil
	}
	return cl.errorOf(res, data)
}

// unreachable says why a request got no answer: a TLS mismatch between
// the node and its config, or no node at all.
func (cl *client) unreachable(err error) error {
	if e, ok := errors.AsType[*apitls.OtherCertificateError](err); ok {
		return fmt.Errorf("the node at %s: %w", cl.addr, e)
	}
	// net/http turns the TLS error of an HTTP answer into a message of
	// its own; the TLS error is what other servers give.
	if _, ok := errors.AsType[tls.RecordHeaderError](err); ok || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		return fmt.Errorf("the node at %s does not speak HTTPS though config.toml sets api_tls_cert: restart it with this config", cl.addr)
	}
	return fmt.Errorf("cannot reach the node at %s (is `staydown run --dir %s` running?)", cl.addr, display(cl.dir))
}

// errorOf turns a non-2xx answer into a message that says what to do.
func (cl *client) errorOf(res *http.Response, data []byte) error {
	var e api.ErrorBody
	if json.Unmarshal(data, &e) != nil || e.Error == "" {
		return fmt.Errorf("unexpected answer from %s: HTTP %s: %s (is that a Staydown node?)", cl.addr, res.Status, short(string(data)))
	}
	switch res.StatusCode {
	case http.StatusUnauthorized:
		return fmt.Errorf("the node at %s refused the token in %s (%s): is another node listening on that address?", cl.addr, display(cl.tokenFile), e.Error)
	case http.StatusInternalServerError:
		return fmt.Errorf("the node at %s failed: %s", cl.addr, e.Error)
	}
	return errors.New(e.Error)
}

// stream sends a request whose answer may be long (an export): no
// overall timeout, only ctx. The caller closes the body.
func (cl *client) stream(ctx context.Context, method, path string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, method, cl.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+cl.token)
	res, err := (&http.Client{Transport: cl.http.Transport}).Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, cl.unreachable(err)
	}
	if res.StatusCode/100 != 2 {
		defer res.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(res.Body, maxResponse))
		return nil, cl.errorOf(res, data)
	}
	return res.Body, nil
}

// publish sends a write request to path and prints the new entry: its id,
// or with --json the whole answer.
func (c *cli) publish(ctx context.Context, path string, req any) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	var out api.Published
	if err := cl.call(ctx, http.MethodPost, path, req, &out); err != nil {
		return err
	}
	if c.json {
		return c.printJSON(out)
	}
	_, err = fmt.Fprintln(c.stdout, out.ID)
	return err
}

// publishAll publishes the requests in order, printing each entry's id as
// it is published (with --json, an array of the answers at the end). An
// error after the first says how many entries and signals took effect.
func (c *cli) publishAll(ctx context.Context, path string, reqs []any, total int) error {
	if len(reqs) == 1 {
		return c.publish(ctx, path, reqs[0])
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	var all []api.Published
	sent := 0
	for i, req := range reqs {
		var out api.Published
		if err := cl.call(ctx, http.MethodPost, path, req, &out); err != nil {
			if i > 0 {
				return fmt.Errorf("%w (published before this error: %d %s of %d, the first %d signals of %d: %s)", err, i, plural(i, "entry", "entries"), len(reqs), sent, total, publishedIDs(all))
			}
			return err
		}
		all = append(all, out)
		sent += signalCount(req)
		if !c.json {
			if _, err := fmt.Fprintln(c.stdout, out.ID); err != nil {
				return err
			}
		}
	}
	if c.json {
		return c.printJSON(all)
	}
	return nil
}

func publishedIDs(ps []api.Published) string {
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	return strings.Join(ids, ", ")
}

// signalCount is the number of signals of a request publishAll sends.
func signalCount(req any) int {
	switch r := req.(type) {
	case api.AdditionRequest:
		return len(r.Signals)
	case api.AllowRequest:
		return len(r.Signals)
	}
	return 0
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
