package node

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/staydown/staydown/node/checkpoints"
	"github.com/staydown/staydown/node/matching"
	"github.com/staydown/staydown/store"
)

// importSideFiles brings what an older node kept beside its store
// (checkpoints.File, matching.WatchlistFile in the node directory dir)
// into the store, in one transaction (store.ImportLegacy), then renames each file
// to NAME.imported: kept, never deleted, and not imported again. It
// refuses to start if NAME.imported exists already. A failed rename
// fails the start; the next start finds the rows in the store already
// and only renames.
func importSideFiles(st *store.Store, dir string, log *slog.Logger) error {
	var paths []string
	for _, name := range []string{checkpoints.File, matching.WatchlistFile} {
		p := filepath.Join(dir, name)
		switch _, err := os.Stat(p); {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return err
		}
		// A rename would replace it.
		switch _, err := os.Stat(p + importedSuffix); {
		case err == nil:
			return fmt.Errorf("%s is to be imported into the store and renamed, but %s exists: move one of them aside", p, p+importedSuffix)
		case !errors.Is(err, fs.ErrNotExist):
			return err
		}
		paths = append(paths, p)
	}
	if len(paths) == 0 {
		return nil
	}
	if err := st.ImportLegacy(paths...); err != nil {
		return fmt.Errorf("importing side files into the store: %w", err)
	}
	for _, p := range paths {
		if err := os.Rename(p, p+importedSuffix); err != nil {
			return fmt.Errorf("imported %s into the store, but: %w", p, err)
		}
		log.Info("imported a side file into the store", "file", p, "renamed", p+importedSuffix)
	}
	return nil
}

// importedSuffix ends the name of a side file imported into the store.
const importedSuffix = ".imported"
