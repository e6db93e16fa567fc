// Package writer is the one loop that writes a node's replica.
package writer

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/staydown/staydown/node/ratelog"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/replica"
	"github.com/staydown/staydown/store"
)

// The writer is the one loop that writes the replica (Writer.Run). Every
// entry that enters the store goes through it: this node's own new
// entries (proposed by Publish), entries received by gossip, and ranges
// fetched by sync. It decides and stores them in batches, one write
// transaction each (group commit: concurrent proposals share one fsync),
// and then, in commit order and in this goroutine only, runs the work that
// follows a commit (Deps.Stored: the node's match indexes and cache, its
// notice book, its events feed and the gossip publication of its own
// entries) and retries the entries of its out-of-order buffer. Nothing else writes the store's logs, so no reader
// can see a state the book or the indexes have not caught up with for
// long, and no read-then-put outside this loop can lose an update.

// proposal is an entry this node wants to publish: a body without the log
// fields, which the writer fills in (seq, prev, timestamp) and signs.
type proposal struct {
	body *pb.Entry
	done chan proposed // buffered: the writer never waits for the proposer
}

type proposed struct {
	e   *protocol.Entry
	err error
}

// syncWork is a batch fetched by sync, handed to the writer.
type syncWork struct {
	entries []*protocol.Entry
	done    chan syncDone
}

type syncDone struct {
	results []store.Result
	err     error
}

// MaxBatch and MaxBatchBytes bound one apply transaction. Large batches
// amortise a commit across many entries: the indexes take random keys, so
// a commit rewrites every index page the batch touched, and past a few
// thousand entries a bigger batch touches hardly more pages. The byte
// bound keeps memory bounded whatever the entries' sizes.
const (
	MaxBatch      = 8192
	MaxBatchBytes = 16 << 20
)

// proposeChunk bounds the proposals of one message to the writer, which
// takes a message whole: a batch overshoots MaxBatch by less than this.
const proposeChunk = 1024

// Deps are what the writer needs of its node.
type Deps struct {
	Store      *store.Store
	Names      func(protocol.AuthorKey) string // member names, for log lines
	Federation string
	Author     ed25519.PrivateKey // signs this node's entries
	Now        func() time.Time   // their timestamps
	// Done is closed when the node begins to close: proposals and sync
	// batches not yet taken fail.
	Done <-chan struct{}
	// Hooks are the work to do inside the commit transaction of a batch
	// (the watchlist's alerts: matching.Matching.WatchHook).
	Hooks func(batch []*protocol.Entry) []func(*store.Writes, []store.Result) error
	// Stored is told of every entry now in its log (applied, or void:
	// stored without effect), in commit order, before the proposer or
	// sync hears of it; own says it is this node's new entry.
	Stored func(e *protocol.Entry, r store.Result, own bool)
	// Equivocation is told of a conflicting entry kept as evidence, with
	// the entry it conflicts with.
	Equivocation func(ev *replica.EquivocationError)
	// Missing asks for a sync: an entry came before its predecessor.
	Missing func()
	// Refresh computes the membership again after a commit that logged
	// membership entries, given those (members.Live.Refresh), and reports
	// whether the roster changed: the entries held for an admission are
	// tried again.
	Refresh func(logged []*protocol.Entry) (bool, error)
	// Counted is told of each result's outcome; Committed of each
	// transaction's duration; Pending of the buffer's size (metrics).
	Counted   func(store.Outcome)
	Committed func(time.Duration)
	Pending   func(int)
	Log       *slog.Logger
}

// Writer is the one writer of a node's replica.
type Writer struct {
	d    Deps
	self protocol.AuthorKey // of d.Author
	// proposals carry Propose's and ProposeAll's bodies (a message's
	// proposals are committed together, in order), syncIn Apply's
	// batches.
	proposals chan []proposal
	syncIn    chan syncWork
	done      chan struct{} // closed when Run has ended
	pending   *pendingEntries
	// held are entries whose author is no member's key yet (SPEC 12.5),
	// bounded as pending is; holdIn brings them from the gossip
	// validator.
	held   *pendingEntries
	holdIn chan *protocol.Entry
	// lines rate-limits the lines about one author's entries that came
	// out of order, which a member can send at will: once a minute per
	// author and line, with the count of those between.
	lines *ratelog.Limiter[authorLine]
}

type authorLine struct {
	author protocol.AuthorKey
	line   string
}

// logAuthor logs msg about author's entries, rate-limited (lines).
func (w *Writer) logAuthor(level slog.Level, author protocol.AuthorKey, msg string, args ...any) {
	w.lines.Log(w.d.Log, level, authorLine{author, msg}, msg, args...)
}

