package console

import (
	"cmp"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/match/filehash"
	"github.com/staydown/staydown/node/notices"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/report"
)

// maxRows bounds the rows of a list page; the page says when there are
// more.
const maxRows = 100

func (c *Console) show(w http.ResponseWriter, r *http.Request, u *user, name, title string, data any) {
	p := &page{Title: title, Data: data}
	c.fill(r, u, p)
	if r.URL.Query().Get("fragment") == "list" {
		c.renderFragment(w, name, "list", p)
		return
	}
	c.render(w, r, http.StatusOK, name, p)
}

// overviewData is the Overview page: the node's status, its peers with
// their heads.
type overviewData struct {
	Status api.Status
	Peers  []peerRow
	Own    uint64
}

type peerRow struct {
	api.Peer
	Head    uint64
	Flagged bool
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, u *user) {
	st, err := c.backend.Status(r.Context())
	if err != nil {
		c.failErr(w, r, u, err)
		return
	}
	d := overviewData{Status: st, Own: st.Heads[st.Name]}
	for _, p := range st.Members {
		d.Peers = append(d.Peers, peerRow{Peer: p, Head: st.Heads[p.Name], Flagged: slices.Contains(st.Flagged, p.Name)})
	}
	c.show(w, r, u, "overview", "Overview", d)
}

// listData is a list of notices: at most maxRows, More when there are
// more.
type listData struct {
	Notices []api.NoticeView
	More    bool
	Max     int
	All     bool // every notice (the maxRows with the latest deadlines), not only the open ones
	Form    *noticeForm
	Members []string // platforms a notice may be addressed to
	Labels  []string
}

func (c *Console) list(w http.ResponseWriter, r *http.Request, u *user, box string) (listData, bool) {
	if c.notices == nil {
		c.failErr(w, r, u, errNoNotices)
		return listData{}, false
	}
	all := r.URL.Query().Get("show") == "all"
	views, err := c.notices.ListNotices(r.Context(), api.NoticeQuery{Box: box, Open: !all, Limit: maxRows + 1, Latest: all})
	if err != nil {
		c.failErr(w, r, u, err)
		return listData{}, false
	}
	d := listData{All: all, Labels: protocol.Labels, Max: maxRows, More: len(views) > maxRows}
	if d.More && all {
		views = views[len(views)-maxRows:]
	}
	d.Notices = views[:min(len(views), maxRows)]
	return d, true
}

func (c *Console) inbox(w http.ResponseWriter, r *http.Request, u *user) {
	d, ok := c.list(w, r, u, "in")
	if ok {
		c.show(w, r, u, "inbox", "Inbox", d)
	}
}

// replyStatuses are the answers a platform gives a notice, as buttons.
var replyStatuses = []struct{ Status, Label string }{
	{"received", "Received"},
	{"removed", "Removed"},
	{"disabled", "Disabled"},
	{"clarification-requested", "Ask for clarification"},
	{"not-executed", "Not executed"},
	{"not-found", "Not found"},
}

type noticeData struct {
	Notice   api.NoticeView
	Replies  any
	CanReply bool
	Error    string
}

func (c *Console) inboxNotice(w http.ResponseWriter, r *http.Request, u *user) {
	c.showNotice(w, r, u, http.StatusOK, r.URL.Query().Get("id"), "")
}

func (c *Console) showNotice(w http.ResponseWriter, r *http.Request, u *user, code int, idHex, formErr string) {
	if c.notices == nil {
		c.failErr(w, r, u, errNoNotices)
		return
	}
	id, err := protocol.ParseID(idHex)
	if err != nil {
		c.fail(w, r, u, http.StatusBadRequest, fmt.Sprintf("id %q: %v", idHex, err))
		return
	}
	v, err := c.notices.GetNotice(r.Context(), id, 0)
	if err != nil {
		c.failErr(w, r, u, err)
		return
	}
	p := &page{Title: "Notice " + v.ID[:12]}
	c.fill(r, u, p)
	p.Data = noticeData{Notice: v, Replies: replyStatuses, CanReply: p.CanWrite && v.To == p.Self && !final(v.State), Error: formErr}
	c.render(w, r, code, "notice", p)
}

