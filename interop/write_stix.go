package interop

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"io"
	"strings"

	"github.com/staydown/staydown/protocol"
)

// stixWriter writes a STIX 2.1 bundle, streaming: the bundle's opening,
// then each object as it comes, then the closing. It emits
//
//   - an identity (identity_class organization) per member, before the
//     first object that refers to it;
//   - an indicator per attestation: pattern [file:hashes.'SHA-256' = '…'],
//     [file:hashes.MD5 = '…'], [file:hashes.PDQ = '…'] or [url:value = '…'],
//     indicator_types malicious-activity, labels our labels,
//     created_by_ref the attesting member, revoked true when its author
//     retracted it (STIX's own meaning of revoked: the creator withdrew
//     it), and the status in the custom property x_staydown_status
//     (active, retracted, disputed, allowlisted);
//   - an opinion (strongly-disagree, explanation the reason) per dispute,
//     created_by_ref the disputing member, object_refs the indicator;
//   - an allowlist entry as an indicator with indicator_types benign
//     (STIX's indicator-type-ov: "benign activity"), the allow's category
//     in x_staydown_allow_category and its reason in description. The
//     reader (stix.go) passes benign indicators over, so that importing
//     an export never attests what a member allowlisted.
//
// Object ids are stable (stableUUID of the federation, the entry id and
// the signal): a second export of the same store gives the same ids.
type stixWriter struct {
	bw    *bufio.Writer
	meta  Meta
	seen  map[string]bool // identities written, by member name
	first bool
}

func newSTIXWriter(w io.Writer, meta Meta) (*stixWriter, error) {
	bw := bufio.NewWriter(w)
	id := "bundle--" + stableUUID(meta.Federation, "bundle", meta.Exporter, stixTime(meta.CreatedMs))
	_, err := bw.WriteString(`{"type":"bundle","id":"` + id + `","objects":[`)
	return &stixWriter{bw: bw, meta: meta, seen: map[string]bool{}, first: true}, err
}

type stixIdentity struct {
	Type          string `json:"type"`
	SpecVersion   string `json:"spec_version"`
	ID            string `json:"id"`
	Created       string `json:"created"`
	Modified      string `json:"modified"`
	Name          string `json:"name"`
	IdentityClass string `json:"identity_class"`
	Description   string `json:"description,omitempty"`
}

type stixIndicator struct {
	Type           string   `json:"type"`
	SpecVersion    string   `json:"spec_version"`
	ID             string   `json:"id"`
	CreatedByRef   string   `json:"created_by_ref"`
	Created        string   `json:"created"`
	Modified       string   `json:"modified"`
	Revoked        bool     `json:"revoked,omitempty"`
	Labels         []string `json:"labels,omitempty"`
	Name           string   `json:"name,omitempty"`
	Description    string   `json:"description,omitempty"`
	IndicatorTypes []string `json:"indicator_types"`
	Pattern        string   `json:"pattern"`
	PatternType    string   `json:"pattern_type"`
	ValidFrom      string   `json:"valid_from"`
	Status         string   `json:"x_staydown_status,omitempty"`
	AllowCategory  string   `json:"x_staydown_allow_category,omitempty"`
}

type stixOpinion struct {
	Type         string   `json:"type"`
	SpecVersion  string   `json:"spec_version"`
	ID           string   `json:"id"`
	CreatedByRef string   `json:"created_by_ref"`
	Created      string   `json:"created"`
	Modified     string   `json:"modified"`
	Explanation  string   `json:"explanation,omitempty"`
	Opinion      string   `json:"opinion"`
	ObjectRefs   []string `json:"object_refs"`
}

func (s *stixWriter) object(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if !s.first {
		s.bw.WriteByte(',')
	}
	s.first = false
	_, err = s.bw.Write(b)
	return err
}

func (s *stixWriter) identity(name string) (string, error) {
	id := "identity--" + stableUUID(s.meta.Federation, "identity", name)
	if s.seen[name] {
		return id, nil
	}
	s.seen[name] = true
	t := stixTime(s.meta.CreatedMs)
	return id, s.object(stixIdentity{Type: "identity", SpecVersion: "2.1", ID: id, Created: t, Modified: t, Name: name,
		IdentityClass: "organization", Description: "member of the Staydown federation " + s.meta.Federation})
}

// stixPattern is the pattern of one signal, or "" for a type STIX
// patterns cannot name (account, vpdq).
func stixPattern(r Record) string {
	typ, val := protocol.SignalValue(r.Signal)
	quote := func(s string) string {
		return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
	}
	switch typ {
	case protocol.SignalSHA256:
		return "[file:hashes.'SHA-256' = " + quote(val) + "]"
	case protocol.SignalMD5:
		return "[file:hashes.MD5 = " + quote(val) + "]"
	case protocol.SignalPDQ:
		return "[file:hashes.PDQ = " + quote(val) + "]"
	case protocol.SignalURL:
		return "[url:value = " + quote(val) + "]"
	}
	return ""
}

func (s *stixWriter) Write(r Record) error {
	pattern := stixPattern(r)
	if pattern == "" {
		typ, _ := protocol.SignalValue(r.Signal)
		return skip("a STIX pattern cannot name a "+string(typ)+" signal", r)
	}
	by, err := s.identity(r.Author)
	if err != nil {
		return err
	}
	key := hex.EncodeToString(protocol.SignalKey(r.Signal))
	id := "indicator--" + stableUUID(s.meta.Federation, r.EntryID, key)
	created := stixTime(r.TimeMs)
	modified := created
	if r.Status != StatusActive && s.meta.CreatedMs > r.TimeMs {
		// The status changed after the entry; the export's time bounds
		// when.
		modified = stixTime(s.meta.CreatedMs)
	}
	ind := stixIndicator{Type: "indicator", SpecVersion: "2.1", ID: id, CreatedByRef: by, Created: created, Modified: modified,
		Labels: r.Labels, Pattern: pattern, PatternType: "stix", ValidFrom: created}
	if r.Allow != nil {
		ind.IndicatorTypes = []string{"benign"}
		ind.Name = "allowlisted by " + r.Author
		ind.Description = r.Allow.Reason
		ind.AllowCategory = r.Allow.Category
		return s.object(ind)
	}
	ind.IndicatorTypes = []string{"malicious-activity"}
	ind.Revoked = r.Status == StatusRetracted
	ind.Status = r.Status
	if err := s.object(ind); err != nil {
		return err
	}
	for _, d := range r.Disputes {
		dby, err := s.identity(d.Author)
		if err != nil {
			return err
		}
		if err := s.object(stixOpinion{Type: "opinion", SpecVersion: "2.1", ID: "opinion--" + stableUUID(s.meta.Federation, d.EntryID, id),
			CreatedByRef: dby, Created: modified, Modified: modified, Explanation: d.Reason, Opinion: "strongly-disagree",
			ObjectRefs: []string{id}}); err != nil {
			return err
		}
	}
	return nil
}

func (s *stixWriter) Close() error {
	if _, err := s.bw.WriteString("]}\n"); err != nil {
		return err
	}
	return s.bw.Flush()
}
