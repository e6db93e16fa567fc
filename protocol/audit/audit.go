// Package audit verifies an export file's logs offline (SPEC.md section
// 19.2) under a federation's genesis: every entry well-formed, signed, and
// taken in by the membership that the genesis and the file's membership
// entries make (SPEC 12: by a member's key, within the key's end, of a
// kind the member's role then may write), every log contiguous from seq
// 1 with every link intact, no log forked, no member voting twice at one
// roster version; and it recomputes the transparency report and the state
// from the entries that hold. Each violation is a typed value carrying
// its evidence (the signed entries involved), because an auditor needs
// the proof, not a message.
//
// The package is pure: the caller reads the file (package export) and
// feeds records in file order; signature verification may be done by the
// caller in parallel (see Auditor.Add). The membership needs every
// membership entry, wherever it is in the file, so entries are judged
// against it at the end: the auditor keeps a byte per entry until then,
// and the bytes of the entries it finds at fault come from a second pass
// over the file (Auditor.NeedsBackfill), as equivocation evidence does.
package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/export"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/report"
)

// Violation is one finding. Evidence returns the raw signed entries that
// prove it (possibly none, for a file-level problem).
type Violation interface {
	error
	Kind() string
	Evidence() [][]byte
}

// Where locates a record in the export file.
type Where struct {
	Index  uint64 `json:"record"` // 1-based record number (the header is 1)
	Offset int64  `json:"offset"` // byte offset of its length prefix
}

func where(r export.Record) Where { return Where{r.Index, r.Offset} }

// Malformed: the record's bytes are not a valid v1 entry.
type Malformed struct {
	Where
	Raw []byte
	Err error
}

func (v *Malformed) Error() string {
	return fmt.Sprintf("record %d: malformed entry: %v", v.Index, v.Err)
}
func (v *Malformed) Kind() string       { return "malformed" }
func (v *Malformed) Evidence() [][]byte { return [][]byte{v.Raw} }

// BadSignature: the entry's signature does not verify under its author key.
type BadSignature struct {
	Where
	Entry *protocol.Entry
}

func (v *BadSignature) Error() string {
	return fmt.Sprintf("record %d: %s seq %d (%s): signature does not verify", v.Index, v.Entry.Author, v.Entry.Seq(), v.Entry.ID)
}
func (v *BadSignature) Kind() string       { return "bad-signature" }
func (v *BadSignature) Evidence() [][]byte { return [][]byte{v.Entry.Raw} }

// NotAllowed: the entry is of another federation than the genesis's. Err
// wraps protocol.ErrFederation. (What the membership refuses is a
// MemberViolation.)
type NotAllowed struct {
	Where
	Entry *protocol.Entry
	Err   error
}

func (v *NotAllowed) Error() string {
	return fmt.Sprintf("record %d: %s seq %d (%s): %v", v.Index, v.Entry.Author, v.Entry.Seq(), v.Entry.ID, v.Err)
}

func (v *NotAllowed) Kind() string {
	switch {
	case errors.Is(v.Err, protocol.ErrUnknownAuthor):
		return "unknown-author"
	case errors.Is(v.Err, protocol.ErrFederation):
		return "wrong-federation"
	}
	return "role"
}
func (v *NotAllowed) Evidence() [][]byte { return [][]byte{v.Entry.Raw} }
func (v *NotAllowed) Unwrap() error      { return v.Err }

// Gap: a log skips seqs: Next follows Last (nil: the log's first entry is
// not seq 1) with seqs missing between them.
type Gap struct {
	Where
	Last, Next *protocol.Entry
}

func (v *Gap) Error() string {
	last := uint64(0)
	if v.Last != nil {
		last = v.Last.Seq()
	}
	return fmt.Sprintf("record %d: %s: seq %d follows seq %d: entries %d to %d are missing", v.Index, v.Next.Author, v.Next.Seq(), last, last+1, v.Next.Seq()-1)
}
func (v *Gap) Kind() string { return "gap" }
func (v *Gap) Evidence() [][]byte {
	if v.Last == nil {
		return [][]byte{v.Next.Raw}
	}
	return [][]byte{v.Last.Raw, v.Next.Raw}
}

