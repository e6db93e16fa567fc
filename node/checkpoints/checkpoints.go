// Package checkpoints is a node's side of checkpoints and witnessing
// (SPEC.md section 20).
package checkpoints

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"

	"github.com/staydown/staydown/node/kind"
	"github.com/staydown/staydown/node/ratelog"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/store"
)

// Checkpoints and witnessing (SPEC.md section 20). Every node publishes a
// signed checkpoint of its own log when the log has grown, and acts as a
// witness of everyone else's: a checkpoint whose root equals the root of
// the author's log as this node holds it, at that size, is cosigned and
// gossiped again with the cosignature; one whose root differs proves that
// the author showed another history to someone, and is kept as evidence
// (the author is flagged). Checkpoints travel on their own topic.

// Topic is the federation's checkpoint topic.
func Topic(federation string) string { return "/staydown/v1/" + federation + "/checkpoints" }

// DefaultInterval is how often a node publishes a checkpoint of
// its own log, if the log grew.
const DefaultInterval = 30 * time.Second

// maxKeptRoots bounds the roots a witness remembers per log.
const maxKeptRoots = 64

// Conflict is a checkpoint whose root is not the root of the
// author's log as this node holds it, at that size: proof, with the
// entries this node holds, that the author forked its history.
type Conflict struct {
	Author  protocol.AuthorKey
	Size    uint64
	Claimed []byte // the checkpoint's root
	Held    []byte // the root of the log this node holds; nil when the evidence is another checkpoint
	Note    []byte // the signed checkpoint
}

// Deps are what Checkpoints needs of its node.
type Deps struct {
	Store      *store.Store
	Roster     func() *protocol.Roster // the roster in force
	Self       protocol.Member
	Author     ed25519.PrivateKey // signs this node's checkpoints and cosignatures
	Federation string
	// Host is this node's peer: its own messages are not checked again.
	Host peer.ID
	// After makes the timers of the publication interval; Now is the
	// node's clock, for the rate of log lines about peers (nil: time.Now).
	After func(d time.Duration) <-chan time.Time
	Now   func() time.Time
	// Rejected counts a message rejected from a peer (the node's metric).
	Rejected func()
	// Hold, when set and true, stops the checkpoints of this node's own
	// log: its store was restored and its own head is not confirmed yet
	// (SPEC 16.7). Cosigning others' goes on.
	Hold func() bool
	Log  *slog.Logger
	Reg  prometheus.Registerer
}

// Checkpoints keeps the latest checkpoint of every log and the conflicts,
// in the node's store too (store.SaveCheckpoint), so that they survive a
// restart; exports take them from here.
type Checkpoints struct {
	d      Deps
	signer note.Signer
	topic  *pubsub.Topic
	// ctx is Join's: the publications end with it.
	ctx context.Context

	cosigned  prometheus.Counter
	conflicts prometheus.Counter

	// rejections rate-limits the line of a peer's rejected checkpoints:
	// once a minute per peer, with the count of those between.
	rejections *ratelog.Limiter[peer.ID]

	// sends are the cosigned checkpoints being published from the
	// validator (which must not block on a publish); close waits for them.
	sends sync.WaitGroup

	mu    sync.Mutex // guards logs and found
	logs  map[protocol.AuthorKey]*checkpointLog
	found []Conflict
}

// checkpointLog is what a node knows of one log's checkpoints.
type checkpointLog struct {
	tree      *protocol.Tree    // the log's first tree.Size() entries, as stored here
	roots     map[uint64][]byte // roots checked, by size
	latest    []byte            // the newest checkpoint seen, with every cosignature seen
	note      *note.Note        // latest, opened
	size      uint64            // its size
	sigs      int               // its signatures
	cosigned  uint64            // the largest size this node cosigned (or, for its own log, published)
	published uint64
}

// File is where a node kept checkpoints, in its directory,
// before they moved into its store: Start imports the file and renames
// it (sidefiles.go).
const File = "checkpoints.db"

