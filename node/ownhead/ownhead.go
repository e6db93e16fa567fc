// Package ownhead decides when a node whose store was rebuilt from its
// peers knows its own head (SPEC 16.7). The node's own log came back
// from the peers like every other log; but an entry it signed just
// before the damage may have reached only some of them, and signing
// again at that seq would be an equivocation (SPEC 5.3) that every peer
// flags. So the own head counts as known only once enough members'
// nodes have each served their whole replica, and the node holds at
// least the own head each of them announced.
//
// The package owns the rule (Needed) and the rounds of sync sessions
// (Round); the node owns the sessions themselves (node/syncer's With)
// and what follows a confirmation (the store's meta/restored).
package ownhead

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/staydown/staydown/protocol"
)

// Needed is how many other members' nodes must confirm the own head of
// member self under roster r: min when min >= 0, else a majority of the
// other members (others/2 + 1). A federation of one has nobody to ask:
// an error (unless min says 0). A min larger than the others is an
// error naming both.
//
// Why a majority: every entry leaves its author's node on gossip, which
// floods it to every connected member, and every node syncs with a
// random peer every 10-15 s (SPEC 16.5), so within seconds of the last
// publication each entry is at every member reachable from the one that
// first got it. A majority of the others still answers when a minority
// is down, and it cannot be a minority that was cut off from this node
// and the rest when the node last signed. A restore also waits, until
// its timeout, for every member it can reach, and takes the newest own
// head any of them holds.
func Needed(r *protocol.Roster, self string, min int) (int, error) {
	others := len(Others(r, self))
	switch {
	case min > others:
		return 0, fmt.Errorf("--min-peers %d: the roster in force has %d members, only %d of them other than %q", min, len(r.Members), others, self)
	case min >= 0:
		return min, nil
	case others == 0:
		return 0, fmt.Errorf("the roster in force has no member but %q: no peer holds its log (--min-peers 0 to start from nothing)", self)
	}
	return others/2 + 1, nil
}

// Other is another member's node.
type Other struct {
	Name string
	Peer peer.ID
}

// Others are the members of r other than self whose peer ID parses.
func Others(r *protocol.Roster, self string) []Other {
	var out []Other
	for _, m := range r.Members {
		if m.Name == self {
			continue
		}
		if id, err := peer.Decode(m.PeerID); err == nil {
			out = append(out, Other{m.Name, id})
		}
	}
	return out
}

// Deps are what a round needs of the node.
type Deps struct {
	Roster    func() *protocol.Roster // the roster in force, as sync brings it
	Self      string                  // this node's member name
	Own       protocol.AuthorKey      // this node's author key: its own log
	Connected func(peer.ID) bool
	// Announced is the peer's head of the own log as its sync hello
	// says (seq 0: it holds none).
	Announced func(ctx context.Context, p peer.ID) (uint64, error)
	// Sync is a full sync session with the peer (syncer.With): every
	// log it holds that this node lacks, fetched and checked.
	Sync func(ctx context.Context, p peer.ID) error
	// Head is this node's head of a log; Heads every head it holds.
	Head  func(protocol.AuthorKey) (protocol.Head, error)
	Heads func() ([]protocol.Head, error)
	Log   *slog.Logger
}

// Round syncs with every connected other member, all of them when again
// is set and else those not in answered yet, and adds to answered the
// names of those whose session completed and after which this node holds
// at least the own head they announced. It returns whether any log grew.
func Round(ctx context.Context, d Deps, answered map[string]bool, again bool) (grew bool, err error) {
	before, err := digest(d)
	if err != nil {
		return false, err
	}
	for _, o := range Others(d.Roster(), d.Self) {
		if ctx.Err() != nil {
			break
		}
		if (answered[o.Name] && !again) || !d.Connected(o.Peer) {
			continue
		}
		if err := confirm(ctx, d, o); err != nil {
			d.Log.Info("own head: peer not counted (yet)", "member", o.Name, "err", err)
			continue
		}
		answered[o.Name] = true
	}
	after, err := digest(d)
	return !slices.Equal(before, after), err
}

// confirm is one peer's confirmation: its announced own head, a full
// sync, and the own head held here at least as far.
func confirm(ctx context.Context, d Deps, o Other) error {
	theirs, err := d.Announced(ctx, o.Peer)
	if err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	if err := d.Sync(ctx, o.Peer); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	mine, err := d.Head(d.Own)
	if err != nil {
		return err
	}
	if mine.Seq < theirs {
		return fmt.Errorf("it announced this node's own log up to seq %d and served up to %d only", theirs, mine.Seq)
	}
	return nil
}

// digest names every log's head held now.
func digest(d Deps) ([]protocol.Head, error) { return d.Heads() }

// Names are the keys of answered, sorted.
func Names(answered map[string]bool) []string {
	out := make([]string, 0, len(answered))
	for n := range answered {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
