package node

import (
	"context"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// OwnAttestations implements api.OwnAttester: for each signal, this
// member's own additions of exactly that signal, read from the store (the
// same read that refuses a duplicate addition in Publish), so that an
// import skips what this member attests already.
func (n *Node) OwnAttestations(ctx context.Context, sigs []*pb.Signal) ([][]store.Attestation, error) {
	keys := make([][]byte, len(sigs))
	for i, s := range sigs {
		keys[i] = protocol.SignalKey(s)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return n.store.AdditionsBy(n.me.AuthorKey, keys)
}
