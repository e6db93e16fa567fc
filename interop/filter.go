package interop

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/staydown/staydown/protocol"
)

// Filter selects the records of an export. The zero Filter selects
// active attestations of every member (and every allowlist entry).
type Filter struct {
	Authors  []string // member names; none: every member
	Labels   []string // FormatLabel form; a record carrying any of them; none: any
	Statuses []string // none: active only
	SinceMs  int64    // entries timestamped at or after; 0: all
}

// StatusNames are the values of --status: the statuses, and all.
var StatusNames = []string{StatusActive, StatusRetracted, StatusDisputed, StatusAllowlisted, "all"}

// ParseStatus reads one --status value into the statuses it selects.
func ParseStatus(s string) ([]string, error) {
	switch {
	case s == "all":
		return []string{StatusActive, StatusRetracted, StatusDisputed, StatusAllowlisted}, nil
	case slices.Contains(StatusNames, s):
		return []string{s}, nil
	}
	return nil, fmt.Errorf("unknown status %q; use one of %s", s, strings.Join(StatusNames, ", "))
}

// ParseSince reads --since: an RFC 3339 time or a date (YYYY-MM-DD, UTC).
func ParseSince(s string) (int64, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UnixMilli(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.UnixMilli(), nil
	}
	return 0, fmt.Errorf("since %q is not a time; want RFC 3339 (2026-01-02T15:04:05Z) or a date (2026-01-02)", s)
}

// ParseLabels checks labels as a user gives them and returns them in
// FormatLabel form.
func ParseLabels(ls []string) ([]string, error) {
	var out []string
	for _, l := range ls {
		pl, err := protocol.ParseLabel(l)
		if err != nil {
			return nil, fmt.Errorf("label %q: %v", l, err)
		}
		out = append(out, protocol.FormatLabel(pl))
	}
	return out, nil
}

// Match says whether f selects r. An allowlist entry is selected by
// author, time and status (active while in force, retracted once
// withdrawn), not by labels: it has none.
func (f Filter) Match(r Record) bool {
	if len(f.Authors) > 0 && !slices.Contains(f.Authors, r.Author) {
		return false
	}
	if r.TimeMs < f.SinceMs {
		return false
	}
	statuses := f.Statuses
	if len(statuses) == 0 {
		statuses = []string{StatusActive}
	}
	if !slices.Contains(statuses, r.Status) {
		return false
	}
	if r.Allow != nil {
		return true
	}
	if len(f.Labels) == 0 {
		return true
	}
	for _, l := range r.Labels {
		if slices.Contains(f.Labels, l) {
			return true
		}
	}
	return false
}
