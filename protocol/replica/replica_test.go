package replica_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/membership/membershiptest"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/replica"
)

// TestReplica runs the scripts in protocol/testdata/replica: each command
// makes one signed entry (or sends one again), decides it against an
// in-memory replica, acts on the step as a store does, and prints the
// outcome, the reason, the effect and whether gossip relays it. Entries
// are named by author and seq (a2; a second entry at one seq is a2'), and
// ids in messages are printed as those names. Rewrite the golden output
// with: go test ./protocol/replica -run TestReplica -rewrite
func TestReplica(t *testing.T) {
	datadriven.Walk(t, "../testdata/replica", func(t *testing.T, path string) {
		w := newWorld()
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			return w.run(t, d)
		})
	})
}

// memory is a replica held in maps, acted on as SPEC 5 and 9 say: the
// test's stand-in for the store.
type memory struct {
	heads     map[protocol.AuthorKey]protocol.Head
	logs      map[protocol.AuthorKey]map[uint64][]byte
	evidence  map[string]bool // author || seq || id
	refs      map[protocol.ID]replica.Ref
	retracted map[protocol.ID]protocol.ID
}

func evKey(a protocol.AuthorKey, seq uint64, id protocol.ID) string {
	return string(a[:]) + strconv.FormatUint(seq, 10) + "/" + string(id[:])
}

func (m *memory) Head(a protocol.AuthorKey) (protocol.Head, error) {
	if h, ok := m.heads[a]; ok {
		return h, nil
	}
	return protocol.Head{Author: a}, nil
}

func (m *memory) Logged(a protocol.AuthorKey, seq uint64) ([]byte, error) { return m.logs[a][seq], nil }

func (m *memory) HasEvidence(a protocol.AuthorKey, seq uint64, id protocol.ID) (bool, error) {
	return m.evidence[evKey(a, seq, id)], nil
}

func (m *memory) Ref(id protocol.ID) (replica.Ref, bool, error) {
	r, ok := m.refs[id]
	return r, ok, nil
}

func (m *memory) RetractedBy(target protocol.ID) (protocol.ID, bool, error) {
	by, ok := m.retracted[target]
	return by, ok, nil
}

