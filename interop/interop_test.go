package interop

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/staydown/staydown/protocol"
)

type result struct {
	rows     []string // TYPE:VALUE [labels] [deleted]
	problems []string
}

func readAll(t testing.TB, f Format, data []byte) (result, error) {
	t.Helper()
	var res result
	err := Read(f, bytes.NewReader(data), Sink{
		Row: func(r Row) error {
			s := protocol.FormatSignal(r.Signal)
			if len(r.Labels) > 0 {
				s += " " + strings.Join(r.Labels, "|")
			}
			if r.Deleted {
				s += " deleted"
			}
			res.rows = append(res.rows, r.Where+": "+s)
			return nil
		},
		Reject: func(p Problem) { res.problems = append(res.problems, p.Error()) },
	})
	return res, err
}

// The samples in testdata are written from each format's documentation:
// pytx.txt from python-threatexchange's local file exchange (SIGNAL_TYPE
// SIGNAL a line), pytx.csv from its CSV of signals (signal_type,signal_str
// header), tat.json from Tech Against Terrorism's hash list API
// (docs.terrorismanalytics.org, Content Hash List: results[] with
// hash_digest, algorithm, ideology, file_type, deleted; the exact response
// beyond those fields follows issue 15), stix.json from STIX 2.1 (OASIS,
// indicator patterns on file:hashes and url:value), misp.json from MISP's
// JSON event format (Event, Attribute, Object, Tag).
func TestSamples(t *testing.T) {
	const (
		p1 = "pdq:f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
		p2 = "pdq:358c86641a5269ab5b0db5f1b2315c1642cef9652c39b6ced9f646d91f071927"
		m1 = "md5:d41d8cd98f00b204e9800998ecf8427e"
		m2 = "md5:0cc175b9c0f1b6a831c399e269772661"
		s1 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
		s2 = "sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
	)
	for _, tc := range []struct {
		file     string
		format   Format
		rows     []string
		problems []string
	}{
		{"pytx.txt", PyTX,
			[]string{"line 2: " + p1, "line 3: " + m1, "line 4: url:https://bad.example/watch?v=1", "line 6: " + p2},
			[]string{`line 7: "raw_text": python-threatexchange signal type with no Staydown equivalent`, `line 8: "1234": pdq: want 64 hex characters, got 4`}},
		{"pytx.csv", PyTXCSV,
			[]string{"line 2: " + p1 + " graphic-violence", "line 3: " + m1, "line 4: url:https://bad.example/a,b recruitment-and-instruction"},
			[]string{`line 5: "url_md5": python-threatexchange signal type`, `line 6: "zz": pdq: want 64 hex`}},
		{"tat.json", TAT,
			[]string{"results[0] (id 1001): " + m1, "results[1] (id 1002): " + s1, "results[2] (id 1003): " + p1 + " deleted"},
			[]string{`results[3] (id 1004): "SHA512": algorithm with no Staydown signal type`, `results[4] (id 1005): "0cc175b9c0f1b6a831c399e269772661x": md5: want 32 hex characters, got 33`}},
		{"stix.json", STIX,
			[]string{
				"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f: " + s1 + " attacker-manifesto",
				"indicator--1f3a0f2e-8c1e-4d5e-9b1a-2d7e1b4c5a6f: " + m1,
				"indicator--1f3a0f2e-8c1e-4d5e-9b1a-2d7e1b4c5a6f: " + p2,
				"indicator--1f3a0f2e-8c1e-4d5e-9b1a-2d7e1b4c5a6f: url:https://bad.example/it's",
				"indicator--2a4b6c8d-0e1f-4a3b-8c5d-6e7f8a9b0c1d: " + s2 + " deleted",
			},
			[]string{`indicator--3b5c7d9e-1f20-4b4c-9d6e-7f8091a2b3c4: "[file:hashes.MD5 = '0cc175b9c0f1b6a831c399e269772661' AND file:size = 100]": only OR between comparisons can be represented`,
				`indicator--4c6d8e0f-2031-4c5d-8e7f-8091a2b3c4d5: "[ipv4-addr:value = '198.51.100.1']": object path "ipv4-addr:value" cannot be represented`}},
		{"misp.json", MISP,
			[]string{
				"attribute 6a1b2c3d-0000-4000-8000-000000000001: " + m1 + " glorification-of-terrorist-acts",
				"attribute 6a1b2c3d-0000-4000-8000-000000000002: " + s1 + " glorification-of-terrorist-acts",
				"attribute 6a1b2c3d-0000-4000-8000-000000000003: url:https://bad.example/video glorification-of-terrorist-acts deleted",
				"attribute 7b2c3d4e-0000-4000-8000-000000000009: " + p1 + " glorification-of-terrorist-acts",
			},
			[]string{`attribute 6a1b2c3d-0000-4000-8000-000000000004: "ip-dst": MISP attribute type with no Staydown signal type`,
				`attribute 7b2c3d4e-0000-4000-8000-000000000010: "not-a-hash": sha256: want 64 hex characters`}},
		{"ours.csv", CSV,
			[]string{"line 2: " + s1 + " graphic-violence", "line 3: " + m1, "line 4: " + p1 + " attacker-manifesto|other:poster series", "line 5: url:https://bad.example/x,y recruitment-and-instruction"},
			[]string{`line 6: "sha1:d41d8cd98f00b204e9800998ecf8427e": want TYPE:VALUE`, `line 7: "not-a-label": label: `}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Detect(data)
			if err != nil || got != tc.format {
				t.Fatalf("Detect = %q, %v; want %q", got, err, tc.format)
			}
			res, err := readAll(t, tc.format, data)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.rows, tc.rows) {
				t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(res.rows, "\n"), strings.Join(tc.rows, "\n"))
			}
			if len(res.problems) != len(tc.problems) {
				t.Fatalf("problems:\n%s\nwant %d", strings.Join(res.problems, "\n"), len(tc.problems))
			}
			for i, p := range tc.problems {
				if !strings.HasPrefix(res.problems[i], p) {
					t.Errorf("problem %d = %s\nwant prefix %s", i, res.problems[i], p)
				}
			}
		})
	}
}

