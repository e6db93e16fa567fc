package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/audit"
	"github.com/staydown/staydown/protocol/export"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/report"
)

func (c *cli) auditCommand() *cobra.Command {
	var genesisPath, rosterPath string
	cmd := &cobra.Command{
		Use:   "audit (FILE --genesis GENESIS | --dir D) [--json]",
		Short: "Verify an export offline: signatures, chains, membership, roles, forks; recompute the report",
		Long: `Verify an export file (from "staydown log export") under the federation's
GENESIS (the genesis file, the roster file of the first members; --roster
is another name for --genesis), with no network and no node: the
membership the genesis and the file's amendments, approvals and rotations
make (SPEC 12), and every entry against it: well-formed, signed by a
member's key within its end (before a rotation, revocation or removal),
of a kind the member's role then may write; every log contiguous from
seq 1 with every link intact, no log forked (two entries signed for one
seq), no member voting for two amendments of one roster version, the
file's own counts and digest, and the genesis in its header. Recomputes
the transparency report from the entries that hold.

With --dir D instead of FILE, audits the running node's store in place:
the node streams its logs to the auditor, which checks them under the
genesis file the node's config names.

Exit 0: everything holds. Exit 1: violations, each printed with its
evidence (the signed entries that prove it; --json gives them whole, in
hex). Membership entries without effect (a vote that lost, an approval
after another amendment passed) are listed apart: they are not
violations. Exit 2: the file or the genesis cannot be read.`,
		Args: args("FILE", 0, 1),
		RunE: func(cmd *cobra.Command, files []string) error {
			// What an audit keeps (compact records per entry) is a few
			// hundred MB at 10^6 entries; without a limit the collector
			// lets the heap grow to twice that before collecting. A soft
			// limit keeps the process near what it holds (GOMEMLIMIT
			// overrides it).
			if os.Getenv("GOMEMLIMIT") == "" {
				debug.SetMemoryLimit(auditMemoryLimit)
			}
			var res auditResult
			var err error
			switch {
			case len(files) == 1 && c.dir != "":
				return usagef("give FILE or --dir, not both")
			case genesisPath != "" && rosterPath != "" && genesisPath != rosterPath:
				return usagef("--genesis %q and --roster %q name two files: give one (--roster is another name for --genesis)", genesisPath, rosterPath)
			case len(files) == 1:
				if genesisPath == "" {
					genesisPath = rosterPath
				}
				if genesisPath == "" {
					return needFlag("genesis", "the federation's genesis file (its first roster), to check the entries against")
				}
				res, err = auditFile(files[0], genesisPath)
			case c.dir != "":
				res, err = c.auditNode(cmd.Context())
			default:
				return usagef("missing FILE (or --dir D to audit a running node)")
			}
			if err != nil {
				return err
			}
			if c.json {
				if err := c.printJSON(res.json()); err != nil {
					return err
				}
			} else if err := res.print(c); err != nil {
				return err
			}
			if len(res.Violations) > 0 {
				c.code = exitNoMatch
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&genesisPath, "genesis", "", "the federation's genesis file to check against (required with FILE)")
	// --roster is the flag's name from before membership, when the genesis
	// file was the roster: it stays, as another name for --genesis.
	cmd.Flags().StringVar(&rosterPath, "roster", "", "the same as --genesis (the genesis file is the first roster)")
	return cmd
}

// auditMemoryLimit is the audit's soft memory limit (runtime/debug).
const auditMemoryLimit = 400 << 20

type auditResult struct {
	audit.Result
	genesis  *membership.Genesis
	source   string
	took     time.Duration
	backfill bool // equivocation evidence could not be completed (no second pass)
}

// auditFile audits an export file: one streaming pass, and a second one
// only if an equivocation needs the bytes of an entry read earlier.
func auditFile(path, genesisPath string) (auditResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return auditResult{}, err
	}
	defer f.Close()
	r, err := export.NewReader(f)
	if err != nil {
		return auditResult{}, fmt.Errorf("%s: %w", display(path), err)
	}
	genesis, err := config.LoadGenesis(genesisPath, r.Header.Federation)
	if err != nil {
		return auditResult{}, err
	}
	start := time.Now()
	a := audit.NewUnder(genesis)
	if err := feed(r, a); err != nil {
		return auditResult{}, err
	}
	if a.NeedsBackfill() {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return auditResult{}, err
		}
		r, err := export.NewReader(f)
		if err != nil {
			return auditResult{}, err
		}
		a.BackfillFrom(r)
	}
	return auditResult{Result: a.Finish(time.Now().UnixMilli()), genesis: genesis, source: path, took: time.Since(start)}, nil
}

