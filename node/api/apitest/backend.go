// Package apitest provides a fake api.Backend for tests of the API and of
// its clients. It signs real entries, so ids and seqs are genuine, and
// records every call so that a test can prove a bad request never reached
// the node.
package apitest

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/report"
	"github.com/staydown/staydown/store"
)

// Federation is the federation of every fake's roster.
const Federation = "staydown"

// StartMs is the timestamp of a fake's first entry; each later entry is
// one millisecond after the one before.
const StartMs = 1_700_000_000_000

// Backend is a fake api.Backend. Its author key is derived from its name,
// so the same name gives the same key in every test.
type Backend struct {
	key    ed25519.PrivateKey
	roster *protocol.Roster

	votes sync.Mutex // serialises Propose and Approve, as a node does (members.go)

	mu         sync.Mutex // guards everything below
	head       protocol.Head
	err        error
	changes    store.ChangesPage // what Changes answers (changes.go)
	status     api.Status
	export     []byte
	atts       map[string][]store.Attestation // by protocol.SignalKey
	verdicts   map[string]api.Verdict         // by protocol.SignalKey
	found      map[string]api.Found           // by protocol.SignalKey: answered as is (SetFound)
	video      api.VideoConfig
	ignored    map[string][][]bool // by protocol.SignalKey: FoundAttestation.Ignored of each
	published  []*pb.Entry
	signed     []*protocol.Entry
	matched    [][]*pb.Signal
	queries    [][]api.Query
	watched    map[string]*watchedSignal // by protocol.SignalKey
	watchCalls int
	alerts     []api.RaisedAlert
	statuses   int
	// notices.go
	noticeReqs []any
	noticeQs   []api.NoticeQuery
	notices    []api.NoticeView
	report     report.Report
	// members.go
	name        string
	memberCalls int
	memberReqs  []any
	ballots     []*protocol.Entry        // every membership entry signed, the fake's and others'
	others      map[string]protocol.Head // the heads of the logs Sign writes, by member name
}

// New returns a fake node of the member named name with role role, in a
// roster of itself and others.
// A member without a peer ID is given one derived from its name
// (PeerID), so that the roster is a valid genesis for the fake's
// membership (members.go).
func New(name string, role protocol.Role, others ...protocol.Member) *Backend {
	key := Key(name)
	self := protocol.Member{Name: name, Role: role, AuthorKey: protocol.AuthorKeyOf(key), PeerID: PeerID(name)}
	members := append([]protocol.Member{self}, others...)
	for i := range members {
		if members[i].PeerID == "" {
			members[i].PeerID = PeerID(members[i].Name)
		}
	}
	roster, err := protocol.NewRoster(Federation, members)
	if err != nil {
		panic(fmt.Sprintf("apitest: %v", err))
	}
	// The status until SetStatus: what a node of this name and role that
	// has just started says (a response the API document allows).
	st := api.Status{ID: self.PeerID, Name: name, Role: string(role), Author: self.AuthorKey.String(), Federation: Federation,
		Member: true, Heads: map[string]uint64{}, Flagged: []string{}, Listen: []string{}, StoreWritable: true, OwnHeadConfirmed: true}
	return &Backend{key: key, roster: roster, name: name, others: map[string]protocol.Head{}, status: st,
		atts: map[string][]store.Attestation{}, verdicts: map[string]api.Verdict{}, found: map[string]api.Found{}, ignored: map[string][][]bool{}, watched: map[string]*watchedSignal{}}
}

// Key is the author key the fake gives member name (its own, and those of
// members made with Member).
func Key(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("apitest " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

// Author is the fake's author key.
func (b *Backend) Author() protocol.AuthorKey { return protocol.AuthorKeyOf(b.key) }

// Fail makes every later call return err (nil: succeed again).
func (b *Backend) Fail(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.err = err
}

// SetStatus sets what Status returns.
func (b *Backend) SetStatus(s api.Status) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.status = s
}

// Attest makes Match answer atts for sig.
func (b *Backend) Attest(sig *pb.Signal, atts ...store.Attestation) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.atts[string(protocol.SignalKey(sig))] = atts
}

// SetVideoConfig sets what VideoConfig returns (api.VideoBackend).
func (b *Backend) SetVideoConfig(c api.VideoConfig) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.video = c
}

// VideoConfig implements api.VideoBackend: what SetVideoConfig set.
func (b *Backend) VideoConfig() api.VideoConfig {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.video
}

// SetFound makes Match answer f, as is, for sig (for answers the other
// setters cannot shape: a video's matches and frame hits).
func (b *Backend) SetFound(sig *pb.Signal, f api.Found) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.found[string(protocol.SignalKey(sig))] = f
}

