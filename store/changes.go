package store

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// The changes feed (GET /v1/changes, SPEC 21): which signals' state may
// have changed since a checkpoint, each with its state now.
//
// A change is found through the arrivals bucket (the order this store
// logged entries in): every entry names the signals whose state it can
// change (an addition or allowlist entry its own; a retraction, dispute,
// notice update or reply those of the entry it targets). The one change
// no entry of the arrivals names is a new membership (SPEC 12.5): it can
// make void entries count or counted entries void anywhere, and SetMembers
// re-derives the indexes when it does, after the membership entries
// themselves arrived. A checkpoint therefore carries the membership
// fingerprint it was issued under; when the store's differs, the feed
// walks the arrivals again from the first, void entries too, so that every
// signal any entry names is listed again under the membership in force
// (a signal whose only attestation became void is then a tombstone).

// ErrCheckpoint: a changes checkpoint this store did not issue (another
// store, or this node's store was made anew and refilled from its peers,
// which numbers arrivals otherwise). The client starts again from the
// beginning (no checkpoint) and replaces what it holds.
var ErrCheckpoint = errors.New("checkpoint not issued by this store")

// metaFeed is the store's feed identity: 16 random bytes made the first
// time a checkpoint is issued. A new file gets a new one, so the
// checkpoints of the file it replaces are refused.
var metaFeed = []byte("feed")

const (
	checkpointVersion = 1
	// A checkpoint is version, feed id, membership, n, at, key.
	checkpointFixed = 1 + 16 + 8 + 8 + 8
	// maxCheckpointKey bounds the resume key: a signal key (a URL's is
	// the longest, protocol.MaxURLLen and a tag) fits.
	maxCheckpointKey = 4096
)

// Checkpoint is a position in this store's changes feed. It is opaque to
// clients: String and ParseCheckpoint are its only forms outside.
type Checkpoint struct {
	Feed    [16]byte // the store that issued it
	Members [8]byte  // SHA-256 of the membership fingerprint the state was read under, first 8 bytes
	N       uint64   // arrivals 1..N are reported
	At      [8]byte  // the first 8 bytes of arrival N's id (zero for N = 0): a renumbered store refuses it
	// Key: the signals of arrival N+1 with index keys up to Key are
	// reported too (nil: none are), when an entry's signals span pages.
	Key []byte
}

// String is the checkpoint as a client holds it: URL-safe base64.
func (c Checkpoint) String() string {
	b := make([]byte, 0, checkpointFixed+len(c.Key))
	b = append(b, checkpointVersion)
	b = append(b, c.Feed[:]...)
	b = append(b, c.Members[:]...)
	b = binary.BigEndian.AppendUint64(b, c.N)
	b = append(b, c.At[:]...)
	b = append(b, c.Key...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ParseCheckpoint reads a checkpoint String made. It checks the form only;
// Changes checks that this store issued it.
func ParseCheckpoint(s string) (Checkpoint, error) {
	var c Checkpoint
	if len(s) > base64.RawURLEncoding.EncodedLen(checkpointFixed+maxCheckpointKey) {
		return c, fmt.Errorf("checkpoint of %d characters is too long to be one this node issued", len(s))
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return c, fmt.Errorf("checkpoint %q is not URL-safe base64 without padding: %v", s, err)
	}
	if len(b) < checkpointFixed {
		return c, fmt.Errorf("checkpoint %q is %d bytes, too short to be one this node issued", s, len(b))
	}
	if b[0] != checkpointVersion {
		return c, fmt.Errorf("checkpoint %q has version %d; this node issues version %d", s, b[0], checkpointVersion)
	}
	b = b[1:]
	copy(c.Feed[:], b[:16])
	copy(c.Members[:], b[16:24])
	c.N = binary.BigEndian.Uint64(b[24:32])
	copy(c.At[:], b[32:40])
	if len(b) > 40 {
		c.Key = slices.Clone(b[40:])
	}
	return c, nil
}

// ChangedSignal is one signal of a page of the feed with its state when
// the page was read.
type ChangedSignal struct {
	Key    []byte     // protocol.SignalKey
	Signal *pb.Signal // as an entry that names it carries it
	// Attestations is what Match returns for Key: every addition and
	// actioned notice of the signal with its status now. None active: the
	// signal is withdrawn (a tombstone to the client).
	Attestations []Attestation
}

// ChangesPage is one page of the feed.
type ChangesPage struct {
	Signals []ChangedSignal
	// Next is where the next page starts.
	Next Checkpoint
	// More: the feed holds changes past Next now (the page was cut at its
	// limit). False: Next is the present; ask again later.
	More bool
}

// ChangesQuery is what a page of the feed asks for.
type ChangesQuery struct {
	// After is where to start; nil: from the first arrival.
	After *Checkpoint
	// Limit bounds the signals of the page (1 or more).
	Limit int
	// MaxArrivals bounds the arrivals one page walks, so that a filter
	// that keeps few signals cannot make one request read the whole
	// store (0: 16 times Limit, at least 10,000).
	MaxArrivals int
	// Keep, if set, says which signals the client wants (the types
	// filter); the others are passed over, not reported.
	Keep func(*pb.Signal) bool
}

// FeedID is the store's feed identity, made on first use.
func (s *Store) FeedID() ([16]byte, error) {
	var id [16]byte
	found := false
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(metaFeed); len(v) == len(id) {
			copy(id[:], v)
			found = true
		}
		return nil
	})
	if err != nil || found {
		return id, wrapDB("feed id", err)
	}
	err = s.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(metaFeed); len(v) == len(id) { // another caller made it first
			copy(id[:], v)
			return nil
		}
		if _, err := rand.Read(id[:]); err != nil {
			return err
		}
		return meta.Put(metaFeed, id[:])
	})
	return id, wrapDB("feed id", err)
}

