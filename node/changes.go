package node

import (
	"context"

	"github.com/staydown/staydown/store"
)

// Changes implements api.ChangesReader: a page of the store's changes
// feed (store.Changes), read in one read transaction.
func (n *Node) Changes(ctx context.Context, q store.ChangesQuery) (store.ChangesPage, error) {
	if err := ctx.Err(); err != nil {
		return store.ChangesPage{}, err
	}
	return n.store.Changes(q)
}
