package interop

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/staydown/staydown/protocol"
)

// The parts of a MISP event we read (MISP's JSON event format, as
// /events/view and a feed's per-event files give it).
type mispEvent struct {
	UUID      string          `json:"uuid"`
	Attribute []mispAttribute `json:"Attribute"`
	Object    []struct {
		Name      string          `json:"name"`
		UUID      string          `json:"uuid"`
		Deleted   bool            `json:"deleted"`
		Attribute []mispAttribute `json:"Attribute"`
	} `json:"Object"`
	Tag []mispTag `json:"Tag"`
}

type mispAttribute struct {
	UUID           string    `json:"uuid"`
	Type           string    `json:"type"`
	ObjectRelation string    `json:"object_relation"`
	Value          string    `json:"value"`
	Deleted        bool      `json:"deleted"`
	Tag            []mispTag `json:"Tag"`
}

type mispTag struct {
	Name string `json:"name"`
}

// mispTypes maps MISP attribute types to ours. filename|HASH carries the
// file name before the bar, which is dropped. MISP has no PDQ attribute
// type in its core list that we could confirm; PDQ is read from an
// attribute of type "pdq" or an object attribute whose object_relation is
// "pdq" (as the file and image objects of some communities carry it).
var mispTypes = map[string]protocol.SignalType{
	"md5":             protocol.SignalMD5,
	"sha256":          protocol.SignalSHA256,
	"filename|md5":    protocol.SignalMD5,
	"filename|sha256": protocol.SignalSHA256,
	"url":             protocol.SignalURL,
	"pdq":             protocol.SignalPDQ,
}

// mispPlain are attribute types that describe rather than identify
// (inside an object: a file's name, its size): passed over, not refused.
var mispPlain = map[string]bool{
	"comment": true, "text": true, "other": true, "filename": true, "size-in-bytes": true,
	"datetime": true, "mime-type": true, "attachment": true, "malware-sample": true,
}

// readMISP reads a MISP event ({"Event": {...}}), a list of them
// ({"response": [...]} as the REST search answers, or a bare array), and
// turns its hash and url attributes, and those of its objects, into rows.
// Tags of our label vocabulary, on the event or the attribute, become the
// row's labels. A deleted attribute or object is a deleted row. An event
// is decoded whole (MISP bounds an event's size itself).
func readMISP(r io.Reader, sink Sink) error {
	var doc json.RawMessage
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		return jsonErr(err)
	}
	var events []json.RawMessage
	var one struct {
		Event    *json.RawMessage  `json:"Event"`
		Response []json.RawMessage `json:"response"`
	}
	switch err := json.Unmarshal(doc, &one); {
	case err == nil && one.Event != nil:
		events = []json.RawMessage{doc}
	case err == nil && one.Response != nil:
		events = one.Response
	default:
		if json.Unmarshal(doc, &events) != nil {
			return fmt.Errorf("%w: not a MISP event: want {\"Event\": {...}}", ErrFormat)
		}
	}
	for i, raw := range events {
		var w struct {
			Event *mispEvent `json:"Event"`
		}
		if err := json.Unmarshal(raw, &w); err != nil || w.Event == nil {
			sink.Reject(Problem{Where: fmt.Sprintf("event %d", i), Reason: "not a MISP event: want {\"Event\": {...}}"})
			continue
		}
		if err := readMISPEvent(w.Event, sink); err != nil {
			return err
		}
	}
	return nil
}

func readMISPEvent(e *mispEvent, sink Sink) error {
	eventLabels := tagLabels(e.Tag)
	one := func(a mispAttribute, inObject, objDeleted bool) error {
		where := "attribute " + clip(a.UUID)
		if a.UUID == "" {
			where = "attribute of event " + clip(e.UUID)
		}
		typ, ok := mispTypes[a.Type]
		if !ok && inObject && a.ObjectRelation == "pdq" {
			typ, ok = protocol.SignalPDQ, true
		}
		if !ok {
			if !mispPlain[a.Type] {
				sink.Reject(Problem{where, a.Type, "MISP attribute type with no Staydown signal type; known: md5, sha256, filename|md5, filename|sha256, url, pdq"})
			}
			return nil
		}
		value := a.Value
		if strings.HasPrefix(a.Type, "filename|") {
			_, value, _ = strings.Cut(value, "|")
		}
		s, why := parse(typ, strings.TrimSpace(value))
		if why != "" {
			sink.Reject(Problem{where, a.Value, why})
			return nil
		}
		labels := append(append([]string(nil), eventLabels...), tagLabels(a.Tag)...)
		return sink.Row(Row{Where: where, Signal: s, Labels: vocabLabels(labels), Deleted: a.Deleted || objDeleted})
	}
	for _, a := range e.Attribute {
		if err := one(a, false, false); err != nil {
			return err
		}
	}
	for _, o := range e.Object {
		for _, a := range o.Attribute {
			if err := one(a, true, o.Deleted); err != nil {
				return err
			}
		}
	}
	return nil
}

func tagLabels(tags []mispTag) []string {
	var names []string
	for _, t := range tags {
		names = append(names, t.Name)
	}
	return vocabLabels(names)
}