// New loads what an earlier run kept, from the store.
func New(d Deps) (*Checkpoints, error) {
	s, err := protocol.NoteSigner(d.Self.Name, d.Author)
	if err != nil {
		return nil, err
	}
	now := d.Now
	if now == nil {
		now = time.Now
	}
	c := &Checkpoints{d: d, signer: s, ctx: context.Background(), logs: map[protocol.AuthorKey]*checkpointLog{},
		rejections: ratelog.New[peer.ID](time.Minute, now),
		cosigned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "staydown_checkpoints_cosigned_total", Help: "Checkpoints of other members' logs this node witnessed and cosigned.",
		}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "staydown_checkpoint_conflicts_total", Help: "Checkpoints whose root contradicts the log this node holds (evidence of a fork).",
		}),
	}
	if err := c.load(); err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	d.Reg.MustRegister(c.cosigned, c.conflicts)
	return c, nil
}

// load reads what an earlier run kept. A kept note that no longer opens
// against the roster (a member removed) is skipped.
func (c *Checkpoints) load() error {
	latest, err := c.d.Store.LatestCheckpoints()
	if err != nil {
		return err
	}
	for _, msg := range latest {
		if sc, err := protocol.OpenCheckpoint(msg, c.d.Roster()); err == nil {
			l := c.log(sc.Author)
			l.keep(sc, msg)
			if sc.Author == c.d.Self.AuthorKey {
				l.published = sc.Size
			} else if slices.Contains(sc.Cosigners, c.d.Self.AuthorKey) {
				l.cosigned = sc.Size
			}
		}
	}
	conflicts, err := c.d.Store.CheckpointConflicts()
	if err != nil {
		return err
	}
	for _, msg := range conflicts {
		if sc, err := protocol.OpenCheckpoint(msg, c.d.Roster()); err == nil {
			c.found = append(c.found, Conflict{Author: sc.Author, Size: sc.Size, Claimed: sc.Root, Note: msg})
		}
	}
	return nil
}

// save keeps a log's latest checkpoint on disk.
func (c *Checkpoints) save(author protocol.AuthorKey, msg []byte) {
	if err := c.d.Store.SaveCheckpoint(author, msg); err != nil {
		c.d.Log.Error("keeping a checkpoint", "err", err)
	}
}

func (c *Checkpoints) saveConflict(msg []byte) {
	if err := c.d.Store.SaveCheckpointConflict(msg); err != nil {
		c.d.Log.Error("keeping a checkpoint conflict", "err", err)
	}
}

// Close waits for the publications under way (they end with the run
// context), so that none writes to the store once it closes.
func (c *Checkpoints) Close() { c.sends.Wait() }

func (c *Checkpoints) log(a protocol.AuthorKey) *checkpointLog {
	l := c.logs[a]
	if l == nil {
		l = &checkpointLog{tree: protocol.NewTree(), roots: map[uint64][]byte{}}
		c.logs[a] = l
	}
	return l
}

// rootAt is the root of author's log at size as stored here, and false if
// the store does not hold that many entries yet. c.mu is held.
func (c *Checkpoints) rootAt(author protocol.AuthorKey, size uint64) ([]byte, bool, error) {
	l := c.log(author)
	if r, ok := l.roots[size]; ok {
		return r, true, nil
	}
	head, err := c.d.Store.Head(author)
	if err != nil || head.Seq < size {
		return nil, false, err
	}
	if l.tree.Size() > size {
		l.tree = protocol.NewTree()
	}
	if l.tree.Size() < size {
		err := c.d.Store.RangeRaw(author, l.tree.Size()+1, size, func(_ uint64, raw []byte) error {
			l.tree.Append(protocol.IDOf(raw))
			return nil
		})
		if err != nil {
			return nil, false, err
		}
	}
	root := l.tree.Root()
	if len(l.roots) >= maxKeptRoots {
		delete(l.roots, slices.Min(slices.Collect(maps.Keys(l.roots))))
	}
	l.roots[size] = root
	return root, true, nil
}

