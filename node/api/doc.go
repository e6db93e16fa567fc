// Package api is the node's local HTTP API under /v1/, and the JSON types
// its one client, the staydown CLI, shares with it. openapi.yaml (served
// at GET /v1/openapi.yaml) is the reference; this comment is the summary.
//
// # Basics
//
// Writes append an entry to this node's log through [Backend.Publish] and
// answer 201 with a [Published]:
//
//	POST /v1/additions    AdditionRequest
//	POST /v1/retractions  RetractionRequest
//	POST /v1/disputes     DisputeRequest
//	POST /v1/allows       AllowRequest
//
// Reads:
//
//	POST /v1/match        MatchRequest (1 to 1000 signals) -> MatchResults
//	GET  /v1/match?type=T&value=V                         -> MatchResult
//	POST /v1/match/file   the file's bytes (up to 32 MiB)  -> FileMatch
//	POST /v1/watchlist    WatchRequest (up to 100,000)     -> WatchResult
//	POST /v1/watchlist/remove  WatchRequest                -> UnwatchResult
//	GET  /v1/watchlist?limit=N&after=CURSOR               -> Watchlist
//	GET  /v1/alerts?since=SEQ                             -> AlertList
//
// Every MatchResult carries the verdict of the node's local policy, and
// for PDQ each attestation's stored hash and distance. For a vpdq video
// each attestation carries in video how its stored video compares (query
// and compared percentages, frame counts, matching segments in seconds),
// and frame_hits lists the stored images near some frame, with the
// frames' times. /v1/match/file
// hashes the bytes with [filehash.Read] (sha256, md5, and PDQ with its quality
// for an image, with its rotations and mirror images unless
// ?dihedral=false) and matches the hashes.
//
//	GET  /v1/status                                       -> Status
//	GET  /v1/openapi.yaml
//
// The membership (SPEC.md section 12), through [Membership]: the roster
// in force and its history, the amendments that wait for votes, and this
// node's votes, each signed and published as an entry of its log:
//
//	GET  /v1/members                                      -> MembersView
//	GET  /v1/proposals                                    -> ProposalList
//	POST /v1/proposals   ProposeRequest (one change)      -> 201 ProposalView
//	POST /v1/proposals/{id}/approvals  (empty body)       -> 201 ProposalView
//
// A ProposeRequest is checked (ProposeRequest.Check: names, roles, hex
// keys, the block's peer ID and multiaddrs, the rule's threshold) before
// the node sees it. The node then refuses, before it signs anything, a
// vote it may not cast: 403 when it does not vote at the version in
// force, 404 for an unknown member or no such pending proposal, 409 when
// the amendment cannot apply to the version in force, the proposal
// passed already, or this node voted at this version already (a second
// vote at one version is evidence against it, SPEC 12.3).
//
// # Authentication
//
// Every request under /v1/, reads included, must carry
// "Authorization: Bearer TOKEN" with the token that `staydown init` wrote
// in the node's directory (api.token, scope admin) or one that `staydown
// token add` made (its hash kept in api.tokens, with its scope: package
// node/tokens); otherwise the answer is 401. A token whose scope does not
// allow the route (each has one, [Route].Scope) is answered 403. Tokens
// are compared in constant time. The server does no TLS: the node binds the
// API to loopback unless its operator configures otherwise.
//
// # Errors
//
// Every error answer is an [ErrorBody], {"error": "..."}, naming the field
// as a JSON path and the problem, e.g.
// "signals[0].value: bad signal: sha256: want 64 hex characters, got 10".
// A request that is malformed in any way (bad JSON, an unknown field, a
// body over [MaxBodySize], a missing or bad field) is answered 400 before
// the Backend is called; a file over [MaxFileSize] is answered 413, and
// one not sent as application/octet-stream (or image/*) 415. Backend errors map by sentinel: [ErrInvalid] 400,
// [ErrForbidden] 403, [ErrNotFound] 404, [ErrConflict] 409, [ErrUnavailable] 503, anything else 500 with a generic
// message (the error itself goes to the log). A known path with the wrong
// method is 405 with an Allow header; an unknown path is 404.
package api
