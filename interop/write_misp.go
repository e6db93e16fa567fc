package interop

import (
	"bufio"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"io"
	"strconv"
	"time"

	"github.com/staydown/staydown/protocol"
)

// A MISP feed, as MISP's feed generator (MISP/PyMISP tools/feed.py,
// misp-feed's generate.py) lays it out and a MISP instance fetches it
// (Sync Actions > Feeds, input source network, format MISP feed):
//
//   - manifest.json: {EVENT_UUID: {info, Orgc, Tag, date, analysis,
//     threat_level_id, timestamp}, ...}, what MISP reads first;
//   - EVENT_UUID.json: one event, {"Event": {...}} with its Attribute
//     list, fetched when the manifest's timestamp is newer than MISP's
//     copy;
//   - hashes.csv: MD5(attribute value),EVENT_UUID, one line per
//     attribute, for MISP's feed cache and overlap lookups.
//
// The node decides how attestations fall into events (node's feed: one
// event per batch of an author's log); this file writes the pieces.

// MISPEventMeta describes one event of a feed.
type MISPEventMeta struct {
	UUID      string
	Info      string
	Date      string // YYYY-MM-DD
	Timestamp int64  // Unix seconds: MISP refetches an event whose timestamp grew
	OrgName   string
	OrgUUID   string
}

// MISPFeedEvent is one event of a node's feed: the attestations of
// Author's log from seq From to To.
type MISPFeedEvent struct {
	Meta     MISPEventMeta
	Author   protocol.AuthorKey
	From, To uint64
}

// MISPManifestEntry is an event's line of manifest.json.
type MISPManifestEntry struct {
	Info          string    `json:"info"`
	Orgc          mispOrg   `json:"Orgc"`
	Tag           []mispTag `json:"Tag"`
	Date          string    `json:"date"`
	Analysis      string    `json:"analysis"`
	ThreatLevelID string    `json:"threat_level_id"`
	Timestamp     string    `json:"timestamp"`
}

type mispOrg struct {
	Name string `json:"name"`
	UUID string `json:"uuid"`
}

// Manifest is m's entry of manifest.json.
func (m MISPEventMeta) Manifest() MISPManifestEntry {
	return MISPManifestEntry{Info: m.Info, Orgc: mispOrg{m.OrgName, m.OrgUUID}, Tag: []mispTag{}, Date: m.Date,
		Analysis: "2", ThreatLevelID: "1", Timestamp: strconv.FormatInt(m.Timestamp, 10)}
}

// MISPOrgUUID is the stable organisation uuid of a member in a feed.
func MISPOrgUUID(federation, member string) string { return stableUUID(federation, "misp-org", member) }

// MISPEventUUID is the stable uuid of a feed's event, named by parts.
func MISPEventUUID(federation string, parts ...string) string {
	return stableUUID(append([]string{federation, "misp-event"}, parts...)...)
}

// MISPEventWriter writes one event file, streaming its attributes. Hashes
// (hashes.csv's lines of the attributes written) go to hashes, if not nil.
type MISPEventWriter struct {
	bw     *bufio.Writer
	hashes io.Writer
	meta   MISPEventMeta
	fed    string
	n      int
}

type mispAttrOut struct {
	UUID      string    `json:"uuid"`
	Type      string    `json:"type"`
	Category  string    `json:"category"`
	Value     string    `json:"value"`
	ToIDS     bool      `json:"to_ids"`
	Timestamp string    `json:"timestamp"`
	Deleted   bool      `json:"deleted"`
	Comment   string    `json:"comment,omitempty"`
	Tag       []mispTag `json:"Tag,omitempty"`
}

// NewMISPEvent starts an event file on w.
func NewMISPEvent(w, hashes io.Writer, federation string, meta MISPEventMeta) (*MISPEventWriter, error) {
	head := struct {
		UUID          string    `json:"uuid"`
		Info          string    `json:"info"`
		Date          string    `json:"date"`
		Timestamp     string    `json:"timestamp"`
		Published     bool      `json:"published"`
		Analysis      string    `json:"analysis"`
		ThreatLevelID string    `json:"threat_level_id"`
		Orgc          mispOrg   `json:"Orgc"`
		Tag           []mispTag `json:"Tag"`
	}{meta.UUID, meta.Info, meta.Date, strconv.FormatInt(meta.Timestamp, 10), true, "2", "1", mispOrg{meta.OrgName, meta.OrgUUID}, []mispTag{}}
	b, err := json.Marshal(head)
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriter(w)
	// The head's closing brace gives way to the attribute list.
	bw.WriteString(`{"Event":`)
	bw.Write(b[:len(b)-1])
	_, err = bw.WriteString(`,"Attribute":[`)
	return &MISPEventWriter{bw: bw, hashes: hashes, meta: meta, fed: federation}, err
}

var mispNames = map[protocol.SignalType]struct{ typ, category string }{
	protocol.SignalMD5:    {"md5", "Payload delivery"},
	protocol.SignalSHA256: {"sha256", "Payload delivery"},
	protocol.SignalPDQ:    {"pdq", "Payload delivery"},
	protocol.SignalURL:    {"url", "Network activity"},
}

// Write adds r as an attribute: md5, sha256, url, or pdq (the type
// misp.go reads; MISP's core list may not have it: an instance without
// it drops those attributes). A non-active attestation is written
// deleted, as MISP marks a withdrawn attribute; the status is also in the
// comment. Labels become the attribute's tags. Allowlist entries and
// account and vpdq signals have no MISP form here.
func (m *MISPEventWriter) Write(r Record) error {
	if r.Allow != nil {
		return skip("an allowlist entry: a MISP feed has none", r)
	}
	typ, val := protocol.SignalValue(r.Signal)
	name, ok := mispNames[typ]
	if !ok {
		return skip("MISP has no attribute type for "+string(typ), r)
	}
	a := mispAttrOut{UUID: stableUUID(m.fed, "misp-attribute", r.EntryID, hex.EncodeToString(protocol.SignalKey(r.Signal))),
		Type: name.typ, Category: name.category, Value: val, ToIDS: r.Status == StatusActive,
		Timestamp: strconv.FormatInt(time.UnixMilli(r.TimeMs).Unix(), 10), Deleted: r.Status != StatusActive,
		Comment: "attested by " + r.Author + " (" + r.Status + ")"}
	for _, l := range r.Labels {
		a.Tag = append(a.Tag, mispTag{Name: l})
	}
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if m.n > 0 {
		m.bw.WriteByte(',')
	}
	m.n++
	if _, err := m.bw.Write(b); err != nil {
		return err
	}
	if m.hashes != nil {
		_, err = io.WriteString(m.hashes, MISPHashLine(val, m.meta.UUID))
	}
	return err
}

// MISPHashLine is a line of hashes.csv: the MD5 of an attribute's value,
// the event's uuid (as PyMISP's attributes_hashes('md5') makes it).
func MISPHashLine(value, eventUUID string) string {
	h := md5.Sum([]byte(value))
	return hex.EncodeToString(h[:]) + "," + eventUUID + "\n"
}

// Close ends the event.
func (m *MISPEventWriter) Close() error {
	if _, err := m.bw.WriteString("]}}\n"); err != nil {
		return err
	}
	return m.bw.Flush()
}
