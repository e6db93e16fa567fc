package node

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// BenchmarkBlocklistRPZ100k: an access provider's node whose store holds
// 100 blocking orders of 1,000 domains each (100,000 domains, half with
// their subdomains), signed here and applied straight to the store;
// each op is GET /blocklist/rpz: the orders in force read from the store,
// their lifecycles, the sort and the zone written. Reports the zone's
// size.
func BenchmarkBlocklistRPZ100k(b *testing.B) {
	dir := b.TempDir()
	roster := filepath.Join(dir, "roster.toml")
	var blocks strings.Builder
	for _, m := range []struct {
		name string
		role protocol.Role
	}{{"nru", protocol.RoleReferral}, {"isp", protocol.RoleAccess}} {
		_, block, err := config.Init(config.InitOptions{
			Dir: filepath.Join(dir, m.name), Name: m.name, Role: m.role, Federation: "test",
			Listen: []string{"/ip4/127.0.0.1/tcp/0"}, API: loopbackAddr(b), Roster: roster,
		})
		if err != nil {
			b.Fatal(err)
		}
		blocks.WriteString(addrsLine.ReplaceAllString(block, "addrs = []") + "\n")
	}
	if err := os.WriteFile(roster, []byte(blocks.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	nruCfg, err := config.Load(filepath.Join(dir, "nru"))
	if err != nil {
		b.Fatal(err)
	}
	nruKey, err := nruCfg.AuthorKey()
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load(filepath.Join(dir, "isp"))
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now().Add(-time.Hour)
	n, err := Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close() })
	isp := n.me.AuthorKey
	var head protocol.Head
	var batch []*protocol.Entry
	for o := range 100 {
		sigs := make([]*pb.Signal, 1000)
		for i := range sigs {
			sigs[i] = &pb.Signal{Value: &pb.Signal_Domain{Domain: &pb.Domain{Name: fmt.Sprintf("site-%03d-%03d.example", o, i), Subdomains: i%2 == 0}}}
		}
		ts := t0.Add(time.Duration(o) * time.Second).UnixMilli()
		body := &pb.Entry{Version: protocol.Version, Federation: "test", Seq: head.Seq + 1, TimestampMs: ts,
			Payload: &pb.Entry_Notice{Notice: &pb.Notice{Addressee: isp[:], Signals: sigs, Category: &pb.Label{Slug: "glorification-of-terrorist-acts"},
				LegalBasis: "LCEN art. 6-1", Binding: true, DeadlineMs: ts + 24*time.Hour.Milliseconds(), Blocking: &pb.Blocking{}}}}
		if head.Seq > 0 {
			body.Prev = head.ID[:]
		}
		e, err := protocol.Sign(nruKey, body)
		if err != nil {
			b.Fatal(err)
		}
		head = protocol.Head{Author: e.Author, Seq: e.Seq(), ID: e.ID}
		batch = append(batch, e)
	}
	res, err := n.store.Apply(batch)
	if err != nil {
		b.Fatal(err)
	}
	for i, r := range res {
		if r.Outcome.String() != "applied" {
			b.Fatalf("order %d: %s %v", i, r.Outcome, r.Err)
		}
	}
	var size int
	for b.Loop() {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/blocklist/rpz", nil)
		r.SetPathValue("format", "rpz")
		n.serveBlocklist(rec, r)
		if rec.Code != http.StatusOK {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
		size = rec.Body.Len()
	}
	if want := 4 + 150_000; strings.Count(rpzOf(n), "\n") < want {
		b.Fatalf("the zone has fewer than %d lines", want)
	}
	b.ReportMetric(float64(size), "bytes")
}

// rpzOf is the RPZ n serves now.
func rpzOf(n *Node) string {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/blocklist/rpz", nil)
	r.SetPathValue("format", "rpz")
	n.serveBlocklist(w, r)
	return w.Body.String()
}