// auditNode audits the node of --dir through its export stream.
func (c *cli) auditNode(ctx context.Context) (auditResult, error) {
	cfg, err := c.config()
	if err != nil {
		return auditResult{}, err
	}
	genesis, err := cfg.Genesis()
	if err != nil {
		return auditResult{}, err
	}
	cl, err := c.client()
	if err != nil {
		return auditResult{}, err
	}
	body, err := cl.stream(ctx, http.MethodGet, "/v1/export")
	if err != nil {
		return auditResult{}, err
	}
	defer body.Close()
	start := time.Now()
	r, err := export.NewReader(body)
	if err != nil {
		return auditResult{}, err
	}
	a := audit.NewUnder(genesis)
	if err := feed(r, a); err != nil {
		return auditResult{}, err
	}
	if a.NeedsBackfill() {
		// The findings need the entries they name, which came earlier in
		// the stream: read it a second time, as a file is.
		again, err := cl.stream(ctx, http.MethodGet, "/v1/export")
		if err != nil {
			return auditResult{}, err
		}
		defer again.Close()
		r, err := export.NewReader(again)
		if err != nil {
			return auditResult{}, err
		}
		a.BackfillFrom(r)
	}
	return auditResult{Result: a.Finish(time.Now().UnixMilli()), genesis: genesis, source: "the node of " + c.dir,
		took: time.Since(start), backfill: a.NeedsBackfill()}, nil
}

// feed audits every record, decoding and verifying signatures on every
// core (audit.FeedBatches).
func feed(r *export.Reader, a *audit.Auditor) error {
	workers := runtime.GOMAXPROCS(0)
	return audit.FeedBatches(r, a, 1024, func(recs []export.Record) []audit.Decoded {
		out := make([]audit.Decoded, len(recs))
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := w; i < len(recs); i += workers {
					e, err := audit.Decode(recs[i])
					out[i] = audit.Decoded{Rec: recs[i], Entry: e, Err: err}
				}
			})
		}
		wg.Wait()
		return out
	})
}

func (r auditResult) name(k protocol.AuthorKey) string {
	if m, ok := r.Everyone.ByKey(k); ok {
		return m.Name
	}
	return k.String()
}

// memberSummary is one line on the membership the audit judged under.
func (r auditResult) memberSummary() string {
	h := r.Membership
	inForce := h.Roster()
	s := fmt.Sprintf("Membership: genesis %x; roster version %d in force, %d members", r.genesis.Hash(), h.Version(), len(inForce.Members))
	if n := len(r.Everyone.Members) - len(inForce.Members); n > 0 {
		s += fmt.Sprintf(" (%d removed)", n)
	}
	if n := len(h.Pending); n > 0 {
		s += fmt.Sprintf("; %d amendments pending", n)
	}
	return s + "."
}

