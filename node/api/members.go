package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/staydown/staydown/node/roster"
	"github.com/staydown/staydown/protocol"
)

// Membership is what the API needs of a node for the federation's
// membership (SPEC 12): the roster in force and its history, the
// amendments that wait for votes, and this node's votes. Propose and
// Approve sign and publish an entry of this node's log; before that they
// refuse, with an error that wraps ErrForbidden (this node does not vote
// at the version in force), ErrNotFound (no such member, no such pending
// proposal) or ErrConflict (the amendment cannot apply to the version in
// force; this node voted at this version already: a second vote would be
// evidence against it), and nothing is published.
type Membership interface {
	// Membership is the membership in force.
	Membership(ctx context.Context) (MembersView, error)
	// Proposals are the amendments of the version in force that wait for
	// votes.
	Proposals(ctx context.Context) (ProposalList, error)
	// Propose publishes the amendment req asks for, of the version in
	// force, and returns it as now recorded: pending, or passed.
	Propose(ctx context.Context, req ProposeRequest) (ProposalView, error)
	// Approve publishes this node's approval of proposal id and returns
	// the proposal after it.
	Approve(ctx context.Context, id protocol.ID) (ProposalView, error)
	// AnnouncePeer publishes this node's peer ID and the addresses req
	// gives (none: the ones it listens on) as its member's (SPEC 12.4, a
	// peer-update: no vote), and returns what it published.
	AnnouncePeer(ctx context.Context, req PeerRequest) (PeerAnnounced, error)
}

// announcePeer publishes this node's peer ID and addresses: 201.
func (s *server) announcePeer(w http.ResponseWriter, r *http.Request) {
	m := s.membership(w)
	if m == nil {
		return
	}
	var req PeerRequest
	if err := decodeBody(r.Body, &req); err != nil {
		s.error(w, r, err)
		return
	}
	if len(req.Addrs) > protocol.MaxAddrs {
		s.error(w, r, fieldErr("addrs", "%d addresses, at most %d", len(req.Addrs), protocol.MaxAddrs))
		return
	}
	for i, a := range req.Addrs {
		if _, err := ma.NewMultiaddr(a); err != nil || strings.Contains(a, "/p2p/") {
			s.error(w, r, fieldErr(fmt.Sprintf("addrs[%d]", i), "%q is not a multiaddr without /p2p/, like \"/ip4/192.0.2.1/tcp/4001\"", a))
			return
		}
	}
	p, err := m.AnnouncePeer(r.Context(), req)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.reply(w, http.StatusCreated, p)
}

// The membership types of the domain (package node/roster). Their JSON is
// the API's (openapi.yaml).
type (
	MembersView    = roster.View
	MemberView     = roster.Member
	MemberKey      = roster.Key
	RemovedMember  = roster.Removed
	VoteConflict   = roster.Conflict
	RosterVersion  = roster.Version
	VotingRule     = roster.Rule
	ProposalList   = roster.ProposalList
	ProposalView   = roster.Proposal
	AmendmentView  = roster.Amendment
	MemberBlock    = roster.Block
	Removal        = roster.Removal
	RoleChange     = roster.RoleChange
	Revocation     = roster.Revocation
	ProposeRequest = roster.ProposeRequest
	PeerRequest    = roster.PeerRequest
	PeerAnnounced  = roster.PeerAnnounced
)

// ApprovalRequest is the body of POST /v1/proposals/{id}/approvals: empty,
// or an empty JSON object (the proposal is in the path).
type ApprovalRequest struct{}

// approvalsRoute is the route of POST /v1/proposals/{id}/approvals.
const approvalsRoute = "/v1/proposals/{id}/approvals"

// route is the key of s.routes that serves path: the path itself, or a
// pattern with a parameter in it.
func route(path string) string {
	if rest, ok := strings.CutPrefix(path, "/v1/proposals/"); ok {
		if id, ok := strings.CutSuffix(rest, "/approvals"); ok && id != "" && !strings.Contains(id, "/") {
			return approvalsRoute
		}
	}
	return path
}

// membership is the backend's Membership, or nil after answering 501.
func (s *server) membership(w http.ResponseWriter) Membership {
	m, ok := s.backend.(Membership)
	if !ok {
		s.fail(w, http.StatusNotImplemented, "this backend has no membership")
	}
	return m
}

func (s *server) members(w http.ResponseWriter, r *http.Request) {
	m := s.membership(w)
	if m == nil {
		return
	}
	if err := checkParams(r.URL.Query()); err != nil {
		s.error(w, r, err)
		return
	}
	v, err := m.Membership(r.Context())
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.reply(w, http.StatusOK, v)
}

func (s *server) listProposals(w http.ResponseWriter, r *http.Request) {
	m := s.membership(w)
	if m == nil {
		return
	}
	if err := checkParams(r.URL.Query()); err != nil {
		s.error(w, r, err)
		return
	}
	l, err := m.Proposals(r.Context())
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.reply(w, http.StatusOK, l)
}

// propose decodes and checks a ProposeRequest (400 before the backend
// sees it), then has the backend publish the amendment: 201 with the
// proposal.
func (s *server) propose(w http.ResponseWriter, r *http.Request) {
	m := s.membership(w)
	if m == nil {
		return
	}
	var req ProposeRequest
	if err := decodeBody(r.Body, &req); err != nil {
		s.error(w, r, err)
		return
	}
	if err := req.Check(); err != nil {
		s.error(w, r, err)
		return
	}
	p, err := m.Propose(r.Context(), req)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.reply(w, http.StatusCreated, p)
}

// approve has the backend publish this node's approval of the proposal
// named in the path: 201 with the proposal after it.
func (s *server) approve(w http.ResponseWriter, r *http.Request) {
	m := s.membership(w)
	if m == nil {
		return
	}
	idHex := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/proposals/"), "/approvals")
	id, err := parseID("id", idHex)
	if err != nil {
		s.error(w, r, err)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.error(w, r, fieldErr("body", "%v", err))
		return
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := decodeBody(bytes.NewReader(body), &ApprovalRequest{}); err != nil {
			s.error(w, r, err)
			return
		}
	}
	p, err := m.Approve(r.Context(), id)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.reply(w, http.StatusCreated, p)
}
