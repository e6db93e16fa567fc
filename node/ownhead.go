package node

import (
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/staydown/staydown/node/kind"
	"github.com/staydown/staydown/node/ownhead"
	"github.com/staydown/staydown/node/status"
	"github.com/staydown/staydown/store"
)

// A node whose store was rebuilt from its peers with too few of them
// answering (staydown store restore --unconfirmed) starts with its own
// head unconfirmed (SPEC 16.7): it serves matches from what it holds,
// syncs as always, and refuses to publish until enough members' nodes
// have served it their replica, its own log included. Then it records
// the confirmation in the store and publishes from the head it holds.

// confirmRetry is how often an unconfirmed node tries the members that
// have not confirmed its own head yet.
const confirmRetry = time.Second

// ownHeadAtStart reads the store's restore record.
func (n *Node) ownHeadAtStart() error {
	r, ok, err := n.store.Restored()
	if err != nil {
		return err
	}
	if ok && !r.Confirmed {
		n.ownUnconfirmed.Store(true)
		n.log.Warn("this node's store was restored from too few peers: it publishes nothing until enough confirm its own head", "restored_at", r.At,
			"confirmed_by", r.From, "needed", r.Needed, "own_seq", r.OwnSeq)
	}
	return nil
}

// ownHeadKnown is Publish's gate: ErrUnavailable while the own head is
// unconfirmed.
func (n *Node) ownHeadKnown() error {
	if !n.ownUnconfirmed.Load() {
		return nil
	}
	r, _, err := n.store.Restored()
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: this node's own log is not confirmed yet: its store was restored from its peers and %d of the %d members' nodes needed have served it since (%s); it publishes once they have, so that it never signs a second entry at a seq it signed before (staydown status shows own_head_confirmed)",
		kind.ErrUnavailable, len(r.From), r.Needed, list(r.From))
}

// confirmOwnHead runs rounds of sync sessions with the members that have
// not confirmed the own head (ownhead.Round) until enough have, then
// records it.
func (n *Node) confirmOwnHead(ctx context.Context) {
	r, _, err := n.store.Restored()
	if err != nil {
		n.log.Error("reading the restore record", "err", err)
		return
	}
	answered := map[string]bool{}
	for _, name := range r.From {
		answered[name] = true
	}
	d := ownhead.Deps{Roster: n.members.Roster, Self: n.me.Name, Own: n.me.AuthorKey, Connected: connected(n.host),
		Announced: func(ctx context.Context, p peer.ID) (uint64, error) {
			return announcedHead(ctx, n.host, n.sync, p, n.me.AuthorKey)
		},
		Sync: n.sync.With, Head: n.store.Head, Heads: n.store.Heads, Log: n.log}
	for len(answered) < r.Needed {
		select {
		case <-ctx.Done():
			return
		case <-n.after(confirmRetry):
		}
		if _, err := ownhead.Round(ctx, d, answered, false); err != nil {
			n.log.Error("confirming the own head", "err", err)
		}
	}
	h, err := n.store.Head(n.me.AuthorKey)
	if err != nil {
		n.log.Error("confirming the own head", "err", err)
		return
	}
	r.From, r.Confirmed, r.ConfirmedAt = ownhead.Names(answered), true, n.now().UTC()
	if err := n.store.SetRestored(r); err != nil {
		n.log.Error("recording the own head's confirmation", "err", err)
		return // still refuses: the next start tries again
	}
	n.ownUnconfirmed.Store(false)
	n.log.Info("own head confirmed: publishing", "seq", h.Seq, "by", r.From)
}

// restoredStatus is the status's own_head_confirmed and restored.
func (n *Node) restoredStatus() (bool, *status.Restored, error) {
	r, ok, err := n.store.Restored()
	if err != nil || !ok {
		return !n.ownUnconfirmed.Load(), nil, err
	}
	return !n.ownUnconfirmed.Load(), StatusOf(r), nil
}

// StatusOf is a restore record as status shows it.
func StatusOf(r store.Restored) *status.Restored {
	s := &status.Restored{At: r.At.UTC().Format(time.RFC3339), Damaged: r.Damaged, From: r.From, Needed: r.Needed, OwnSeq: r.OwnSeq}
	if s.From == nil {
		s.From = []string{}
	}
	if r.Confirmed {
		s.ConfirmedAt = r.ConfirmedAt.UTC().Format(time.RFC3339)
	}
	return s
}
