package node

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/gologshim"

	"github.com/staydown/staydown/node/tokens"
)

// syncBuffer is a log a node and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLibraryLogsInNodeLog: the HTTP server's errors (a handler's panic
// here; a TLS handshake error the same way) and go-libp2p's log lines
// reach the node's slog handler, with where they come from, instead of
// stderr in their own formats (#12 item 12).
func TestLibraryLogsInNodeLog(t *testing.T) {
	f := newFederation(t, "nru=referral")
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	n, err := StartWith(context.Background(), f.cfgs["nru"], log, Options{API: func(*Node, *tokens.Keeper) http.Handler {
		return http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("a handler's bug") })
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if resp, err := http.Get("http://" + n.APIAddr().String() + "/v1/status"); err == nil {
		resp.Body.Close()
	}
	waitUntil(t, 10*time.Second, "the server's error in the node's log", func() bool {
		return strings.Contains(buf.String(), `level=WARN msg="http: panic serving`)
	})
	for _, l := range strings.Split(buf.String(), "\n") {
		if strings.Contains(l, "http: panic serving") && !strings.Contains(l, "logger=http") {
			t.Errorf("the server's error does not say where it comes from: %s", l)
		}
	}

	gologshim.Logger("swarm2").Warn("a libp2p warning", "peer", "x")
	if !strings.Contains(buf.String(), `level=WARN msg="a libp2p warning" logger=swarm2 peer=x`) {
		t.Errorf("a go-libp2p line is not in the node's log:\n%s", buf.String())
	}
}