// Changes reads one page of the feed in one read transaction: the
// signals whose state changed after q.After, coalesced (a signal named by
// several entries of the page is listed once), each with its state at
// the time of the read. A signal may be listed again on a later page
// (at least once, never skipped): a change logged after Next was issued
// is in a later page. It returns an error wrapping ErrCheckpoint for a
// checkpoint another store issued.
func (s *Store) Changes(q ChangesQuery) (ChangesPage, error) {
	feed, err := s.FeedID()
	if err != nil {
		return ChangesPage{}, err
	}
	if q.Limit < 1 {
		q.Limit = 1
	}
	if q.MaxArrivals <= 0 {
		q.MaxArrivals = max(16*q.Limit, 10000)
	}
	if q.Keep == nil {
		q.Keep = func(*pb.Signal) bool { return true }
	}
	var page ChangesPage
	err = s.view(func(b *buckets) error {
		var err error
		page, err = b.changes(feed, q)
		return err
	})
	if err != nil && !errors.Is(err, ErrCheckpoint) {
		err = wrapDB("changes", err)
	}
	return page, err
}

// feedPage collects the signals of one page, in the order found.
type feedPage struct {
	limit int
	keep  func(*pb.Signal) bool
	seen  map[string]bool
	sigs  []ChangedSignal
}

// add lists sig unless listed or not kept. It reports false, listing
// nothing, when the page is full and sig would be a new one.
func (p *feedPage) add(key []byte, sig *pb.Signal) bool {
	if p.seen[string(key)] || !p.keep(sig) {
		return true
	}
	if len(p.sigs) == p.limit {
		return false
	}
	p.seen[string(key)] = true
	p.sigs = append(p.sigs, ChangedSignal{Key: key, Signal: sig})
	return true
}

func (b *buckets) changes(feed [16]byte, q ChangesQuery) (ChangesPage, error) {
	count, err := b.count()
	if err != nil {
		return ChangesPage{}, err
	}
	members := sha256.Sum256(b.meta.Get(metaMembers))
	cp := Checkpoint{Feed: feed}
	copy(cp.Members[:], members[:])
	if q.After != nil {
		cp = *q.After
		cp.Key = slices.Clone(cp.Key)
		if cp.Feed != feed {
			return ChangesPage{}, fmt.Errorf("%w: it names feed %x, this store's is %x; start again without a checkpoint", ErrCheckpoint, cp.Feed, feed)
		}
		if cp.N > count {
			return ChangesPage{}, fmt.Errorf("%w: it is at arrival %d, this store holds %d; start again without a checkpoint", ErrCheckpoint, cp.N, count)
		}
		if at, err := b.arrivalAt(cp.N); err != nil {
			return ChangesPage{}, err
		} else if at != cp.At {
			return ChangesPage{}, fmt.Errorf("%w: arrival %d is another entry here; start again without a checkpoint", ErrCheckpoint, cp.N)
		}
		if !bytes.Equal(cp.Members[:], members[:8]) {
			// The membership changed since: walk every arrival again.
			copy(cp.Members[:], members[:])
			cp.N, cp.At, cp.Key = 0, [8]byte{}, nil
		}
	}
	p := &feedPage{limit: q.Limit, keep: q.Keep, seen: map[string]bool{}}
	more, err := b.arrivalChanges(&cp, p, q.MaxArrivals)
	if err != nil {
		return ChangesPage{}, err
	}
	for i := range p.sigs {
		if p.sigs[i].Attestations, err = b.match(p.sigs[i].Key); err != nil {
			return ChangesPage{}, err
		}
	}
	return ChangesPage{Signals: p.sigs, Next: cp, More: more}, nil
}

