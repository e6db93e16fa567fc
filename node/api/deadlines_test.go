package api_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/api/apitest"
	"github.com/staydown/staydown/node/tokens"
	"github.com/staydown/staydown/protocol"
)

// endless is a backend whose export never ends: it writes until a write
// fails, then says so on failed.
type endless struct {
	*apitest.Backend
	failed chan error
}

func (b endless) Export(ctx context.Context, w io.Writer, _ []protocol.AuthorKey) error {
	chunk := make([]byte, 64<<10)
	for {
		if _, err := w.Write(chunk); err != nil {
			b.failed <- err
			return err
		}
	}
}

// rawRequest opens a connection to srv and sends a request on it, with
// the token, and body as the start of its body (of length bodyLen).
func rawRequest(t *testing.T, srv *httptest.Server, method, path string, header string, body string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n%s\r\n%s", method, path, token, header, body)
	return c
}

// A client that stops reading its export is cut off once a write has
// waited WriteStall: the handler ends, and with it whatever it held.
// Regression (#12 item 1): the export waited on the client for as long as
// it did not read.
func TestSlowReaderIsCutOff(t *testing.T) {
	b := endless{Backend: apitest.New("bka", protocol.RoleReferral, other), failed: make(chan error, 1)}
	h := api.NewServer(b, tokens.Static(token), slog.New(slog.DiscardHandler))
	api.SetTimeouts(h, time.Minute, time.Minute, 100*time.Millisecond)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close) // after the connections rawRequest opened close

	rawRequest(t, srv, "GET", "/v1/export", "", "") // and never read
	select {
	case err := <-b.failed:
		if !strings.Contains(err.Error(), "timeout") {
			t.Errorf("the export's write failed with %v, want a timeout", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("an export to a client that reads nothing still writes after 30 s (write stall 100 ms)")
	}
}

// A client that sends a part of its body and stops is answered 400 once
// the body's deadline passes, and the connection goes.
func TestSlowBodyIsCutOff(t *testing.T) {
	fake := apitest.New("bka", protocol.RoleReferral, other)
	h := api.NewServer(fake, tokens.Static(token), slog.New(slog.DiscardHandler))
	api.SetTimeouts(h, 100*time.Millisecond, 100*time.Millisecond, time.Minute)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close) // after the connections rawRequest opened close

	c := rawRequest(t, srv, "POST", "/v1/additions", "Content-Type: application/json\r\nContent-Length: 1000\r\n", `{"signals": [`)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a body that stopped coming (body deadline 100 ms): %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "timeout") {
		t.Errorf("got %d %s, want 400 naming the timeout", res.StatusCode, body)
	}
	if n := len(fake.Published()); n != 0 {
		t.Errorf("published %d entries from a body cut short", n)
	}
}

// Slow uploads do not keep a small one waiting: an upload is received
// before it takes one of the few slots that decode images. Regression
// (#12 item 5): the slot was taken before the body was read, so as many
// slow uploads as CPUs made every other upload wait for them.
func TestSlowUploadsDoNotHoldTheDecoder(t *testing.T) {
	fake := apitest.New("bka", protocol.RoleReferral, other)
	h := api.NewServer(fake, tokens.Static(token), slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close) // after the connections rawRequest opened close

	// As many uploads as there are decoding slots, each inside its
	// handler (the server sends "100 Continue" when the handler first
	// reads the body) and then silent.
	for range runtime.GOMAXPROCS(0) {
		c := rawRequest(t, srv, "POST", "/v1/match/file", "Content-Length: 1000000\r\nExpect: 100-continue\r\n", "")
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || !strings.Contains(line, "100 Continue") {
			t.Fatalf("a slow upload: got %q, %v; want 100 Continue", line, err)
		}
		fmt.Fprint(c, "some bytes")
	}

	done := make(chan response, 1)
	go func() {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/match/file", strings.NewReader("eleven byte"))
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := srv.Client().Do(req)
		if err != nil {
			done <- response{code: -1, body: []byte(err.Error())}
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		done <- response{code: res.StatusCode, body: b}
	}()
	select {
	case r := <-done:
		if r.code != http.StatusOK {
			t.Fatalf("the small upload: %d %s", r.code, r.body)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("an 11-byte upload still waits after 30 s behind slow uploads")
	}
}

// A video upload that stops sending is cut off after the upload stall,
// long before the deadline of the whole body (a 2 GiB video at 1 MiB/s),
// answered 400 naming the timeout, and leaves no temporary file.
func TestStalledVideoUploadIsCutOff(t *testing.T) {
	fake := apitest.New("bka", protocol.RoleReferral, other)
	tmp := t.TempDir()
	fake.SetVideoConfig(api.VideoConfig{TempDir: tmp})
	h := api.NewServer(fake, tokens.Static(token), slog.New(slog.DiscardHandler))
	api.SetUploadStall(h, 100*time.Millisecond)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	mp4 := "\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41"
	c := rawRequest(t, srv, "POST", "/v1/match/file", "Content-Type: video/mp4\r\nContent-Length: 10000000\r\n", mp4)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a video upload that stopped (stall 100 ms): %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "timeout") {
		t.Errorf("got %d %s, want 400 naming the timeout", res.StatusCode, body)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	if n := len(fake.Queries()); n != 0 {
		t.Errorf("matched %d times on a video cut short", n)
	}
}