// BrokenLink: Next is seq Last+1 but its prev is not Last's id.
type BrokenLink struct {
	Where
	Last, Next *protocol.Entry
}

func (v *BrokenLink) Error() string {
	return fmt.Sprintf("record %d: %s seq %d: prev %s is not the id of seq %d (%s)", v.Index, v.Next.Author, v.Next.Seq(), v.Next.Prev(), v.Last.Seq(), v.Last.ID)
}
func (v *BrokenLink) Kind() string       { return "broken-link" }
func (v *BrokenLink) Evidence() [][]byte { return [][]byte{v.Last.Raw, v.Next.Raw} }

// Reordered: a log's entries are not in seq order, or a log appears in two
// places of the file.
type Reordered struct {
	Where
	Last, Next *protocol.Entry
}

func (v *Reordered) Error() string {
	return fmt.Sprintf("record %d: %s seq %d comes after seq %d: the log is out of order", v.Index, v.Next.Author, v.Next.Seq(), v.Last.Seq())
}
func (v *Reordered) Kind() string       { return "reordered" }
func (v *Reordered) Evidence() [][]byte { return [][]byte{v.Last.Raw, v.Next.Raw} }

// Equivocation: two different entries, both validly signed by the author,
// for one seq of its log: proof that the author forked its log.
type Equivocation struct {
	Where
	Logged, Other *protocol.Entry
}

func (v *Equivocation) Error() string {
	return fmt.Sprintf("record %d: %s signed two entries for seq %d: %s and %s", v.Index, v.Logged.Author, v.Logged.Seq(), v.Logged.ID, v.Other.ID)
}
func (v *Equivocation) Kind() string       { return "equivocation" }
func (v *Equivocation) Evidence() [][]byte { return [][]byte{v.Logged.Raw, v.Other.Raw} }

// BadCheckpoint: a checkpoint record does not open as a checkpoint of a
// roster member's log signed by that member.
type BadCheckpoint struct {
	Where
	Note []byte
	Err  error
}

func (v *BadCheckpoint) Error() string {
	return fmt.Sprintf("record %d: checkpoint: %v", v.Index, v.Err)
}
func (v *BadCheckpoint) Kind() string       { return "checkpoint" }
func (v *BadCheckpoint) Evidence() [][]byte { return [][]byte{v.Note} }

// CheckpointConflict: checkpoints signed by an author that cannot all be
// true of one history: two of one size with different roots, or one
// whose root is not the root of the exported log at its size. Notes are
// the signed checkpoints; Entry, when set, is the log's entry at that
// size, whose chain gives the other root.
type CheckpointConflict struct {
	Where
	Author protocol.AuthorKey
	Size   uint64
	Notes  [][]byte
	Entry  *protocol.Entry
}

func (v *CheckpointConflict) Error() string {
	if v.Entry != nil {
		return fmt.Sprintf("record %d: %s signed a checkpoint of size %d whose root is not the root of its log (entry %s at seq %d)", v.Index, v.Author, v.Size, v.Entry.ID, v.Size)
	}
	return fmt.Sprintf("record %d: %s signed two checkpoints of size %d with different roots", v.Index, v.Author, v.Size)
}
func (v *CheckpointConflict) Kind() string { return "checkpoint-conflict" }
func (v *CheckpointConflict) Evidence() [][]byte {
	out := slices.Clone(v.Notes)
	if v.Entry != nil {
		out = append(out, v.Entry.Raw)
	}
	return out
}

// FileError: the file itself is damaged: its trailer does not match what
// it holds (records removed or added, bytes changed).
type FileError struct {
	Err error
}

func (v *FileError) Error() string      { return v.Err.Error() }
func (v *FileError) Kind() string       { return "file" }
func (v *FileError) Evidence() [][]byte { return nil }
func (v *FileError) Unwrap() error      { return v.Err }

// log is what the auditor keeps of one author's log: the ids by seq (for
// evidence), the last entry, and whether the chain has held so far.
type log struct {
	ids    []protocol.ID  // ids[seq-1]
	tree   *protocol.Tree // over ids, while the chain holds
	last   *protocol.Entry
	broken bool // a gap or a broken link: later entries are not trusted
	done   bool // another log followed it in the file
}

