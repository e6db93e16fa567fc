package node

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// The API takes at most perClient connections from one IP and total in
// all; those over a cap are closed at once and logged once a minute with
// their count, and a closed connection gives its place back. Regression
// (#12 item 5): 220 idle connections of one client took every file
// descriptor of a node limited to 200, and libp2p failed too.
func TestAPIConnectionCaps(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logged syncBuffer
	l := limitConns(ln, 2, 3, slog.New(slog.NewTextHandler(&logged, nil)))
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, "served")
			go func() { io.Copy(io.Discard, c); c.Close() }() // until the client closes
		}
	}()
	dial := func(from string) (net.Conn, bool) {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil && err != io.EOF && !strings.Contains(err.Error(), "reset") {
			t.Fatalf("dial from %s: %v", from, err)
		}
		return c, line == "served\n"
	}
	steps := []struct {
		from   string
		served bool
	}{
		{"127.0.0.1", true}, {"127.0.0.1", true},
		{"127.0.0.1", false}, // over the per-client cap
		{"127.0.0.2", true},
		{"127.0.0.2", false}, // over the total cap
		{"127.0.0.3", false},
	}
	var first net.Conn
	for i, s := range steps {
		c, served := dial(s.from)
		if served != s.served {
			t.Fatalf("step %d: a connection from %s served %v, want %v", i, s.from, served, s.served)
		}
		if i == 0 {
			first = c
		}
	}
	// A client that closes a connection can open another.
	first.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, served := dial("127.0.0.1"); served {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a connection closed did not give its place back within 30 s")
		}
	}
	if got := strings.Count(logged.String(), "over the cap"); got != 1 {
		t.Errorf("refusals logged %d times in a minute, want once:\n%s", got, logged.String())
	}
}

// A keep-alive connection on which no request comes is closed by the
// node. Regression (#12 item 5): it stayed open for ever.
func TestAPIClosesIdleConnections(t *testing.T) {
	was := apiIdleTimeout
	apiIdleTimeout = 200 * time.Millisecond
	t.Cleanup(func() { apiIdleTimeout = was })
	f := newFederation(t, "nru=referral")
	n := f.start("nru")
	token, err := f.cfgs["nru"].Token()
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", n.APIAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", token)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil || !strings.Contains(line, "200") {
		t.Fatalf("status: %q %v", line, err)
	}
	// Read the answer and wait for the end of the connection.
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Fatalf("the idle connection was not closed by the node within 30 s (idle timeout 200 ms): %v", err)
	}
}
