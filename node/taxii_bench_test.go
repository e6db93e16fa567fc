package node

import (
	"encoding/json"
	"fmt"
	"net/url"
	"testing"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/protocol"
)

// BenchmarkTAXIIWalk pages a TAXII client (taxii_test.go's) through the
// federation's collection of a store of 100,000 sha256 attestations (100
// additions of 1,000; exactBench) over the node's HTTP listener, 1,000
// objects a page (the default), following next until more is false, and
// checks that every attestation's indicator came exactly once (and the
// member's identity). One op is the whole walk.
func BenchmarkTAXIIWalk(b *testing.B) {
	n, stored := exactBench(b)
	token, err := n.cfg.Token()
	if err != nil {
		b.Fatal(err)
	}
	c := &taxiiClient{t: b, base: "http://" + n.APIAddr().String(), auth: "Bearer " + token, accept: api.TAXIIMediaType}
	path := "/taxii2/staydown/collections/" + api.TAXIICollectionID(n.cfg.Federation, "") + "/objects/"
	want := map[string]bool{}
	for _, s := range stored {
		want["[file:hashes.'SHA-256' = '"+protocol.FormatSignal(s)[len("sha256:"):]+"']"] = true
	}
	for b.Loop() {
		seen := map[string]int{}
		q := url.Values{"limit": {fmt.Sprint(api.DefaultTAXIIPage)}}
		identities, pages := 0, 0
		for {
			var env struct {
				More    bool              `json:"more"`
				Next    string            `json:"next"`
				Objects []json.RawMessage `json:"objects"`
			}
			c.must(path+"?"+q.Encode(), &env)
			pages++
			for _, raw := range env.Objects {
				var o struct{ Type, Pattern string }
				if err := json.Unmarshal(raw, &o); err != nil {
					b.Fatal(err)
				}
				if o.Type == "identity" {
					identities++
					continue
				}
				seen[o.Pattern]++
			}
			if !env.More {
				break
			}
			q.Set("next", env.Next)
		}
		if len(seen) != len(want) || identities != 1 {
			b.Fatalf("%d indicators and %d identities in %d pages, want %d and 1", len(seen), identities, pages, len(want))
		}
		for p, k := range seen {
			if k != 1 || !want[p] {
				b.Fatalf("%s listed %d times (stored: %v)", p, k, want[p])
			}
		}
	}
	b.ReportMetric(float64(b.N*len(stored))/b.Elapsed().Seconds(), "objects/s")
}