// Auditor checks records fed in file order.
type Auditor struct {
	genesis    *membership.Genesis
	genesisRaw []byte
	roster     *protocol.Roster // the genesis's
	logs       map[protocol.AuthorKey]*log
	current    protocol.AuthorKey
	violations []Violation
	builder    *report.Builder
	state      *stateBuilder
	authors    []protocol.AuthorKey // authorIndex's table
	authorIdx  map[protocol.AuthorKey]uint32
	entries    uint64
	evidence   uint64
	flagged    map[protocol.AuthorKey]bool
	pending    map[seqKey][]*Equivocation // awaiting Backfill
	// checkpoints of each log, to compare with its root as it streams by
	checkpoints map[protocol.AuthorKey][]checkpoint
	checked     int // checkpoints compared with a log

	// What judging entries against the membership at the end needs: a
	// byte per entry (runs), the addressee of each notice (by record
	// index), and the membership entries whose log held up to them.
	runs       []entryRun
	addressees map[uint64]protocol.AuthorKey
	// orders are the records that are blocking orders, replyStatus the
	// statuses of the replies only one role may write (SPEC 9.1): what
	// membership judges them by besides their kind.
	orders        map[uint64]bool
	replyStatus   map[uint64]pb.ReplyStatus
	memberEntries []memberEntry
	// Set by settle: the membership, what it finds, and the findings
	// that await the bytes of their entry (by record index).
	history         *membership.History
	memberFindings  []Violation
	voids           []VoidMembership
	wanted          map[uint64]*MemberViolation
	noHeaderGenesis bool
	// exported are the logs a partial export holds (its header's
	// authors); empty for an export of every log.
	exported []protocol.AuthorKey
}

type checkpoint struct {
	protocol.SignedCheckpoint
	raw   []byte
	where Where
}

// Checkpoint checks a checkpoint record (they come before the entries):
// it must open against the genesis roster (checkpoints come before the
// membership entries that change it), must not contradict another of the
// same log, and is compared with the log's root at its size when the log
// reaches it.
func (a *Auditor) Checkpoint(rec export.Record) {
	sc, err := protocol.OpenCheckpoint(rec.Raw, a.roster)
	if err != nil {
		a.fail(&BadCheckpoint{where(rec), rec.Raw, err})
		return
	}
	if a.checkpoints == nil {
		a.checkpoints = map[protocol.AuthorKey][]checkpoint{}
	}
	for _, o := range a.checkpoints[sc.Author] {
		if protocol.Contradict(o.Checkpoint, sc.Checkpoint) {
			a.flagged[sc.Author] = true
			a.fail(&CheckpointConflict{Where: where(rec), Author: sc.Author, Size: sc.Size, Notes: [][]byte{o.raw, rec.Raw}})
		}
	}
	a.checkpoints[sc.Author] = append(a.checkpoints[sc.Author], checkpoint{sc, rec.Raw, where(rec)})
}

// compare checks the checkpoints of size l.tree.Size() against the root
// of the log so far; last is the log's entry at that size.
func (a *Auditor) compare(l *log, last *protocol.Entry) {
	size := l.tree.Size()
	var root []byte
	for _, c := range a.checkpoints[last.Author] {
		if c.Size != size {
			continue
		}
		if root == nil {
			root = l.tree.Root()
		}
		a.checked++
		if !bytes.Equal(root, c.Root) {
			a.flagged[last.Author] = true
			a.fail(&CheckpointConflict{Where: c.where, Author: last.Author, Size: size, Notes: [][]byte{c.raw}, Entry: last})
		}
	}
}

// New returns an auditor under the genesis that roster is with the
// default voting rule: a roster file of version 1 (SPEC 12.1), as tests
// and callers that hold no genesis file load it. A roster that is no
// genesis (no member of a voting role, a block that breaks SPEC 12.2;
// config never loads one) panics. Callers with a genesis use NewUnder.
func New(roster *protocol.Roster) *Auditor {
	g, err := membership.NewGenesis(roster, membership.Rule{})
	if err != nil {
		panic(fmt.Sprintf("audit.New: the roster is no genesis: %v", err))
	}
	return NewUnder(g)
}

