package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/staydown/staydown/node/notices"
	"github.com/staydown/staydown/protocol"
)

// Orders is what the API needs of a node for blocking orders (SPEC 6.9).
// Errors wrap ErrInvalid, ErrForbidden or ErrNotFound, or are internal.
type Orders interface {
	// IssueOrder publishes a blocking order to one access provider, or
	// one to each (To = "all").
	IssueOrder(ctx context.Context, req notices.OrderRequest) ([]*protocol.Entry, error)
	// LiftOrder lifts one of this node's blocking orders.
	LiftOrder(ctx context.Context, id string) (*protocol.Entry, error)
}

// OrderRequest is the body of POST /v1/orders.
type OrderRequest struct {
	To string `json:"to"` // an access provider's member name, or "all"
	// Domains to block (SPEC 7.7), "*." first for a domain and its
	// subdomains; Subdomains gives every domain its subdomains.
	Domains    []string `json:"domains"`
	Subdomains bool     `json:"subdomains,omitempty"`
	Basis      string   `json:"basis"`
	Category   string   `json:"category,omitempty"`
	Start      string   `json:"start,omitempty"`    // RFC 3339; default now
	Until      string   `json:"until,omitempty"`    // RFC 3339 or a duration from the start; default until lifted
	Deadline   string   `json:"deadline,omitempty"` // time to block and to unblock; default 24h
}

// Order is the request with its domains parsed. Errors name the field.
func (r OrderRequest) Order() (notices.OrderRequest, error) {
	out := notices.OrderRequest{To: r.To, Basis: r.Basis, Category: r.Category, Start: r.Start, Until: r.Until, Deadline: r.Deadline}
	if len(r.Domains) > protocol.MaxSignals {
		return out, fieldErr("domains", "%d domains; at most %d", len(r.Domains), protocol.MaxSignals)
	}
	for i, d := range r.Domains {
		if r.Subdomains && len(d) > 0 && d[0] != '*' {
			d = protocol.SubdomainPrefix + d
		}
		s, err := protocol.ParseSignal(string(protocol.SignalDomain), d)
		if err != nil {
			return out, fieldErr(fmt.Sprintf("domains[%d]", i), "%v", err)
		}
		out.Domains = append(out.Domains, s)
	}
	return out, nil
}

// OrderLiftRequest is the body of POST /v1/orders/lift.
type OrderLiftRequest struct {
	Order string `json:"order"` // the order's id, hex
}

// OrdersPublished is the answer to POST /v1/orders: one order per
// addressee.
type OrdersPublished struct {
	Orders []Published `json:"orders"`
}

// orderRoutes are the blocking orders' routes, merged into NewServer's
// table.
func orderRoutes(s *server) map[string]map[string]endpoint {
	return map[string]map[string]endpoint{
		"/v1/orders":      {http.MethodPost: {publish, s.issueOrder}},
		"/v1/orders/lift": {http.MethodPost: {publish, s.liftOrder}},
	}
}

func (s *server) orders(w http.ResponseWriter) Orders {
	o, ok := s.backend.(Orders)
	if !ok {
		s.fail(w, http.StatusNotImplemented, "this backend has no blocking orders")
	}
	return o
}

func (s *server) issueOrder(w http.ResponseWriter, r *http.Request) {
	o := s.orders(w)
	if o == nil {
		return
	}
	var req OrderRequest
	if err := decodeBody(r.Body, &req); err != nil {
		s.error(w, r, err)
		return
	}
	or, err := req.Order()
	if err != nil {
		s.error(w, r, err)
		return
	}
	es, err := o.IssueOrder(r.Context(), or)
	if err != nil && len(es) == 0 {
		s.error(w, r, err)
		return
	}
	if err != nil {
		s.log.Error("blocking order: published to some access providers only", "published", len(es), "err", err)
	}
	out := OrdersPublished{Orders: []Published{}}
	for _, e := range es {
		out.Orders = append(out.Orders, Published{ID: e.ID.String(), Seq: e.Seq(), Author: memberName(s.backend.Roster(), e.Author)})
	}
	s.reply(w, http.StatusCreated, out)
}

func (s *server) liftOrder(w http.ResponseWriter, r *http.Request) {
	o := s.orders(w)
	if o == nil {
		return
	}
	var req OrderLiftRequest
	if err := decodeBody(r.Body, &req); err != nil {
		s.error(w, r, err)
		return
	}
	e, err := o.LiftOrder(r.Context(), req.Order)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.reply(w, http.StatusCreated, Published{ID: e.ID.String(), Seq: e.Seq(), Author: memberName(s.backend.Roster(), e.Author)})
}
