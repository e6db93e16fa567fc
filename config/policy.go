package config

import (
	"slices"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/staydown/staydown/protocol"
)

// Policy is the node's local matching policy, the [policy] table of
// config.toml: what this node acts on. Every member publishes what it
// likes; each node decides whose word it takes, for what, and how many
// independent members must agree before it blocks an upload without a
// human. The node applies it to every match result (the verdict); it is
// never gossiped.
type Policy struct {
	// Trust maps a member name to the labels it is trusted for: label
	// slugs from the vocabulary (SPEC.md section 8.1), "*" for every label.
	// The name "*" stands for every member. A nil map is the default:
	// every member trusted for every label. An empty map trusts no one, so
	// nothing is ever blocked.
	Trust map[string][]string
	// BlockMinAttesters is how many distinct trusted members must attest
	// a signal (actively, with a trusted label) for the verdict block.
	BlockMinAttesters int
	// PDQThreshold is the largest Hamming distance at which a stored PDQ
	// hash matches a queried one, 0 to MaxPDQThreshold.
	PDQThreshold int
	// MinQuality is the PDQ quality below which a hash computed from a
	// file is not matched, 0 to 100 (0 matches everything).
	MinQuality int
	// VPDQQueryMatch and VPDQComparedMatch are the percentages a stored
	// video must reach to match a queried one (vmatch): the share of the
	// query's frames (of quality >= MinQuality) near some frame of the
	// stored video, more than 0 and at most 100; and the share of the
	// stored video's frames near some frame of the query, 0 to 100.
	// Frames are near within PDQThreshold.
	VPDQQueryMatch, VPDQComparedMatch float64
}

// Policy defaults, and the bound on pdq_threshold.
const (
	DefaultBlockMinAttesters = 2
	DefaultPDQThreshold      = 31 // the reference's match threshold
	DefaultMinQuality        = 50 // pdq.MinQuality: below it hashes are mostly noise
	// MaxPDQThreshold bounds pdq_threshold: at 64 and beyond a quarter of
	// the bits may differ, where unrelated images start to match, and the
	// near-match index's cost climbs towards a scan of every hash.
	MaxPDQThreshold = 63
	// python-threatexchange's vpdq defaults
	// (VPDQ_QUERY_MATCH_THRESHOLD_PERCENT, VPDQ_INDEX_MATCH_THRESHOLD_PERCENT).
	DefaultVPDQQueryMatch    = 80
	DefaultVPDQComparedMatch = 0
)

// DefaultPolicy is the policy of a config.toml without a [policy] table:
// review any active attestation, block when two or more members attest.
func DefaultPolicy() Policy {
	return Policy{
		BlockMinAttesters: DefaultBlockMinAttesters,
		PDQThreshold:      DefaultPDQThreshold,
		MinQuality:        DefaultMinQuality,
		VPDQQueryMatch:    DefaultVPDQQueryMatch,
		VPDQComparedMatch: DefaultVPDQComparedMatch,
	}
}

// Everyone is the trust key and the label that stand for every member and
// every label.
const Everyone = "*"

// Trusts reports whether the policy trusts member for label. label may be
// in its user form, "other:FREE TEXT": trust is by slug.
func (p Policy) Trusts(member, label string) bool {
	if p.Trust == nil {
		return true
	}
	slug, _, _ := strings.Cut(label, ":")
	for _, name := range []string{member, Everyone} {
		for _, l := range p.Trust[name] {
			if l == Everyone || l == slug {
				return true
			}
		}
	}
	return false
}

// CheckMembers checks that every member the policy names is in the roster:
// a misspelt name would silently trust no one.
func (p Policy) CheckMembers(file string, r *protocol.Roster) error {
	names := make([]string, 0, len(p.Trust))
	for name := range p.Trust {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if name == Everyone {
			continue
		}
		if _, ok := r.ByName(name); !ok {
			return invalid(file, dotted("trust", name), "no member %s in the roster: use a member's name (%s) or \"*\" for every member", short(name), r.Names())
		}
	}
	return nil
}

// policyKeys are the keys of the [policy] table.
var policyKeys = []string{"trust", "block_min_attesters", "pdq_threshold", "min_quality", "vpdq_query_match", "vpdq_compared_match"}

