package apitest

import (
	"context"

	"github.com/staydown/staydown/store"
)

// SetChanges makes Changes answer page (the fake keeps no feed of its
// own; tests of the feed's logic use a real store).
func (b *Backend) SetChanges(page store.ChangesPage) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.changes = page
}

// Changes implements api.ChangesReader with the page SetChanges gave.
func (b *Backend) Changes(ctx context.Context, q store.ChangesQuery) (store.ChangesPage, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.changes, b.err
}