// keep makes msg the log's latest checkpoint if it is newer; the same
// checkpoint with other signatures adds them to the one kept (every
// signature in sc verified when it was opened). c.mu is held.
func (c *checkpointLog) keep(sc protocol.SignedCheckpoint, msg []byte) bool {
	switch {
	case c.note == nil || sc.Size > c.size:
		c.latest, c.size, c.sigs, c.note = msg, sc.Size, len(sc.Note.Sigs), sc.Note
		return true
	case sc.Size == c.size && sc.Note.Text == c.note.Text:
		merged := &note.Note{Text: c.note.Text, Sigs: slices.Clone(c.note.Sigs)}
		for _, s := range sc.Note.Sigs {
			if !slices.ContainsFunc(merged.Sigs, func(h note.Signature) bool { return h.Name == s.Name && h.Hash == s.Hash }) {
				merged.Sigs = append(merged.Sigs, s)
			}
		}
		if len(merged.Sigs) == len(c.note.Sigs) {
			return false
		}
		out, err := note.Sign(merged)
		if err != nil {
			return false
		}
		c.latest, c.sigs, c.note = out, len(merged.Sigs), merged
		return true
	}
	return false
}

// keep keeps sc in its log's record, and on disk if that changed it.
// c.mu is held.
func (c *Checkpoints) keep(l *checkpointLog, sc protocol.SignedCheckpoint, msg []byte) {
	if l.keep(sc, msg) {
		c.save(sc.Author, l.latest)
	}
}

// Validate is the checkpoint topic's validator: a checkpoint that does
// not open against the roster is rejected (the forwarder is penalised);
// every valid one is relayed, conflicting ones too, so that every node
// sees the evidence.
func (c *Checkpoints) Validate(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	if from == c.d.Host {
		return pubsub.ValidationAccept
	}
	sc, err := protocol.OpenCheckpoint(m.Data, c.d.Roster())
	if err != nil {
		c.d.Rejected()
		c.rejections.Log(c.d.Log, slog.LevelWarn, from, "rejected checkpoint from peer", "peer", from, "err", err)
		return pubsub.ValidationReject
	}
	cosign, err := c.Receive(sc, m.Data)
	if err != nil {
		c.d.Log.Error("checking a checkpoint", "err", err)
		return pubsub.ValidationIgnore
	}
	if cosign != nil {
		c.sends.Go(func() { c.publish(cosign) })
	}
	return pubsub.ValidationAccept
}

// Receive witnesses a checkpoint opened against the roster. It returns
// this node's cosigned version to publish, if it cosigns.
func (c *Checkpoints) Receive(sc protocol.SignedCheckpoint, msg []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.log(sc.Author)
	if sc.Author == c.d.Self.AuthorKey {
		// Our own, come back with cosignatures.
		c.keep(l, sc, msg)
		return nil, nil
	}
	if l.note != nil && l.size == sc.Size && l.note.Text != sc.Note.Text {
		// Two checkpoints of one size, both signed by the author, with
		// different roots: evidence even without the log.
		c.conflict(sc, nil, msg)
		c.saveConflict(l.latest)
		return nil, nil
	}
	root, held, err := c.rootAt(sc.Author, sc.Size)
	if err != nil {
		return nil, err
	}
	if !held {
		// Not yet here: sync will bring the entries, and the author will
		// publish again. Kept meanwhile: a signed statement that a later
		// one of the same size must agree with.
		c.keep(l, sc, msg)
		return nil, nil
	}
	if !bytes.Equal(root, sc.Root) {
		c.conflict(sc, root, msg)
		return nil, nil
	}
	c.keep(l, sc, msg)
	if slices.Contains(sc.Cosigners, c.d.Self.AuthorKey) {
		l.cosigned = max(l.cosigned, sc.Size)
		return nil, nil
	}
	if sc.Size <= l.cosigned {
		// Our cosignature of this size went missing on the way (gossip
		// is best-effort): send the merged checkpoint, which carries it.
		if sc.Size == l.size {
			return slices.Clone(l.latest), nil
		}
		return nil, nil
	}
	out, err := protocol.Cosign(sc.Note, c.signer)
	if err != nil {
		return nil, err
	}
	l.cosigned = sc.Size
	c.cosigned.Inc()
	if again, err := protocol.OpenCheckpoint(out, c.d.Roster()); err == nil {
		c.keep(l, again, out)
	}
	return out, nil
}