// parsePolicy reads the [policy] table; a missing table is DefaultPolicy.
func parsePolicy(file string, m map[string]any) (Policy, error) {
	p := DefaultPolicy()
	v, ok := m["policy"]
	if !ok {
		return p, nil
	}
	pm, isTable := v.(map[string]any)
	if !isTable {
		return p, invalid(file, "policy", "want a table ([policy] and keys below it), got %s", typeName(v))
	}
	// Keys are named by their dotted TOML path, e.g. policy.trust."*".
	t := table{file: file, path: "policy", m: pm}
	if err := t.checkKeys(policyKeys); err != nil {
		return p, err
	}
	var err error
	if p.BlockMinAttesters, err = t.integer("block_min_attesters", p.BlockMinAttesters, 1, 1000,
		"distinct trusted members needed for the verdict block"); err != nil {
		return p, err
	}
	if p.PDQThreshold, err = t.integer("pdq_threshold", p.PDQThreshold, 0, MaxPDQThreshold,
		"the largest Hamming distance at which two PDQ hashes match (the reference uses 31)"); err != nil {
		return p, err
	}
	if p.MinQuality, err = t.integer("min_quality", p.MinQuality, 0, 100,
		"the PDQ quality below which a file's hash is not matched"); err != nil {
		return p, err
	}
	if p.VPDQQueryMatch, err = t.percent("vpdq_query_match", p.VPDQQueryMatch, false,
		"the share of a queried video's frames that must be near a stored video's (python-threatexchange uses 80)"); err != nil {
		return p, err
	}
	if p.VPDQComparedMatch, err = t.percent("vpdq_compared_match", p.VPDQComparedMatch, true,
		"the share of a stored video's frames that must be near the queried video's (python-threatexchange uses 0)"); err != nil {
		return p, err
	}
	if p.Trust, err = t.trust(); err != nil {
		return p, err
	}
	return p, nil
}

// dotted is the dotted TOML path of a key below the [policy] table.
func dotted(keys ...string) string {
	return toml.Key(append([]string{"policy"}, keys...)).String()
}

// integer returns the integer at k, def if it is missing, and an error
// naming the range if it is outside lo..hi.
func (t table) integer(k string, def, lo, hi int, what string) (int, error) {
	v, ok := t.m[k]
	if !ok {
		return def, nil
	}
	n, isInt := v.(int64)
	if !isInt {
		return 0, invalid(t.file, dotted(k), "want an integer (no quotes) from %d to %d, got %s", lo, hi, typeName(v))
	}
	if n < int64(lo) || n > int64(hi) {
		return 0, invalid(t.file, dotted(k), "%d is out of range: want %d to %d, %s", n, lo, hi, what)
	}
	return int(n), nil
}

// percent returns the percentage at k (an integer or a float), def if it
// is missing, and an error naming the range if it is above 100, below 0,
// or 0 when zero is false.
func (t table) percent(k string, def float64, zero bool, what string) (float64, error) {
	v, ok := t.m[k]
	if !ok {
		return def, nil
	}
	var f float64
	switch n := v.(type) {
	case int64:
		f = float64(n)
	case float64:
		f = n
	default:
		return 0, invalid(t.file, dotted(k), "want a percentage (a number, no quotes, no %%), got %s", typeName(v))
	}
	lo := "0"
	if !zero {
		lo = "more than 0"
	}
	if !(f >= 0 && f <= 100) || (f == 0 && !zero) {
		return 0, invalid(t.file, dotted(k), "%v is out of range: want %s to 100, %s", f, lo, what)
	}
	return f, nil
}

// trust reads policy.trust: a table from member name to an array of
// labels.
func (t table) trust() (map[string][]string, error) {
	v, ok := t.m["trust"]
	if !ok {
		return nil, nil
	}
	const example = `trust = { "nru-demo" = ["*"], "platform-a" = ["graphic-violence"] }`
	tm, isTable := v.(map[string]any)
	if !isTable {
		return nil, invalid(t.file, dotted("trust"), "want a table of member name = [labels], e.g. %s; got %s", example, typeName(v))
	}
	names := make([]string, 0, len(tm))
	for name := range tm {
		names = append(names, name)
	}
	slices.Sort(names) // the first problem reported is the same every time
	out := make(map[string][]string, len(tm))
	for _, name := range names {
		if name != Everyone {
			if err := CheckName(name); err != nil {
				return nil, invalid(t.file, dotted("trust", name), "not a member name: %v (or \"*\" for every member)", err)
			}
		}
		arr, isArr := tm[name].([]any)
		if !isArr {
			return nil, invalid(t.file, dotted("trust", name), "want an array of label slugs such as [\"graphic-violence\"] or [\"*\"], got %s", typeName(tm[name]))
		}
		if len(arr) == 0 {
			return nil, invalid(t.file, dotted("trust", name), "no labels: list the labels the member is trusted for, or \"*\" for all; to trust it for none, remove the line")
		}
		labels := make([]string, len(arr))
		for i, e := range arr {
			l, isStr := e.(string)
			switch {
			case !isStr:
				return nil, invalid(t.file, dotted("trust", name), "label %d: want a string in quotes, got %s", i+1, typeName(e))
			case l != Everyone && !slices.Contains(protocol.Labels, l):
				return nil, invalid(t.file, dotted("trust", name), "label %d: %s is not a label slug: use one of %s, or \"*\" for all",
					i+1, short(l), strings.Join(protocol.Labels, ", "))
			}
			labels[i] = l
		}
		out[name] = labels
	}
	return out, nil
}
