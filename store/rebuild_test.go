package store

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/staydown/staydown/protocol"
)

// Whatever order the logs arrive in, the file ends up the same, and
// Rebuild (which walks authors in key order) writes it again byte for byte.
func TestRebuildIsArrivalOrderIndependent(t *testing.T) {
	orders := []struct {
		name    string
		batches func(logs [][]*protocol.Entry, fork *protocol.Entry) [][]*protocol.Entry
	}{
		{"log by log, one batch", func(logs [][]*protocol.Entry, fork *protocol.Entry) [][]*protocol.Entry {
			return [][]*protocol.Entry{append(slices.Concat(logs...), fork)}
		}},
		{"logs in reverse, a batch each", func(logs [][]*protocol.Entry, fork *protocol.Entry) [][]*protocol.Entry {
			var bs [][]*protocol.Entry
			for i := len(logs) - 1; i >= 0; i-- {
				bs = append(bs, logs[i])
			}
			return append(bs, []*protocol.Entry{fork})
		}},
		{"interleaved, one batch", func(logs [][]*protocol.Entry, fork *protocol.Entry) [][]*protocol.Entry {
			return [][]*protocol.Entry{append(interleave(logs), fork)}
		}},
		{"interleaved, an entry per batch", func(logs [][]*protocol.Entry, fork *protocol.Entry) [][]*protocol.Entry {
			var bs [][]*protocol.Entry
			for _, e := range append(interleave(logs), fork) {
				bs = append(bs, []*protocol.Entry{e})
			}
			return bs
		}},
	}
	var first map[string]string
	for _, o := range orders {
		t.Run(o.name, func(t *testing.T) {
			s, w := mustOpen(t), newWorld(t)
			logs, fork := w.rich()
			for _, b := range o.batches(logs, fork) {
				res, err := s.Apply(b)
				if err != nil {
					t.Fatal(err)
				}
				for i, r := range res {
					want := Applied
					if b[i] == fork {
						want = Equivocation
					} else if w.voids[b[i].ID] {
						want = Void
					}
					if r.Outcome != want {
						t.Fatalf("entry %s/%d: %s (%v), want %s", b[i].Author, b[i].Seq(), r.Outcome, r.Err, want)
					}
				}
			}
			live := s.snapshot()
			if err := s.Rebuild(); err != nil {
				t.Fatal(err)
			}
			if d := diff(live, s.snapshot()); d != "" {
				t.Errorf("rebuild differs from live application:\n%s", d)
			}
			// Arrivals record the order this store received entries in,
			// and when: local, the one thing the orders may change.
			for k := range live {
				if strings.HasPrefix(k, string(bucketArrivals)+"/") || strings.HasPrefix(k, string(bucketClock)+"/") {
					delete(live, k)
				}
			}
			if first == nil {
				first = live
				wantRichState(t, s, w)
			} else if d := diff(first, live); d != "" {
				t.Errorf("differs from %q:\n%s", orders[0].name, d)
			}
		})
	}
}

// wantRichState pins what world.rich means, so the order tests compare
// stores that hold something worth comparing.
func wantRichState(t *testing.T, s *testStore, w *world) {
	t.Helper()
	x, err := s.Match(key(sha("x")))
	if err != nil || len(x) != 3 {
		t.Fatalf("match x: %d %v", len(x), err)
	}
	// A's notice to B names x and B removed it: stay down (SPEC 10.2);
	// A withdrew it after the removal, which retracts it.
	n := x[1]
	if n.Kind != protocol.KindNotice || n.Author != w.A.key || n.Status != StatusRetracted || n.Notice == nil || n.Notice.Addressee != w.B.key {
		t.Errorf("x: want A's actioned notice second, got %+v", n)
	}
	x = slices.Delete(x, 1, 2)
	for _, a := range x {
		// B's allow of x was retracted: only the disputes are left.
		if a.Status != StatusDisputed {
			t.Errorf("x by %s: %s, want disputed (%+v)", a.Author, a.Status, a.Reasons)
		}
		if a.Equivocated != (a.Author == w.C.key) {
			t.Errorf("x by %s: equivocated %v", a.Author, a.Equivocated)
		}
	}
	if a := matchOne(t, s, sha("y")); a.Status != StatusAllowlisted || a.Reasons[0].Category != "counter-speech" {
		t.Errorf("y: %s %+v, want allowlisted by counter-speech", a.Status, a.Reasons)
	}
	z, _ := s.Match(key(sha("z")))
	if len(z) != 2 || z[0].Status == z[1].Status {
		t.Fatalf("z: %+v", z)
	}
	for _, a := range z {
		if want := map[protocol.AuthorKey]Status{w.A.key: StatusRetracted, w.B.key: StatusAllowlisted}[a.Author]; a.Status != want {
			t.Errorf("z by %s: %s, want %s", a.Author, a.Status, want)
		}
	}
	wantMatches(t, s, sha("v"), 0)
	if a := matchOne(t, s, sha("w")); a.Status != StatusDisputed || !a.Equivocated {
		t.Errorf("w: %+v", a)
	}
	if f, _ := s.Flagged(); !slices.Equal(f, []protocol.AuthorKey{w.C.key}) {
		t.Errorf("flagged: %v", f)
	}
}