// conflict keeps a contradicting checkpoint as evidence; held is the
// root of the log this node holds at its size, nil when the evidence is
// another checkpoint of the same size. c.mu is held.
func (c *Checkpoints) conflict(sc protocol.SignedCheckpoint, held, msg []byte) {
	for _, f := range c.found {
		if bytes.Equal(f.Note, msg) {
			return
		}
	}
	c.conflicts.Inc()
	c.found = append(c.found, Conflict{Author: sc.Author, Size: sc.Size, Claimed: sc.Root, Held: held, Note: msg})
	c.saveConflict(msg)
	c.d.Log.Error("checkpoint contradicts what this node holds: the author showed another history",
		"author", c.d.Roster().NameOf(sc.Author), "size", sc.Size)
}

func (c *Checkpoints) publish(msg []byte) {
	if err := c.topic.Publish(c.ctx, msg); err != nil && c.ctx.Err() == nil {
		c.d.Log.Warn("gossip publish of a checkpoint failed", "err", err)
	}
}

// publishOwn signs and publishes a checkpoint of this node's log if it
// grew since the last one, and otherwise publishes the last one again.
func (c *Checkpoints) publishOwn() error {
	me := c.d.Self.AuthorKey
	head, err := c.d.Store.Head(me)
	if err != nil {
		return err
	}
	c.mu.Lock()
	l := c.log(me)
	if head.Seq == 0 {
		c.mu.Unlock()
		return nil
	}
	if head.Seq <= l.published {
		// Gossip is best-effort and nodes come and go: send the latest
		// again, with every cosignature gathered, so that witnesses that
		// missed it cosign it and every node ends up with all the
		// cosignatures. A few hundred bytes per interval.
		again := slices.Clone(l.latest)
		c.mu.Unlock()
		if again != nil {
			c.publish(again)
		}
		return nil
	}
	root, _, err := c.rootAt(me, head.Seq)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	cp := protocol.Checkpoint{Origin: protocol.CheckpointOrigin(c.d.Federation, me), Size: head.Seq, Root: root}
	msg, err := protocol.SignCheckpoint(cp, c.signer)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	if sc, err := protocol.OpenCheckpoint(msg, c.d.Roster()); err == nil {
		c.keep(l, sc, msg)
	}
	l.published = head.Seq
	c.mu.Unlock()
	c.publish(msg)
	return nil
}

// Run publishes this node's checkpoints every interval (jittered by up
// to a fifth) until ctx ends. Call it once, after Join.
func (c *Checkpoints) Run(ctx context.Context, interval time.Duration) {
	for {
		wait := interval + time.Duration(rand.Int64N(int64(interval)/5+1))
		select {
		case <-ctx.Done():
			return
		case <-c.d.After(wait):
		}
		for _, msg := range c.witnessKept() {
			c.publish(msg)
		}
		if c.d.Hold != nil && c.d.Hold() {
			continue
		}
		if err := c.publishOwn(); err != nil {
			c.d.Log.Error("publishing a checkpoint", "err", err)
		}
	}
}

// witnessKept cosigns the kept checkpoints of other logs that this node
// could not check when they came (the entries they cover were not here
// yet) and holds the entries of now, and returns the cosigned versions to
// publish. Without it such a checkpoint waited for its author's log to
// grow: the author's republication of the same bytes is dropped by
// every pubsub seen-cache for minutes.
func (c *Checkpoints) witnessKept() [][]byte {
	c.mu.Lock()
	var kept [][]byte
	for a, l := range c.logs {
		if a != c.d.Self.AuthorKey && l.note != nil && l.size > l.cosigned {
			kept = append(kept, slices.Clone(l.latest))
		}
	}
	c.mu.Unlock()
	var out [][]byte
	for _, msg := range kept {
		sc, err := protocol.OpenCheckpoint(msg, c.d.Roster())
		if err != nil {
			continue // its author is no longer a member
		}
		cosigned, err := c.Receive(sc, msg)
		if err != nil {
			c.d.Log.Error("checking a checkpoint", "err", err)
			continue
		}
		if cosigned != nil {
			out = append(out, cosigned)
		}
	}
	return out
}

