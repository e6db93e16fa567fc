// Package notices is a node's side of takedown notices (SPEC 10): issuing,
// updating and replying to them, the inbox and outbox with each notice's
// state, the transparency report, and the live event feed. It reads the
// store and proposes entries to the node's writer; it never writes the
// store itself.
package notices

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/staydown/staydown/node/kind"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/membership"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/report"
	"github.com/staydown/staydown/store"
)

// Deps are what Notices needs of its node.
type Deps struct {
	Store *store.Store
	// Roster is the roster in force (SPEC 12): notices go to its
	// platforms, details are sealed to its auditors.
	Roster func() *protocol.Roster
	// Self is this node's member as the roster in force has it (its
	// role and current key).
	Self func() protocol.Member
	// History is the membership in force: the report judges entries
	// under it (SPEC 18).
	History func() *membership.History
	// Author is the node's author key: it opens the details sealed to
	// the node.
	Author ed25519.PrivateKey
	// Publish signs a body as the node's next entry and has the writer
	// store and gossip it (node.Node.Publish).
	Publish func(ctx context.Context, body *pb.Entry) (*protocol.Entry, error)
	// Subscribe rings on every entry stored (the node's feed).
	Subscribe func(buffer int) (<-chan *protocol.Entry, func())
	// Done is closed when the node begins to close: event streams end.
	Done   <-chan struct{}
	Now    func() time.Time
	Random func() io.Reader // what details are sealed with
	Log    *slog.Logger
	// Reg takes the notice gauges (staydown_notices_open, _due_soon,
	// _overdue); nil: none.
	Reg prometheus.Registerer
}

// Notices issues, reads and follows a node's takedown notices. Its
// methods may run concurrently; Stored is the writer's alone.
type Notices struct {
	d Deps
	// book is every notice's lifecycle, in memory (book.go).
	book *noticeBook
}

// New loads the notice book from the store.
func New(d Deps) (*Notices, error) {
	b, err := newNoticeBook(d.Store)
	if err != nil {
		return nil, fmt.Errorf("loading notices: %w", err)
	}
	n := &Notices{d: d, book: b}
	if d.Reg != nil {
		d.Reg.MustRegister(newCollector(n))
	}
	return n, nil
}

// DefaultDeadline is a notice's deadline when the issuer names none:
// the EU's one hour.
const DefaultDeadline = time.Hour

func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", kind.ErrInvalid, field, fmt.Sprintf(format, args...))
}

// details builds the plaintext details of a request, URLs normalised.
func details(urls []string, text string) (*pb.NoticeDetails, error) {
	if len(urls) == 0 && text == "" {
		return nil, nil
	}
	d := &pb.NoticeDetails{Text: text}
	for i, u := range urls {
		n, err := protocol.NormalizeURL(u)
		if err != nil {
			return nil, invalid(fmt.Sprintf("urls[%d]", i), "%v", err)
		}
		d.Urls = append(d.Urls, n)
	}
	if err := protocol.CheckDetails(d); err != nil {
		return nil, fmt.Errorf("%w: %w", kind.ErrInvalid, err)
	}
	return d, nil
}

func (n *Notices) seal(d *pb.NoticeDetails, addressee protocol.AuthorKey) (*pb.Sealed, error) {
	if d == nil {
		return nil, nil
	}
	s, err := protocol.Seal(d, protocol.NoticeRecipients(n.d.Roster(), n.d.Self().AuthorKey, addressee), n.d.Random())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", kind.ErrInvalid, err)
	}
	return s, nil
}

