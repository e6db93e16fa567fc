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
// re-derives the indexes when it does. A checkpoint therefore carries the
// membership fingerprint it was issued under; when the store's differs,
// the next pages list every signal of the attest and noticesigs indexes
// (a scan) before going on with the arrivals.

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
	// A checkpoint is version, feed id, membership, n, at, phase, key.
	checkpointFixed = 1 + 16 + 8 + 8 + 8 + 1
	// maxCheckpointKey bounds the resume key: a signal key (a URL's is
	// the longest, protocol.MaxURLLen and a tag) fits.
	maxCheckpointKey = 4096
)

// Phases of the feed, in the checkpoint.
const (
	phaseArrivals   = 0 // walking the arrivals after N
	phaseScanAttest = 1 // listing every attested signal after Key (a membership change)
	phaseScanNotice = 2 // then every signal a notice names after Key
)

// Checkpoint is a position in this store's changes feed. It is opaque to
// clients: String and ParseCheckpoint are its only forms outside.
type Checkpoint struct {
	Feed    [16]byte // the store that issued it
	Members [8]byte  // SHA-256 of the membership fingerprint the state was read under, first 8 bytes
	N       uint64   // arrivals 1..N are reported
	At      [8]byte  // the first 8 bytes of arrival N's id (zero for N = 0): a renumbered store refuses it
	Phase   byte
	// Key: in phaseArrivals, the signals of arrival N+1 with index keys up
	// to Key are reported (none: none are); in a scan phase, the signals
	// with index keys up to Key are.
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
	b = append(b, c.Phase)
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
	c.Phase = b[40]
	if c.Phase > phaseScanNotice {
		return c, fmt.Errorf("checkpoint %q has phase %d, not one this node issues", s, c.Phase)
	}
	if len(b) > 41 {
		c.Key = slices.Clone(b[41:])
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
			// The membership changed since (or during the scan it was
			// for): list every signal again under this one.
			copy(cp.Members[:], members[:])
			cp.Phase, cp.Key = phaseScanAttest, nil
		}
	}
	p := &feedPage{limit: q.Limit, keep: q.Keep, seen: map[string]bool{}}
	more := false
	if cp.Phase == phaseScanAttest {
		if more, err = b.scanChanges(idxAttest, &cp, p); err != nil {
			return ChangesPage{}, err
		}
		if !more {
			cp.Phase, cp.Key = phaseScanNotice, nil
		}
	}
	if !more && cp.Phase == phaseScanNotice {
		if more, err = b.scanChanges(idxNoticeSigs, &cp, p); err != nil {
			return ChangesPage{}, err
		}
		if !more {
			// Arrival N+1 is walked from its first signal again.
			cp.Phase, cp.Key = phaseArrivals, nil
		}
	}
	if !more {
		if more, err = b.arrivalChanges(&cp, p, q.MaxArrivals); err != nil {
			return ChangesPage{}, err
		}
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
// reply), those of its target (all of them: a retraction naming some is
// listed as if it named all, which at worst lists a signal again). A
// membership entry names none: the checkpoint's membership fingerprint
// catches its effect.
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
		target = p.Retraction.Target
	case *pb.Entry_Dispute:
		target = p.Dispute.Target
	case *pb.Entry_NoticeUpdate:
		target = p.NoticeUpdate.Notice
	case *pb.Entry_NoticeReply:
		target = p.NoticeReply.Notice
	}
	if target != nil {
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

// scanChanges lists into p every signal of index idx (attest or
// noticesigs: keys len(sk) || sk || a log position or an entry id) after
// cp.Key, advancing cp.Key. It reports true when the page filled first.
func (b *buckets) scanChanges(idx int, cp *Checkpoint, p *feedPage) (bool, error) {
	c, err := b.cursor(idx)
	if err != nil {
		return false, err
	}
	var k []byte
	if cp.Key == nil {
		k, _ = c.First()
	} else {
		k, _ = c.Seek(signalPrefix(cp.Key))
	}
	for k != nil {
		sk, rest, ok := splitSignalRow(k)
		if !ok {
			return false, fmt.Errorf("%w: %s/%x: key does not start with a signal key", ErrCorrupt, indexNames[idx], k)
		}
		sk = slices.Clone(sk)
		prefix := signalPrefix(sk)
		if cp.Key != nil && bytes.Compare(sk, cp.Key) <= 0 {
			k = skipPrefix(c, prefix)
			continue
		}
		sig, err := b.signalIn(idx, sk, rest)
		if err != nil {
			return false, err
		}
		if sig != nil {
			if !p.add(sk, sig) {
				return true, nil
			}
		}
		cp.Key = sk
		k = skipPrefix(c, prefix)
	}
	return false, nil
}

// skipPrefix moves c past every key starting with prefix.
func skipPrefix(c cursor, prefix []byte) []byte {
	k, _ := c.Next()
	for hasPrefix(k, prefix) {
		k, _ = c.Next()
	}
	return k
}

// splitSignalRow splits an attest or noticesigs key into the signal key
// and what follows it.
func splitSignalRow(k []byte) (sk, rest []byte, ok bool) {
	l, n := binary.Uvarint(k)
	if n <= 0 || uint64(len(k)-n) < l {
		return nil, nil, false
	}
	return k[n : n+int(l)], k[n+int(l):], true
}

// signalIn finds the signal with key sk in the entry an attest row
// (rest: author || seq) or a noticesigs row (rest: notice id) names.
func (b *buckets) signalIn(idx int, sk, rest []byte) (*pb.Signal, error) {
	var e *protocol.Entry
	var err error
	if idx == idxAttest {
		if len(rest) != logKeySize {
			return nil, fmt.Errorf("%w: attest: key does not end in author || seq", ErrCorrupt)
		}
		e, err = b.logEntry(authorOf(rest), binary.BigEndian.Uint64(rest[authorSize:]))
	} else {
		id, ok := idOf(rest)
		if !ok {
			return nil, fmt.Errorf("%w: noticesigs: key does not end in an entry id", ErrCorrupt)
		}
		e, err = b.get(id)
	}
	if err != nil {
		return nil, err
	}
	sigs, err := b.signalsOf(e, 0)
	if err != nil {
		return nil, err
	}
	for _, s := range sigs {
		if bytes.Equal(s.key, sk) {
			return s.sig, nil
		}
	}
	return nil, fmt.Errorf("%w: %s row for signal %x names entry %s, which does not carry it", ErrCorrupt, indexNames[idx], sk, e.ID)
}