// Latest returns the newest checkpoint this node holds of author's log,
// with every cosignature it has seen, or nil.
func (c *Checkpoints) Latest(author protocol.AuthorKey) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l := c.logs[author]; l != nil {
		return slices.Clone(l.latest)
	}
	return nil
}

// Export lists the checkpoints to export: the latest of each log that
// want selects, then the contradicting ones, sorted by author.
func (c *Checkpoints) Export(want func(protocol.AuthorKey) bool) [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	authors := slices.SortedFunc(maps.Keys(c.logs), func(a, b protocol.AuthorKey) int { return bytes.Compare(a[:], b[:]) })
	var out [][]byte
	for _, a := range authors {
		if l := c.logs[a]; l.latest != nil && want(a) {
			out = append(out, slices.Clone(l.latest))
		}
	}
	for _, f := range c.found {
		if want(f.Author) {
			out = append(out, slices.Clone(f.Note))
		}
	}
	return out
}

// Conflicts returns the contradicting checkpoints seen.
func (c *Checkpoints) Conflicts() []Conflict {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.found)
}

// Join registers the validator of the checkpoint topic, joins it and
// returns its subscription, which Drain empties. Publications end with
// ctx (the node's run context).
func (c *Checkpoints) Join(ctx context.Context, ps *pubsub.PubSub) (*pubsub.Subscription, error) {
	c.ctx = ctx
	name := Topic(c.d.Federation)
	if err := ps.RegisterTopicValidator(name, c.Validate); err != nil {
		return nil, fmt.Errorf("gossipsub validator: %w", err)
	}
	t, err := ps.Join(name)
	if err != nil {
		return nil, fmt.Errorf("gossipsub join %s: %w", name, err)
	}
	c.topic = t
	sub, err := t.Subscribe()
	if err != nil {
		return nil, fmt.Errorf("gossipsub subscribe: %w", err)
	}
	return sub, nil
}

// Drain empties the checkpoint subscription until ctx ends: the validator
// did the work.
func Drain(ctx context.Context, sub *pubsub.Subscription) {
	for {
		if _, err := sub.Next(ctx); err != nil {
			return
		}
	}
}

// Proof is the entry with this id and its inclusion
// proof against the latest checkpoint this node holds of its author's log
// (with the cosignatures gathered). ErrNotFound when the entry is not
// stored or no checkpoint covers it yet.
func (c *Checkpoints) Proof(ctx context.Context, id protocol.ID) (protocol.EntryProof, error) {
	e, err := c.d.Store.Get(id)
	if err != nil {
		return protocol.EntryProof{}, fmt.Errorf("%w: no entry %s in this node's store", kind.ErrNotFound, id)
	}
	msg := c.Latest(e.Author)
	if msg == nil {
		return protocol.EntryProof{}, fmt.Errorf("%w: no checkpoint of %s's log yet (one comes within %v of its author's last entry)", kind.ErrNotFound, c.d.Roster().NameOf(e.Author), DefaultInterval)
	}
	sc, err := protocol.OpenCheckpoint(msg, c.d.Roster())
	if err != nil {
		return protocol.EntryProof{}, err
	}
	if sc.Size < e.Seq() {
		return protocol.EntryProof{}, fmt.Errorf("%w: the latest checkpoint of %s's log (size %d) does not cover seq %d yet", kind.ErrNotFound, c.d.Roster().NameOf(e.Author), sc.Size, e.Seq())
	}
	ids := make([]protocol.ID, 0, sc.Size)
	err = c.d.Store.RangeRaw(e.Author, 1, sc.Size, func(_ uint64, raw []byte) error {
		ids = append(ids, protocol.IDOf(raw))
		return ctx.Err()
	})
	if err != nil {
		return protocol.EntryProof{}, err
	}
	return protocol.MakeEntryProof(e.Raw, e.Seq(), ids, msg, sc.Root)
}
