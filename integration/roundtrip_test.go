package integration

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/staydown/staydown/node/api"
)

// exportCSV runs `staydown export --format csv` against n (a process of
// its own) and returns its rows as "TYPE:VALUE label|label", labels
// sorted, rows sorted.
func exportCSV(t *testing.T, n *node, file string) []string {
	t.Helper()
	mustCLI(t, "export", "--dir", n.dir, "--format", "csv", "--out", file)
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, rec := range recs {
		labels := slices.Clone(rec[1:])
		slices.Sort(labels)
		out = append(out, rec[0]+" "+strings.Join(labels, "|"))
	}
	slices.Sort(out)
	return out
}

// TestExportImportRoundTrip (issue 15, "Round trips"): a few hundred
// signals of four types with labels, imported into one federation's
// referral node, exported with `staydown export` in our CSV and as a
// STIX 2.1 bundle, and each file imported with `staydown import` (each a
// process of its own) into a second federation's node: the second
// federation then holds the same signals with the same labels. The
// first node's TAXII server (of the `staydown run` process) serves the
// same indicators to a client that pages with HTTP Basic.
func TestExportImportRoundTrip(t *testing.T) {
	dir := t.TempDir()
	labels := []string{"graphic-violence", "attacker-manifesto", "recruitment-and-instruction|other:seized archive"}
	var b strings.Builder
	var want []string
	row := func(signal string, i int) {
		ls := strings.Split(labels[i%len(labels)], "|")
		fmt.Fprintf(&b, "%s,%s\n", signal, strings.Join(ls, ","))
		slices.Sort(ls)
		want = append(want, signal+" "+strings.Join(ls, "|"))
	}
	for i := range 100 {
		row(fmt.Sprintf("md5:%032x", 0xa000+i), i)
		row(fmt.Sprintf("sha256:%064x", 0xb000+i), i+1)
	}
	for i := range 50 {
		row(fmt.Sprintf("url:https://example.org/item/%d", i), i)
		row(fmt.Sprintf("pdq:%064x", 0xc000+i), i+2)
	}
	slices.Sort(want)
	list := filepath.Join(dir, "list.csv")
	if err := os.WriteFile(list, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	a := newCluster(t, "nru=referral")
	a.startAll()
	nru := a.nodes["nru"]
	if s := runImport(t, nru, list, 0); s.Added != len(want) || s.Rejected != 0 {
		t.Fatalf("import into federation a: %+v", s)
	}
	if got := exportCSV(t, nru, filepath.Join(dir, "a.csv")); !slices.Equal(got, want) {
		t.Fatalf("federation a exports\n %q\nwant\n %q", got, want)
	}
	if got := taxiiIndicators(t, nru); len(got) != len(want) {
		t.Errorf("TAXII: %d indicators, want %d", len(got), len(want))
	}
	for _, format := range []string{"csv", "stix"} {
		t.Run(format, func(t *testing.T) {
			file := filepath.Join(dir, "a."+format)
			mustCLI(t, "export", "--dir", nru.dir, "--format", format, "--out", file)
			b := newCluster(t, "unit=referral")
			b.startAll()
			unit := b.nodes["unit"]
			if s := runImport(t, unit, file, 0, "--format", format); s.Added != len(want) || s.Rejected != 0 || s.Skipped != 0 {
				t.Fatalf("import of a's %s into federation b: %+v", format, s)
			}
			if got := exportCSV(t, unit, filepath.Join(dir, "b-"+format+".csv")); !slices.Equal(got, want) {
				t.Errorf("federation b holds\n %q\nwant\n %q", got, want)
			}
		})
	}
}

// taxiiIndicators pages through the federation's TAXII collection of n
// (HTTP Basic, the node's token as the password, 100 objects a page) and
// returns the indicators' patterns.
func taxiiIndicators(t *testing.T, n *node) map[string]bool {
	t.Helper()
	c := apiOf(t, n)
	var status api.Status
	if err := c.call("GET", "/v1/status", nil, &status); err != nil {
		t.Fatal(err)
	}
	path := c.base + "/taxii2/staydown/collections/" + api.TAXIICollectionID(status.Federation, "") + "/objects/"
	out := map[string]bool{}
	q := url.Values{"limit": {"100"}}
	for pages := 1; ; pages++ {
		req, err := http.NewRequest("GET", path+"?"+q.Encode(), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("opencti", c.token)
		req.Header.Set("Accept", api.TAXIIMediaType)
		res, err := c.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var env struct {
			More    bool
			Next    string
			Objects []struct{ Type, Pattern string }
		}
		err = json.NewDecoder(res.Body).Decode(&env)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != api.TAXIIMediaType {
			t.Fatalf("TAXII page %d: %d %s %v", pages, res.StatusCode, res.Header.Get("Content-Type"), err)
		}
		for _, o := range env.Objects {
			if o.Type == "indicator" {
				out[o.Pattern] = true
			}
		}
		if !env.More {
			return out
		}
		q.Set("next", env.Next)
	}
}
