// Package status is what a running node says of itself: its identity,
// its peers, what its replica holds and how far behind it is. The API
// serves it as GET /v1/status.
package status

// Status describes a node now. It is the body of GET /v1/status, and of
// `staydown status --json`.
type Status struct {
	ID         string `json:"id"`   // this node's libp2p peer ID
	Name       string `json:"name"` // member name
	Role       string `json:"role"`
	Author     string `json:"author"` // author key, hex
	Federation string `json:"federation"`
	// Genesis is the hash of the federation's genesis (SPEC 12.1), hex;
	// RosterVersion the roster version in force (SPEC 12.3); Member
	// whether this node is a member in it (false while it waits for its
	// admission); Proposals how many amendments of that version wait
	// for votes.
	Genesis       string `json:"genesis"`
	RosterVersion uint64 `json:"roster_version"`
	Member        bool   `json:"member"`
	Proposals     int    `json:"proposals"`
	Peers         int    `json:"peers"` // connected roster peers
	// Members are the other members of the roster in force, in roster
	// order, as this node sees their nodes now.
	Members     []Peer            `json:"members"`
	TopicPeers  int               `json:"topic_peers"` // peers subscribed to the federation topic
	Entries     uint64            `json:"entries"`     // entries stored, all logs
	Heads       map[string]uint64 `json:"heads"`       // member name -> seq
	HeadsDigest string            `json:"heads_digest"`
	Flagged     []string          `json:"flagged"` // members caught equivocating
	Listen      []string          `json:"listen"`  // multiaddrs this node listens on
	// StoreWritable is false from a store write that failed for lack of
	// room (disk full, quota, file-size limit) until one commits again.
	StoreWritable bool `json:"store_writable"`
	// PeerScores: member name to the gossipsub score this node gives its
	// peer (SPEC 13, "Peer scoring"): 0 for a well-behaved peer,
	// negative after invalid messages; at -100 it loses gossip, at -300
	// it is graylisted. Absent before the first scoring.
	PeerScores map[string]float64 `json:"peer_scores,omitempty"`
	// Catch-up: entries peers have announced that this node lacks, and,
	// while catching up, the rate of the catch-up (entries/s) and the time
	// it should still take.
	Behind            uint64  `json:"behind"`
	CatchupRate       float64 `json:"catchup_rate,omitempty"`
	CatchupETASeconds float64 `json:"catchup_eta_s,omitempty"`
	// OwnHeadConfirmed is false while this node's store, rebuilt from
	// its peers (staydown store restore), has not had its own log
	// confirmed by enough of them: the node refuses to publish until it
	// is (SPEC 16.7). Restored says when and from whom, if it was.
	OwnHeadConfirmed bool      `json:"own_head_confirmed"`
	Restored         *Restored `json:"restored,omitempty"`
	// Clash, when set, is the evidence that another process runs this
	// node's identity (SPEC 13.1): shown until ten minutes pass with no
	// new evidence.
	Clash *Clash `json:"clash,omitempty"`
}

// Clash is the evidence that another process runs this node's identity
// (node key and author key): a restored backup started beside it, or a
// cloned machine.
type Clash struct {
	// How it was found: "liveness" (a member's node asked this one to
	// attest that it is live, for another process of its identity that
	// connected to it) or "own entry" (an entry signed with this node's
	// author key that it did not write came from the network).
	How string `json:"how"`
	// Member is the member whose node saw the other process, Peer its
	// peer ID; Remote the address it saw that process connect from.
	Member string `json:"member"`
	Peer   string `json:"peer"`
	Remote string `json:"remote,omitempty"`
	Since  string `json:"since,omitempty"` // RFC 3339, UTC
	// The other process: its instance nonce (hex), start and listen
	// addresses, as it signed them.
	OtherInstance string   `json:"other_instance,omitempty"`
	OtherStarted  string   `json:"other_started,omitempty"`
	OtherAddrs    []string `json:"other_addrs"`
	Detail        string   `json:"detail,omitempty"`
	// FirstAt and LastAt: the first and the latest evidence (RFC 3339,
	// UTC); Count how many pieces came between.
	FirstAt string `json:"first_at"`
	LastAt  string `json:"last_at"`
	Count   int    `json:"count"`
}

// Restored is the record of a store rebuilt from the federation (the
// store's meta/restored).
type Restored struct {
	At          string   `json:"at"`                // RFC 3339, UTC
	Damaged     string   `json:"damaged,omitempty"` // the damaged file, moved aside
	From        []string `json:"from"`              // members whose nodes confirmed the own head
	Needed      int      `json:"needed"`            // how many must
	OwnSeq      uint64   `json:"own_seq"`           // the own head when the restore ended
	ConfirmedAt string   `json:"confirmed_at,omitempty"`
}

// Peer is another member's node as this node sees it (the dialer's and
// gossip's view, node/p2p.Dialer).
type Peer struct {
	Name      string `json:"name"`      // member name
	PeerID    string `json:"peer_id"`   // its node's peer ID, as the roster says
	Connected bool   `json:"connected"` // a connection to it is open
	OnTopic   bool   `json:"on_topic"`  // it is in this node's entries topic
	// Refusing is why it refuses this node's connections, as far as this
	// node can tell ("" when it does not): it closed the connection right
	// after the handshake (its roster does not name this node's peer ID,
	// or it banned this node), or its sync hello named another
	// federation or genesis.
	Refusing string `json:"refusing"`
	// LastSeen is when a connection to it last worked (RFC 3339, UTC):
	// now while one does, "" if none ever did since this node started.
	LastSeen string `json:"last_seen"`
}