func (r auditResult) print(c *cli) error {
	w := c.stdout
	fmt.Fprintf(w, "Audited %s: %d entries in %d logs, %d evidence records, %d checkpoints (%d compared with their log), in %v.\n",
		r.source, r.Entries, r.Logs, r.Evidence, r.Checkpoints, r.Checked, r.took.Round(time.Millisecond))
	fmt.Fprintln(w, r.memberSummary())
	for _, p := range r.Membership.Pending {
		fmt.Fprintf(w, "  pending %s by %s: %s, %d of the %d votes needed\n", p.ID, p.Proposer, printable(p.Change), len(p.Votes), p.Needed)
	}
	if r.NoHeaderGenesis {
		fmt.Fprintln(w, "Note: the export's header carries no genesis (its exporter predates membership): only the genesis given was used.")
	}
	if len(r.Absent) > 0 {
		fmt.Fprintf(w, "Partial export: the logs of %s are not in it, so these are incomplete: their report figures; attestation statuses (only the disputes and allow entries of the exported logs count); notices addressed to them (their replies are in their logs: marked below).\n",
			strings.Join(r.Absent, ", "))
	}
	if len(r.Violations) == 0 {
		fmt.Fprintln(w, "Everything holds: every entry is well-formed, signed by a member's key within its end, of a kind the member's role then may write; every log is contiguous and unforked; no member voted twice.")
	} else {
		fmt.Fprintf(w, "%d violations:\n", len(r.Violations))
		for i, v := range r.Violations {
			fmt.Fprintf(w, "%d. [%s] %s\n", i+1, v.Kind(), printable(v.Error()))
			for _, raw := range v.Evidence() {
				if e, err := protocol.Decode(append([]byte(nil), raw...)); err == nil {
					fmt.Fprintf(w, "   evidence: entry %s by %s, seq %d, %d bytes\n", e.ID, r.name(e.Author), e.Seq(), len(raw))
				} else if sc, err := protocol.OpenCheckpoint(raw, r.genesis.Roster); err == nil {
					fmt.Fprintf(w, "   evidence: checkpoint of %s's log, size %d, root %x, %d cosignatures\n", r.name(sc.Author), sc.Size, sc.Root, len(sc.Cosigners))
				} else {
					fmt.Fprintf(w, "   evidence: %d bytes that are not an entry\n", len(raw))
				}
			}
		}
	}
	if len(r.VoidMembership) > 0 {
		fmt.Fprintf(w, "%d membership entries without effect (signed, not violations):\n", len(r.VoidMembership))
		for i, v := range r.VoidMembership {
			fmt.Fprintf(w, "%d. record %d: %s by %s, seq %d: %s\n", i+1, v.Index, v.Entry.ID, r.name(v.Entry.Author), v.Entry.Seq(), printable(v.Why))
		}
	}
	if len(r.State.Notes) > 0 {
		fmt.Fprintf(w, "%d entries name signals their target does not carry, which concern nothing (signed, not violations):\n", len(r.State.Notes))
		for i, n := range r.State.Notes {
			fmt.Fprintf(w, "%d. record %d: [%s] %s %s by %s, seq %d, of %s: %s\n", i+1, n.Index, n.Kind, n.Entry.Kind(), n.Entry.ID, r.name(n.Entry.Author), n.Entry.Seq(),
				n.Target, printable(strings.Join(humanSignals(n.Signals), ", ")))
		}
	}
	for _, k := range r.Flagged {
		fmt.Fprintf(w, "Flagged: %s signed two entries for one position of its log.\n", r.name(k))
	}
	st := r.State
	fmt.Fprintf(w, "State: %d signals match; attestations: %d active, %d disputed, %d allowlisted, %d retracted; %d notices open.\n",
		st.Matching, st.Active, st.Disputed, st.Allowlisted, st.Retracted, len(st.Open))
	for _, n := range st.Open {
		deadline := "clock stopped (clarification requested)"
		if n.DeadlineMs != 0 {
			deadline = "deadline " + time.UnixMilli(n.DeadlineMs).UTC().Format(time.RFC3339)
		}
		absent := ""
		if n.AddresseeAbsent {
			absent = " (the addressee's log is not in the export: it may have answered)"
		}
		fmt.Fprintf(w, "  %s %s -> %s: %s, %s%s\n", n.ID, r.name(n.From), r.name(n.To), n.State, deadline, absent)
	}
	if len(st.Orders) > 0 {
		fmt.Fprintf(w, "Blocking orders: %d.\n", len(st.Orders))
		for _, o := range st.Orders {
			end, unblocked := "until lifted", ""
			if o.EndMs != 0 {
				end = "to " + time.UnixMilli(o.EndMs).UTC().Format(time.RFC3339)
				switch {
				case o.UnblockedID.IsZero():
					unblocked = "; not said unblocked"
				case o.UnblockedWithin:
					unblocked = "; unblocked in time"
				default:
					unblocked = "; unblocked late"
				}
			}
			blocked := ""
			if !o.ActionID.IsZero() {
				blocked = map[bool]string{true: " in time", false: " late"}[o.WithinDeadline]
			}
			fmt.Fprintf(w, "  %s %s -> %s: %s from %s %s: %s%s%s\n", o.ID, r.name(o.From), r.name(o.To), strings.Join(o.Domains, ", "),
				time.UnixMilli(o.StartMs).UTC().Format(time.RFC3339), end, o.State, blocked, unblocked)
		}
	}
	if r.backfill {
		fmt.Fprintln(w, "Note: some evidence lacks the bytes of an entry read earlier; audit an exported file for the full proof.")
	}
	fmt.Fprintln(w)
	return printReport(c, r.Report)
}