func (m *memory) anyEvidence(a protocol.AuthorKey, seq uint64) bool {
	prefix := string(a[:]) + strconv.FormatUint(seq, 10) + "/"
	for k := range m.evidence {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// act does what the step says, as a store would.
func (m *memory) act(e *protocol.Entry, s replica.Step) {
	switch s.Outcome {
	case replica.Equivocation:
		m.evidence[evKey(e.Author, e.Seq(), e.ID)] = true
	case replica.Applied, replica.Void:
		if m.logs[e.Author] == nil {
			m.logs[e.Author] = map[uint64][]byte{}
		}
		m.logs[e.Author][e.Seq()] = e.Raw
		m.heads[e.Author] = s.Effect.Head
		m.refs[e.ID] = replica.Ref{Author: e.Author, Seq: e.Seq(), Kind: e.Kind()}
		if r := e.Body.GetRetraction(); r != nil && s.Outcome == replica.Applied {
			m.retracted[protocol.ID(r.Target)] = e.ID
		}
	}
}

type world struct {
	mem *memory
	// genesis and hist are the membership, once a genesis command set
	// one; held are the entries decided Held, in arrival order.
	genesis *membership.Genesis
	hist    *membership.History
	held    []*protocol.Entry
	// conflicts is how many conflicting approvals were printed.
	conflicts int
	keys      map[string]ed25519.PrivateKey
	named     map[string]*protocol.Entry // by name
	names     map[string]string          // hex id -> name
	sigs      map[string]string          // hex of a signal key's digest -> token
	clock     int64
}

func newWorld() *world {
	return &world{
		mem: &memory{heads: map[protocol.AuthorKey]protocol.Head{}, logs: map[protocol.AuthorKey]map[uint64][]byte{},
			evidence: map[string]bool{}, refs: map[protocol.ID]replica.Ref{}, retracted: map[protocol.ID]protocol.ID{}},
		keys: map[string]ed25519.PrivateKey{}, named: map[string]*protocol.Entry{}, names: map[string]string{},
		sigs: map[string]string{}, clock: 1767225600000,
	}
}

func (w *world) key(name string) ed25519.PrivateKey {
	if k, ok := w.keys[name]; ok {
		return k
	}
	seed := sha256.Sum256([]byte("replica test member " + name))
	k := ed25519.NewKeyFromSeed(seed[:])
	w.keys[name] = k
	ak := protocol.AuthorKeyOf(k)
	w.names[ak.String()] = name
	return k
}

// signal is the sha256 signal of a token.
func (w *world) signal(t *testing.T, token string) *pb.Signal {
	sum := sha256.Sum256([]byte(token))
	s, err := protocol.ParseSignal("sha256", hex.EncodeToString(sum[:]))
	if err != nil {
		t.Fatal(err)
	}
	w.sigs[hex.EncodeToString(sum[:])] = token
	return s
}

func (w *world) id(t *testing.T, d *datadriven.TestData, arg string) []byte {
	var name string
	d.ScanArgs(t, arg, &name)
	if name == "unknown" {
		id := protocol.IDOf([]byte("no such entry"))
		w.names[id.String()] = "unknown"
		return id[:]
	}
	e, ok := w.named[name]
	if !ok {
		d.Fatalf(t, "no entry named %q", name)
	}
	return e.ID[:]
}

func (w *world) run(t *testing.T, d *datadriven.TestData) string {
	switch d.Cmd {
	case "genesis":
		return w.setGenesis(t, d)
	case "roster":
		return w.roster()
	}
	if d.Cmd == "resend" {
		var name string
		d.ScanArgs(t, "name", &name)
		e, ok := w.named[name]
		if !ok {
			d.Fatalf(t, "no entry named %q", name)
		}
		return w.decide(t, name, e)
	}
	if len(d.CmdArgs) == 0 {
		d.Fatalf(t, "%s: want the author as the first argument", d.Cmd)
	}
	author := d.CmdArgs[0].Key
	priv := w.key(author)
	ak := protocol.AuthorKeyOf(priv)
	head := w.mem.heads[ak]
	body := &pb.Entry{Version: protocol.Version, Federation: "test", Seq: head.Seq + 1, TimestampMs: w.clock}
	w.clock += 1000
	if head.Seq > 0 {
		body.Prev = head.ID[:]
	}
	if d.HasArg("seq") {
		d.ScanArgs(t, "seq", &body.Seq)
		body.Prev = nil
		if e := w.named[fmt.Sprintf("%s%d", author, body.Seq-1)]; e != nil {
			body.Prev = e.ID[:]
		} else if body.Seq > 1 {
			missing := protocol.IDOf([]byte(fmt.Sprintf("%s%d", author, body.Seq-1)))
			w.names[missing.String()] = "missing"
			body.Prev = missing[:]
		}
	}
	if d.HasArg("prev") {
		body.Prev = w.id(t, d, "prev")
	}
	sigs := func() []*pb.Signal {
		var toks string
		d.ScanArgs(t, "sig", &toks)
		var out []*pb.Signal
		for _, tok := range strings.Split(toks, ",") {
			out = append(out, w.signal(t, tok))
		}
		return out
	}
	label, _ := protocol.ParseLabel("graphic-violence")
	switch d.Cmd {
	case "addition":
		body.Payload = &pb.Entry_Addition{Addition: &pb.Addition{Signals: sigs(), Labels: []*pb.Label{label}}}
	case "allow":
		body.Payload = &pb.Entry_Allow{Allow: &pb.Allow{Signals: sigs(), Category: "news", Reason: "report"}}
	case "retraction":
		body.Payload = &pb.Entry_Retraction{Retraction: &pb.Retraction{Target: w.id(t, d, "target")}}
	case "dispute":
		body.Payload = &pb.Entry_Dispute{Dispute: &pb.Dispute{Target: w.id(t, d, "target"), Reason: "news footage"}}
	case "notice":
		var to string
		d.ScanArgs(t, "to", &to)
		addr := protocol.AuthorKeyOf(w.key(to))
		body.Payload = &pb.Entry_Notice{Notice: &pb.Notice{Addressee: addr[:], Signals: sigs(), Category: label,
			LegalBasis: "art. 3", DeadlineMs: body.TimestampMs + 3600000,
			Details: &pb.Sealed{Nonce: make([]byte, 24), Ciphertext: []byte("c"), Recipients: []*pb.Recipient{{Member: addr[:], SealedKey: make([]byte, 48)}}}}}
	case "update":
		body.Payload = &pb.Entry_NoticeUpdate{NoticeUpdate: &pb.NoticeUpdate{Notice: w.id(t, d, "notice"), Withdraw: d.HasArg("withdraw")}}
		if !d.HasArg("withdraw") {
			body.GetNoticeUpdate().DeadlineMs = body.TimestampMs + 7200000
		}
	case "reply":
		body.Payload = &pb.Entry_NoticeReply{NoticeReply: &pb.NoticeReply{Notice: w.id(t, d, "notice"), Status: pb.ReplyStatus_REPLY_STATUS_REMOVED, ActionTimeMs: body.TimestampMs}}
	case "admit", "remove", "role", "revoke", "rule", "approve", "rotate":
		w.membershipPayload(t, d, body)
	default:
		d.Fatalf(t, "unknown command %q", d.Cmd)
	}
	e, err := protocol.Sign(priv, body)
	if err != nil {
		d.Fatalf(t, "sign: %v", err)
	}
	name := fmt.Sprintf("%s%d", author, body.Seq)
	for w.named[name] != nil {
		name += "'"
	}
	w.named[name] = e
	w.names[e.ID.String()] = name
	return w.decide(t, name, e)
}

func (w *world) decide(t *testing.T, name string, e *protocol.Entry) string {
	var members replica.Members
	if w.hist != nil {
		members = w.hist
	}
	step, err := replica.Decide(w.mem, members, e)
	if err != nil {
		t.Fatalf("%s: view error %v", name, err)
	}
	relay := replica.Relay(step, w.mem.anyEvidence(e.Author, e.Seq()))
	w.mem.act(e, step)
	if step.Outcome == replica.Held {
		w.held = append(w.held, e)
	}
	var after string
	if step.Outcome.Logged() && e.Kind().IsMembership() && w.hist != nil {
		after = w.recompute(t)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %s", name, e.Kind(), step.Outcome)
	if step.Err != nil {
		fmt.Fprintf(&b, " (%s)", w.readable(step.Err.Error()))
	}
	if relay {
		b.WriteString(", relayed")
	}
	b.WriteString("\n")
	f := step.Effect
	var parts []string
	if f.Head.Seq > 0 {
		parts = append(parts, "head "+w.readable(f.Head.ID.String()))
	}
	if len(f.Signals) > 0 {
		var toks []string
		for _, k := range f.Signals {
			toks = append(toks, w.sigs[hex.EncodeToString(k[len(k)-32:])])
		}
		sort.Strings(toks)
		parts = append(parts, "signals "+strings.Join(slices.Compact(toks), ","))
	}
	for _, id := range f.Entries {
		parts = append(parts, "entry "+w.readable(id.String()))
	}
	if f.Thread != nil {
		parts = append(parts, "thread "+w.readable(f.Thread.String()))
	}
	if f.Equivocated() {
		parts = append(parts, "flags "+w.readable(f.Flagged.String()))
	}
	if len(parts) > 0 {
		fmt.Fprintf(&b, "  effect: %s\n", strings.Join(parts, "; "))
	}
	return b.String() + after
}

// readable replaces the hex of every known id and key in s by its name.
func (w *world) readable(s string) string {
	for h, name := range w.names {
		s = strings.ReplaceAll(s, h, name)
	}
	return s
}

// setGenesis starts the membership: genesis a=referral b=platform ...
// (each key a member of that role, named as the key). Until a genesis,
// every entry is judged in.
func (w *world) setGenesis(t *testing.T, d *datadriven.TestData) string {
	var ms []protocol.Member
	for _, a := range d.CmdArgs {
		ms = append(ms, protocol.Member{Name: a.Key, Role: protocol.Role(a.Vals[0]), AuthorKey: protocol.AuthorKeyOf(w.key(a.Key)), PeerID: membershiptest.PeerOf(a.Key)})
	}
	r, err := protocol.NewRoster("test", ms)
	if err != nil {
		d.Fatalf(t, "%v", err)
	}
	if w.genesis, err = membership.NewGenesis(r, membership.Rule{}); err != nil {
		d.Fatalf(t, "%v", err)
	}
	w.hist = membership.Compute(w.genesis, nil)
	return w.roster()
}

// membershipPayload builds the payload of a membership command:
//
//	admit AUTHOR name=N role=R [base=B]
//	remove AUTHOR member=N [key=K] after=S [base=B]
//	role AUTHOR member=N role=R after=S [key=K] [base=B]
//	revoke AUTHOR member=N key=K after=S [new=K2] [base=B]
//	rule AUTHOR roles=a,b threshold=P [base=B]
//	approve AUTHOR proposal=NAME [base=B]
//	rotate AUTHOR to=K
//
// base defaults to the version in force; keys are named as authors are.
func (w *world) membershipPayload(t *testing.T, d *datadriven.TestData, body *pb.Entry) {
	base := w.hist.Version()
	if d.HasArg("base") {
		d.ScanArgs(t, "base", &base)
	}
	str := func(arg string) string {
		var s string
		d.ScanArgs(t, arg, &s)
		return s
	}
	keyOf := func(arg string) []byte {
		k := protocol.AuthorKeyOf(w.key(str(arg)))
		return k[:]
	}
	memberKey := func() []byte {
		if d.HasArg("key") {
			return keyOf("key")
		}
		return keyOf("member")
	}
	var after uint64
	if d.HasArg("after") {
		d.ScanArgs(t, "after", &after)
	}
	amend := func(a *pb.Amendment) {
		a.Base = base
		body.Payload = &pb.Entry_Amendment{Amendment: a}
	}
	switch d.Cmd {
	case "admit":
		name := str("name")
		k := protocol.AuthorKeyOf(w.key(name))
		amend(&pb.Amendment{Change: &pb.Amendment_Admit{Admit: &pb.MemberBlock{Name: name, Role: str("role"), AuthorKey: k[:], PeerId: membershiptest.PeerOf(name)}}})
	case "remove":
		amend(&pb.Amendment{Change: &pb.Amendment_Remove{Remove: &pb.Removal{Member: str("member"), Key: memberKey(), AfterSeq: after}}})
	case "role":
		amend(&pb.Amendment{Change: &pb.Amendment_Role{Role: &pb.RoleChange{Member: str("member"), Key: memberKey(), AfterSeq: after, Role: str("role")}}})
	case "revoke":
		r := &pb.Revocation{Member: str("member"), Key: keyOf("key"), AfterSeq: after}
		if d.HasArg("new") {
			r.NewKey = keyOf("new")
		}
		amend(&pb.Amendment{Change: &pb.Amendment_Revoke{Revoke: r}})
	case "rule":
		var pct uint32
		d.ScanArgs(t, "threshold", &pct)
		amend(&pb.Amendment{Change: &pb.Amendment_Rule{Rule: &pb.VotingRule{Roles: strings.Split(str("roles"), ","), ThresholdPercent: pct}}})
	case "approve":
		body.Payload = &pb.Entry_Approval{Approval: &pb.Approval{Proposal: w.id(t, d, "proposal"), Base: base}}
	case "rotate":
		body.Payload = &pb.Entry_Rotation{Rotation: &pb.Rotation{NewKey: keyOf("to")}}
	default:
		d.Fatalf(t, "unknown membership command %q", d.Cmd)
	}
}

// recompute derives the membership from every logged membership entry,
// as a node does after logging one, prints what changed, and decides the
// held entries again.
func (w *world) recompute(t *testing.T) string {
	var es []*protocol.Entry
	for _, log := range w.mem.logs {
		for _, raw := range log {
			e, err := protocol.Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			if e.Kind().IsMembership() {
				es = append(es, e)
			}
		}
	}
	before := w.hist.Version()
	w.hist = membership.Compute(w.genesis, es)
	var b strings.Builder
	if w.hist.Version() != before {
		b.WriteString(w.roster())
		held := w.held
		w.held = nil
		for _, e := range held {
			b.WriteString("retry " + w.decide(t, w.names[e.ID.String()], e))
		}
	}
	for _, c := range w.hist.Conflicts[w.conflicts:] {
		fmt.Fprintf(&b, "conflict: %s approved %s and %s at version %d\n", c.Member, w.names[c.First.ID.String()], w.names[c.Second.ID.String()], c.Base)
	}
	w.conflicts = len(w.hist.Conflicts)
	return b.String()
}

// roster prints the roster in force and the pending amendments.
func (w *world) roster() string {
	var b strings.Builder
	r := w.hist.Roster()
	fmt.Fprintf(&b, "roster version %d:", r.Version)
	for _, m := range r.Members {
		fmt.Fprintf(&b, " %s=%s", m.Name, m.Role)
		if n := w.names[m.AuthorKey.String()]; n != m.Name {
			fmt.Fprintf(&b, "(key %s)", n)
		}
	}
	b.WriteString("\n")
	for _, p := range w.hist.Pending {
		fmt.Fprintf(&b, "pending %s: %s, %d of %d votes\n", w.names[p.ID.String()], p.Change, len(p.Votes), p.Needed)
	}
	return b.String()
}
