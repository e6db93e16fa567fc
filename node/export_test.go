package node

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/staydown/staydown/protocol/export"
	"github.com/staydown/staydown/protocol/prototest"
	"github.com/staydown/staydown/store/storetest"
)

// gatedWriter takes the first after bytes, then blocks in Write (saying
// so on blocked) until release is closed.
type gatedWriter struct {
	after            int
	blocked, release chan struct{}
	once             sync.Once
	buf              bytes.Buffer
}

func (w *gatedWriter) Write(p []byte) (int, error) {
	if w.buf.Len()+len(p) > w.after {
		w.once.Do(func() { close(w.blocked) })
		<-w.release
	}
	return w.buf.Write(p)
}

// TestExportHoldsNoTransactionWhileWriting: while the client of an export
// does not read (its writer blocks), no read transaction of the store is
// open (#12 item 1: a slow reader of /v1/export held one, and once the
// store file had to grow, every read and write of the node queued behind
// it). The export is whole once the client reads on.
func TestExportHoldsNoTransactionWhileWriting(t *testing.T) {
	f := newFederation(t, "nru=referral")
	cfg := f.cfgs["nru"]
	key, err := cfg.AuthorKey()
	if err != nil {
		t.Fatal(err)
	}
	// About 2 MB of log: more than the export writer's own buffer
	// (1 MiB), so that it reaches the client while the log is read.
	const entries = 12000
	storetest.Seed(t, cfg.StorePath, prototest.Additions(t, key, cfg.Federation, entries))
	n := f.start("nru")

	w := &gatedWriter{after: 1 << 20, blocked: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- n.Export(context.Background(), w, nil) }()
	select {
	case <-w.blocked:
	case err := <-done:
		t.Fatalf("the export ended (%v) before writing %d bytes", err, w.after)
	}
	if open := n.store.OpenReads(); open != 0 {
		t.Errorf("%d read transactions open while the export waits for its reader", open)
	}
	close(w.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r, err := export.NewReader(&w.buf)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Kind == export.KindEntry {
			got++
		}
	}
	if got != entries {
		t.Errorf("%d entries exported, want %d", got, entries)
	}
}