// NewUnder returns an auditor that checks a file's entries under the
// genesis g, which the auditor obtained itself: against the membership g
// and the file's membership entries make (SPEC 12).
func NewUnder(g *membership.Genesis) *Auditor {
	return &Auditor{genesis: g, genesisRaw: g.Raw(), roster: g.Roster, logs: map[protocol.AuthorKey]*log{},
		builder: report.New(g.Roster, nil), state: newStateBuilder(), flagged: map[protocol.AuthorKey]bool{}}
}

func (a *Auditor) fail(v Violation) { a.violations = append(a.violations, v) }

// authorIndex numbers authors, so that per-entry records hold 4 bytes
// instead of a 32-byte key.
func (a *Auditor) authorIndex(k protocol.AuthorKey) uint32 {
	i, ok := a.authorIdx[k]
	if !ok {
		if a.authorIdx == nil {
			a.authorIdx = map[protocol.AuthorKey]uint32{}
		}
		i = uint32(len(a.authors))
		a.authors = append(a.authors, k)
		a.authorIdx[k] = i
	}
	return i
}

// Decode decodes a record's entry and verifies its signature: the costly,
// order-independent part of Add, which callers may run in parallel. It
// returns the entry (nil if malformed) and the verification error.
func Decode(rec export.Record) (*protocol.Entry, error) {
	e, err := protocol.Decode(bytes.Clone(rec.Raw))
	if err != nil {
		return nil, err
	}
	return e, e.Verify()
}

// Add checks one record. e and err are Decode's results for it.
func (a *Auditor) Add(rec export.Record, e *protocol.Entry, err error) {
	if e == nil {
		a.fail(&Malformed{where(rec), rec.Raw, err})
		return
	}
	// A badly signed entry still stands at its place in its log (so that
	// what follows is checked against it, not reported again as a gap),
	// but counts for nothing, and nothing more of that log is trusted.
	// Whether the membership takes an entry in is decided at the end
	// (settle); until then every entry of a log that holds counts.
	untrusted := false
	if err != nil {
		a.fail(&BadSignature{where(rec), e})
		untrusted = true
	} else if e.Body.Federation != a.roster.Federation {
		a.fail(&NotAllowed{where(rec), e, fmt.Errorf("%w: entry %s is for %q, this is %q", protocol.ErrFederation, e.ID, e.Body.Federation, a.roster.Federation)})
		return
	}
	if rec.Kind == export.KindEvidence {
		// An equivocation proves a fork by the key, whoever holds it:
		// evidence is not judged against the membership.
		if !untrusted {
			a.addEvidence(rec, e)
		}
		return
	}
	if !untrusted {
		a.noteEntry(rec, e)
	}
	a.entries++
	l := a.logs[e.Author]
	if l == nil {
		l = &log{}
		a.logs[e.Author] = l
	}
	if e.Author != a.current {
		if old := a.logs[a.current]; old != nil {
			old.done = true
		}
		a.current = e.Author
		if l.done {
			a.fail(&Reordered{where(rec), l.last, e})
			l.broken = true
			return
		}
	}
	seq := e.Seq()
	var lastSeq uint64
	if l.last != nil {
		lastSeq = l.last.Seq()
	}
	switch {
	case seq == lastSeq+1 && (l.last == nil || e.Prev() == l.last.ID):
	case seq == lastSeq+1:
		a.fail(&BrokenLink{where(rec), l.last, e})
		l.broken = true
	case seq > lastSeq+1:
		a.fail(&Gap{where(rec), l.last, e})
		l.broken = true
	case seq <= uint64(len(l.ids)) && l.ids[seq-1] != e.ID:
		// A second entry for a seq already taken: a fork, if its author
		// signed it (SPEC 5.3); a badly signed one is reported as such.
		if !untrusted {
			a.equivocation(where(rec), l, seq, e)
		}
		return
	default:
		// The same entry again, or one that belongs before where it
		// stands (a gap was reported where it was missing).
		a.fail(&Reordered{where(rec), l.last, e})
		l.broken = true
		return
	}
	if seq == uint64(len(l.ids))+1 {
		l.ids = append(l.ids, e.ID)
	}
	l.last = e
	if untrusted {
		l.broken = true
	}
	if !l.broken {
		a.builder.Add(e)
		a.state.add(e, a.authorIndex(e.Author), where(rec))
		if e.Kind().IsMembership() {
			a.memberEntries = append(a.memberEntries, memberEntry{e, where(rec)})
		}
	}
	if !l.broken && len(a.checkpoints[e.Author]) > 0 {
		if l.tree == nil {
			l.tree = protocol.NewTree()
		}
		if l.tree.Size()+1 == seq {
			l.tree.Append(e.ID)
			a.compare(l, e)
		}
	}
}