// New makes the writer; Run runs it.
func New(d Deps) *Writer {
	return &Writer{d: d, self: protocol.AuthorKeyOf(d.Author), proposals: make(chan []proposal, MaxBatch), syncIn: make(chan syncWork),
		done: make(chan struct{}), pending: newPending(maxPending, maxPendingBytes, maxPendingAge),
		held: newPending(maxPending, maxPendingBytes, maxPendingAge), holdIn: make(chan *protocol.Entry, 1024),
		lines: ratelog.New[authorLine](time.Minute, d.Now)}
}

// Hold asks the writer to hold an entry whose author is no member's key
// yet, and to apply it if an admission makes it one within a minute. It
// never blocks: when the writer is busy, the entry is dropped (sync
// fetches the log once its author is a member).
func (w *Writer) Hold(e *protocol.Entry) {
	select {
	case w.holdIn <- e:
	default:
	}
}

// PendingLen is the number of entries waiting for a predecessor. Only
// for tests: the buffer is the writer's, and Run may be changing it.
func (w *Writer) PendingLen() int { return w.pending.len() }

// Run is the writer. It drains what is waiting (gossiped entries and
// proposals) into one batch, applies each sync batch as it comes, and
// after each retries entries that were waiting for a predecessor. It ends
// when received is closed (the gossip reader ends with the run context),
// failing the proposals still waiting.
func (w *Writer) Run(received <-chan *protocol.Entry) {
	defer w.failProposals()
	defer close(w.done)
	var (
		gossip []*protocol.Entry
		props  []proposal
	)
	for {
		gossip, props = gossip[:0], props[:0]
		select {
		case e, ok := <-received:
			if !ok {
				return
			}
			gossip = append(gossip, e)
		case ps := <-w.proposals:
			props = append(props, ps...)
		case sw := <-w.syncIn:
			results, err := w.commit(nil, sw.entries, false)
			sw.done <- syncDone{results, err}
			continue
		case e := <-w.holdIn:
			// The validator found no member's key for e, but an
			// admission may have passed since, and only one passing
			// after the entry is held tries it again: look once more.
			if o, _, err := w.d.Store.Preview(e); err != nil || o == store.Held {
				w.hold(e)
				continue
			}
			gossip = append(gossip, e)
		}
		size := 0
	drain:
		for len(gossip)+len(props) < MaxBatch && size < MaxBatchBytes {
			select {
			case e, ok := <-received:
				if !ok {
					break drain
				}
				gossip = append(gossip, e)
				size += len(e.Raw)
			case ps := <-w.proposals:
				props = append(props, ps...)
				size += 1024 * len(ps) // a body is signed later; count it as an entry of 1 KiB
			default:
				break drain
			}
		}
		w.commit(props, gossip, true)
	}
}

// failProposals answers the proposals that will not be written.
func (w *Writer) failProposals() {
	for {
		select {
		case ps := <-w.proposals:
			for _, p := range ps {
				p.done <- proposed{err: fmt.Errorf("node is shutting down: %w", context.Canceled)}
			}
		default:
			return
		}
	}
}

// Propose hands a body to the writer and waits for the signed, stored
// entry. When ctx ends first, the entry may still be written.
func (w *Writer) Propose(ctx context.Context, body *pb.Entry) (*protocol.Entry, error) {
	es, errs := w.ProposeAll(ctx, []*pb.Entry{body})
	return es[0], errs[0]
}