// arrivalAt is the first 8 bytes of the id of arrival n (zero for 0).
func (b *buckets) arrivalAt(n uint64) (at [8]byte, err error) {
	if n == 0 {
		return at, nil
	}
	v := b.arrivals.Get(u64(n))
	if len(v) != idSize {
		return at, fmt.Errorf("%w: arrivals/%d: %d bytes, want %d", ErrCorrupt, n, len(v), idSize)
	}
	copy(at[:], v)
	return at, nil
}

// arrivalChanges walks the arrivals after cp.N into p, advancing cp. It
// reports true when it stopped with arrivals left (the page is full, or
// maxArrivals were walked).
func (b *buckets) arrivalChanges(cp *Checkpoint, p *feedPage, maxArrivals int) (bool, error) {
	c := b.arrivals.Cursor()
	walked := 0
	for k, v := c.Seek(u64(cp.N + 1)); k != nil; k, v = c.Next() {
		if walked == maxArrivals {
			return true, nil
		}
		walked++
		n, id, err := parseArrival(k, v)
		if err != nil {
			return false, err
		}
		e, err := b.get(id)
		if err != nil {
			return false, fmt.Errorf("%w: arrivals/%d names %s: %v", ErrCorrupt, n, id, err)
		}
		sigs, err := b.signalsOf(e, 0)
		if err != nil {
			return false, err
		}
		for _, sk := range sigs {
			if cp.Key != nil && bytes.Compare(sk.key, cp.Key) <= 0 {
				continue // reported on an earlier page
			}
			if !p.add(sk.key, sk.sig) {
				return true, nil // arrival n is done up to cp.Key
			}
			cp.Key = sk.key
		}
		cp.N, cp.Key = n, nil
		copy(cp.At[:], id[:])
	}
	return false, nil
}

// keyedSignal is a signal with its index key.
type keyedSignal struct {
	key []byte
	sig *pb.Signal
}

// signalsOf lists the signals whose state e can change, sorted by key,
// without repeats: an addition's, allowlist entry's or notice's own; for
// an entry that targets another (a retraction, dispute, notice update or
// reply), those of its target, or for a retraction or dispute that names
// some of its target's signals (SPEC 6.2, 6.3) those. A membership entry
// names none: the checkpoint's membership fingerprint catches its effect.
func (b *buckets) signalsOf(e *protocol.Entry, depth int) ([]keyedSignal, error) {
	var sigs []*pb.Signal
	var target []byte
	switch p := e.Body.GetPayload().(type) {
	case *pb.Entry_Addition:
		sigs = p.Addition.Signals
	case *pb.Entry_Allow:
		sigs = p.Allow.Signals
	case *pb.Entry_Notice:
		sigs = p.Notice.Signals
	case *pb.Entry_Retraction:
		target, sigs = p.Retraction.Target, p.Retraction.Signals
	case *pb.Entry_Dispute:
		target, sigs = p.Dispute.Target, p.Dispute.Signals
	case *pb.Entry_NoticeUpdate:
		target = p.NoticeUpdate.Notice
	case *pb.Entry_NoticeReply:
		target = p.NoticeReply.Notice
	}
	if target != nil && len(sigs) == 0 {
		// A retraction's target is an addition, allowlist entry or notice;
		// a retraction of a retraction or dispute is not in the protocol,
		// but depth bounds the walk whatever a log holds.
		id, err := protocol.IDFromBytes(target)
		if err != nil || depth > 2 {
			return nil, nil //nolint:nilerr // a target that cannot be an id names nothing stored
		}
		t, err := b.get(id)
		if errors.Is(err, ErrNotFound) {
			return nil, nil // a void entry's unknown target: no state changed
		} else if err != nil {
			return nil, err
		}
		return b.signalsOf(t, depth+1)
	}
	out := make([]keyedSignal, 0, len(sigs))
	for _, s := range sigs {
		out = append(out, keyedSignal{protocol.SignalKey(s), s})
	}
	slices.SortFunc(out, func(x, y keyedSignal) int { return bytes.Compare(x.key, y.key) })
	return slices.CompactFunc(out, func(x, y keyedSignal) bool { return bytes.Equal(x.key, y.key) }), nil
}