func TestRebuildRepairsIndexes(t *testing.T) {
	s, w := mustOpen(t), newWorld(t)
	logs, fork := w.rich()
	s.mustApplyRich(w, interleave(logs)...)
	s.mustApply(Equivocation, fork)
	before := s.snapshot()
	s.bolt(func(tx *bolt.Tx) error {
		a1 := w.A.log[0].ID
		if err := runHolding(t, tx, idxIDs, a1[:]).Delete(a1[:]); err != nil {
			return err
		}
		bogus := append(signalPrefix(key(sha("bogus"))), logKey(w.A.key, 1)...)
		if err := runHolding(t, tx, idxAttest, bogus).Put(bogus, nil); err != nil {
			return err
		}
		if err := tx.Bucket(bucketMeta).Put(metaCount, u64(99)); err != nil {
			return err
		}
		return tx.DeleteBucket(indexNames[idxDisputes])
	})
	if err := s.Check(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("check of a damaged store: %v, want ErrCorrupt", err)
	}
	if _, err := s.Match(key(sha("x"))); !errors.Is(err, ErrCorrupt) {
		t.Errorf("match with a missing index bucket: %v, want ErrCorrupt", err)
	}
	if err := s.Rebuild(); err != nil {
		t.Fatal(err)
	}
	if d := diff(before, s.snapshot()); d != "" {
		t.Errorf("rebuild did not restore the indexes:\n%s", d)
	}
}

// A damaged log cannot be rebuilt from; Rebuild says so and changes nothing.
func TestRebuildRefusesDamagedLog(t *testing.T) {
	s, w := mustOpen(t), newWorld(t)
	logs, _ := w.rich()
	s.mustApplyRich(w, slices.Concat(logs...)...)
	s.bolt(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLogs).Bucket(w.B.key[:]).Delete(u64(3))
	})
	before := s.snapshot()
	if err := s.Rebuild(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("rebuild with a hole in a log: %v, want ErrCorrupt", err)
	}
	if d := diff(before, s.snapshot()); d != "" {
		t.Errorf("a failed rebuild changed the file:\n%s", d)
	}
	s.corrupt = true
}

// A file of an older schema opens as the current one with its indexes
// rebuilt, holding what a store of the current schema holds; its logs and
// evidence are untouched. Schema 1 keyed additions by id and ended attest
// keys with the id; schema 3 kept ids and attest as plain buckets; schema
// 4 had no membership index; schema 6 (namedKeys - 1) kept no signal keys
// in retractions and disputes rows.
func TestOpenUpgradesOldSchemas(t *testing.T) {
	for _, tt := range []struct {
		schema    int
		downgrade func(tx *bolt.Tx) error
	}{{1, toSchema1}, {3, toSchema3}, {4, toSchema4}, {namedKeys - 1, toSchemaBeforeNamedKeys}} {
		t.Run(fmt.Sprintf("schema %d", tt.schema), func(t *testing.T) {
			s, w := mustOpen(t), newWorld(t)
			logs, fork := w.rich()
			s.mustApplyRich(w, interleave(logs)...)
			s.mustApply(Equivocation, fork)
			// Per-signal retraction and dispute (schema namedKeys).
			d := newAuthor(t, 4)
			d1 := d.next(addition(sha("p1"), sha("p2"), sha("p3")))
			s.mustApply(Applied, d1, d.next(retraction(d1.ID, "p1 was a mistake", sha("p1"))), w.A.next(dispute(d1.ID, "p2 is news", sha("p2"))))
			want := s.snapshot()
			s.bolt(tt.downgrade)
			if err := s.Check(); err == nil {
				t.Fatalf("check passed on a schema %d file", tt.schema)
			}
			s.mustReopen()
			got := s.snapshot()
			if tt.schema < 4 {
				// Those files kept no arrival times: all their arrivals
				// take the time of the upgrade, one row.
				wantArrivalTimesRow(t, got)
				dropBucket(want, bucketClock)
				dropBucket(got, bucketClock)
			}
			if d := diff(want, got); d != "" {
				t.Errorf("upgraded store differs from one written at schema %d:\n%s", schemaVersion, d)
			}
			if a := matchOne(t, s, sha("w")); a.Status != StatusDisputed || !a.Equivocated {
				t.Errorf("w after the upgrade: %+v", a)
			}
			for sig, want := range map[string]Status{"p1": StatusRetracted, "p2": StatusDisputed, "p3": StatusActive} {
				if a := matchOne(t, s, sha(sig)); a.Status != want {
					t.Errorf("%s after the upgrade: %s, want %s", sig, a.Status, want)
				}
			}
		})
	}
}