func (c *Console) reply(w http.ResponseWriter, r *http.Request, u *user) {
	if c.notices == nil {
		c.failErr(w, r, u, errNoNotices)
		return
	}
	req := api.ReplyRequest{Notice: r.PostFormValue("id"), Status: r.PostFormValue("status"),
		Reason: r.PostFormValue("reason"), Text: r.PostFormValue("text")}
	if _, err := c.notices.ReplyNotice(r.Context(), req); err != nil {
		if errors.Is(err, api.ErrInvalid) || errors.Is(err, api.ErrForbidden) || errors.Is(err, api.ErrConflict) {
			c.showNotice(w, r, u, http.StatusBadRequest, req.Notice, err.Error())
			return
		}
		c.failErr(w, r, u, err)
		return
	}
	c.sessions.setFlash(u.id, "Replied "+req.Status+".")
	http.Redirect(w, r, "/inbox/notice?"+url.Values{"id": {req.Notice}}.Encode(), http.StatusSeeOther)
}

// noticeForm is the compose form as the user filled it, and the error
// of each field.
type noticeForm struct {
	To, URLs, Signals, Text, Category, Basis, Deadline string
	Order                                              bool
	Errors                                             map[string]string
	Error                                              string // one that names no field
}

func (c *Console) platforms() []string {
	var out []string
	for _, m := range c.backend.Roster().Members {
		if m.Role == protocol.RolePlatform {
			out = append(out, m.Name)
		}
	}
	return out
}

func (c *Console) outbox(w http.ResponseWriter, r *http.Request, u *user) {
	c.showOutbox(w, r, u, http.StatusOK, &noticeForm{Deadline: "1h"})
}

func (c *Console) showOutbox(w http.ResponseWriter, r *http.Request, u *user, code int, f *noticeForm) {
	d, ok := c.list(w, r, u, "")
	if !ok {
		return
	}
	d.Form, d.Members = f, c.platforms()
	p := &page{Title: "Notices", Data: d}
	c.fill(r, u, p)
	if r.URL.Query().Get("fragment") == "list" {
		c.renderFragment(w, "notices", "list", p)
		return
	}
	c.render(w, r, code, "notices", p)
}

// formFields are the compose form's fields, by the name the API gives
// them in errors.
var formFields = []string{"to", "urls", "signals", "text", "category", "basis", "deadline"}

func (c *Console) issue(w http.ResponseWriter, r *http.Request, u *user) {
	f := &noticeForm{To: r.PostFormValue("to"), URLs: r.PostFormValue("urls"), Signals: r.PostFormValue("signals"),
		Text: r.PostFormValue("text"), Category: r.PostFormValue("category"), Basis: r.PostFormValue("basis"),
		Deadline: r.PostFormValue("deadline"), Order: r.PostFormValue("order") != ""}
	req := api.NoticeRequest{To: f.To, URLs: lines(f.URLs), Text: f.Text, Category: f.Category, Basis: f.Basis,
		Order: f.Order, Deadline: f.Deadline}
	sigs, err := ParseSignalLines("signals", f.Signals)
	if err == nil {
		req.Signals = sigs
		var issue = req
		var e *protocol.Entry
		if c.notices == nil {
			err = errNoNotices
		} else if in, ierr := issue.Issue(); ierr != nil {
			err = ierr
		} else {
			e, err = c.notices.IssueNotice(r.Context(), in)
		}
		if err == nil {
			c.sessions.setFlash(u.id, "Issued notice "+e.ID.String()+" to "+f.To+".")
			http.Redirect(w, r, "/notices", http.StatusSeeOther)
			return
		}
	}
	if !errors.Is(err, api.ErrInvalid) && !errors.Is(err, api.ErrForbidden) && !errors.Is(err, api.ErrNotFound) {
		c.failErr(w, r, u, err)
		return
	}
	f.Errors = map[string]string{}
	msg := err.Error()
	field, _, _ := strings.Cut(msg, ":")
	field, _, _ = strings.Cut(field, "[")
	field, _, _ = strings.Cut(field, ".")
	if slices.Contains(formFields, field) {
		f.Errors[field] = msg
	} else {
		f.Error = msg
	}
	c.showOutbox(w, r, u, http.StatusBadRequest, f)
}