type seqKey struct {
	author protocol.AuthorKey
	seq    uint64
}

// equivocation records a fork at seq of l. The logged entry's bytes are
// at hand if it is the log's last; otherwise Backfill supplies them.
func (a *Auditor) equivocation(w Where, l *log, seq uint64, other *protocol.Entry) {
	a.flagged[other.Author] = true
	v := &Equivocation{Where: w, Other: other}
	if l.last != nil && l.last.Seq() == seq {
		v.Logged = l.last
	} else {
		v.Logged = &protocol.Entry{ID: l.ids[seq-1], Author: other.Author}
		if a.pending == nil {
			a.pending = map[seqKey][]*Equivocation{}
		}
		k := seqKey{other.Author, seq}
		a.pending[k] = append(a.pending[k], v)
	}
	a.fail(v)
}

// NeedsBackfill is called once every record has been fed. It judges the
// entries against the membership (once), and reports whether some
// finding still lacks the bytes of an entry read earlier (an
// equivocation's logged entry, an entry the membership does not take
// in): feed every record again to Backfill (a second pass over the file).
func (a *Auditor) NeedsBackfill() bool {
	a.settle()
	return len(a.pending) > 0 || len(a.wanted) > 0
}

// BackfillFrom reads the file again (a second pass, from r) and gives the
// findings that need them the bytes of the entries they name.
func (a *Auditor) BackfillFrom(r *export.Reader) {
	for a.NeedsBackfill() {
		rec, err := r.Next()
		if err != nil {
			return
		}
		if rec.Kind == export.KindEntry {
			a.Backfill(rec)
		}
	}
}

// Backfill gives the bytes of an entry record, read again, to the
// findings that name it. The record was verified when it was fed: here it
// is only decoded, and matched by id or by its place in the file.
func (a *Auditor) Backfill(rec export.Record) {
	v, want := a.wanted[rec.Index]
	if !want && len(a.pending) == 0 {
		return
	}
	e, err := protocol.Decode(bytes.Clone(rec.Raw))
	if err != nil {
		return
	}
	if want && v.Entry.Author == e.Author && v.Entry.Seq() == e.Seq() {
		v.Entry, v.Offset = e, rec.Offset
		delete(a.wanted, rec.Index)
	}
	k := seqKey{e.Author, e.Seq()}
	for _, v := range a.pending[k] {
		if v.Logged.ID == e.ID {
			v.Logged = e
			delete(a.pending, k)
		}
	}
}

// addEvidence checks an evidence record: it must conflict with the logged
// entry of its author and seq. Then it proves an equivocation.
func (a *Auditor) addEvidence(rec export.Record, e *protocol.Entry) {
	a.evidence++
	l := a.logs[e.Author]
	seq := e.Seq()
	if l == nil || seq == 0 || seq > uint64(len(l.ids)) {
		a.fail(&Malformed{where(rec), rec.Raw, fmt.Errorf("evidence for %s seq %d, which the file's log does not hold", e.Author, seq)})
		return
	}
	if l.ids[seq-1] == e.ID {
		a.fail(&Malformed{where(rec), rec.Raw, fmt.Errorf("evidence record repeats the logged entry %s", e.ID)})
		return
	}
	a.equivocation(where(rec), l, seq, e)
}

// FileProblem records a damaged file (export.TrailerError).
func (a *Auditor) FileProblem(err error) { a.fail(&FileError{err}) }