type auditJSON struct {
	OK          bool   `json:"ok"`
	Checkpoints int    `json:"checkpoints"`
	Checked     int    `json:"checkpoints_checked"`
	Entries     uint64 `json:"entries"`
	Logs        int    `json:"logs"`
	Evidence    uint64 `json:"evidence"`
	Genesis     string `json:"genesis"` // the genesis hash, hex
	// AbsentLogs: the members whose logs a partial export leaves out
	// (empty for a whole export); the figures that depend on their logs
	// are incomplete.
	AbsentLogs     []string        `json:"absent_logs"`
	HeaderGenesis  string          `json:"header_genesis"` // "same", "absent" or "other"
	Membership     membershipJSON  `json:"membership"`
	Flagged        []string        `json:"flagged"`
	Violations     []violationJSON `json:"violations"`
	VoidMembership []voidJSON      `json:"void_membership"`
	State          stateJSON       `json:"state"`
	Report         report.Report   `json:"report"`
}

type membershipJSON struct {
	Version uint64        `json:"version"`
	Members []memberJSON  `json:"members"` // every member admitted, removed ones too
	Pending []pendingJSON `json:"pending"`
}

type memberJSON struct {
	Name    string   `json:"name"`
	Role    string   `json:"role"`
	Key     string   `json:"key"`
	Keys    []string `json:"keys"`
	Removed bool     `json:"removed"`
}

type pendingJSON struct {
	ID       string `json:"id"`
	Base     uint64 `json:"base"`
	Proposer string `json:"proposer"`
	Change   string `json:"change"`
	Votes    int    `json:"votes"`
	Needed   int    `json:"needed"`
}

type voidJSON struct {
	Entry    string `json:"entry"`
	Author   string `json:"author"`
	Seq      uint64 `json:"seq"`
	Reason   string `json:"reason"`
	Evidence string `json:"evidence"` // the signed entry, hex
}

type stateJSON struct {
	Matching    int          `json:"matching_signals"`
	Active      int          `json:"active"`
	Disputed    int          `json:"disputed"`
	Allowlisted int          `json:"allowlisted"`
	Retracted   int          `json:"retracted"`
	Open        []openNotice `json:"open_notices"`
	Orders      []orderJSON  `json:"orders"`
	// Notes: entries that say something without effect (a retraction or
	// a dispute naming signals its target does not carry).
	Notes []noteJSON `json:"notes"`
}

type noteJSON struct {
	Kind    string   `json:"kind"` // named_elsewhere
	Record  uint64   `json:"record"`
	Entry   string   `json:"entry"`
	Author  string   `json:"author"`
	Seq     uint64   `json:"seq"`
	Target  string   `json:"target"`
	Signals []string `json:"signals"` // TYPE:VALUE
}

// orderJSON is a blocking order in the audit's state (SPEC 10.3).
type orderJSON struct {
	ID      string   `json:"id"`
	From    string   `json:"from"`
	To      string   `json:"to"`
	Domains []string `json:"domains"`
	State   string   `json:"state"`
	StartMs int64    `json:"start_ms"`
	EndMs   int64    `json:"end_ms"` // 0: no end yet
	InForce bool     `json:"in_force"`
	Lift    string   `json:"lift,omitempty"`
	// ActionMs and WithinDeadline: the first action (blocked or not
	// executed), 0 and false before.
	ActionMs        int64 `json:"action_ms"`
	WithinDeadline  bool  `json:"within_deadline"`
	UnblockedMs     int64 `json:"unblocked_ms"`
	UnblockedWithin bool  `json:"unblocked_within_deadline"`
}

type openNotice struct {
	ID         string `json:"id"`
	From       string `json:"from"`
	To         string `json:"to"`
	State      string `json:"state"`
	DeadlineMs int64  `json:"deadline_ms"`
	// AddresseeAbsent: the addressee's log is not in a partial export:
	// the notice may have been answered.
	AddresseeAbsent bool `json:"addressee_absent"`
}