// SetVerdict makes Match answer v as the verdict for sig, instead of the
// fake's default: review when some attestation is active, else none.
func (b *Backend) SetVerdict(sig *pb.Signal, v api.Verdict) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.verdicts[string(protocol.SignalKey(sig))] = v
}

// SetIgnored makes Match answer, for the i-th attestation of sig, the
// reasons the policy ignores (FoundAttestation.Ignored) as ignored[i].
func (b *Backend) SetIgnored(sig *pb.Signal, ignored ...[]bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ignored[string(protocol.SignalKey(sig))] = ignored
}

// Queries returns the queries of every Match call, oldest first.
func (b *Backend) Queries() [][]api.Query {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([][]api.Query(nil), b.queries...)
}

// Published returns the bodies Publish received, oldest first.
func (b *Backend) Published() []*pb.Entry {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*pb.Entry(nil), b.published...)
}

// Signed returns the entries Publish signed, oldest first.
func (b *Backend) Signed() []*protocol.Entry {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*protocol.Entry(nil), b.signed...)
}

// Matched returns the signals of every Match call, oldest first.
func (b *Backend) Matched() [][]*pb.Signal {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([][]*pb.Signal(nil), b.matched...)
}

// Calls counts the calls of Publish, Match, Watch (Unwatch, Watchlist), Status, ListNotices
// and of the membership's methods.
func (b *Backend) Calls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.published) + len(b.matched) + b.watchCalls + b.statuses + len(b.noticeQs) + b.memberCalls
}

// SetAlerts sets the alerts Alerts answers (it filters them by seq) and
// Watch returns.
func (b *Backend) SetAlerts(alerts ...api.RaisedAlert) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.alerts = alerts
}

// Watched reports whether sig is on the fake's watchlist.
func (b *Backend) Watched(sig *pb.Signal) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.watched[string(protocol.SignalKey(sig))] != nil
}

// watchedSignal is a signal on the fake's watchlist.
type watchedSignal struct {
	sig  *pb.Signal
	refs []string
}

// WatchedRefs returns the refs of sig on the fake's watchlist.
func (b *Backend) WatchedRefs(sig *pb.Signal) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if w := b.watched[string(protocol.SignalKey(sig))]; w != nil {
		return slices.Clone(w.refs)
	}
	return nil
}

// Watch adds the items to the fake's watchlist, as a node does (refs
// kept per signal, each once), and answers every alert SetAlerts set.
// It does not bound the refs per signal.
func (b *Backend) Watch(ctx context.Context, items []api.WatchItem) (api.WatchOutcome, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.watchCalls++
	if b.err != nil {
		return api.WatchOutcome{}, b.err
	}
	var out api.WatchOutcome
	for _, it := range items {
		k := string(protocol.SignalKey(it.Signal))
		w := b.watched[k]
		if w != nil {
			out.Known++
		} else {
			w = &watchedSignal{sig: it.Signal}
			b.watched[k] = w
			out.Added++
		}
		if it.Ref != "" && !slices.Contains(w.refs, it.Ref) {
			w.refs = append(w.refs, it.Ref)
			out.Refs++
		}
	}
	out.Total = len(b.watched)
	out.Alerts = append([]api.RaisedAlert(nil), b.alerts...)
	return out, nil
}

// Unwatch removes the items from the fake's watchlist, as a node does:
// a ref alone, the signal with its last ref or when given without one.
func (b *Backend) Unwatch(ctx context.Context, items []api.WatchItem) (api.UnwatchOutcome, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.watchCalls++
	if b.err != nil {
		return api.UnwatchOutcome{}, b.err
	}
	var out api.UnwatchOutcome
	for _, it := range items {
		k := string(protocol.SignalKey(it.Signal))
		w := b.watched[k]
		switch {
		case w == nil || it.Ref != "" && !slices.Contains(w.refs, it.Ref):
			out.Unknown++
		case it.Ref != "" && len(w.refs) > 1:
			i := slices.Index(w.refs, it.Ref)
			w.refs = slices.Delete(w.refs, i, i+1)
			out.Refs++
		default:
			delete(b.watched, k)
			out.Removed++
		}
	}
	out.Total = len(b.watched)
	return out, nil
}

// Watchlist pages the fake's watchlist in key order.
func (b *Backend) Watchlist(ctx context.Context, after []byte, limit int) (api.WatchPage, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.watchCalls++
	if b.err != nil {
		return api.WatchPage{}, b.err
	}
	keys := slices.Sorted(maps.Keys(b.watched))
	out := api.WatchPage{Total: len(keys)}
	for _, k := range keys {
		if after != nil && k <= string(after) {
			continue
		}
		if len(out.Signals) == limit {
			out.More = true
			break
		}
		w := b.watched[k]
		out.Signals = append(out.Signals, api.WatchedSignal{Signal: w.sig, Key: []byte(k), Refs: slices.Clone(w.refs)})
	}
	return out, nil
}

