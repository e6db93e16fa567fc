package api

import (
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/staydown/staydown/protocol"
)

// The OpenAPI document must describe exactly the routes the server has
// and exactly the fields of the JSON types. The project has no YAML
// library; the document's layout is regular enough to read by indentation.

var (
	pathLine   = regexp.MustCompile(`^  (/\S+):$`)
	methodLine = regexp.MustCompile(`^    (get|post|put|patch|delete|head|options):$`)
	scopeLine  = regexp.MustCompile(`^      x-scope: (\w+)$`)
	schemaLine = regexp.MustCompile(`^    (\w+):$`)
	propLine   = regexp.MustCompile(`^        (\w+):`)
)

// section returns the lines of the top-level (indent 0) or second-level
// (indent 2) block named name.
func section(lines []string, indent int, name string) []string {
	head := strings.Repeat(" ", indent) + name + ":"
	for i, l := range lines {
		if l != head {
			continue
		}
		end := i + 1
		for end < len(lines) && (lines[end] == "" || strings.HasPrefix(lines[end], strings.Repeat(" ", indent+1))) {
			end++
		}
		return lines[i+1 : end]
	}
	return nil
}

func TestOpenAPIPathsMatchRoutes(t *testing.T) {
	lines := strings.Split(string(OpenAPI), "\n")
	// Each method is documented as "METHOD scope" (x-scope).
	documented := map[string][]string{}
	path, method := "", ""
	for _, l := range section(lines, 0, "paths") {
		if m := pathLine.FindStringSubmatch(l); m != nil {
			path = m[1]
			documented[path] = nil
		} else if m := methodLine.FindStringSubmatch(l); m != nil {
			method = strings.ToUpper(m[1])
			documented[path] = append(documented[path], method+" (no x-scope)")
		} else if m := scopeLine.FindStringSubmatch(l); m != nil {
			documented[path][len(documented[path])-1] = method + " " + m[1]
		}
	}
	served := map[string][]string{}
	for _, r := range Routes() {
		served[r.Path] = append(served[r.Path], r.Method+" "+r.Scope.String())
	}
	for _, m := range []map[string][]string{documented, served} {
		for p := range m {
			slices.Sort(m[p])
		}
	}
	if !reflect.DeepEqual(documented, served) {
		t.Errorf("openapi.yaml documents\n %v\nthe server serves\n %v", documented, served)
	}
}

func TestOpenAPISchemasMatchTypes(t *testing.T) {
	types := map[string]any{
		"Error":               ErrorBody{},
		"Signal":              Signal{},
		"AdditionRequest":     AdditionRequest{},
		"RetractionRequest":   RetractionRequest{},
		"DisputeRequest":      DisputeRequest{},
		"AllowRequest":        AllowRequest{},
		"Published":           Published{},
		"MatchRequest":        MatchRequest{},
		"MatchResults":        MatchResults{},
		"MatchResult":         MatchResult{},
		"Attestation":         Attestation{},
		"Reason":              Reason{},
		"Status":              Status{},
		"FileMatch":           FileMatch{},
		"FileHash":            FileHash{},
		"WatchRequest":        WatchRequest{},
		"WatchResult":         WatchResult{},
		"UnwatchResult":       UnwatchResult{},
		"AlertList":           AlertList{},
		"Alert":               Alert{},
		"NoticeRequest":       NoticeRequest{},
		"NoticeUpdateRequest": NoticeUpdateRequest{},
		"ReplyRequest":        ReplyRequest{},
		"NoticeList":          NoticeList{},
		"NoticeView":          NoticeView{},
		"NoticeDetails":       NoticeDetails{},
		"NoticeUpdate":        NoticeUpdate{},
		"NoticeReply":         NoticeReply{},
		"NoticeAction":        NoticeAction{},
		"Event":               Event{},
		"EntryProof":          protocol.EntryProof{},
		"MembersView":         MembersView{},
		"VotingRule":          VotingRule{},
		"MemberView":          MemberView{},
		"MemberKey":           MemberKey{},
		"RemovedMember":       RemovedMember{},
		"VoteConflict":        VoteConflict{},
		"RosterVersion":       RosterVersion{},
		"ProposalList":        ProposalList{},
		"ProposalView":        ProposalView{},
		"AmendmentView":       AmendmentView{},
		"ProposeRequest":      ProposeRequest{},
		"PeerRequest":         PeerRequest{},
		"PeerAnnounced":       PeerAnnounced{},
		"MemberBlock":         MemberBlock{},
		"Removal":             Removal{},
		"RoleChange":          RoleChange{},
		"Revocation":          Revocation{},
	}
	schemas := section(strings.Split(string(OpenAPI), "\n"), 2, "schemas")
	documented := map[string][]string{}
	name, inProps := "", false
	for _, l := range schemas {
		switch {
		case schemaLine.MatchString(l):
			name, inProps = schemaLine.FindStringSubmatch(l)[1], false
		case l == "      properties:":
			inProps = true
			documented[name] = []string{}
		case strings.HasPrefix(l, "      ") && !strings.HasPrefix(l, "       "):
			inProps = false
		case inProps && propLine.MatchString(l):
			documented[name] = append(documented[name], propLine.FindStringSubmatch(l)[1])
		}
	}
	for name, v := range types {
		var fields []string
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			tag, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
			fields = append(fields, tag)
		}
		got := documented[name]
		slices.Sort(fields)
		slices.Sort(got)
		if !slices.Equal(fields, got) {
			t.Errorf("schema %s: openapi.yaml has properties %v, the Go type has %v", name, got, fields)
		}
	}
	for name := range documented {
		if _, ok := types[name]; !ok {
			t.Errorf("schema %s with properties is not checked against a Go type", name)
		}
	}
}
