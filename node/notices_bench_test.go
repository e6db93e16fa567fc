package node

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
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
	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/notices"
	"github.com/staydown/staydown/node/tokens"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// noticeBench starts a platform node whose store holds nNotices sealed
// notices from a referral unit and about three replies to each: received
// for all; then removed and a redundant disabled for nine in ten; a
// clarification request and another received, or two more received, for
// the rest (which stay open: 1,000 of 10,000). The referral unit's
// log is signed here and applied straight to the store, after nFiller
// additions of one sha256 signal each (a store of that many more
// entries).
func noticeBench(b *testing.B, nNotices, nFiller int) (*Node, int) {
	b.Helper()
	dir := b.TempDir()
	roster := filepath.Join(dir, "roster.toml")
	var blocks strings.Builder
	for _, m := range []struct {
		name string
		role protocol.Role
	}{{"nru", protocol.RoleReferral}, {"pfa", protocol.RolePlatform}} {
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
	cfg, err := config.Load(filepath.Join(dir, "pfa"))
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now().Add(-24 * time.Hour)
	cfg.Clock = func() time.Time { return t0.Add(12 * time.Hour) }
	n, err := Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close() })

	pfa := n.me.AuthorKey
	recipients := protocol.NoticeRecipients(n.Roster(), protocol.AuthorKeyOf(nruKey), pfa)
	var head protocol.Head
	var batch []*protocol.Entry
	sign := func(ts int64, body *pb.Entry) *protocol.Entry {
		body.Version, body.Federation, body.Seq, body.TimestampMs = protocol.Version, "test", head.Seq+1, ts
		if head.Seq > 0 {
			body.Prev = head.ID[:]
		}
		e, err := protocol.Sign(nruKey, body)
		if err != nil {
			b.Fatal(err)
		}
		head = protocol.Head{Author: e.Author, Seq: e.Seq(), ID: e.ID}
		batch = append(batch, e)
		return e
	}
	flush := func() {
		res, err := n.store.Apply(batch)
		if err != nil {
			b.Fatal(err)
		}
		for i, r := range res {
			if r.Outcome.String() != "applied" {
				b.Fatalf("entry %d: %s %v", i, r.Outcome, r.Err)
			}
		}
		batch = batch[:0]
	}
	for i := range nFiller {
		sum := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i)))
		sig, err := protocol.ParseSignal("sha256", hex.EncodeToString(sum[:]))
		if err != nil {
			b.Fatal(err)
		}
		sign(t0.Add(-time.Hour).UnixMilli()+int64(i)/1000, &pb.Entry{Payload: &pb.Entry_Addition{Addition: &pb.Addition{
			Signals: []*pb.Signal{sig}, Labels: []*pb.Label{{Slug: "attacker-manifesto"}}}}})
		if len(batch) == 5000 {
			flush()
		}
	}
	flush()
	var ids []protocol.ID
	for i := range nNotices {
		ts := t0.Add(time.Duration(i) * time.Second).UnixMilli()
		sealed, err := protocol.Seal(&pb.NoticeDetails{Urls: []string{fmt.Sprintf("https://video.example/v/%d", i)}}, recipients, rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		e := sign(ts, &pb.Entry{Payload: &pb.Entry_Notice{Notice: &pb.Notice{Addressee: pfa[:], Category: &pb.Label{Slug: "attacker-manifesto"},
			LegalBasis: "TCO art. 3", Binding: true, DeadlineMs: ts + time.Hour.Milliseconds(), Details: sealed}}})
		ids = append(ids, e.ID)
		if len(batch) == 1000 {
			flush()
		}
	}
	flush()
	replies := 0
	reply := func(id protocol.ID, ts int64, st pb.ReplyStatus) {
		_, err := n.store.Append(pfa, func(h protocol.Head) (*protocol.Entry, error) {
			body := &pb.Entry{Version: protocol.Version, Federation: "test", Seq: h.Seq + 1, TimestampMs: ts,
				Payload: &pb.Entry_NoticeReply{NoticeReply: &pb.NoticeReply{Notice: id[:], Status: st}}}
			if h.Seq > 0 {
				body.Prev = h.ID[:]
			}
			return protocol.Sign(n.author, body)
		})
		if err != nil {
			b.Fatal(err)
		}
		replies++
	}
	for i, id := range ids {
		ts := t0.Add(time.Duration(i)*time.Second + time.Minute).UnixMilli()
		reply(id, ts, pb.ReplyStatus_REPLY_STATUS_RECEIVED)
		switch {
		case i%10 != 0:
			reply(id, ts+1000, pb.ReplyStatus_REPLY_STATUS_REMOVED)
			reply(id, ts+2000, pb.ReplyStatus_REPLY_STATUS_DISABLED)
		case i%20 == 0:
			reply(id, ts+1000, pb.ReplyStatus_REPLY_STATUS_CLARIFICATION_REQUESTED)
			reply(id, ts+2000, pb.ReplyStatus_REPLY_STATUS_RECEIVED)
		default:
			reply(id, ts+1000, pb.ReplyStatus_REPLY_STATUS_RECEIVED)
			reply(id, ts+2000, pb.ReplyStatus_REPLY_STATUS_RECEIVED)
		}
	}
	// The entries went straight to the store: load the notice book as a
	// start-up does.
	start := time.Now()
	if err = n.notices.Reload(); err != nil {
		b.Fatal(err)
	}
	b.Logf("notice book loaded in %v", time.Since(start).Round(time.Millisecond))
	return n, replies
}

// BenchmarkNotices: a platform's inbox (`notices --open`) and the
// transparency report over 10,000 notices and about 30,000 replies.
// Targets: open inbox < 50 ms, report < 1 s.
func BenchmarkNotices(b *testing.B) {
	n, replies := noticeBench(b, 10_000, 0)
	b.Logf("%d notices, %d replies", 10_000, replies)
	ctx := context.Background()
	start := time.Now()
	if _, err := n.ListNotices(ctx, notices.Query{Open: true}); err != nil {
		b.Fatal(err)
	}
	b.Logf("first open inbox (opens 1,000 sealed details): %v", time.Since(start).Round(time.Millisecond))
	b.Run("open-inbox", func(b *testing.B) {
		for b.Loop() {
			v, err := n.ListNotices(ctx, notices.Query{Open: true})
			if err != nil || len(v) != 1000 {
				b.Fatalf("%d open notices, %v; want 1000", len(v), err)
			}
		}
	})
	// The same over loopback HTTP, JSON encoding included: what
	// `staydown notices --open` waits for.
	srv := httptest.NewServer(api.NewServer(n, tokens.Static("bench-token"), slog.New(slog.DiscardHandler)))
	defer srv.Close()
	b.Run("open-inbox-http", func(b *testing.B) {
		for b.Loop() {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/notices?open=true", nil)
			req.Header.Set("Authorization", "Bearer bench-token")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			var list api.NoticeList
			err = json.NewDecoder(res.Body).Decode(&list)
			res.Body.Close()
			if err != nil || len(list.Notices) != 1000 {
				b.Fatalf("%d notices, %v", len(list.Notices), err)
			}
		}
	})
	b.Run("report", func(b *testing.B) {
		for b.Loop() {
			r, err := n.Report(ctx, 0, 0)
			if err != nil || r.Totals.NoticesReceived != 10_000 {
				b.Fatalf("%v %+v", err, r.Totals)
			}
		}
	})
}
