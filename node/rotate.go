package node

import (
	"fmt"
	"log/slog"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/node/kind"
	"github.com/staydown/staydown/node/members"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// Rotation is what RotateKey did.
type Rotation struct {
	Old, New protocol.AuthorKey
	Entry    *protocol.Entry // the rotation entry, the last of the old key's log
}

// RotateKey rotates the author key of the stopped node of cfg (SPEC
// 12.4): it signs, with the current key, a rotation entry naming the next
// key (author.key.next, made now unless it exists) as the last entry of
// the current key's log, stores it, and makes the next key author.key
// (the old one is kept beside it). The node must be stopped: its store is
// locked while it runs. Peers learn of the rotation when the node starts
// again (sync, gossip); from then on the member's log goes on under the
// new key, from seq 1.
func RotateKey(cfg *config.Node, log *slog.Logger) (Rotation, error) {
	genesis, err := cfg.Genesis()
	if err != nil {
		return Rotation{}, err
	}
	cur, err := cfg.AuthorKey()
	if err != nil {
		return Rotation{}, err
	}
	st, err := store.Open(cfg.StorePath)
	if err != nil {
		return Rotation{}, fmt.Errorf("%w (is the node running? stop it first: the rotation is signed offline)", err)
	}
	defer st.Close()
	// A store restored from too few peers may lack the own log's newest
	// entries: a rotation signed on it could repeat a seq (SPEC 16.7).
	if r, ok, err := st.Restored(); err != nil {
		return Rotation{}, err
	} else if ok && !r.Confirmed {
		return Rotation{}, fmt.Errorf("%w: this node's own log is not confirmed yet (its store was restored from %d of the %d members' nodes needed): start the node until staydown status shows own_head_confirmed, then rotate", kind.ErrUnavailable, len(r.From), r.Needed)
	}
	live, err := members.Open(genesis, st, log)
	if err != nil {
		return Rotation{}, err
	}
	old := protocol.AuthorKeyOf(cur)
	h := live.History()
	m, ok := h.Roster().ByName(cfg.Name)
	switch {
	case !ok:
		return Rotation{}, fmt.Errorf("%w: %q is not a member of the roster in force (version %d): nothing to rotate", kind.ErrForbidden, cfg.Name, h.Version())
	case m.AuthorKey != old:
		return Rotation{}, fmt.Errorf("%w: %q signs with %s in the roster in force, not with this node's author.key (%s)", kind.ErrForbidden, cfg.Name, m.AuthorKey, old)
	}
	next, err := cfg.NextKey()
	if err != nil {
		return Rotation{}, err
	}
	if next == nil {
		if _, err := cfg.NewNextKey(); err != nil {
			return Rotation{}, err
		}
		if next, err = cfg.NextKey(); err != nil {
			return Rotation{}, err
		}
	}
	nk := protocol.AuthorKeyOf(next)
	if _, used := h.Key(nk); used {
		return Rotation{}, fmt.Errorf("%w: author.key.next (%s) is a key the federation knows already: remove it and run rotate-key again", kind.ErrInvalid, nk)
	}
	e, err := st.Append(old, func(head protocol.Head) (*protocol.Entry, error) {
		body := &pb.Entry{Version: protocol.Version, Federation: cfg.Federation, Seq: head.Seq + 1, TimestampMs: cfg.Now().UnixMilli(),
			Payload: &pb.Entry_Rotation{Rotation: &pb.Rotation{NewKey: nk[:]}}}
		if head.Seq > 0 {
			body.Prev = head.ID[:]
		}
		return protocol.Sign(cur, body)
	})
	if err != nil {
		return Rotation{}, fmt.Errorf("storing the rotation entry: %w", err)
	}
	// The store's membership is computed again at the next start, where
	// the node finds its member's key is author.key (promoted below).
	if err := cfg.PromoteNextKey(); err != nil {
		return Rotation{}, fmt.Errorf("the rotation entry %s is stored, but author.key.next could not replace author.key (%w): rename it by hand before starting the node", e.ID, err)
	}
	return Rotation{Old: old, New: nk, Entry: e}, nil
}

// NewKey makes author.key.next for the member of cfg and returns its
// public key: the key a revocation of a stolen key names as the member's
// new key (staydown member propose revoke --new-key). The node adopts it
// at its next start once the roster names it.
func NewKey(cfg *config.Node) (protocol.AuthorKey, error) {
	if next, err := cfg.NextKey(); err != nil {
		return protocol.AuthorKey{}, err
	} else if next != nil {
		return protocol.AuthorKeyOf(next), fmt.Errorf("%w: %s exists already (public key %s): give that key, or remove the file first", config.ErrExists, config.NextKeyFile, protocol.AuthorKeyOf(next))
	}
	pub, err := cfg.NewNextKey()
	if err != nil {
		return protocol.AuthorKey{}, err
	}
	return protocol.AuthorKey(pub), nil
}
