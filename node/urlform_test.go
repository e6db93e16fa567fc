package node

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// TestMatchURLSpellings: a URL carried in an entry in the v1 normal form
// (as a node before v2 wrote it) matches over the API by every spelling of
// it, the API's queries normalised to the v2 form (SPEC 7.4, 7.5).
func TestMatchURLSpellings(t *testing.T) {
	f := newFederation(t, "nru=referral")
	n := f.start("nru")
	token, err := f.cfgs["nru"].Token()
	if err != nil {
		t.Fatal(err)
	}
	const v1 = "https://b%C3%BCcher.example/%7euser/%c3%a4?q=%7e"
	if n, err := protocol.NormalizeURLForm(v1, protocol.URLFormV1); err != nil || n != v1 {
		t.Fatalf("the test's v1 form: %q, %v", n, err)
	}
	publishAddition(t, n, []string{"recruitment-and-instruction"}, &pb.Signal{Value: &pb.Signal_Url{Url: v1}})

	spellings := []string{
		v1,
		"https://xn--bcher-kva.example/~user/%C3%A4?q=~",
		"https://bücher.example/~user/ä?q=%7E",
		"HTTPS://B%c3%9cCHER.example:443/%7Euser/%C3%a4?q=~#top",
	}
	var req api.MatchRequest
	for _, s := range append(spellings, "https://bücher.example/~user/ä?q=~x") {
		req.Signals = append(req.Signals, api.Signal{Type: "url", Value: s})
	}
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	r, err := http.NewRequest("POST", "http://"+n.APIAddr().String()+"/v1/match", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Authorization", "Bearer "+token)
	r.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out api.MatchResults
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %v", res.StatusCode, err)
	}
	if len(out.Results) != len(spellings)+1 {
		t.Fatalf("%d results", len(out.Results))
	}
	for i, s := range spellings {
		if !out.Results[i].Matched {
			t.Errorf("%q does not match the entry's %q", s, v1)
		}
	}
	if out.Results[len(spellings)].Matched {
		t.Errorf("another URL matches")
	}
}
