package notices

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/staydown/staydown/node/kind"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// DefaultOrderDeadline is how long an access provider has to block (and,
// once the order ends, to unblock) when the issuer names no deadline.
const DefaultOrderDeadline = 24 * time.Hour

// DefaultOrderCategory is a blocking order's label when the issuer names
// none: French law's ground for blocking a site (provocation to or
// glorification of terrorist acts).
const DefaultOrderCategory = "glorification-of-terrorist-acts"

// ToAll addresses a blocking order to every access provider of the roster.
const ToAll = "all"

// OrderRequest is a blocking order to issue (POST /v1/orders).
type OrderRequest struct {
	To       string       // an access provider's member name, or ToAll
	Domains  []*pb.Signal // domain signals
	Basis    string       // legal basis, public
	Category string       // a content label; "" is DefaultOrderCategory
	Start    string       // RFC 3339; "" is now
	Until    string       // RFC 3339 time or duration from the start; "" is until lifted
	Deadline string       // time allowed to block and to unblock; "" is DefaultOrderDeadline
}

// IssueOrder signs and publishes a blocking order (SPEC 6.9) to one
// access provider, or one to each of the roster's access providers
// (To = "all"), and returns them.
func (n *Notices) IssueOrder(ctx context.Context, req OrderRequest) ([]*protocol.Entry, error) {
	if !protocol.MayWrite(n.d.Self().Role, protocol.KindNotice) {
		return nil, fmt.Errorf("%w: a %s may not issue blocking orders; only referral units do", kind.ErrForbidden, n.d.Self().Role)
	}
	roster := n.d.Roster()
	var access []string
	for _, m := range roster.Members {
		if m.Role == protocol.RoleAccess {
			access = append(access, m.Name)
		}
	}
	var to []protocol.Member
	switch m, ok := roster.ByName(req.To); {
	case req.To == "":
		return nil, invalid("to", "required: an access provider's member name (%s) or %q", strings.Join(access, ", "), ToAll)
	case req.To == ToAll:
		if len(access) == 0 {
			return nil, invalid("to", "the roster has no access provider (members: %s)", roster.Names())
		}
		for _, name := range access {
			m, _ := roster.ByName(name)
			to = append(to, m)
		}
	case !ok:
		return nil, invalid("to", "%q is not in the roster (%s)", req.To, roster.Names())
	case m.Role != protocol.RoleAccess:
		return nil, invalid("to", "%s is a %s; blocking orders go to access providers (%s)", m.Name, m.Role, strings.Join(access, ", "))
	default:
		to = []protocol.Member{m}
	}
	if len(req.Domains) == 0 {
		return nil, invalid("domains", "required: at least one domain to block")
	}
	for i, s := range req.Domains {
		if s.GetDomain() == nil {
			return nil, invalid(fmt.Sprintf("domains[%d]", i), "%s is not a domain signal", protocol.FormatSignal(s))
		}
	}
	if strings.TrimSpace(req.Basis) == "" {
		return nil, invalid("basis", "required: the legal basis, e.g. the law and article")
	}
	cat, err := protocol.ParseLabel(cmpOr(req.Category, DefaultOrderCategory))
	if err != nil {
		return nil, invalid("category", "%v", err)
	}
	now := n.d.Now()
	bl := &pb.Blocking{}
	start := now
	if req.Start != "" {
		t, err := time.Parse(time.RFC3339, req.Start)
		if err != nil {
			return nil, invalid("start", "%q is not an RFC 3339 time", req.Start)
		}
		start, bl.StartMs = t, t.UnixMilli()
	}
	if req.Until != "" {
		end, err := parseDeadline(req.Until, start)
		if err != nil {
			return nil, invalid("until", "%v", err)
		}
		if !end.After(now) {
			return nil, invalid("until", "%q is not in the future", req.Until)
		}
		bl.EndMs = end.UnixMilli()
	}
	deadline := now.Add(DefaultOrderDeadline)
	if req.Deadline != "" {
		if deadline, err = parseDeadline(req.Deadline, now); err != nil {
			return nil, invalid("deadline", "%v", err)
		}
	}
	var out []*protocol.Entry
	for _, m := range to {
		e, err := n.d.Publish(ctx, &pb.Entry{Payload: &pb.Entry_Notice{Notice: &pb.Notice{
			Addressee: m.AuthorKey[:], Signals: req.Domains, Category: cat, LegalBasis: req.Basis,
			Binding: true, DeadlineMs: deadline.UnixMilli(), Blocking: bl,
		}}})
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// LiftOrder lifts one of this node's blocking orders: an update that
// withdraws it (SPEC 6.9). Its addressee then unblocks and says so.
func (n *Notices) LiftOrder(ctx context.Context, idHex string) (*protocol.Entry, error) {
	t, err := n.notice("order", idHex)
	if err != nil {
		return nil, err
	}
	if t.Notice.Body.GetNotice().GetBlocking() == nil {
		return nil, invalid("order", "%s is a takedown notice, not a blocking order; withdraw it with an update", t.Notice.ID)
	}
	for _, u := range t.Updates {
		if p := u.Body.GetNoticeUpdate(); p.Withdraw && u.Author == t.Notice.Author {
			return nil, invalid("order", "%s was already lifted by %s", t.Notice.ID, u.ID)
		}
	}
	return n.UpdateNotice(ctx, UpdateRequest{Notice: idHex, Withdraw: true})
}

// checkReplyKind refuses a reply whose status does not suit the notice:
// blocked and unblocked answer blocking orders, removed and disabled
// takedown notices; unblocked comes once the order has ended.
func (n *Notices) checkReplyKind(t store.NoticeThread, status pb.ReplyStatus) error {
	order := t.Notice.Body.GetNotice().GetBlocking() != nil
	switch status {
	case pb.ReplyStatus_REPLY_STATUS_BLOCKED, pb.ReplyStatus_REPLY_STATUS_UNBLOCKED:
		if !order {
			return invalid("status", "%s answers blocking orders; %s is a takedown notice", protocol.ReplyStatuses[status], t.Notice.ID)
		}
		if status == pb.ReplyStatus_REPLY_STATUS_UNBLOCKED {
			now := n.d.Now().UnixMilli()
			if st := protocol.OrderLifecycle(t.Notice, t.Updates, t.Replies, now); st.InForce(now) || st.StartMs > now {
				return invalid("status", "order %s is still in force: unblock once it is lifted or ends", t.Notice.ID)
			}
		}
	case pb.ReplyStatus_REPLY_STATUS_REMOVED, pb.ReplyStatus_REPLY_STATUS_DISABLED:
		if order {
			return invalid("status", "%s is a blocking order: answer blocked, not-executed or received", t.Notice.ID)
		}
	}
	return nil
}

// Blocked is a domain signal a blocking order in force tells this node to
// block.
type Blocked struct {
	Domain *pb.Domain
	Order  protocol.ID
	Label  string // the order's category, protocol.FormatLabel form
}

// OrdersInForce returns the domains of the blocking orders addressed to
// this node that are in force at nowMs (started, not ended, not lifted)
// and that it has not answered not-executed, sorted by name and then
// subdomains first; a domain two orders name comes once (the first order
// by id). It also returns the latest time at which what it returns
// changed, for a zone's serial: the latest start, end or entry of any
// order of this node not in the future.
func (n *Notices) OrdersInForce(ctx context.Context, nowMs int64) ([]Blocked, int64, error) {
	ids, err := n.d.Store.NoticesTo(n.d.Self().AuthorKey)
	if err != nil {
		return nil, 0, err
	}
	var out []Blocked
	var changed int64
	seen := map[string]bool{}
	err = n.d.Store.Threads(ids, func(t store.NoticeThread) error {
		p := t.Notice.Body.GetNotice()
		if p.GetBlocking() == nil {
			return ctx.Err()
		}
		st := protocol.OrderLifecycle(t.Notice, t.Updates, t.Replies, nowMs)
		for _, ms := range []int64{t.Notice.Body.TimestampMs, st.StartMs, st.EndMs} {
			if ms <= nowMs {
				changed = max(changed, ms)
			}
		}
		for _, e := range append(slices.Clone(t.Updates), t.Replies...) {
			if e.Body.TimestampMs <= nowMs {
				changed = max(changed, e.Body.TimestampMs)
			}
		}
		if !st.InForce(nowMs) || st.State == protocol.NoticeNotExecuted {
			return ctx.Err()
		}
		for _, s := range p.Signals {
			d := s.GetDomain()
			if k := protocol.FormatDomain(d); !seen[k] {
				seen[k] = true
				out = append(out, Blocked{Domain: d, Order: t.Notice.ID, Label: protocol.FormatLabel(p.Category)})
			}
		}
		return ctx.Err()
	})
	slices.SortFunc(out, func(a, b Blocked) int {
		if c := strings.Compare(a.Domain.Name, b.Domain.Name); c != 0 {
			return c
		}
		if a.Domain.Subdomains != b.Domain.Subdomains {
			if a.Domain.Subdomains {
				return -1
			}
			return 1
		}
		return 0
	})
	return out, changed, err
}
