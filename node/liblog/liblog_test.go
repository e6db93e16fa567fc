package liblog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/gologshim"
)

// TestLibp2pLogsReachTheNodesHandler: a go-libp2p logger's WARN line (a
// gologshim logger, as every go-libp2p subsystem has) reaches the handler
// Route chose, with its subsystem, and its INFO line does not; before,
// they went to stderr in go-log's format (#12 item 12).
func TestLibp2pLogsReachTheNodesHandler(t *testing.T) {
	var buf bytes.Buffer
	Route(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	log := gologshim.Logger("swarm2-test")
	log.Info("dialing", "peer", "x")
	log.Warn("connection limit reached", "peer", "x")
	if got := buf.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "level=WARN msg=\"connection limit reached\" logger=swarm2-test peer=x") {
		t.Fatalf("node's log: %q, want the WARN line only, with logger=swarm2-test", got)
	}
	// Route again (another node in the process): the same logger follows.
	var second bytes.Buffer
	Route(slog.NewTextHandler(&second, nil))
	log.Error("listener closed")
	if !strings.Contains(second.String(), "level=ERROR msg=\"listener closed\" logger=swarm2-test") {
		t.Fatalf("second node's log: %q", second.String())
	}
}

// TestPubsubLogger: pubsub's logger passes WARN and above, with
// logger=pubsub.
func TestPubsubLogger(t *testing.T) {
	var buf bytes.Buffer
	log := Pubsub(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	log.Info("Blacklisting peer")
	log.Warn("new stream for unknown peer", "peer", "x")
	if got := buf.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "level=WARN msg=\"new stream for unknown peer\" logger=pubsub peer=x") {
		t.Fatalf("log: %q", got)
	}
}
