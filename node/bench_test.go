package node

import (
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/staydown/staydown/node/gossip"
	"github.com/staydown/staydown/node/writer"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// BenchmarkReceive measures what a node does with gossiped entries: check
// each one (decode, roster, signature: in parallel on every core, as the
// pubsub validator workers do) and apply them in batches of writer.MaxBatch, one
// transaction each, as the apply loop does. Reported as entries/s.
func BenchmarkReceive(b *testing.B) {
	const authors = 10
	keys := make([]ed25519.PrivateKey, authors)
	members := make([]protocol.Member, authors)
	for i := range keys {
		seed := make([]byte, 32)
		seed[0] = byte(i + 1)
		keys[i] = ed25519.NewKeyFromSeed(seed)
		members[i] = protocol.Member{Name: fmt.Sprintf("m%d", i), Role: protocol.RoleReferral, AuthorKey: protocol.AuthorKeyOf(keys[i])}
	}
	roster, err := protocol.NewRoster("bench", members)
	if err != nil {
		b.Fatal(err)
	}
	// Sign b.N entries round-robin over the authors, each log chained.
	raws := make([][]byte, b.N)
	heads := make([]protocol.Head, authors)
	for i := range raws {
		a := i % authors
		var sum [32]byte
		copy(sum[:], fmt.Sprintf("%032d", i))
		body := &pb.Entry{Version: 1, Federation: "bench", Seq: heads[a].Seq + 1, TimestampMs: 1_700_000_000_000 + int64(i),
			Payload: &pb.Entry_Addition{Addition: &pb.Addition{
				Signals: []*pb.Signal{{Value: &pb.Signal_Multihash{Multihash: append([]byte{0x12, 0x20}, sum[:]...)}}},
				Labels:  []*pb.Label{{Slug: "graphic-violence"}}}}}
		if heads[a].Seq > 0 {
			body.Prev = heads[a].ID[:]
		}
		e, err := protocol.Sign(keys[a], body)
		if err != nil {
			b.Fatal(err)
		}
		heads[a] = protocol.Head{Seq: e.Seq(), ID: e.ID}
		raws[i] = e.Raw
	}
	st, err := store.Open(filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()

	b.ResetTimer()
	// Checking and applying overlap, as in the node: while the apply loop
	// writes one batch, the validators check the next.
	batches := make(chan []*protocol.Entry, 2)
	go func() {
		defer close(batches)
		workers := runtime.GOMAXPROCS(0)
		for lo := 0; lo < len(raws); lo += writer.MaxBatch {
			hi := min(lo+writer.MaxBatch, len(raws))
			checked := make([]*protocol.Entry, hi-lo)
			var wg sync.WaitGroup
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := lo + w; i < hi; i += workers {
						e, err := gossip.Check(roster.Federation, raws[i])
						if err != nil {
							b.Error(err)
							return
						}
						checked[i-lo] = e
					}
				}(w)
			}
			wg.Wait()
			batches <- checked
		}
	}()
	for batch := range batches {
		res, err := st.Apply(batch)
		if err != nil {
			b.Fatal(err)
		}
		for i, r := range res {
			if r.Outcome != store.Applied {
				b.Fatalf("entry %d of a batch: %s %v", i, r.Outcome, r.Err)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
