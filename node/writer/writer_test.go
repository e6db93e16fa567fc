package writer

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/prototest"
	"github.com/staydown/staydown/protocol/replica"
	"github.com/staydown/staydown/store"
)

// testWriter is a writer on a fresh store for a roster of one referral
// unit (whose log the tests write) and the node's own member; it counts
// the transactions it commits and reports each commit on commits.
type testWriter struct {
	*Writer
	store    *store.Store
	key      ed25519.PrivateKey // the referral unit's
	received chan *protocol.Entry
	commits  chan int // the pending buffer's size after each commit
	stored   []protocol.ID
}

func newTestWriter(t *testing.T) *testWriter {
	t.Helper()
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	own := ed25519.NewKeyFromSeed(append(make([]byte, ed25519.SeedSize-1), 1))
	roster, err := protocol.NewRoster("test", []protocol.Member{
		{Name: "nru", Role: protocol.RoleReferral, AuthorKey: protocol.AuthorKeyOf(key)},
		{Name: "pa", Role: protocol.RolePlatform, AuthorKey: protocol.AuthorKeyOf(own)},
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	tw := &testWriter{store: st, key: key, received: make(chan *protocol.Entry, 64), commits: make(chan int, 64)}
	done := make(chan struct{})
	tw.Writer = New(Deps{Store: st, Names: roster.NameOf, Federation: "test", Author: own,
		Refresh: func([]*protocol.Entry) (bool, error) { return false, nil },
		Now:     time.Now, Done: done, Log: slog.New(slog.DiscardHandler),
		Hooks:        func([]*protocol.Entry) []func(*store.Writes, []store.Result) error { return nil },
		Stored:       func(e *protocol.Entry, _ store.Result, _ bool) { tw.stored = append(tw.stored, e.ID) },
		Equivocation: func(*replica.EquivocationError) {}, Missing: func() {},
		Counted: func(store.Outcome) {}, Committed: func(time.Duration) {},
		Pending: func(n int) { tw.commits <- n }})
	ran := make(chan struct{})
	go func() { defer close(ran); tw.Run(tw.received) }()
	t.Cleanup(func() {
		close(tw.received)
		<-ran
		close(done)
		if err := st.Check(); err != nil {
			t.Error(err)
		}
		st.Close()
	})
	return tw
}

// deliver hands e to the writer as the gossip reader does and waits for
// the commit; it returns the buffer's size after it.
func (tw *testWriter) deliver(e *protocol.Entry) int {
	tw.received <- e
	return <-tw.commits
}

// TestBufferedRunIsOneTransaction: entries that came before their
// predecessor wait in the buffer; when the predecessor is stored, the
// whole run that now continues the log is stored in the next transaction,
// not one transaction (one fsync) per entry. Under load gossip reorders
// often, and a transaction per buffered entry made receivers fall
// seconds behind (staydown bench --clients 8 --interval 10ms).
func TestBufferedRunIsOneTransaction(t *testing.T) {
	tw := newTestWriter(t)
	log := prototest.Additions(t, tw.key, "test", 10)
	if n := tw.deliver(log[0]); n != 0 {
		t.Fatalf("after seq 1: %d buffered", n)
	}
	for i, e := range log[2:] {
		if n := tw.deliver(e); n != i+1 {
			t.Fatalf("after seq %d: %d buffered, want %d", e.Seq(), n, i+1)
		}
	}
	// Seq 2's transaction releases the whole run from the buffer; the
	// next stores it.
	tw.received <- log[1]
	if n := <-tw.commits; n != 0 {
		t.Fatalf("after seq 2's transaction %d entries are still buffered: the run leaves one entry per transaction", n)
	}
	if n := <-tw.commits; n != 0 {
		t.Fatalf("after the run's transaction: %d buffered", n)
	}
	// A duplicate's transaction comes after whatever else the writer was
	// doing: nothing was.
	if n := tw.deliver(log[0]); n != 0 {
		t.Fatalf("%d buffered", n)
	}
	select {
	case n := <-tw.commits:
		t.Fatalf("another transaction (buffer %d)", n)
	default:
	}
	if len(tw.stored) != 10 {
		t.Fatalf("%d entries stored, want 10", len(tw.stored))
	}
	for i, id := range tw.stored {
		if id != log[i].ID {
			t.Fatalf("stored %d is %s, want seq %d", i, id, i+1)
		}
	}
}

// TestPendingBounds: the out-of-order buffer holds at most replica.MaxGap
// entries of one author, maxPending in all and maxBytes, and gives up
// what it held longer than its age (#12 item 2: a member sending entries
// ahead of its log could pin gigabytes on every node).
func TestPendingBounds(t *testing.T) {
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	other := ed25519.NewKeyFromSeed(append(make([]byte, ed25519.SeedSize-1), 7))
	log := prototest.Additions(t, key, "test", replica.MaxGap+2)
	t0 := time.Unix(1_700_000_000, 0)

	p := newPending(10_000, 1<<30, time.Minute)
	for i, e := range log[1:] {
		if held := p.put(e, t0); held != (i < replica.MaxGap) {
			t.Fatalf("entry %d of one author ahead of its log: held %v", i+1, held)
		}
	}
	if !p.put(prototest.Additions(t, other, "test", 2)[1], t0) {
		t.Fatal("another author's entry refused: the bound is per author")
	}

	size := len(log[1].Raw)
	p = newPending(10_000, 2*size, time.Minute)
	if !p.put(log[1], t0) || !p.put(log[2], t0) || p.put(log[3], t0) {
		t.Fatal("the byte bound does not hold")
	}
	if p.take(log[1].Author, 2) == nil || !p.put(log[3], t0) {
		t.Fatal("taking an entry does not free its bytes")
	}

	p = newPending(2, 1<<30, time.Minute)
	if !p.put(log[1], t0) || !p.put(log[2], t0) || p.put(log[3], t0) {
		t.Fatal("the count bound does not hold")
	}

	p = newPending(10_000, 1<<30, time.Minute)
	p.put(log[1], t0)
	p.put(log[2], t0.Add(30*time.Second))
	p.put(log[3], t0.Add(40*time.Second))
	p.take(log[2].Author, 3)
	if n := p.expire(t0.Add(time.Minute)); n != 0 {
		t.Fatalf("%d expired at exactly the age", n)
	}
	if n := p.expire(t0.Add(time.Minute + time.Millisecond)); n != 1 || p.len() != 1 {
		t.Fatalf("%d expired, %d left; want 1, 1", n, p.len())
	}
	if n := p.expire(t0.Add(2 * time.Minute)); n != 1 || p.len() != 0 || p.bytes != 0 || len(p.m) != 0 {
		t.Fatalf("%d expired, %d left, %d bytes, %d authors", n, p.len(), p.bytes, len(p.m))
	}
}

// TestHoldAppliesAnEntryAdmittedMeanwhile: the validator asks the writer
// to hold an entry whose author was no member when it looked; if the
// author is one by the time the writer takes it (the admission passed in
// between), the writer applies it at once instead of holding it until an
// admission that already came.
func TestHoldAppliesAnEntryAdmittedMeanwhile(t *testing.T) {
	tw := newTestWriter(t)
	e := prototest.Additions(t, tw.key, "test", 1)[0]
	tw.Hold(e)
	select {
	case <-tw.commits:
	case <-time.After(10 * time.Second):
		t.Fatal("the writer held an entry whose author is a member: no commit")
	}
	if len(tw.stored) != 1 || tw.stored[0] != e.ID {
		t.Fatalf("stored %v, want %s", tw.stored, e.ID)
	}
}

// TestProposeAllIsOneTransaction: the bodies of one ProposeAll follow
// each other in the node's log, in the order given, and share one
// transaction (one fsync): an import of a thousand entries paid a commit
// each when it proposed them one by one (BenchmarkImportMillion).
func TestProposeAllIsOneTransaction(t *testing.T) {
	tw := newTestWriter(t)
	bodies := make([]*pb.Entry, 5)
	for i := range bodies {
		bodies[i] = prototest.Addition(prototest.SHA256(t, uint64(i+1)))
	}
	es, errs := tw.ProposeAll(context.Background(), bodies)
	if n := <-tw.commits; n != 0 {
		t.Fatalf("%d buffered", n)
	}
	select {
	case <-tw.commits:
		t.Fatal("the bodies of one ProposeAll took more than one transaction")
	default:
	}
	for i, e := range es {
		if errs[i] != nil {
			t.Fatalf("body %d: %v", i, errs[i])
		}
		if e.Seq() != uint64(i+1) || !proto.Equal(e.Body.GetAddition(), bodies[i].GetAddition()) {
			t.Fatalf("entry %d is seq %d carrying %v, want seq %d carrying body %d", i, e.Seq(), e.Body.GetAddition().GetSignals(), i+1, i)
		}
		if tw.stored[i] != e.ID {
			t.Fatalf("stored %d is %s, want %s", i, tw.stored[i], e.ID)
		}
	}
	// Propose is ProposeAll of one: it continues the log.
	e, err := tw.Propose(context.Background(), prototest.Addition(prototest.SHA256(t, 6)))
	if err != nil || e.Seq() != 6 {
		t.Fatalf("Propose after ProposeAll: %v, %v", e, err)
	}
	<-tw.commits
}