// IssueNotice seals the request's URLs and text to the addressee, the
// issuer and the roster's auditors, then signs and publishes the notice.
// Errors wrap a kind (package kind) or are internal.
func (n *Notices) IssueNotice(ctx context.Context, req IssueRequest) (*protocol.Entry, error) {
	if !protocol.MayWrite(n.d.Self().Role, protocol.KindNotice) {
		return nil, fmt.Errorf("%w: a %s may not issue notices; only referral units do", kind.ErrForbidden, n.d.Self().Role)
	}
	to, ok := n.d.Roster().ByName(req.To)
	switch {
	case req.To == "":
		return nil, invalid("to", "required: the member name of a platform (%s)", n.d.Roster().Names())
	case !ok:
		return nil, invalid("to", "%q is not in the roster (%s)", req.To, n.d.Roster().Names())
	case to.Role != protocol.RolePlatform:
		return nil, invalid("to", "%s is a %s; notices go to platforms", to.Name, to.Role)
	}
	sigs := req.Signals // checked with the entry, when it is signed (the API parsed them)
	cat, err := protocol.ParseLabel(req.Category)
	if err != nil {
		return nil, invalid("category", "%v", err)
	}
	if strings.TrimSpace(req.Basis) == "" {
		return nil, invalid("basis", "required: the legal basis, e.g. the law and article")
	}
	now := n.d.Now()
	deadline := now.Add(DefaultDeadline)
	if req.Deadline != "" {
		if deadline, err = parseDeadline(req.Deadline, now); err != nil {
			return nil, invalid("deadline", "%v", err)
		}
	}
	d, err := details(req.URLs, req.Text)
	if err != nil {
		return nil, err
	}
	if d == nil && len(sigs) == 0 {
		return nil, invalid("notice", "names no target: give URLs or signals")
	}
	sealed, err := n.seal(d, to.AuthorKey)
	if err != nil {
		return nil, err
	}
	return n.d.Publish(ctx, &pb.Entry{Payload: &pb.Entry_Notice{Notice: &pb.Notice{
		Addressee: to.AuthorKey[:], Signals: sigs, Category: cat, LegalBasis: req.Basis,
		Binding: req.Order, DeadlineMs: deadline.UnixMilli(), Details: sealed,
	}}})
}

// notice reads a stored notice for an update or reply, with a clear error
// when it is missing.
func (n *Notices) notice(field, idHex string) (store.NoticeThread, error) {
	id, err := protocol.ParseID(idHex)
	if err != nil {
		return store.NoticeThread{}, invalid(field, "%v", err)
	}
	t, err := n.d.Store.Notice(id)
	if errors.Is(err, store.ErrNotFound) {
		return t, fmt.Errorf("%w: notice %s is not in this node's store (%v)", kind.ErrNotFound, id, err)
	}
	return t, err
}

// UpdateNotice clarifies or withdraws one of this node's notices.
func (n *Notices) UpdateNotice(ctx context.Context, req UpdateRequest) (*protocol.Entry, error) {
	if !protocol.MayWrite(n.d.Self().Role, protocol.KindNoticeUpdate) {
		return nil, fmt.Errorf("%w: a %s may not update notices", kind.ErrForbidden, n.d.Self().Role)
	}
	t, err := n.notice("notice", req.Notice)
	if err != nil {
		return nil, err
	}
	if t.Notice.Author != n.d.Self().AuthorKey {
		return nil, fmt.Errorf("%w: notice %s was issued by %s; only its issuer updates it", kind.ErrForbidden, t.Notice.ID, n.d.Roster().NameOf(t.Notice.Author))
	}
	u := &pb.NoticeUpdate{Notice: t.Notice.ID[:], Withdraw: req.Withdraw}
	if req.Deadline != "" {
		dl, err := parseDeadline(req.Deadline, n.d.Now())
		if err != nil {
			return nil, invalid("deadline", "%v", err)
		}
		u.DeadlineMs = dl.UnixMilli()
	}
	d, err := details(req.URLs, req.Text)
	if err != nil {
		return nil, err
	}
	if u.Details, err = n.seal(d, protocol.AuthorKey(t.Notice.Body.GetNotice().Addressee)); err != nil {
		return nil, err
	}
	if !u.Withdraw && u.DeadlineMs == 0 && u.Details == nil {
		return nil, invalid("notice update", "changes nothing: withdraw, or give a deadline, URLs or text")
	}
	return n.d.Publish(ctx, &pb.Entry{Payload: &pb.Entry_NoticeUpdate{NoticeUpdate: u}})
}