// Result is the audit's outcome.
type Result struct {
	// Checkpoints counts checkpoint records; Checked those compared with
	// the root of their log (a checkpoint beyond the exported log, or
	// past a break in it, cannot be).
	Checkpoints, Checked int
	Entries              uint64
	Evidence             uint64
	Logs                 int
	Flagged              []protocol.AuthorKey
	Violations           []Violation
	// Membership is the history the genesis and the membership entries
	// of the file make (of logs that held up to them): every entry was
	// judged against it. Everyone names every key it knows.
	Membership *membership.History
	Everyone   *protocol.Roster
	// VoidMembership lists the membership entries without effect, in
	// file order: signed statements, not violations.
	VoidMembership []VoidMembership
	// NoHeaderGenesis: the export's header carries no genesis (its
	// exporter predates membership), so it could not be compared.
	NoHeaderGenesis bool
	// Absent are the members whose logs a partial export (exported with
	// some authors only) does not hold, by name. What their logs would
	// say is not in the figures: their replies to notices, their
	// disputes and allow entries, their own report figures.
	Absent []string
	// Report is the transparency report over the entries whose log held
	// up to them (an entry after a gap or a broken link in its log is not
	// counted) and which the membership takes in, at the time asked;
	// State what those entries say now.
	Report report.Report
	State  State
}

// Finish ends the audit (judging the entries against the membership, if
// NeedsBackfill has not); the report's states are computed at nowMs.
func (a *Auditor) Finish(nowMs int64) Result {
	a.settle()
	everyone := a.history.Everyone()
	a.builder.SetMembers(everyone, a.history)
	r := Result{Entries: a.entries, Evidence: a.evidence, Logs: len(a.logs), Checked: a.checked,
		Violations: append(slices.Clone(a.violations), a.memberFindings...),
		Membership: a.history, Everyone: everyone, VoidMembership: a.voids, NoHeaderGenesis: a.noHeaderGenesis,
		Report: a.builder.Report(nowMs, 0), State: a.state.finish(nowMs, a.authors, a.history)}
	r.absent(a.exported)
	for _, cs := range a.checkpoints {
		r.Checkpoints += len(cs)
	}
	for k := range a.flagged {
		r.Flagged = append(r.Flagged, k)
	}
	return r
}

// Decoded is a record with what Decode made of it.
type Decoded struct {
	Rec   export.Record
	Entry *protocol.Entry
	Err   error
}

// FeedBatches reads every record of r and hands it to a, in file order:
// the header to Header, checkpoints to Checkpoint, entries and evidence
// to Add; a file damaged after its header becomes a FileProblem. It
// returns only read errors other than the file's own damage. The decoding (and signature checks, most of
// an audit's work) is left to decode (calling Decode on each record), which
// gets the entry and evidence records in batches of up to batch, in file
// order, and may spread them over several cores; it must return one result
// per record, in order.
func FeedBatches(r *export.Reader, a *Auditor, batch int, decode func([]export.Record) []Decoded) error {
	a.Header(r.Header)
	for {
		var recs []export.Record
		var stop error
		for len(recs) < batch {
			rec, err := r.Next()
			if err != nil {
				stop = err
				break
			}
			if rec.Kind == export.KindCheckpoint {
				a.Checkpoint(rec) // they come first, before any entry
				continue
			}
			recs = append(recs, rec)
		}
		for _, d := range decode(recs) {
			a.Add(d.Rec, d.Entry, d.Err)
		}
		switch {
		case stop == nil:
		case errors.Is(stop, io.EOF):
			return nil
		case errors.Is(stop, export.ErrFormat):
			a.FileProblem(stop)
			return nil
		default:
			return stop
		}
	}
}

// absent fills in the members whose logs a partial export, of the logs of
// exported, leaves out, and marks the open notices addressed to them,
// whose replies would be in their logs. Nothing for a whole export.
func (r *Result) absent(exported []protocol.AuthorKey) {
	if len(exported) == 0 {
		return
	}
	absentKey := map[protocol.AuthorKey]bool{}
	for _, m := range r.Everyone.Members {
		keys := append([]protocol.AuthorKey{m.AuthorKey}, m.Keys...)
		if !slices.ContainsFunc(keys, func(k protocol.AuthorKey) bool { return slices.Contains(exported, k) }) {
			r.Absent = append(r.Absent, m.Name)
			for _, k := range keys {
				absentKey[k] = true
			}
		}
	}
	for i, n := range r.State.Open {
		r.State.Open[i].AddresseeAbsent = absentKey[n.To]
	}
}