// Alerts answers the alerts SetAlerts set with a seq above since.
func (b *Backend) Alerts(ctx context.Context, since uint64) ([]api.RaisedAlert, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return nil, b.err
	}
	var out []api.RaisedAlert
	for _, a := range b.alerts {
		if a.Seq > since {
			out = append(out, a)
		}
	}
	return out, nil
}

// Publish records body and, unless Fail was called, signs it as the next
// entry of the fake's log. It does not check the role rule or targets.
func (b *Backend) Publish(ctx context.Context, body *pb.Entry) (*protocol.Entry, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.published = append(b.published, proto.Clone(body).(*pb.Entry))
	if b.err != nil {
		return nil, b.err
	}
	signed := proto.Clone(body).(*pb.Entry)
	signed.Version = protocol.Version
	signed.Federation = Federation
	signed.Seq = b.head.Seq + 1
	signed.TimestampMs = StartMs + int64(b.head.Seq)
	if b.head.Seq > 0 {
		signed.Prev = b.head.ID[:]
	}
	e, err := protocol.Sign(b.key, signed)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", api.ErrInvalid, err)
	}
	b.head = protocol.Head{Author: e.Author, Seq: e.Seq(), ID: e.ID}
	b.signed = append(b.signed, e)
	if e.Kind().IsMembership() {
		b.ballots = append(b.ballots, e)
	}
	return e, nil
}

// Match records the queries and answers, for each, the attestations
// Attest set for its signal and for each of its variants (PDQ: found at
// distance 0, a stand-in for the node's near matching), below the quality
// MinQuality not at all.
func (b *Backend) Match(ctx context.Context, queries []api.Query) ([]api.Found, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	sigs := make([]*pb.Signal, len(queries))
	for i, q := range queries {
		sigs[i] = q.Signal
	}
	b.matched = append(b.matched, sigs)
	b.queries = append(b.queries, queries)
	if b.err != nil {
		return nil, b.err
	}
	out := make([]api.Found, len(queries))
	for i, q := range queries {
		if f, ok := b.found[string(protocol.SignalKey(q.Signal))]; ok {
			out[i] = f
			continue
		}
		if q.Quality != api.NoQuality && q.Quality < MinQuality {
			out[i] = api.Found{Verdict: api.VerdictNone, Skipped: fmt.Sprintf("quality %d is below %d: not matched", q.Quality, MinQuality)}
			continue
		}
		var f api.Found
		add := func(sig *pb.Signal, transform string) {
			var h [32]byte
			copy(h[:], sig.GetPdq())
			k := protocol.SignalKey(sig)
			ignored := b.ignored[string(k)]
			for j, a := range b.atts[string(k)] {
				fa := api.FoundAttestation{Attestation: a, Hash: h, Transform: transform}
				if j < len(ignored) {
					fa.Ignored = ignored[j]
				}
				f.Attestations = append(f.Attestations, fa)
			}
		}
		add(q.Signal, "")
		for _, v := range q.Variants {
			add(&pb.Signal{Value: &pb.Signal_Pdq{Pdq: v.Hash[:]}}, v.Transform)
		}
		f.Verdict = api.VerdictNone
		for _, a := range f.Attestations {
			if a.Status == store.StatusActive {
				f.Verdict = api.VerdictReview
			}
		}
		if v, ok := b.verdicts[string(protocol.SignalKey(q.Signal))]; ok {
			f.Verdict = v
		}
		out[i] = f
	}
	return out, nil
}

// MinQuality is the fake's policy's min_quality.
const MinQuality = 50

// Status records the call and answers what SetStatus set.
func (b *Backend) Status(ctx context.Context) (api.Status, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.statuses++
	if b.err != nil {
		return api.Status{}, b.err
	}
	return b.status, nil
}

// Roster is the fake's roster: itself and the others given to New.
func (b *Backend) Roster() *protocol.Roster { return b.roster }

var _ api.Backend = (*Backend)(nil)

// SetExport sets the export file Export writes (an api.Exporter).
func (b *Backend) SetExport(file []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.export = file
}

// Export writes the file SetExport set, whatever the authors asked for.
func (b *Backend) Export(ctx context.Context, w io.Writer, authors []protocol.AuthorKey) error {
	b.mu.Lock()
	file := b.export
	b.mu.Unlock()
	_, err := w.Write(file)
	return err
}
