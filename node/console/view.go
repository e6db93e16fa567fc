package console

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/tokens"
	"github.com/staydown/staydown/protocol"
)

// page is what every template gets: the frame (who is signed in, the
// navigation, the CSRF token for forms) and the page's own Data.
type page struct {
	Title    string
	Path     string
	SignedIn bool
	Self     string // this node's member name
	Role     string
	Fed      string
	Scope    string
	CanWrite bool // the session may publish: forms are shown
	CSRF     string
	NowMs    int64 // the node's clock when the page was made: the script's countdowns start from it
	Nav      []navItem
	Error    string // the page's error, shown at its top
	Flash    string // what the last write did
	Data     any
}

type navItem struct {
	Path, Label string
	Current     bool
}

// fill sets the frame of p for u (nil: not signed in).
func (c *Console) fill(r *http.Request, u *user, p *page) {
	p.Path = r.URL.Path
	p.NowMs = c.now().UnixMilli()
	if u == nil {
		return
	}
	p.SignedIn, p.CSRF, p.Scope = true, u.s.csrf, u.scope.String()
	p.CanWrite = u.can(tokens.Publish)
	if st, err := c.backend.Status(r.Context()); err == nil {
		p.Self, p.Role, p.Fed = st.Name, st.Role, st.Federation
	}
	add := func(path, label string, need tokens.Scope) {
		if u.can(need) {
			p.Nav = append(p.Nav, navItem{path, label, p.Path == path})
		}
	}
	add("/", "Overview", tokens.Read)
	add("/feed", "Feed", tokens.Read)
	if p.Role == string(protocol.RolePlatform) {
		add("/inbox", "Inbox", tokens.Read)
	} else {
		add("/notices", "Notices", tokens.Read)
	}
	add("/match", "Match", tokens.Match)
	add("/transparency", "Transparency", tokens.Read)
	if r.URL.Query().Get("fragment") == "" {
		p.Flash = c.sessions.takeFlash(u.id)
	}
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, code int, name string, p *page) {
	if !p.SignedIn && p.Path == "" {
		c.fill(r, c.user(r), p)
	}
	t := c.pages[name]
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "base", p); err != nil {
		c.log.Error("console: rendering", "page", name, "err", err)
		http.Error(w, "internal error; the node's log has the details", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

// renderFragment renders one named template of a page alone: what the
// script fetches to refresh a list in place.
func (c *Console) renderFragment(w http.ResponseWriter, name, fragment string, p *page) {
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, fragment, p); err != nil {
		c.log.Error("console: rendering", "page", name, "fragment", fragment, "err", err)
		http.Error(w, "internal error; the node's log has the details", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

var funcs = template.FuncMap{
	"utc":       utc,
	"msTime":    func(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) },
	"duration":  duration,
	"durationS": func(s *float64) string { return durationOrDash(s) },
	"remaining": remaining,
	"dueClass":  dueClass,
	"pct":       pct,
	"final":     final,
	"join":      strings.Join,
	"deref":     func(b *bool) bool { return b != nil && *b },
}

// utc is an RFC 3339 time as people read it, in UTC.
func utc(rfc string) string {
	t, err := time.Parse(time.RFC3339Nano, rfc)
	if err != nil {
		return rfc
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// duration is d in seconds as "1h 02m", "4m 05s", "12s".
func duration(s float64) string {
	d := time.Duration(math.Abs(s)) * time.Second
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd %02dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh %02dm", d/time.Hour, d%time.Hour/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%dm %02ds", d/time.Minute, d%time.Minute/time.Second)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

func durationOrDash(s *float64) string {
	if s == nil {
		return "—"
	}
	return duration(*s)
}

// dueSoon is when a countdown turns amber.
const dueSoon = 15 * 60

// remaining is a notice's countdown as the page first shows it (the
// script then keeps it running).
func remaining(v api.NoticeView) string {
	switch {
	case v.TimeRemainingS == nil:
		return ""
	case *v.TimeRemainingS < 0:
		return "overdue by " + duration(*v.TimeRemainingS)
	}
	return duration(*v.TimeRemainingS) + " left"
}

func dueClass(v api.NoticeView) string {
	switch {
	case v.TimeRemainingS == nil:
		return ""
	case *v.TimeRemainingS < 0:
		return "overdue"
	case *v.TimeRemainingS < dueSoon:
		return "due-soon"
	}
	return "due"
}

func pct(n, of int) string {
	if of == 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(n)/float64(of))
}

// final reports whether a notice's state is final: no reply is due.
func final(state string) bool {
	switch protocol.NoticeState(state) {
	case protocol.NoticeActioned, protocol.NoticeNotExecuted, protocol.NoticeWithdrawn:
		return true
	}
	return false
}

// parsePages parses each page with the frame (base.html), each into its
// own set so that every page can define the frame's blocks.
func parsePages() map[string]*template.Template {
	base := template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/base.html"))
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "base" {
			continue
		}
		pages[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, n))
	}
	return pages
}
