package node

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/notices"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// TestBlockingOrdersAcrossNodes: a referral unit orders two access
// providers (to all) on the simulated network; bad orders and bad
// replies are refused before anything is signed; each provider's
// blocklist holds the domains of its orders in force, with a serial that
// grows on change and an ETag; a lift empties it; an order with an end
// leaves it when the end passes; a trusted allow entry takes a domain off.
func TestBlockingOrdersAcrossNodes(t *testing.T) {
	inSim(t, func(t *testing.T) {
		f := newSimFed(t, simDefaults(41), "nru=referral", "ispa=access", "ispb=access", "pf=platform")
		clock := &testClock{}
		for _, cfg := range f.cfgs {
			cfg.Clock = clock.now
		}
		nru, ispa, ispb, pf := f.start("nru"), f.start("ispa"), f.start("ispb"), f.start("pf")
		ctx := context.Background()
		domain := func(s string) *pb.Signal {
			d, err := protocol.ParseSignal("domain", s)
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
		req := notices.OrderRequest{To: "all", Domains: []*pb.Signal{domain("*.propaganda.example")}, Basis: "LCEN art. 6-1"}

		for _, c := range []struct {
			name string
			n    *Node
			req  func(r notices.OrderRequest) notices.OrderRequest
			want error
			says string
		}{
			{"to a platform", nru, func(r notices.OrderRequest) notices.OrderRequest { r.To = "pf"; return r }, api.ErrInvalid, "pf is a platform"},
			{"by a platform", pf, func(r notices.OrderRequest) notices.OrderRequest { return r }, api.ErrForbidden, "only referral units"},
			{"a hash", nru, func(r notices.OrderRequest) notices.OrderRequest {
				s, _ := protocol.ParseSignal("sha256", strings.Repeat("ab", 32))
				r.Domains = []*pb.Signal{s}
				return r
			}, api.ErrInvalid, "not a domain signal"},
			{"no basis", nru, func(r notices.OrderRequest) notices.OrderRequest { r.Basis = " "; return r }, api.ErrInvalid, "basis"},
			{"an end in the past", nru, func(r notices.OrderRequest) notices.OrderRequest {
				r.Until = clock.now().Add(-time.Hour).Format(time.RFC3339)
				return r
			}, api.ErrInvalid, "until"},
		} {
			if _, err := c.n.IssueOrder(ctx, c.req(req)); !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
				t.Errorf("%s: %v; want %v saying %q", c.name, err, c.want, c.says)
			}
		}
		if h, _ := nru.store.Heads(); len(h) != 0 {
			t.Fatalf("a refused order was published: heads %v", h)
		}

		orders, err := nru.IssueOrder(ctx, req)
		if err != nil || len(orders) != 2 {
			t.Fatalf("to all: %d orders, %v", len(orders), err)
		}
		f.waitStored(orders[0].ID, ispa, ispb, pf)
		f.waitStored(orders[1].ID, ispa, ispb, pf)
		mine := map[*Node]protocol.ID{}
		for _, o := range orders {
			switch protocol.AuthorKey(o.Body.GetNotice().Addressee) {
			case ispa.me.AuthorKey:
				mine[ispa] = o.ID
			case ispb.me.AuthorKey:
				mine[ispb] = o.ID
			}
		}
		if len(mine) != 2 {
			t.Fatalf("orders not one to each provider: %v", mine)
		}

		// Replies: only the addressee, only statuses for orders.
		reply := func(n *Node, id protocol.ID, status string) error {
			_, err := n.ReplyNotice(ctx, notices.ReplyRequest{Notice: id.String(), Status: status})
			return err
		}
		if err := reply(ispb, mine[ispa], "blocked"); !errors.Is(err, api.ErrForbidden) {
			t.Errorf("a reply by another provider: %v", err)
		}
		if err := reply(ispa, mine[ispa], "removed"); !errors.Is(err, api.ErrInvalid) {
			t.Errorf("removed to an order: %v", err)
		}
		if err := reply(ispa, mine[ispa], "unblocked"); !errors.Is(err, api.ErrInvalid) {
			t.Errorf("unblocked while in force: %v", err)
		}
		if err := reply(ispa, mine[ispa], "blocked"); err != nil {
			t.Fatal(err)
		}

		get := func(n *Node, etag string) (int, string, string) {
			rec := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodGet, "/blocklist/domains", nil)
			r.SetPathValue("format", "domains")
			if etag != "" {
				r.Header.Set("If-None-Match", etag)
			}
			n.serveBlocklist(rec, r)
			return rec.Code, rec.Body.String(), rec.Header().Get("ETag")
		}
		code, body, etag := get(ispa, "")
		if code != 200 || body != "*.propaganda.example\n" || etag == "" {
			t.Errorf("ispa's blocklist: %d %q %q", code, body, etag)
		}
		if code, _, _ := get(ispa, etag); code != http.StatusNotModified {
			t.Errorf("If-None-Match of the ETag: %d", code)
		}
		z1, err := ispa.Blocklist(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if code, body, _ := get(pf, ""); code != 200 || body != "" {
			t.Errorf("the platform's blocklist: %d %q", code, body)
		}

		// A lift empties ispa's list; ispb's order stands.
		clock.advance(time.Second)
		lift, err := nru.LiftOrder(ctx, mine[ispa].String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nru.LiftOrder(ctx, mine[ispa].String()); !errors.Is(err, api.ErrInvalid) {
			t.Errorf("a second lift: %v", err)
		}
		f.waitStored(lift.ID, ispa)
		if _, body, _ := get(ispa, ""); body != "" {
			t.Errorf("ispa's blocklist after the lift: %q", body)
		}
		z2, err := ispa.Blocklist(ctx)
		if err != nil || z2.Serial <= z1.Serial {
			t.Errorf("serial %d after the lift, %d before (%v)", z2.Serial, z1.Serial, err)
		}
		if _, body, _ := get(ispb, ""); body != "*.propaganda.example\n" {
			t.Errorf("ispb's blocklist: %q", body)
		}
		if err := reply(ispa, mine[ispa], "unblocked"); err != nil {
			t.Errorf("unblocked after the lift: %v", err)
		}

		// An order with an end leaves the list when the end passes.
		ends, err := nru.IssueOrder(ctx, notices.OrderRequest{To: "ispb", Domains: []*pb.Signal{domain("site.example")}, Basis: "b", Until: "1h"})
		if err != nil {
			t.Fatal(err)
		}
		f.waitStored(ends[0].ID, ispb)
		if _, body, _ := get(ispb, ""); body != "*.propaganda.example\nsite.example\n" {
			t.Errorf("ispb's blocklist with the second order: %q", body)
		}
		clock.advance(time.Hour + time.Second)
		if _, body, _ := get(ispb, ""); body != "*.propaganda.example\n" {
			t.Errorf("ispb's blocklist after the end: %q", body)
		}

		// An allow entry by a member the provider's policy trusts (the
		// default trusts every member) takes the domain off its list.
		allow, err := pf.Publish(ctx, &pb.Entry{Payload: &pb.Entry_Allow{Allow: &pb.Allow{
			Signals: []*pb.Signal{domain("*.propaganda.example")}, Category: "news", Reason: "a news site, wrongly named"}}})
		if err != nil {
			t.Fatal(err)
		}
		f.waitStored(allow.ID, ispb)
		if _, body, _ := get(ispb, ""); body != "" {
			t.Errorf("ispb's blocklist after the allow entry: %q", body)
		}
	})
}
