package node

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/staydown/staydown/node/checkpoints"
	"github.com/staydown/staydown/node/matching"
	"github.com/staydown/staydown/protocol"
)

// writeSideFile writes a bbolt file as older nodes wrote checkpoints.db
// and watchlist.db: one top-level bucket per name, rows put in order,
// numbered ones through NextSequence.
func writeSideFile(t *testing.T, path string, buckets map[string][][2][]byte, numbered map[string][][]byte) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		for name, rows := range buckets {
			b, err := tx.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			for _, r := range rows {
				if err := b.Put(r[0], r[1]); err != nil {
					return err
				}
			}
		}
		for name, values := range numbered {
			b, err := tx.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			for _, v := range values {
				n, _ := b.NextSequence()
				if err := b.Put(binary.BigEndian.AppendUint64(nil, n), v); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSideFilesImported: a node directory of an older node, with its
// checkpoints and watchlist in files beside the store, starts with them
// in the store, the files renamed to .imported; what they held works as
// before (checkpoints held, the watchlist alerts, alert seqs go on); a
// restart imports nothing again; a side file beside its .imported copy
// stops the start with nothing imported.
func TestSideFilesImported(t *testing.T) {
	f := newFederation(t, "pa=platform")
	pa := f.start("pa")
	hosted, other := sha256Signal(1), sha256Signal(2)
	e := publishAddition(t, pa, []string{"graphic-violence"}, hosted)
	if err := pa.Close(); err != nil {
		t.Fatal(err)
	}

	// What the older node kept: its own checkpoint at seq 1 and a
	// contradicting one; two watched signals and the alert the first
	// raised for e.
	dir := f.cfgs["pa"].Dir
	signer, err := protocol.NoteSigner("pa", f.key("pa"))
	if err != nil {
		t.Fatal(err)
	}
	origin := protocol.CheckpointOrigin("test", pa.me.AuthorKey)
	tree := protocol.NewTree()
	tree.Append(e.ID)
	latest, err := protocol.SignCheckpoint(protocol.Checkpoint{Origin: origin, Size: 1, Root: tree.Root()}, signer)
	if err != nil {
		t.Fatal(err)
	}
	conflict, err := protocol.SignCheckpoint(protocol.Checkpoint{Origin: origin, Size: 1, Root: bytes.Repeat([]byte{7}, 32)}, signer)
	if err != nil {
		t.Fatal(err)
	}
	writeSideFile(t, filepath.Join(dir, checkpoints.File),
		map[string][][2][]byte{"latest": {{pa.me.AuthorKey[:], latest}}},
		map[string][][]byte{"conflicts": {conflict}})
	alert := fmt.Sprintf(`{"raised_ms":1700000000000,"watched":%q,"signal":%q,"entry":%q}`,
		protocol.FormatSignal(hosted), protocol.FormatSignal(hosted), e.ID)
	writeSideFile(t, filepath.Join(dir, matching.WatchlistFile),
		map[string][][2][]byte{
			"signals": {{protocol.SignalKey(hosted), {1}}, {protocol.SignalKey(other), {1}}},
			"alerted": {{append(e.ID[:], protocol.SignalKey(hosted)...), binary.BigEndian.AppendUint64(nil, 1)}},
		},
		map[string][][]byte{"alerts": {[]byte(alert)}})

	pa = f.start("pa")
	for _, name := range []string{checkpoints.File, matching.WatchlistFile} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s after the import: %v, want it renamed", name, err)
		}
		if _, err := os.Stat(p + importedSuffix); err != nil {
			t.Errorf("%s: %v", name+importedSuffix, err)
		}
	}
	imported := func(when string) {
		t.Helper()
		if got := pa.LatestCheckpoint(pa.me.AuthorKey); !bytes.Equal(got, latest) {
			t.Errorf("%s: latest checkpoint %q, want %q", when, got, latest)
		}
		if c := pa.CheckpointConflicts(); len(c) != 1 || !bytes.Equal(c[0].Note, conflict) {
			t.Errorf("%s: conflicts %+v", when, c)
		}
		if n := int(pa.metric(t, "staydown_watchlist_signals")); n != 2 {
			t.Errorf("%s: %d signals watched, want 2", when, n)
		}
		a := alertsOf(t, pa, 0)
		if len(a) == 0 || a[0].Seq != 1 || a[0].Attestation.EntryID != e.ID || protocol.FormatSignal(a[0].Watched) != protocol.FormatSignal(hosted) {
			t.Errorf("%s: alerts %+v", when, a)
		}
	}
	imported("imported")
	// Watched again, the signal alerts no more for e; the other one
	// alerts, and the seqs go on from the file's.
	if out, err := pa.Watch(context.Background(), watchItems(hosted)); err != nil || out.Known != 1 || len(out.Alerts) != 0 {
		t.Errorf("watch again: %+v (%v)", out, err)
	}
	e2 := publishAddition(t, pa, []string{"graphic-violence"}, other)
	if a := alertsOf(t, pa, 1); len(a) != 1 || a[0].Seq != 2 || a[0].Attestation.EntryID != e2.ID {
		t.Errorf("the next alert: %+v", a)
	}

	if err := pa.Close(); err != nil {
		t.Fatal(err)
	}
	pa = f.start("pa")
	imported("restarted")
	if err := pa.Close(); err != nil {
		t.Fatal(err)
	}

	// A side file back beside its imported copy: the node does not
	// start, and imports nothing.
	p := filepath.Join(dir, matching.WatchlistFile)
	old, err := os.ReadFile(p + importedSuffix)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, old, 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := Start(context.Background(), f.cfgs["pa"], testLogger(t, "pa"))
	if err == nil {
		n.Close()
		t.Fatal("started with watchlist.db beside watchlist.db.imported")
	}
	if !strings.Contains(err.Error(), matching.WatchlistFile+importedSuffix) {
		t.Errorf("start: %v, want it to name %s", err, matching.WatchlistFile+importedSuffix)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	pa = f.start("pa")
	imported("after the refusal")
}