func (c *Console) withdraw(w http.ResponseWriter, r *http.Request, u *user) {
	if c.notices == nil {
		c.failErr(w, r, u, errNoNotices)
		return
	}
	id := r.PostFormValue("id")
	if _, err := c.notices.UpdateNotice(r.Context(), api.NoticeUpdateRequest{Notice: id, Withdraw: true}); err != nil {
		c.failErr(w, r, u, err)
		return
	}
	c.sessions.setFlash(u.id, "Withdrew notice "+id+".")
	http.Redirect(w, r, "/notices", http.StatusSeeOther)
}

// lines splits a textarea into its non-blank lines, trimmed.
func lines(s string) []string {
	var out []string
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// ParseSignalLines reads a textarea of signals, one TYPE:VALUE a line
// (the form `staydown hash` prints; blank lines are skipped), into the
// API's signals; field names the textarea in errors. Each signal is
// checked as the API checks it.
func ParseSignalLines(field, text string) ([]api.Signal, error) {
	var out []api.Signal
	for i, l := range lines(text) {
		typ, value, ok := strings.Cut(l, ":")
		if !ok {
			return nil, fmt.Errorf("%s line %d: %q is not TYPE:VALUE (e.g. sha256:HEX): %w", field, i+1, short(l), api.ErrInvalid)
		}
		s := api.Signal{Type: typ, Value: value}
		if _, err := api.ParseSignal(fmt.Sprintf("%s[%d]", field, len(out)), s); err != nil {
			return nil, err
		}
		if len(out) == protocol.MaxSignals {
			return nil, fmt.Errorf("%s: more than %d signals: %w", field, protocol.MaxSignals, api.ErrInvalid)
		}
		out = append(out, s)
	}
	return out, nil
}

// short is s cut to 80 bytes for a message.
func short(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// matchData is the Match tester: the query as given and its result.
type matchData struct {
	Type, Value string
	Types       []protocol.SignalType
	Result      *api.MatchResult
	Error       string
	File        *api.FileMatch // the answer for a file
	FileName    string
	FileError   string
}

func (c *Console) matchFile(w http.ResponseWriter, r *http.Request, u *user) {
	d := matchData{Type: string(protocol.SignalTypes[0]), Types: protocol.SignalTypes}
	code := http.StatusOK
	file, hdr, err := r.FormFile("file")
	if err != nil {
		d.FileError, code = "file: choose an image to match", http.StatusBadRequest
	} else {
		defer file.Close()
		d.FileName = hdr.Filename
		f, body, err := filehash.Receive(file, api.MaxFileSize)
		switch {
		case errors.Is(err, filehash.ErrTooLarge):
			d.FileError, code = fmt.Sprintf("file %q: larger than %d bytes (32 MiB)", short(hdr.Filename), api.MaxFileSize), http.StatusRequestEntityTooLarge
		case err != nil:
			d.FileError, code = fmt.Sprintf("file %q: %v", short(hdr.Filename), err), http.StatusBadRequest
		case f.Size == 0:
			d.FileError, code = fmt.Sprintf("file %q is empty", short(hdr.Filename)), http.StatusBadRequest
		case api.SniffVideo(body[:min(len(body), 12)]) != "":
			d.FileError, code = fmt.Sprintf("file %q is a video: the console matches images and hashes; use `staydown match --file` for a video", short(hdr.Filename)), http.StatusBadRequest
		default:
			fm, err := api.MatchImageFile(r.Context(), c.backend, f, body)
			if err != nil {
				c.failErr(w, r, u, err)
				return
			}
			d.File = &fm
		}
	}
	p := &page{Title: "Match tester", Data: d}
	c.fill(r, u, p)
	c.render(w, r, code, "match", p)
}

func (c *Console) match(w http.ResponseWriter, r *http.Request, u *user) {
	q := r.URL.Query()
	d := matchData{Type: q.Get("type"), Value: strings.TrimSpace(q.Get("value")), Types: protocol.SignalTypes}
	if d.Type == "" {
		d.Type = string(protocol.SignalTypes[0])
	}
	code := http.StatusOK
	if d.Value != "" {
		sig, err := api.ParseSignal("", api.Signal{Type: d.Type, Value: d.Value})
		var res []api.MatchResult
		if err == nil {
			res, err = api.MatchSignals(r.Context(), c.backend, []*pb.Signal{sig})
		}
		switch {
		case errors.Is(err, api.ErrInvalid):
			d.Error, code = err.Error(), http.StatusBadRequest
		case err != nil:
			c.failErr(w, r, u, err)
			return
		default:
			d.Result = &res[0]
		}
	}
	p := &page{Title: "Match tester", Data: d}
	c.fill(r, u, p)
	c.render(w, r, code, "match", p)
}

// periods are the transparency page's choices, by key.
var periods = []struct {
	Key, Label string
	Span       time.Duration
}{
	{"all", "Everything", 0},
	{"30d", "Last 30 days", 30 * 24 * time.Hour},
	{"7d", "Last 7 days", 7 * 24 * time.Hour},
	{"24h", "Last 24 hours", 24 * time.Hour},
}

type transparencyData struct {
	Period     string
	Periods    any
	Report     report.Report
	Compliance []complianceRow
	Chart      chart
	Query      string // the period's query, for the JSON and CSV links
}

type complianceRow struct {
	Name                            string
	Received, InTime, Late, Overdue int
	Share                           float64 // answered within the deadline, of those received
	ShareText, Median               string
}

func (c *Console) period(r *http.Request) (string, int64, error) {
	key := r.URL.Query().Get("period")
	if key == "" {
		key = "all"
	}
	for _, p := range periods {
		if p.Key == key {
			if p.Span == 0 {
				return key, 0, nil
			}
			return key, c.now().Add(-p.Span).UnixMilli(), nil
		}
	}
	return "", 0, fmt.Errorf("period %q: use all, 30d, 7d or 24h: %w", key, api.ErrInvalid)
}

func (c *Console) figures(w http.ResponseWriter, r *http.Request, u *user) (string, *figures, bool) {
	if c.notices == nil {
		c.failErr(w, r, u, errNoNotices)
		return "", nil, false
	}
	key, since, err := c.period(r)
	if err != nil {
		c.failErr(w, r, u, err)
		return "", nil, false
	}
	f, err := c.reports.get(r.Context(), key, since)
	if err != nil {
		c.failErr(w, r, u, err)
		return "", nil, false
	}
	return key, f, true
}

func (c *Console) transparency(w http.ResponseWriter, r *http.Request, u *user) {
	key, f, ok := c.figures(w, r, u)
	if !ok {
		return
	}
	rep := f.report
	d := transparencyData{Period: key, Periods: periods, Report: rep, Chart: timeToActionChart(f.times),
		Query: url.Values{"period": {key}}.Encode()}
	for _, m := range rep.Members {
		if m.Role != protocol.RolePlatform {
			continue
		}
		row := complianceRow{Name: m.Name, Received: m.NoticesReceived, InTime: m.AnsweredWithinDeadline, Late: m.AnsweredLate,
			Overdue: m.Overdue, ShareText: pct(m.AnsweredWithinDeadline, m.NoticesReceived), Median: durationOrDash(m.MedianTimeToActionS)}
		if m.NoticesReceived > 0 {
			row.Share = float64(m.AnsweredWithinDeadline) / float64(m.NoticesReceived)
		}
		d.Compliance = append(d.Compliance, row)
	}
	slices.SortStableFunc(d.Compliance, func(a, b complianceRow) int {
		return cmp.Or(-cmp.Compare(a.Share, b.Share), -cmp.Compare(a.Received, b.Received), strings.Compare(a.Name, b.Name))
	})
	c.show(w, r, u, "transparency", "Transparency", d)
}

func (c *Console) transparencyJSON(w http.ResponseWriter, r *http.Request, u *user) {
	_, f, ok := c.figures(w, r, u)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(f.report)
}

// csvHeader is the transparency CSV's columns: one row per member.
var csvHeader = []string{"member", "role", "additions", "signals", "retracted", "disputed", "disputes_filed", "allows",
	"notices_issued", "notices_received", "answered_within_deadline", "answered_late", "overdue", "open",
	"median_time_to_action_s", "p90_time_to_action_s"}

func (c *Console) transparencyCSV(w http.ResponseWriter, r *http.Request, u *user) {
	key, f, ok := c.figures(w, r, u)
	if !ok {
		return
	}
	rep := f.report
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="transparency-%s.csv"`, key))
	cw := csv.NewWriter(w)
	cw.Write(csvHeader)
	opt := func(f *float64) string {
		if f == nil {
			return ""
		}
		return strconv.FormatFloat(*f, 'f', 3, 64)
	}
	for _, m := range rep.Members {
		cw.Write([]string{csvSafe(m.Name), string(m.Role), strconv.Itoa(m.Additions), strconv.Itoa(m.Signals), strconv.Itoa(m.Retracted),
			strconv.Itoa(m.Disputed), strconv.Itoa(m.DisputesFiled), strconv.Itoa(m.Allows), strconv.Itoa(m.NoticesIssued),
			strconv.Itoa(m.NoticesReceived), strconv.Itoa(m.AnsweredWithinDeadline), strconv.Itoa(m.AnsweredLate),
			strconv.Itoa(m.Overdue), strconv.Itoa(m.Open), opt(m.MedianTimeToActionS), opt(m.P90TimeToActionS)})
	}
	cw.Flush()
}

// csvSafe keeps a spreadsheet from reading a cell as a formula.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func (c *Console) feed(w http.ResponseWriter, r *http.Request, u *user) {
	c.show(w, r, u, "feed", "Live feed", nil)
}

// events streams the node's events to the page's script as Server-Sent
// Events, as GET /v1/events does: from now, or after Last-Event-ID when
// the browser reconnects.
func (c *Console) events(w http.ResponseWriter, r *http.Request, u *user) {
	if c.notices == nil {
		c.failErr(w, r, u, errNoNotices)
		return
	}
	after := uint64(notices.Live)
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		n, err := strconv.ParseUint(id, 10, 63)
		if err != nil {
			c.fail(w, r, u, http.StatusBadRequest, fmt.Sprintf("Last-Event-ID %q is not a position", short(id)))
			return
		}
		after = n
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		c.fail(w, r, u, http.StatusInternalServerError, "streaming unsupported by this server")
		return
	}
	rc := http.NewResponseController(w)
	started := false
	err := c.notices.Events(r.Context(), after, func(ev api.Event) error {
		if !started {
			started = true
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
		}
		rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if ev.Type == "" {
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return err
			}
			flusher.Flush()
			return nil
		}
		data, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.N, ev.Type, data); err != nil {
			return err
		}
		flusher.Flush()
		return nil
	})
	if err != nil && !started && r.Context().Err() == nil {
		c.failErr(w, r, u, err)
	}
}
