package apitest

import (
	"context"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/notices"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/report"
)

var _ api.Notices = (*Backend)(nil)

// NoticeRequests returns the notice, update and reply requests received,
// in order (each an api.NoticeRequest, api.NoticeUpdateRequest or
// api.ReplyRequest).
func (b *Backend) NoticeRequests() []any {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]any(nil), b.noticeReqs...)
}

// SetNotices sets what ListNotices answers (whatever the query, which it
// records) and SetReport what Report answers.
func (b *Backend) SetNotices(views ...api.NoticeView) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.notices = views
}

// SetReport sets what Report answers.
func (b *Backend) SetReport(r report.Report) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.report = r
}

// NoticeQueries returns the queries ListNotices received.
func (b *Backend) NoticeQueries() []api.NoticeQuery {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]api.NoticeQuery(nil), b.noticeQs...)
}

func (b *Backend) record(req any) {
	b.mu.Lock()
	b.noticeReqs = append(b.noticeReqs, req)
	b.mu.Unlock()
}

// IssueNotice records the request and publishes a stand-in entry (a
// dispute: the fake seals nothing and keeps no notices).
// The request is recorded as the api.NoticeRequest that carried it.
func (b *Backend) IssueNotice(ctx context.Context, req notices.IssueRequest) (*protocol.Entry, error) {
	body := api.NoticeRequest{To: req.To, URLs: req.URLs, Text: req.Text, Category: req.Category,
		Basis: req.Basis, Order: req.Order, Deadline: req.Deadline}
	for _, s := range req.Signals {
		body.Signals = append(body.Signals, api.FormatSignal(s))
	}
	b.record(body)
	return b.standIn(ctx)
}

// UpdateNotice is IssueNotice for updates.
func (b *Backend) UpdateNotice(ctx context.Context, req api.NoticeUpdateRequest) (*protocol.Entry, error) {
	b.record(req)
	return b.standIn(ctx)
}

// ReplyNotice is IssueNotice for replies.
func (b *Backend) ReplyNotice(ctx context.Context, req api.ReplyRequest) (*protocol.Entry, error) {
	b.record(req)
	return b.standIn(ctx)
}

func (b *Backend) standIn(ctx context.Context) (*protocol.Entry, error) {
	return b.Publish(ctx, &pb.Entry{Payload: &pb.Entry_Dispute{Dispute: &pb.Dispute{Target: append([]byte{0x12, 0x20}, make([]byte, 32)...), Reason: "stand-in"}}})
}

// ListNotices answers what SetNotices set.
func (b *Backend) ListNotices(ctx context.Context, q api.NoticeQuery) ([]api.NoticeView, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.noticeQs = append(b.noticeQs, q)
	return b.notices, b.err
}

// GetNotice answers the view with this id among those SetNotices set.
func (b *Backend) GetNotice(ctx context.Context, id protocol.ID, atMs int64) (api.NoticeView, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, v := range b.notices {
		if v.ID == id.String() {
			return v, nil
		}
	}
	return api.NoticeView{}, api.ErrNotFound
}

// Report answers what SetReport set.
func (b *Backend) Report(ctx context.Context, sinceMs, atMs int64) (report.Report, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.report
	r.SinceMs, r.NowMs = sinceMs, atMs
	return r, b.err
}

// Events sends a keep-alive (the stream is open, as a node's does) and
// returns when ctx ends.
func (b *Backend) Events(ctx context.Context, after uint64, send func(api.Event) error) error {
	if err := send(api.Event{}); err != nil {
		return err
	}
	<-ctx.Done()
	return ctx.Err()
}

// IssueOrder records the request and publishes a stand-in entry per
// addressee ("all" counts as two).
func (b *Backend) IssueOrder(ctx context.Context, req notices.OrderRequest) ([]*protocol.Entry, error) {
	b.record(req)
	n := 1
	if req.To == notices.ToAll {
		n = 2
	}
	var out []*protocol.Entry
	for range n {
		e, err := b.standIn(ctx)
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}

// LiftOrder is IssueNotice for lifts.
func (b *Backend) LiftOrder(ctx context.Context, id string) (*protocol.Entry, error) {
	b.record(api.OrderLiftRequest{Order: id})
	return b.standIn(ctx)
}