// ReplyNotice answers a notice addressed to this node.
func (n *Notices) ReplyNotice(ctx context.Context, req ReplyRequest) (*protocol.Entry, error) {
	if !protocol.MayWrite(n.d.Self().Role, protocol.KindNoticeReply) {
		return nil, fmt.Errorf("%w: a %s may not reply to notices; only platforms and access providers do", kind.ErrForbidden, n.d.Self().Role)
	}
	t, err := n.notice("notice", req.Notice)
	if err != nil {
		return nil, err
	}
	if to := protocol.AuthorKey(t.Notice.Body.GetNotice().Addressee); to != n.d.Self().AuthorKey {
		return nil, fmt.Errorf("%w: notice %s is addressed to %s; only its addressee replies", kind.ErrForbidden, t.Notice.ID, n.d.Roster().NameOf(to))
	}
	r := &pb.NoticeReply{Notice: t.Notice.ID[:], Text: req.Text}
	if r.Status, err = parseReplyStatus(req.Status); err != nil {
		return nil, err
	}
	if !protocol.MayReply(n.d.Self().Role, r.Status) {
		return nil, invalid("status", "a %s may not reply %s", n.d.Self().Role, req.Status)
	}
	if err := n.checkReplyKind(t, r.Status); err != nil {
		return nil, err
	}
	switch {
	case r.Status == pb.ReplyStatus_REPLY_STATUS_NOT_EXECUTED:
		if r.Reason, err = parseReason(req.Reason); err != nil {
			return nil, err
		}
	case req.Reason != "":
		return nil, invalid("reason", "only a not-executed reply gives a reason")
	}
	if req.ActionTime != "" {
		at, err := time.Parse(time.RFC3339, req.ActionTime)
		if err != nil {
			return nil, invalid("action_time", "%q is not an RFC 3339 time", req.ActionTime)
		}
		if at.After(n.d.Now()) {
			return nil, invalid("action_time", "%s is in the future", req.ActionTime)
		}
		r.ActionTimeMs = at.UnixMilli()
	}
	return n.d.Publish(ctx, &pb.Entry{Payload: &pb.Entry_NoticeReply{NoticeReply: r}})
}

func parseReplyStatus(s string) (pb.ReplyStatus, error) {
	return byName("status", s, protocol.ReplyStatuses, "use one of")
}

func parseReason(s string) (pb.NotExecutedReason, error) {
	return byName("reason", s, protocol.NotExecutedReasons, "a not-executed reply needs one of")
}

// byName finds the value named s in names, or says which names there are.
func byName[T comparable](field, s string, names map[T]string, hint string) (T, error) {
	var all []string
	for v, name := range names {
		if name == s {
			return v, nil
		}
		all = append(all, name)
	}
	slices.Sort(all)
	var zero T
	return zero, invalid(field, "%q; %s %s", s, hint, strings.Join(all, ", "))
}

// Stored tells the notice book of an entry now stored, whose effect
// (replica.Effect.Thread) names the notice thread it changed, if any. The
// node's writer calls it after the commit, in commit order.
func (n *Notices) Stored(e *protocol.Entry, thread *protocol.ID) {
	if err := n.book.stored(n.d.Store, thread); err != nil {
		n.d.Log.Error("notice book: reading a thread", "entry", e.ID, "err", err)
	}
	if p := e.Body.GetNotice(); p != nil && protocol.AuthorKey(p.Addressee) == n.d.Self().AuthorKey {
		n.received(e, p)
	}
}

// received logs a notice addressed to this node: a WARN while its
// deadline is ahead (someone must act within it: the EU's rule is one
// hour), an INFO for one already past (an old notice that sync brought,
// whose replies may follow).
func (n *Notices) received(e *protocol.Entry, p *pb.Notice) {
	deadline := time.UnixMilli(p.DeadlineMs).UTC()
	args := []any{"id", e.ID, "from", n.d.Roster().NameOf(e.Author), "category", protocol.FormatLabel(p.Category),
		"order", p.Binding, "deadline", deadline.Format(time.RFC3339)}
	if left := deadline.Sub(n.d.Now()); left > 0 {
		what := "takedown notice received: act before the deadline (staydown notices)"
		if p.Blocking != nil {
			what = "blocking order received: block before the deadline (staydown notices; the resolvers' zone is /blocklist/rpz)"
		}
		n.d.Log.Warn(what, append(args, "time_left", left.Round(time.Second))...)
		return
	}
	n.d.Log.Info("takedown notice received, its deadline already past", args...)
}