func TestBadFiles(t *testing.T) {
	tat, _ := os.ReadFile("testdata/tat.json")
	for _, tc := range []struct {
		name   string
		format Format
		data   string
		want   string
	}{
		{"truncated json", TAT, string(tat[:len(tat)/2]), "cut short"},
		{"not json", TAT, "pdq abc\n", "bad JSON"},
		{"stix without objects", STIX, `{"type":"bundle","id":"bundle--1"}`, `no "objects" array`},
		{"tat object with no results", TAT, `{"count":0}`, `no "results" array`},
		{"misp not an event", MISP, `{"foo":1}`, "not a MISP event"},
		{"pytx-csv without header", PyTXCSV, "pdq,abc\n", "names no signal_type"},
		{"trailing garbage", STIX, `{"objects":[]} x`, "after the end"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readAll(t, tc.format, []byte(tc.data))
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want ErrFormat with %q", err, tc.want)
			}
		})
	}
}

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		head string
		want Format
		err  string
	}{
		{"\xff\xfep\x00d\x00q\x00", "", "UTF-16"},
		{"", "", "empty"},
		{"# only a comment\n", "", "no rows"},
		{`{"hello": 1}`, "", "not a TAT hash list"},
		{"hello world\n", "", `"hello world"`},
		{"\xef\xbb\xbfsignal_type,signal_str\n", PyTXCSV, ""},
		{"url https://x.example/\n", PyTX, ""},
		{"url:https://x.example/\n", CSV, ""},
		{`[{"Event": {}}]`, MISP, ""},
	} {
		got, err := Detect([]byte(tc.head))
		if got != tc.want || (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("Detect(%q) = %q, %v; want %q, error with %q", tc.head, got, err, tc.want, tc.err)
		}
	}
}

// TestManyRowsSomeBad reads a 100,000-row file with 300 bad rows: each is
// reported by its line, and every good row is read.
func TestManyRowsSomeBad(t *testing.T) {
	var b strings.Builder
	bad := map[int]bool{}
	for i := range 100_000 {
		if i%333 == 7 && len(bad) < 300 {
			bad[i+1] = true
			fmt.Fprintf(&b, "md5:%031x\n", i) // one hex digit short
			continue
		}
		fmt.Fprintf(&b, "md5:%032x,graphic-violence\n", i)
	}
	res, err := readAll(t, CSV, []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.problems) != 300 || len(res.rows) != 100_000-300 {
		t.Fatalf("%d rows, %d problems; want %d, 300", len(res.rows), len(res.problems), 100_000-300)
	}
	for _, p := range res.problems {
		var line int
		if _, err := fmt.Sscanf(p, "line %d:", &line); err != nil || !bad[line] {
			t.Fatalf("problem %q names no bad line", p)
		}
	}
}
