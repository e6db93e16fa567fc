package api

import (
	"context"
	"errors"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// Backend is what the HTTP API needs from a running node. node.Node
// implements it; tests may use a fake.
type Backend interface {
	// Publish fills in the header of body (federation, author, seq, prev,
	// timestamp) around the payload it carries, signs it with this node's
	// author key, stores it and gossips it. Errors wrap ErrInvalid (the
	// payload is wrong: answer 400), ErrForbidden (this node's role may not
	// write it: 403), ErrNotFound (a referenced entry is unknown: 404), or
	// are internal (500).
	Publish(ctx context.Context, body *pb.Entry) (*protocol.Entry, error)
	// Match returns every attestation of each signal, in order.
	Match(ctx context.Context, signals []*pb.Signal) ([][]store.Attestation, error)
	// Status describes the node now.
	Status(ctx context.Context) (Status, error)
	// Roster is the federation's roster (read-only).
	Roster() *protocol.Roster
}

// Errors a Backend wraps, mapped to HTTP status codes by the server.
var (
	ErrInvalid   = errors.New("invalid request")
	ErrForbidden = errors.New("forbidden")
	ErrNotFound  = errors.New("not found")
)

// Status is the body of GET /v1/status, and `staydown status --json`.
type Status struct {
	ID          string            `json:"id"`   // this node's libp2p peer ID
	Name        string            `json:"name"` // member name
	Role        string            `json:"role"`
	Author      string            `json:"author"` // author key, hex
	Federation  string            `json:"federation"`
	Peers       int               `json:"peers"`       // connected roster peers
	TopicPeers  int               `json:"topic_peers"` // peers subscribed to the federation topic
	Entries     uint64            `json:"entries"`     // entries stored, all logs
	Heads       map[string]uint64 `json:"heads"`       // member name -> seq
	HeadsDigest string            `json:"heads_digest"`
	Flagged     []string          `json:"flagged"` // members caught equivocating
	Listen      []string          `json:"listen"`  // multiaddrs this node listens on
	// Catch-up: entries peers have announced that this node lacks, and,
	// while catching up, the rate of the catch-up (entries/s) and the time
	// it should still take.
	Behind            uint64  `json:"behind"`
	CatchupRate       float64 `json:"catchup_rate,omitempty"`
	CatchupETASeconds float64 `json:"catchup_eta_s,omitempty"`
}