// ListNotices lists notices with their state at q.AtMs (0: now), sorted
// by deadline (stopped clocks last), then by id. The notice book picks the notices;
// only those are read from the store and rendered.
func (n *Notices) ListNotices(ctx context.Context, q Query) ([]View, error) {
	box := q.Box
	if box == "" {
		box = map[protocol.Role]string{protocol.RolePlatform: "in", protocol.RoleAccess: "in", protocol.RoleReferral: "out"}[n.d.Self().Role]
		if box == "" {
			box = "all"
		}
	}
	at := q.AtMs
	if at == 0 {
		at = n.d.Now().UnixMilli()
	}
	me := n.d.Self().AuthorKey
	type dated struct {
		id       protocol.ID
		deadline int64
	}
	var kept []dated // for Limit
	ids := n.book.selectIDs(func(id protocol.ID, from, to protocol.AuthorKey, st protocol.NoticeStatus) bool {
		switch {
		case box == "in" && to != me, box == "out" && from != me:
			return false
		}
		state := st.At(at)
		final := state == protocol.NoticeActioned || state == protocol.NoticeNotExecuted || state == protocol.NoticeWithdrawn
		keep := !(q.Open && final) && !(q.Overdue && state != protocol.NoticeOverdue)
		if keep && q.Limit > 0 {
			kept = append(kept, dated{id, st.DeadlineMs})
		}
		return keep
	})
	if q.Limit > 0 && len(ids) > q.Limit {
		// The order of the list below, on the book's deadlines (those
		// in force: the clock does not change them).
		slices.SortFunc(kept, func(a, b dated) int {
			if (a.deadline == 0) != (b.deadline == 0) {
				if a.deadline == 0 {
					return 1
				}
				return -1
			}
			return cmp.Or(cmp.Compare(a.deadline, b.deadline), bytes.Compare(a.id[:], b.id[:]))
		})
		if q.Latest {
			kept = kept[len(kept)-q.Limit:]
		} else {
			kept = kept[:q.Limit]
		}
		ids = ids[:0]
		for _, k := range kept {
			ids = append(ids, k.id)
		}
	}
	out := make([]View, 0, len(ids))
	err := n.d.Store.Threads(ids, func(t store.NoticeThread) error {
		v, _ := n.noticeView(t, at)
		out = append(out, v)
		return ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b View) int {
		// Stopped clocks (deadline 0) last.
		if (a.DeadlineMs == 0) != (b.DeadlineMs == 0) {
			if a.DeadlineMs == 0 {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(a.DeadlineMs, b.DeadlineMs), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// GetNotice is one notice, by id, at atMs (0: now).
func (n *Notices) GetNotice(ctx context.Context, id protocol.ID, atMs int64) (View, error) {
	t, err := n.d.Store.Notice(id)
	if errors.Is(err, store.ErrNotFound) {
		return View{}, fmt.Errorf("%w: no notice %s in this node's store", kind.ErrNotFound, id)
	}
	if err != nil {
		return View{}, err
	}
	if atMs == 0 {
		atMs = n.d.Now().UnixMilli()
	}
	v, _ := n.noticeView(t, atMs)
	return v, nil
}

func apiTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(TimeFormat) }

// open opens sealed details if this node is a recipient; nil otherwise.
// Details that do not open are logged: the issuer sealed them wrongly.
func (n *Notices) open(s *pb.Sealed, id protocol.ID) *Details {
	if s == nil || !protocol.Readable(s, n.d.Self().AuthorKey) {
		return nil
	}
	d, err := protocol.Open(s, n.d.Author)
	if err != nil {
		n.d.Log.Warn("sealed details addressed to this node do not open", "entry", id, "err", err)
		return nil
	}
	return &Details{URLs: d.Urls, Text: d.Text}
}

// noticeView renders a thread with its lifecycle at atMs.
func (n *Notices) noticeView(t store.NoticeThread, atMs int64) (View, protocol.NoticeStatus) {
	p := t.Notice.Body.GetNotice()
	st := protocol.NoticeLifecycle(t.Notice, t.Updates, t.Replies, atMs)
	v := View{
		ID: t.Notice.ID.String(), From: n.d.Roster().NameOf(t.Notice.Author), To: n.d.Roster().NameOf(protocol.AuthorKey(p.Addressee)),
		State: string(st.State), Issued: apiTime(t.Notice.Body.TimestampMs), DeadlineMs: st.DeadlineMs,
		Category: protocol.FormatLabel(p.Category), LegalBasis: p.LegalBasis, Order: p.Binding,
		Signals: []string{}, Sealed: p.Details != nil,
		Details: n.book.details(t.Notice.ID, func() *Details { return n.open(p.Details, t.Notice.ID) }),
		Updates: []UpdateView{}, Replies: []ReplyView{},
	}
	if st.DeadlineMs != 0 {
		v.Deadline = apiTime(st.DeadlineMs)
	}
	switch st.State {
	case protocol.NoticeActioned, protocol.NoticeNotExecuted, protocol.NoticeWithdrawn:
	default:
		if st.DeadlineMs != 0 {
			rem := float64(st.DeadlineMs-atMs) / 1000
			v.TimeRemainingS = &rem
		}
	}
	if st.TimeToActionMs >= 0 && !st.ActionID.IsZero() {
		tta, within := float64(st.TimeToActionMs)/1000, st.WithinDeadline
		v.TimeToActionS, v.WithinDeadline = &tta, &within
	}
	for _, s := range p.Signals {
		v.Signals = append(v.Signals, protocol.FormatSignal(s))
	}
	if p.Blocking != nil {
		o := protocol.OrderLifecycle(t.Notice, t.Updates, t.Replies, atMs)
		b := &BlockingView{Start: apiTime(o.StartMs), InForce: o.InForce(atMs)}
		if o.EndMs != 0 {
			b.End = apiTime(o.EndMs)
		}
		if !o.LiftID.IsZero() {
			b.Lift = o.LiftID.String()
		}
		if !o.UnblockedID.IsZero() {
			within := o.UnblockedWithin
			b.Unblocked, b.UnblockedWithin = apiTime(o.UnblockedMs), &within
		}
		v.Blocking = b
	}
	for _, e := range t.Updates {
		u := e.Body.GetNoticeUpdate()
		vu := UpdateView{ID: e.ID.String(), Time: apiTime(e.Body.TimestampMs), Withdraw: u.Withdraw,
			Sealed: u.Details != nil, Details: n.open(u.Details, e.ID)}
		if u.DeadlineMs != 0 {
			vu.Deadline = apiTime(u.DeadlineMs)
		}
		v.Updates = append(v.Updates, vu)
	}
	for _, e := range t.Replies {
		r := e.Body.GetNoticeReply()
		vr := ReplyView{ID: e.ID.String(), Time: apiTime(e.Body.TimestampMs), Status: protocol.ReplyStatuses[r.Status],
			Reason: protocol.NotExecutedReasons[r.Reason], Text: r.Text}
		if r.ActionTimeMs != 0 {
			vr.ActionTime = apiTime(r.ActionTimeMs)
		}
		v.Replies = append(v.Replies, vr)
	}
	return v, st
}

// Report is the transparency report of everything stored, at atMs (0:
// now), for the period from sinceMs (0: everything): every stored log, fed to the report
// builder (which keeps a compact record of about 66 bytes per entry).
func (n *Notices) Report(ctx context.Context, sinceMs, atMs int64) (report.Report, error) {
	if atMs == 0 {
		atMs = n.d.Now().UnixMilli()
	}
	h := n.d.History()
	b := report.New(h.Everyone(), h)
	heads, err := n.d.Store.Heads()
	if err != nil {
		return report.Report{}, err
	}
	for _, h := range heads {
		if err := ctx.Err(); err != nil {
			return report.Report{}, err
		}
		err := n.d.Store.Range(h.Author, 1, h.Seq, func(e *protocol.Entry) error { b.Add(e); return nil })
		if err != nil {
			return report.Report{}, err
		}
	}
	return b.Report(atMs, sinceMs), nil
}

// eventKeepAlive is how often an idle event stream gets a comment line,
// so that proxies and clients see the connection is alive.
const eventKeepAlive = 15 * time.Second

// Live is the position Events starts at when a client names none: the
// newest arrival, so that a new stream gets the events to come, not the
// whole history (ask for position 0 for that).
const Live = math.MaxUint64

// Events calls send with every event for this node after position after
// (0: from the beginning; Live: from now), then with each new one as it is stored, until
// ctx ends, the node closes or send fails. The store's arrivals are the source: a
// stream replays them after the client's position, then waits on the
// node's feed (a doorbell; the entries themselves are read back from the
// store, so nothing the feed drops is missed).
func (n *Notices) Events(ctx context.Context, after uint64, send func(Event) error) error {
	bell, cancel := n.d.Subscribe(1)
	defer cancel()
	if after == Live {
		last, err := n.d.Store.LastArrival()
		if err != nil {
			return err
		}
		after = last
	}
	// A keep-alive at once: the stream is open, from after.
	if err := send(Event{}); err != nil {
		return err
	}
	keepAlive := time.NewTicker(eventKeepAlive)
	defer keepAlive.Stop()
	for {
		var batch []store.Arrival
		for {
			batch = batch[:0]
			err := n.d.Store.Arrivals(after, 512, func(a store.Arrival) error { batch = append(batch, a); return nil })
			if err != nil {
				return err
			}
			for _, a := range batch {
				after = a.N
				ev, ok, err := n.event(a)
				if err != nil {
					return err
				}
				if !ok {
					continue
				}
				if err := send(ev); err != nil {
					return err
				}
			}
			if len(batch) < 512 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-n.d.Done:
			return nil
		case <-bell:
		case <-keepAlive.C:
			if err := send(Event{}); err != nil {
				return err
			}
		}
	}
}

// event says what an arrival means to this node, if anything.
func (n *Notices) event(a store.Arrival) (Event, bool, error) {
	e := a.Entry
	ev := Event{N: a.N, ID: e.ID.String(), Author: n.d.Roster().NameOf(e.Author)}
	var noticeID protocol.ID
	switch p := e.Body.GetPayload().(type) {
	case *pb.Entry_Addition:
		ev.Type = EventAttestation
		for _, s := range p.Addition.Signals {
			ev.Signals = append(ev.Signals, protocol.FormatSignal(s))
		}
		for _, l := range p.Addition.Labels {
			ev.Labels = append(ev.Labels, protocol.FormatLabel(l))
		}
		return ev, true, nil
	case *pb.Entry_Notice:
		if me := n.d.Self().AuthorKey; !bytes.Equal(p.Notice.Addressee, me[:]) {
			return ev, false, nil
		}
		ev.Type, noticeID = EventNotice, e.ID
	case *pb.Entry_NoticeUpdate:
		ev.Type, noticeID = EventNoticeUpdate, protocol.ID(p.NoticeUpdate.Notice)
	case *pb.Entry_NoticeReply:
		ev.Type, noticeID = EventReply, protocol.ID(p.NoticeReply.Notice)
	case *pb.Entry_Amendment:
		version, base := n.d.Roster().Version, p.Amendment.Base
		ev.Type, ev.Change, ev.Base, ev.RosterVersion = EventAmendment, membership.Describe(p.Amendment), &base, &version
		return ev, true, nil
	case *pb.Entry_Approval:
		version, base := n.d.Roster().Version, p.Approval.Base
		ev.Type, ev.Base, ev.RosterVersion = EventApproval, &base, &version
		if id, err := protocol.IDFromBytes(p.Approval.Proposal); err == nil {
			ev.Proposal = id.String()
		}
		return ev, true, nil
	case *pb.Entry_Rotation:
		ev.Type, ev.Key = EventMemberKey, hex.EncodeToString(p.Rotation.NewKey)
		return ev, true, nil
	case *pb.Entry_PeerUpdate:
		ev.Type, ev.PeerID, ev.Addrs = EventMemberPeer, p.PeerUpdate.PeerId, p.PeerUpdate.Addrs
		return ev, true, nil
	default:
		return ev, false, nil
	}
	t, err := n.d.Store.Notice(noticeID)
	if errors.Is(err, store.ErrNotFound) {
		return ev, false, nil // a reply or update before its notice: the notice's own event comes later
	}
	if err != nil {
		return ev, false, err
	}
	to := protocol.AuthorKey(t.Notice.Body.GetNotice().Addressee)
	v, st := n.noticeView(t, n.d.Now().UnixMilli())
	ev.Notice = &v
	switch ev.Type {
	case EventNoticeUpdate:
		if to != n.d.Self().AuthorKey || e.Author != t.Notice.Author {
			return ev, false, nil
		}
	case EventReply:
		if e.Author != to {
			return ev, false, nil
		}
		if t.Notice.Author == n.d.Self().AuthorKey {
			return ev, true, nil
		}
		// Someone else's notice, actioned by this reply: a new
		// attestation if it names signals (stay down).
		if st.State == protocol.NoticeActioned && st.ActionID == e.ID && len(t.Notice.Body.GetNotice().Signals) > 0 {
			ev.Type, ev.Signals = EventAttestation, v.Signals
			ev.Labels = []string{v.Category}
			return ev, true, nil
		}
		return ev, false, nil
	}
	return ev, true, nil
}

// Reload reads the notice book from the store again, for a store written
// beneath the node (a benchmark's preload).
func (n *Notices) Reload() error {
	b, err := newNoticeBook(n.d.Store)
	if err != nil {
		return fmt.Errorf("loading notices: %w", err)
	}
	n.book.mu.Lock()
	n.book.m = b.m
	n.book.mu.Unlock()
	return nil
}