type violationJSON struct {
	Kind     string   `json:"kind"`
	Message  string   `json:"message"`
	Evidence []string `json:"evidence"` // raw signed entries, hex
}

func (r auditResult) json() auditJSON {
	out := auditJSON{OK: len(r.Violations) == 0, Checkpoints: r.Checkpoints, Checked: r.Checked, Entries: r.Entries, Logs: r.Logs, Evidence: r.Evidence,
		Genesis: fmt.Sprintf("%x", r.genesis.Hash()), HeaderGenesis: "same",
		Membership: membershipJSON{Version: r.Membership.Version(), Members: []memberJSON{}, Pending: []pendingJSON{}},
		AbsentLogs: append([]string{}, r.Absent...),
		Flagged:    []string{}, Violations: []violationJSON{}, VoidMembership: []voidJSON{}, Report: r.Report,
		State: stateJSON{Matching: r.State.Matching, Active: r.State.Active, Disputed: r.State.Disputed,
			Allowlisted: r.State.Allowlisted, Retracted: r.State.Retracted, Open: []openNotice{}, Orders: []orderJSON{}, Notes: []noteJSON{}}}
	for _, o := range r.State.Orders {
		j := orderJSON{ID: o.ID.String(), From: r.name(o.From), To: r.name(o.To), Domains: o.Domains, State: string(o.State),
			StartMs: o.StartMs, EndMs: o.EndMs, InForce: o.InForce, ActionMs: o.ActionMs, WithinDeadline: o.WithinDeadline,
			UnblockedMs: o.UnblockedMs, UnblockedWithin: o.UnblockedWithin}
		if !o.LiftID.IsZero() {
			j.Lift = o.LiftID.String()
		}
		out.State.Orders = append(out.State.Orders, j)
	}
	for _, n := range r.State.Notes {
		out.State.Notes = append(out.State.Notes, noteJSON{Kind: n.Kind, Record: n.Index, Entry: n.Entry.ID.String(), Author: r.name(n.Entry.Author),
			Seq: n.Entry.Seq(), Target: n.Target.String(), Signals: n.Signals})
	}
	for _, n := range r.State.Open {
		out.State.Open = append(out.State.Open, openNotice{ID: n.ID.String(), From: r.name(n.From), To: r.name(n.To), State: string(n.State), DeadlineMs: n.DeadlineMs,
			AddresseeAbsent: n.AddresseeAbsent})
	}
	for _, k := range r.Flagged {
		out.Flagged = append(out.Flagged, r.name(k))
	}
	inForce := r.Membership.Roster()
	for _, m := range r.Everyone.Members {
		j := memberJSON{Name: m.Name, Role: string(m.Role), Key: m.AuthorKey.String(), Keys: []string{}}
		for _, k := range m.Keys {
			j.Keys = append(j.Keys, k.String())
		}
		_, in := inForce.ByName(m.Name)
		j.Removed = !in
		out.Membership.Members = append(out.Membership.Members, j)
	}
	for _, p := range r.Membership.Pending {
		out.Membership.Pending = append(out.Membership.Pending, pendingJSON{ID: p.ID.String(), Base: p.Base, Proposer: p.Proposer, Change: p.Change, Votes: len(p.Votes), Needed: p.Needed})
	}
	for _, v := range r.VoidMembership {
		out.VoidMembership = append(out.VoidMembership, voidJSON{Entry: v.Entry.ID.String(), Author: r.name(v.Entry.Author), Seq: v.Entry.Seq(), Reason: v.Why, Evidence: hex.EncodeToString(v.Entry.Raw)})
	}
	if r.NoHeaderGenesis {
		out.HeaderGenesis = "absent"
	}
	for _, v := range r.Violations {
		if v.Kind() == "genesis" {
			out.HeaderGenesis = "other"
		}
		j := violationJSON{Kind: v.Kind(), Message: v.Error(), Evidence: []string{}}
		for _, raw := range v.Evidence() {
			j.Evidence = append(j.Evidence, hex.EncodeToString(raw))
		}
		out.Violations = append(out.Violations, j)
	}
	return out
}
