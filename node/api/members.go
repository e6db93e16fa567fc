package api

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"

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
	s.onMembership(w, r, http.StatusCreated, func(m Membership) (any, error) {
		var req PeerRequest
		if err := decodeBody(r.Body, &req); err != nil {
			return nil, err
		}
		if err := req.Check(); err != nil {
			return nil, err
		}
		return m.AnnouncePeer(r.Context(), req)
	})
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
	if _, ok := mispEventPath(path); ok {
		return mispEventRoute
	}
	return taxiiRoute(path)
}

// onMembership answers a membership request: 501 when the backend has
// no membership; else call, which checks the request (4xx before the
// backend is asked) and calls the backend, and its error or its result
// with status.
func (s *server) onMembership(w http.ResponseWriter, r *http.Request, status int, call func(m Membership) (any, error)) {
	m, ok := s.backend.(Membership)
	if !ok {
		s.fail(w, http.StatusNotImplemented, "this backend has no membership")
		return
	}
	v, err := call(m)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.reply(w, status, v)
}

func (s *server) members(w http.ResponseWriter, r *http.Request) {
	s.onMembership(w, r, http.StatusOK, func(m Membership) (any, error) {
		if err := checkParams(r.URL.Query()); err != nil {
			return nil, err
		}
		return m.Membership(r.Context())
	})
}

func (s *server) listProposals(w http.ResponseWriter, r *http.Request) {
	s.onMembership(w, r, http.StatusOK, func(m Membership) (any, error) {
		if err := checkParams(r.URL.Query()); err != nil {
			return nil, err
		}
		return m.Proposals(r.Context())
	})
}

// propose decodes and checks a ProposeRequest (400 before the backend
// sees it), then has the backend publish the amendment: 201 with the
// proposal.
func (s *server) propose(w http.ResponseWriter, r *http.Request) {
	s.onMembership(w, r, http.StatusCreated, func(m Membership) (any, error) {
		var req ProposeRequest
		if err := decodeBody(r.Body, &req); err != nil {
			return nil, err
		}
		if err := req.Check(); err != nil {
			return nil, err
		}
		return m.Propose(r.Context(), req)
	})
}

// approve has the backend publish this node's approval of the proposal
// named in the path: 201 with the proposal after it.
func (s *server) approve(w http.ResponseWriter, r *http.Request) {
	s.onMembership(w, r, http.StatusCreated, func(m Membership) (any, error) {
		idHex := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/proposals/"), "/approvals")
		id, err := parseID("id", idHex)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, fieldErr("body", "%v", err)
		}
		if len(bytes.TrimSpace(body)) > 0 {
			if err := decodeBody(bytes.NewReader(body), &ApprovalRequest{}); err != nil {
				return nil, err
			}
		}
		return m.Approve(r.Context(), id)
	})
}