// toSchema1 turns the indexes back into schema 1's layout, as that build
// wrote it.
func toSchema1(tx *bolt.Tx) error {
	if err := toSchema3(tx); err != nil {
		return err
	}
	adds, attest := tx.Bucket(indexNames[idxAdditions]), tx.Bucket(indexNames[idxAttest])
	ids := map[string][]byte{} // author || seq -> id
	var oldAdds, oldAttest []kv
	adds.ForEach(func(k, v []byte) error {
		ids[string(k)] = v[:idSize]
		oldAdds = append(oldAdds, kv{bytes.Clone(v[:idSize]), cat(k, v[idSize:])})
		return nil
	})
	attest.ForEach(func(k, _ []byte) error {
		n := len(k) - logKeySize
		oldAttest = append(oldAttest, kv{cat(k[:n], ids[string(k[n:])]), nil})
		return nil
	})
	for _, name := range [][]byte{indexNames[idxAdditions], indexNames[idxAttest]} {
		if err := tx.DeleteBucket(name); err != nil {
			return err
		}
	}
	for name, rows := range map[string][]kv{"additions": oldAdds, "attest": oldAttest} {
		if err := createBucket(tx, []byte(name), rows); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketMeta).Put(metaSchema, u64(1))
}

// toSchema3 turns the run indexes back into plain buckets, schema 3's
// layout (which schema 1 shares for them), drops the local buckets (the
// node kept them in side files then), and stamps the file schema 3.
func toSchema3(tx *bolt.Tx) error {
	if err := toSchema4(tx); err != nil {
		return err
	}
	for _, l := range localBuckets {
		if err := tx.DeleteBucket(l.name); err != nil {
			return err
		}
	}
	for idx := range numIndexes {
		if !isRunIndex[idx] {
			continue
		}
		rows, err := runRows(tx, idx)
		if err != nil {
			return err
		}
		for _, name := range [][]byte{indexNames[idx], mergeBucketName(idx)} {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		if err := createBucket(tx, indexNames[idx], rows); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketMeta).Put(metaSchema, u64(3))
}

// toSchema4 drops the membership index and the fingerprint of the
// membership the indexes were derived under, and stamps the file schema 4.
func toSchema4(tx *bolt.Tx) error {
	if err := toSchemaBeforeNamedKeys(tx); err != nil {
		return err
	}
	if err := tx.DeleteBucket(indexNames[idxMembership]); err != nil {
		return err
	}
	meta := tx.Bucket(bucketMeta)
	if err := meta.Delete(metaMembers); err != nil {
		return err
	}
	return meta.Put(metaSchema, u64(4))
}

// toSchemaBeforeNamedKeys writes retractions and disputes rows as the
// schemas before namedKeys did, who || reason without the keys of the
// signals named, and stamps the file namedKeys - 1.
func toSchemaBeforeNamedKeys(tx *bolt.Tx) error {
	for _, ix := range []struct {
		idx     int
		whoSize int
	}{{idxRetractions, idSize}, {idxDisputes, authorSize}} {
		b := tx.Bucket(indexNames[ix.idx])
		var rows []kv
		if err := b.ForEach(func(k, v []byte) error {
			n, err := parseNamed(string(indexNames[ix.idx]), k, v, ix.whoSize)
			rows = append(rows, kv{bytes.Clone(k), cat(n.Who, []byte(n.Reason))})
			return err
		}); err != nil {
			return err
		}
		for _, r := range rows {
			if err := b.Put(r.k, r.v); err != nil {
				return err
			}
		}
	}
	return tx.Bucket(bucketMeta).Put(metaSchema, u64(namedKeys-1))
}

// createBucket creates a top-level bucket holding rows.
func createBucket(tx *bolt.Tx, name []byte, rows []kv) error {
	b, err := tx.CreateBucket(name)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if err := b.Put(r.k, r.v); err != nil {
			return err
		}
	}
	return nil
}

// dropBucket removes the rows of a top-level bucket from a snapshot.
func dropBucket(snap map[string]string, name []byte) {
	for k := range snap {
		if strings.HasPrefix(k, string(name)+"/") {
			delete(snap, k)
		}
	}
}

// wantArrivalTimesRow: the snapshot holds one arrival-times row, which
// covers every arrival (meta/count).
func wantArrivalTimesRow(t *testing.T, snap map[string]string) {
	t.Helper()
	var rows []string
	for k := range snap {
		if strings.HasPrefix(k, fmt.Sprintf("%s/%x/", bucketClock, clockArrived)) {
			rows = append(rows, k)
		}
	}
	if len(rows) != 1 {
		t.Errorf("arrival times after the upgrade: %q, want one row", rows)
	}
}
