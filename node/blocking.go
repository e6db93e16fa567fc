package node

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/staydown/staydown/node/blocklist"
	"github.com/staydown/staydown/node/notices"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// blocklistSerial gives the blocklist its RPZ serial: it grows every time
// the blocked domains change (SPEC 24), and is the time of the change in
// Unix seconds when that is more, so that a restarted node, which forgot
// the last serial, still serves a greater one.
type blocklistSerial struct {
	mu     sync.Mutex // guards key and serial
	key    string
	serial uint32
}

func (s *blocklistSerial) next(key string, now time.Time) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if key != s.key || s.serial == 0 {
		s.key, s.serial = key, max(s.serial+1, uint32(now.Unix()))
	}
	return s.serial
}

// IssueOrder implements api.Orders (notices.Notices.IssueOrder).
func (n *Node) IssueOrder(ctx context.Context, req notices.OrderRequest) ([]*protocol.Entry, error) {
	return n.notices.IssueOrder(ctx, req)
}

// LiftOrder implements api.Orders.
func (n *Node) LiftOrder(ctx context.Context, id string) (*protocol.Entry, error) {
	return n.notices.LiftOrder(ctx, id)
}

// Blocklist is the zone of the blocking orders in force for this node now.
func (n *Node) Blocklist(ctx context.Context) (blocklist.Zone, error) {
	now := n.now()
	bs, _, err := n.notices.OrdersInForce(ctx, now.UnixMilli())
	if err != nil {
		return blocklist.Zone{}, err
	}
	// A domain allowlisted by a member this node's policy trusts for the
	// order's label is not blocked (SPEC 24): its allow entry, not yet
	// retracted, names the domain signal exactly.
	keys := make([][]byte, len(bs))
	for i, b := range bs {
		keys[i] = protocol.SignalKey(&pb.Signal{Value: &pb.Signal_Domain{Domain: b.Domain}})
	}
	allows, err := n.store.AllowsInForce(keys)
	if err != nil {
		return blocklist.Zone{}, err
	}
	roster := n.members.Roster()
	var z blocklist.Zone
	for i, b := range bs {
		if !slices.ContainsFunc(allows[i], func(r store.Reason) bool { return n.cfg.Policy.Trusts(roster.NameOf(r.Author), b.Label) }) {
			z.Domains = append(z.Domains, b.Domain)
		}
	}
	z.Serial = n.blocklistSerial.next(blocklist.Key(z.Domains), now)
	return z, nil
}

// serveBlocklist answers GET /blocklist/{format}[?landing=ADDRESS|HOST][&refresh=S]:
// the blocking orders in force for this node as a response-policy zone,
// a hosts file or a list of domains. It needs no token, since resolvers
// fetch it (Unbound's auth-zone url: sends none) and every order is
// public in the logs; it answers 304 to an If-None-Match of its ETag.
func (n *Node) serveBlocklist(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	f, err := blocklist.ParseFormat(r.PathValue("format"))
	if err != nil {
		http.Error(w, "blocklist: "+err.Error(), http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	for k := range q {
		if k != "landing" && k != "refresh" {
			http.Error(w, fmt.Sprintf("blocklist: unknown query parameter %q; use landing or refresh", k), http.StatusBadRequest)
			return
		}
	}
	var o blocklist.Options
	if o.Landing, err = blocklist.ParseLanding(q.Get("landing")); err != nil {
		http.Error(w, "blocklist: "+err.Error(), http.StatusBadRequest)
		return
	}
	if v := q.Get("refresh"); v != "" {
		if o.Refresh, err = strconv.Atoi(v); err != nil || o.Refresh < 1 || o.Refresh > blocklist.MaxRefresh {
			http.Error(w, fmt.Sprintf("blocklist: refresh %q: want seconds, 1 to %d", v, blocklist.MaxRefresh), http.StatusBadRequest)
			return
		}
	}
	z, err := n.Blocklist(r.Context())
	if err != nil {
		n.log.Error("blocklist", "err", err)
		http.Error(w, "blocklist: internal error", http.StatusInternalServerError)
		return
	}
	body := blocklist.Write(z, f, o)
	tag := blocklist.ETag(body)
	w.Header().Set("ETag", tag)
	if r.Header.Get("If-None-Match") == tag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	ct := "text/plain; charset=utf-8"
	if f == blocklist.RPZ {
		ct = "text/dns" // RFC 4027
	}
	w.Header().Set("Content-Type", ct)
	w.Write(body)
}