// ProposeAll hands several bodies to the writer at once and waits for
// each one's signed, stored entry (or error), given in the bodies' order.
// The writer takes them together, so that they follow each other in this
// node's log and share one write transaction (and one fsync): up to
// proposeChunk of them at a time. One that breaks a rule is refused alone.
// When ctx ends first, the entries may still be written.
func (w *Writer) ProposeAll(ctx context.Context, bodies []*pb.Entry) ([]*protocol.Entry, []error) {
	es, errs := make([]*protocol.Entry, len(bodies)), make([]error, len(bodies))
	ps := make([]proposal, len(bodies))
	for i, b := range bodies {
		ps[i] = proposal{body: b, done: make(chan proposed, 1)}
	}
	sent := 0 // proposals the writer took
	wait := func(i int) error {
		select {
		case r := <-ps[i].done:
			es[i], errs[i] = r.e, r.err
			return nil
		case <-w.done:
			// The writer answers every proposal it took before it ends,
			// and failProposals the ones it did not.
			select {
			case r := <-ps[i].done:
				es[i], errs[i] = r.e, r.err
				return nil
			default:
				return fmt.Errorf("node is shutting down: %w", context.Canceled)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for i := 0; i < len(ps); {
		if sent == i {
			chunk := ps[i:min(len(ps), i+proposeChunk)]
			select {
			case w.proposals <- chunk:
				sent += len(chunk)
			case <-ctx.Done():
				return es, fill(errs, i, ctx.Err())
			case <-w.d.Done:
				return es, fill(errs, i, fmt.Errorf("node is shutting down: %w", context.Canceled))
			}
		}
		if err := wait(i); err != nil {
			return es, fill(errs, i, err)
		}
		i++
	}
	return es, errs
}

// fill sets errs[from:] to err.
func fill(errs []error, from int, err error) []error {
	for i := from; i < len(errs); i++ {
		errs[i] = err
	}
	return errs
}

// Apply hands a batch fetched by sync to the writer and waits for its
// results (one per entry given).
func (w *Writer) Apply(entries []*protocol.Entry) ([]store.Result, error) {
	sw := syncWork{entries: entries, done: make(chan syncDone, 1)}
	select {
	case w.syncIn <- sw:
	case <-w.d.Done:
		return nil, fmt.Errorf("node is shutting down: %w", context.Canceled)
	}
	select {
	case d := <-sw.done:
		return d.results, d.err
	case <-w.d.Done:
		return nil, fmt.Errorf("node is shutting down: %w", context.Canceled)
	}
}

// sign makes the proposals into entries that continue this node's log
// from its head, in order. A proposal that cannot be signed is answered
// now and left out.
func (w *Writer) sign(props []proposal) ([]proposal, []*protocol.Entry, error) {
	head, err := w.d.Store.Head(w.self)
	if err != nil {
		return props, nil, err
	}
	kept := props[:0]
	var own []*protocol.Entry
	for _, p := range props {
		body := p.body
		body.Version = protocol.Version
		body.Federation = w.d.Federation
		body.Seq = head.Seq + 1
		body.Prev = nil
		if head.Seq > 0 {
			body.Prev = head.ID[:]
		}
		body.TimestampMs = w.d.Now().UnixMilli()
		e, err := protocol.Sign(w.d.Author, body)
		if err != nil {
			p.done <- proposed{err: fmt.Errorf("build entry %d: %w", body.Seq, err)}
			continue
		}
		kept = append(kept, p)
		own = append(own, e)
		head = protocol.Head{Author: e.Author, Seq: e.Seq(), ID: e.ID}
	}
	return kept, own, nil
}

// commit writes the proposals and the entries received in one
// transaction, then does what follows the commit, and, after every
// success, applies any buffered successors that now continue their log.
// It returns the results of the entries given. Gossiped entries that
// arrive before their predecessor are buffered (buffer); a sync batch's
// are not: they come after a fork in the range, and their predecessors
// never will.
func (w *Writer) commit(props []proposal, batch []*protocol.Entry, buffer bool) ([]store.Result, error) {
	var first []store.Result
	for len(props) > 0 || len(batch) > 0 {
		var own []*protocol.Entry
		if len(props) > 0 {
			var err error
			if props, own, err = w.sign(props); err != nil {
				w.answer(props, nil, err)
				props = nil
				w.d.Log.Error("reading this node's head failed; proposals refused", "err", err)
			}
		}
		start := time.Now()
		all := append(own, batch...)
		results, err := w.d.Store.Commit(store.Batch{Entries: all, Own: len(own),
			After: w.d.Hooks(all), Now: w.d.Now()})
		w.d.Committed(time.Since(start))
		if oe := (*store.OwnError)(nil); errors.As(err, &oe) {
			// One proposal breaks a rule (two retractions of one entry,
			// proposed together, say): refuse it, sign the rest again.
			props[oe.Index].done <- proposed{err: err}
			props = append(props[:oe.Index:oe.Index], props[oe.Index+1:]...)
			continue
		}
		if err != nil {
			// Nothing of the batch is stored, and nothing is lost: a
			// proposer hears of the error (its entry was never
			// acknowledged, nor published: publication follows the
			// commit), and the entries received are still their
			// authors' and peers': the periodic sync fetches them again.
			w.answer(props, nil, err)
			level := slog.LevelError
			if errors.Is(err, store.ErrNoSpace) {
				level = slog.LevelDebug // node/storewatch logs it, once a minute
			}
			w.d.Log.Log(context.Background(), level, "store apply failed; entries dropped until sync", "entries", len(batch), "err", err)
			return first, err
		}
		if first == nil && len(batch) > 0 {
			first = results[len(own):]
		}
		var next []*protocol.Entry
		gap := false
		var members []*protocol.Entry // membership entries logged
		for i, r := range results {
			var entry *protocol.Entry
			if i < len(own) {
				entry = own[i]
			} else {
				entry = batch[i-len(own)]
			}
			w.d.Counted(r.Outcome)
			if r.Outcome.Logged() && entry.Kind().IsMembership() {
				members = append(members, entry)
			}
			switch r.Outcome {
			case store.Applied:
				next = w.stored(entry, r, i < len(own), next)
			case store.Duplicate:
			case store.Gap:
				if !buffer {
					continue
				}
				// An ordinary gap: gossip reordered, or the node missed
				// an entry; sync fills it (DEBUG). More than the buffer
				// holds is a flood (WARN). Both once a minute per author.
				if !w.pending.put(entry, w.d.Now()) {
					w.logAuthor(slog.LevelWarn, entry.Author, "out-of-order buffer full; entry ahead of its log dropped until sync", "author", w.d.Names(entry.Author), "seq", entry.Seq(), "err", r.Err)
				} else {
					w.logAuthor(slog.LevelDebug, entry.Author, "entry ahead of its log: held until sync brings its predecessors", "author", w.d.Names(entry.Author), "seq", entry.Seq(), "err", r.Err)
				}
				gap = true
			case store.Equivocation:
				var ev *replica.EquivocationError
				if errors.As(r.Err, &ev) {
					w.d.Equivocation(ev)
				}
			case store.Void:
				// Stored, no effect: the author broke a stateful rule.
				w.logAuthor(slog.LevelWarn, entry.Author, "entry stored without effect (void)", "author", w.d.Names(entry.Author), "seq", entry.Seq(), "err", r.Err)
				next = w.stored(entry, r, false, next)
			case store.Rejected:
				w.logAuthor(slog.LevelWarn, entry.Author, "entry does not continue its log", "author", w.d.Names(entry.Author), "seq", entry.Seq(), "err", r.Err)
			case store.Held:
				if buffer {
					w.hold(entry)
				}
			case store.Refused:
				w.d.Log.Debug("entry far past the end of its key: not stored", "author", w.d.Names(entry.Author), "seq", entry.Seq(), "err", r.Err)
			}
		}
		if len(members) > 0 {
			changed, err := w.d.Refresh(members)
			if err != nil {
				w.d.Log.Error("computing the membership after a membership entry", "err", err)
			} else if changed {
				// Held entries may be a new member's: try them again
				// (the store holds them again if not).
				next = append(next, w.held.all()...)
			}
		}
		w.answer(props, own, nil)
		props = nil
		if n := w.held.expire(w.d.Now()); n > 0 {
			w.d.Log.Info("entries by keys no member has were held a minute: dropped (sync fetches a log once its author is a member)", "entries", n)
		}
		if n := w.pending.expire(w.d.Now()); n > 0 {
			w.d.Log.Warn("entries held for their predecessors too long: dropped until sync fetches them", "entries", n, "held_for", maxPendingAge)
			gap = true
		}
		w.d.Pending(w.pending.len())
		if gap {
			w.d.Missing() // the missing entries are somewhere: fetch them
		}
		batch = next
	}
	return first, nil
}

// hold keeps an entry by a key no member has yet (SPEC 12.5).
func (w *Writer) hold(e *protocol.Entry) {
	if !w.held.put(e, w.d.Now()) {
		w.d.Log.Debug("held-entries buffer full: entry by a key no member has dropped", "author", e.Author, "seq", e.Seq())
	}
}

// answer tells each proposer its entry (or err).
func (w *Writer) answer(props []proposal, own []*protocol.Entry, err error) {
	for i, p := range props {
		if err != nil {
			p.done <- proposed{err: err}
		} else {
			p.done <- proposed{e: own[i]}
		}
	}
}

// stored tells the node of an entry now in its log (Deps.Stored), and
// queues its buffered successors, if any, for the next round.
func (w *Writer) stored(e *protocol.Entry, r store.Result, own bool, next []*protocol.Entry) []*protocol.Entry {
	w.d.Stored(e, r, own)
	// Every buffered successor in a row, not just the next: they follow
	// each other in the next round's batch, one transaction for the lot
	// instead of one per entry.
	for seq := e.Seq() + 1; ; seq++ {
		s := w.pending.take(e.Author, seq)
		if s == nil {
			return next
		}
		next = append(next, s)
	}
}
