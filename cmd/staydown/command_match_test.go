package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/staydown/staydown/internal/ffmpegtest"

	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/match/filehash"
	"github.com/staydown/staydown/node/match/pdq"
	"github.com/staydown/staydown/node/match/vpdq"
	"github.com/staydown/staydown/node/matching"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

func TestMatch(t *testing.T) {
	n := startNode(t)
	self := n.fake.Author()
	id := func(b byte) protocol.ID { return protocol.ID{0x12, 0x20, b} }
	active := store.Attestation{
		Author: self, EntryID: id(1), Seq: 4, Labels: []string{"recruitment-and-instruction", "other:training video"},
		CaseRef: "C-7", TimeMs: 1_700_000_000_123, Status: store.StatusActive,
	}
	disputed := store.Attestation{
		Author: other.AuthorKey, EntryID: id(2), Seq: 1, Labels: []string{"graphic-violence"}, TimeMs: 1_700_000_060_000,
		Status: store.StatusDisputed, Equivocated: true,
		Reasons: []store.Reason{{Kind: protocol.KindDispute, Author: self, EntryID: id(3), Reason: "news report"}},
	}
	n.fake.Attest(mustSignal(t, "sha256", sha), active, disputed)
	n.fake.Attest(mustSignal(t, "sha256", sha2), disputed)
	// The node's policy decides the verdict; the exit code follows it.
	blocked, reviewed := strings.Repeat("b1", 32), strings.Repeat("c1", 32)
	n.fake.Attest(mustSignal(t, "sha256", blocked), active)
	n.fake.SetVerdict(mustSignal(t, "sha256", blocked), api.VerdictBlock)
	n.fake.Attest(mustSignal(t, "sha256", reviewed), disputed)
	n.fake.SetVerdict(mustSignal(t, "sha256", reviewed), api.VerdictReview)
	// #13 item 2: an allow entry by a member the policy does not trust
	// leaves the status allowlisted (the protocol's) and the verdict
	// block; the line says why.
	allowedByUntrusted := strings.Repeat("d1", 32)
	allowlisted := active
	allowlisted.Status = store.StatusAllowlisted
	allowlisted.Reasons = []store.Reason{{Kind: protocol.KindAllow, Author: other.AuthorKey, EntryID: id(4), Category: "news", Reason: "a report"}}
	n.fake.Attest(mustSignal(t, "sha256", allowedByUntrusted), allowlisted)
	n.fake.SetIgnored(mustSignal(t, "sha256", allowedByUntrusted), []bool{true})
	n.fake.SetVerdict(mustSignal(t, "sha256", allowedByUntrusted), api.VerdictBlock)

	activeJSON := `{"kind":"addition","author":"nru","author_key":"` + self.String() + `","id":"` + id(1).String() + `","seq":4,
		"labels":["recruitment-and-instruction","other:training video"],"case_ref":"C-7","time":"2023-11-14T22:13:20.123Z",
		"status":"active","reasons":[],"equivocated":false}`
	disputedJSON := `{"kind":"addition","author":"platform-a","author_key":"` + other.AuthorKey.String() + `","id":"` + id(2).String() + `","seq":1,
		"labels":["graphic-violence"],"case_ref":"","time":"2023-11-14T22:14:20.000Z","status":"disputed",
		"reasons":[{"kind":"dispute","author":"nru","id":"` + id(3).String() + `","category":"","reason":"news report"}],"equivocated":true}`
	activeLine := "active    nru         recruitment-and-instruction,other:training video  " + id(1).String() + "  2023-11-14T22:13:20.123Z"
	disputedLine := "disputed  platform-a  graphic-violence                                  " + id(2).String() + "  2023-11-14T22:14:20.000Z  dispute by nru: news report; platform-a is flagged for equivocation"

	tests := []struct {
		name   string
		value  string
		json   bool
		code   int
		stdout string
	}{
		{"block: exit 0", blocked, false, exitOK, "active  nru  recruitment-and-instruction,other:training video  " + id(1).String() + "  2023-11-14T22:13:20.123Z\nverdict: block\n"},
		// #13 item 8: a disputed hash said "verdict: review" and exited 1.
		{"disputed, review: exit 3", reviewed, false, exitReview, strings.Replace(disputedLine, "platform-a  graphic-violence                                  ", "platform-a  graphic-violence  ", 1) + "\nverdict: review\n"},
		{"active, review: exit 3", strings.ToUpper(sha), false, exitReview, activeLine + "\n" + disputedLine + "\nverdict: review\n"},
		{"active, JSON", sha, true, exitReview, `{"signal":{"type":"sha256","value":"` + sha + `"},"matched":true,"attestations":[` + activeJSON + `,` + disputedJSON + `],"verdict":"review"}`},
		{"only disputed: exit 1", sha2, false, exitNoMatch, strings.Replace(disputedLine, "platform-a  graphic-violence                                  ", "platform-a  graphic-violence  ", 1) + "\nverdict: none\n"},
		{"only disputed, JSON", sha2, true, exitNoMatch, `{"signal":{"type":"sha256","value":"` + sha2 + `"},"matched":false,"attestations":[` + disputedJSON + `],"verdict":"none"}`},
		{"allowlisted by an untrusted member, block: exit 0", allowedByUntrusted, false, exitOK,
			"allowlisted  nru  recruitment-and-instruction,other:training video  " + id(1).String() + "  2023-11-14T22:13:20.123Z  allow by platform-a (news): a report (not trusted: no weight in the verdict)\nverdict: block\n"},
		{"allowlisted by an untrusted member, JSON", allowedByUntrusted, true, exitOK, `{"signal":{"type":"sha256","value":"` + allowedByUntrusted + `"},"matched":false,"attestations":[` +
			strings.Replace(activeJSON, `"status":"active","reasons":[]`, `"status":"allowlisted","reasons":[{"kind":"allow","author":"platform-a","id":"`+id(4).String()+`","category":"news","reason":"a report","ignored":true}]`, 1) +
			`],"verdict":"block"}`},
		{"nothing: exit 1", strings.Repeat("ef", 32), false, exitNoMatch, "no match\nverdict: none\n"},
		{"nothing, JSON", strings.Repeat("ef", 32), true, exitNoMatch, `{"signal":{"type":"sha256","value":"` + strings.Repeat("ef", 32) + `"},"matched":false,"attestations":[],"verdict":"none"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(n.fake.Matched())
			args := []string{"match", "--dir", n.dir, "--type", "sha256", tt.value}
			if tt.json {
				args = append(args, "--json")
			}
			r := staydown(args...)
			if r.code != tt.code || r.stderr != "" {
				t.Errorf("exit %d stderr %q, want %d and nothing", r.code, r.stderr, tt.code)
			}
			if tt.json {
				wantJSON(t, r.stdout, tt.stdout)
			} else if r.stdout != tt.stdout {
				t.Errorf("stdout\n%s\nwant\n%s", r.stdout, tt.stdout)
			}
			m := n.fake.Matched()
			if len(m) != before+1 || len(m[before]) != 1 || !proto.Equal(m[before][0], mustSignal(t, "sha256", tt.value)) {
				t.Errorf("the node was asked %v", m[before:])
			}
		})
	}
}

func TestMatchErrors(t *testing.T) {
	n := startNode(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no type", []string{sha}, `staydown: match: value "` + sha + `": no type: give TYPE:VALUE (e.g. sha256:HEX`},
		{"unknown type", []string{"--type", "tmk", sha}, `staydown: match: --type: bad signal: unknown signal type "tmk"`},
		{"bad hash", []string{"--type", "sha256", "abc"}, `staydown: match: value "abc": bad signal: sha256: want 64 hex characters, got 3`},
		{"bad url", []string{"--type", "url", "example.com/x"}, `staydown: match: value "example.com/x": bad signal: url`},
		{"no value", []string{"--type", "sha256"}, "staydown: match: missing VALUE"},
		{"two values", []string{"--type", "sha256", sha, sha2}, "staydown: match: want 1 VALUE, got 2 arguments"},
		{"bad value, JSON", []string{"--type", "md5", sha, "--json"}, `staydown: match: value "` + sha + `": bad signal: md5: want 32 hex characters, got 64`},
		{"file and type", []string{"--type", "sha256", "--file", "x.jpg"}, "staydown: match: --type: give either --type TYPE VALUE or --file FILE, not both"},
		{"file and value", []string{"--file", "x.jpg", sha}, "staydown: match: unexpected argument"},
		{"no-dihedral without file", []string{"--type", "sha256", "--no-dihedral", sha}, "staydown: match: --no-dihedral: only with --file"},
		{"missing file", []string{"--file", "/nonexistent/x.jpg"}, "staydown: match: open /nonexistent/x.jpg: no such file or directory"},
		{"directory", []string{"--file", "/"}, "staydown: match: / is not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantFailure(t, staydown(append([]string{"match", "--dir", n.dir}, tt.args...)...), tt.want)
			if c := n.calls(); c != 0 {
				t.Fatalf("%d requests reached the node", c)
			}
		})
	}
}

// referenceImage is the path of a PDQ reference image
// (shared/testdata/pdq/images, beside the module root).
func referenceImage(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join("..", "..", "..", "shared", "testdata", "pdq", "images", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("PDQ reference image: %v", err)
	}
	return p
}

// TestMatchPDQ: a PDQ match prints and reports, per attestation, the
// stored hash and its distance, and the verdict.
func TestMatchPDQ(t *testing.T) {
	n := startNode(t)
	hash := strings.Repeat("5a", 32)
	n.fake.Attest(mustSignal(t, "pdq", hash), store.Attestation{
		Author: other.AuthorKey, EntryID: protocol.ID{0x12, 0x20, 9}, Seq: 2, Labels: []string{"graphic-violence"},
		TimeMs: 1_700_000_000_000, Status: store.StatusActive,
	})
	n.fake.SetVerdict(mustSignal(t, "pdq", hash), api.VerdictBlock)
	r := staydown("match", "--dir", n.dir, "--type", "pdq", hash, "--json")
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	id := protocol.ID{0x12, 0x20, 9}
	wantJSON(t, r.stdout, `{"signal":{"type":"pdq","value":"`+hash+`"},"matched":true,"attestations":[
		{"kind":"addition","author":"platform-a","author_key":"`+other.AuthorKey.String()+`","id":"`+id.String()+`","seq":2,
		 "labels":["graphic-violence"],"case_ref":"","time":"2023-11-14T22:13:20.000Z","status":"active","reasons":[],
		 "equivocated":false,"hash":"`+hash+`","distance":0}],"verdict":"block"}`)
	r = staydown("match", "--dir", n.dir, "--type", "pdq", hash)
	want := "active  platform-a  graphic-violence  " + id.String() + "  2023-11-14T22:13:20.000Z  distance=0\nverdict: block\n"
	if r.code != exitOK || r.stdout != want {
		t.Errorf("exit %d stdout\n%s\nwant\n%s", r.code, r.stdout, want)
	}
}

func TestMatchFile(t *testing.T) {
	n := startNode(t)
	path := referenceImage(t, "dih--bridge-5-flipx.jpg")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := filehash.ReadSeeker(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	// The fake finds an attestation of the photo mirrored back (what the
	// original's hash would be).
	mirrored := h.Variants[pdq.FlipX]
	id := protocol.ID{0x12, 0x20, 5}
	n.fake.Attest(&pb.Signal{Value: &pb.Signal_Pdq{Pdq: mirrored[:]}}, store.Attestation{
		Author: other.AuthorKey, EntryID: id, Seq: 1, Labels: []string{"attacker-manifesto"}, TimeMs: 1_700_000_000_000, Status: store.StatusActive,
	})
	shaHex, md5Hex := fmt.Sprintf("%x", h.SHA256), fmt.Sprintf("%x", h.MD5)

	r := staydown("match", "--dir", n.dir, "--file", path)
	want := "sha256:" + shaHex + "\n  no match\n  verdict: none\n" +
		"md5:" + md5Hex + "\n  no match\n  verdict: none\n" +
		fmt.Sprintf("pdq:%s quality=%d\n", h.PDQ.Hash, h.PDQ.Quality) +
		"  active  platform-a  attacker-manifesto  " + id.String() + "  2023-11-14T22:13:20.000Z  distance=0 (flipX)\n  verdict: review\n" +
		"verdict: review\n"
	if r.code != exitReview || r.stdout != want || r.stderr != "" {
		t.Errorf("exit %d stderr %q stdout\n%s\nwant\n%s", r.code, r.stderr, r.stdout, want)
	}
	q := n.fake.Queries()
	if last := q[len(q)-1]; len(last) != 3 || len(last[2].Variants) != 7 || last[2].Quality != h.PDQ.Quality {
		t.Errorf("queries %+v", last)
	}

	r = staydown("match", "--dir", n.dir, "--file", path, "--no-dihedral", "--json")
	if r.code != exitNoMatch || r.stderr != "" {
		t.Fatalf("--no-dihedral: exit %d: %s", r.code, r.stderr)
	}
	var fm api.FileMatch
	if err := json.Unmarshal([]byte(r.stdout), &fm); err != nil {
		t.Fatal(err)
	}
	if fm.Dihedral || fm.Matched || fm.Verdict != "none" || fm.Image != "jpeg" || len(fm.Hashes) != 3 || fm.Hashes[2].Value != h.PDQ.Hash.String() {
		t.Errorf("answer %+v", fm)
	}
	q = n.fake.Queries()
	if last := q[len(q)-1]; len(last[2].Variants) != 0 {
		t.Errorf("--no-dihedral sent %d variants", len(last[2].Variants))
	}

	text := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(text, []byte("not an image"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = staydown("match", "--dir", n.dir, "--file", text)
	if r.code != exitNoMatch || !strings.Contains(r.stdout, "no pdq hash: pdq: not an image") || !strings.HasSuffix(r.stdout, "verdict: none\n") {
		t.Errorf("not an image: exit %d stdout\n%s", r.code, r.stdout)
	}
}

// TestMatchURLSpellings: `match` sends a URL in its v2 normal form (SPEC
// 7.4), so each spelling of a URL a node holds in the v1 form matches it.
func TestMatchURLSpellings(t *testing.T) {
	n := startNode(t)
	const v1, v2 = "https://b%C3%BCcher.example/%7euser", "https://xn--bcher-kva.example/~user"
	held := &pb.Signal{Value: &pb.Signal_Url{Url: v1}}
	att := store.Attestation{Author: n.fake.Author(), EntryID: protocol.ID{0x12, 0x20, 9}, Seq: 1, Labels: []string{"graphic-violence"}, TimeMs: 1, Status: store.StatusActive}
	n.fake.Attest(held, att)
	n.fake.SetVerdict(held, api.VerdictBlock)
	for _, in := range []string{v1, v2, "https://bücher.example/~user", "HTTPS://XN--BCHER-KVA.EXAMPLE/%7Euser#x"} {
		before := len(n.fake.Matched())
		r := staydown("match", "--dir", n.dir, "--type", "url", in)
		if r.code != exitOK || !strings.HasSuffix(r.stdout, "verdict: block\n") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", in, r.code, r.stdout, r.stderr)
		}
		m := n.fake.Matched()
		if len(m) != before+1 || len(m[before]) != 1 || m[before][0].GetUrl() != v2 {
			t.Errorf("%q: the node was asked %v, want %q", in, m[before:], v2)
		}
	}
}

// `match --file` with a video streams it to the node and prints each
// video match with both percentages and segments, and each frame hit with
// the frames' times; --json gives the node's answer; the exit code is the
// verdict's.
func TestMatchFileVideo(t *testing.T) {
	ffmpegtest.Require(t)
	n := startNode(t)
	path := filepath.Join("..", "..", "..", "shared", "testdata", "vpdq", "videos", shortVideo)
	v, err := vpdq.HashFile(t.Context(), path, vpdq.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := v.Signal()
	if err != nil {
		t.Fatal(err)
	}
	id1, id2 := protocol.ID{0x12, 0x20, 1}, protocol.ID{0x12, 0x20, 2}
	found := api.Found{
		Attestations: []api.FoundAttestation{{
			Attestation: store.Attestation{Author: other.AuthorKey, EntryID: id1, Seq: 1, Labels: []string{"graphic-violence"}, TimeMs: 1_700_000_000_000, Status: store.StatusActive},
			Video: &matching.VideoMatch{QueryPercent: 90, ComparedPercent: 45.5, QueryFrames: 10, QueryMatched: 9, ComparedFrames: 22, ComparedMatched: 10,
				Segments: []matching.Segment{{FromMs: 0, ToMs: 4000}, {FromMs: 6000, ToMs: 9500}}},
		}},
		FrameHits: []api.FoundAttestation{{
			Attestation: store.Attestation{Author: other.AuthorKey, EntryID: id2, Seq: 2, Labels: []string{"attacker-manifesto"}, TimeMs: 1_700_000_000_000, Status: store.StatusActive},
			Distance:    7, FrameTimesMs: []uint32{1000, 2500},
		}},
		Verdict: api.VerdictBlock,
	}
	n.fake.SetFound(sig, found)
	frames := len(sig.GetVpdq()) / protocol.VPDQFrameSize
	// The head line of the vpdq result is the value summed up; --json
	// carries it whole.
	r := staydown("match", "--dir", n.dir, "--file", path, "--json")
	var fm0 api.FileMatch
	if err := json.Unmarshal([]byte(r.stdout), &fm0); err != nil || len(fm0.Hashes) != 3 {
		t.Fatalf("--json: exit %d %v: %s", r.code, err, r.stderr)
	}
	if got, err := protocol.ParseVPDQJSON(fm0.Hashes[2].Value); err != nil || len(got) != frames {
		t.Fatalf("--json's vpdq value: %d frames, %v; want the whole value, %d frames", len(got), err, frames)
	}
	r = staydown("match", "--dir", n.dir, "--file", path)
	lines := strings.Split(r.stdout, "\n")
	want := []string{
		humanSignal("vpdq", fm0.Hashes[2].Value),
		"  active  platform-a  graphic-violence  " + id1.String() + "  2023-11-14T22:13:20.000Z  query=90.0% (9/10 frames) compared=45.5% (10/22) segments 0s-4s,6s-9.5s",
		"  frame hits (stored images in the video):",
		"    active  platform-a  attacker-manifesto  " + id2.String() + "  2023-11-14T22:13:20.000Z  distance=7  at 1s,2.5s",
		"  verdict: block",
		"verdict: block",
	}
	if r.code != exitOK || r.stderr != "" || len(lines) < 6+6 || !slices.Equal(lines[6:12], want) {
		t.Errorf("exit %d stderr %q stdout\n%s\nwant after the sha256 and md5 results\n%s", r.code, r.stderr, r.stdout, strings.Join(want, "\n"))
	}
	r = staydown("match", "--dir", n.dir, "--file", path, "--json")
	var fm api.FileMatch
	if err := json.Unmarshal([]byte(r.stdout), &fm); err != nil || r.code != exitOK {
		t.Fatalf("--json: exit %d %v: %s", r.code, err, r.stderr)
	}
	if fm.Video != "mp4" || len(fm.Hashes) != 3 || fm.Hashes[2].Type != "vpdq" || len(fm.Results) != 3 ||
		fm.Results[2].Attestations[0].Video == nil || len(fm.Results[2].FrameHits) != 1 || fm.Verdict != "block" {
		t.Errorf("--json answer %+v", fm)
	}
	q := n.fake.Queries()
	if last := q[len(q)-1]; len(last) != 3 || !proto.Equal(last[2].Signal, sig) {
		t.Errorf("the node was asked %d queries, not the video's sha256, md5 and vpdq", len(last))
	}

	// Frame hits alone: the line above them says no stored video matches,
	// not "no match", which would read as if nothing were found.
	found.Attestations = nil
	n.fake.SetFound(sig, found)
	r = staydown("match", "--dir", n.dir, "--file", path)
	lines = strings.Split(r.stdout, "\n")
	want = append([]string{want[0], "  no stored video matches"}, want[2:]...)
	if r.code != exitOK || len(lines) < 6+6 || !slices.Equal(lines[6:12], want) {
		t.Errorf("frame hits alone: exit %d stderr %q stdout\n%s\nwant after the sha256 and md5 results\n%s", r.code, r.stderr, r.stdout, strings.Join(want, "\n"))
	}
}

// TestResultHead: the line that heads each result of `match --file` is
// the signal as a person reads it: a vpdq value summed up (frames, time
// span, key), never its JSON; a PDQ hash with its quality; the others
// whole.
func TestResultHead(t *testing.T) {
	vpdqValue := `["` + strings.Repeat("ab", 32) + `,100,0.0","` + strings.Repeat("cd", 32) + `,90,1.0","` + strings.Repeat("ef", 32) + `,80,12.25"]`
	sha := strings.Repeat("0f", 32)
	pdqHex := strings.Repeat("f0", 32)
	q := 87
	for _, tt := range []struct {
		name   string
		res    api.FileMatch
		i      int
		want   string
		absent string
	}{
		{"sha256", api.FileMatch{Results: []api.MatchResult{{Signal: api.Signal{Type: "sha256", Value: sha}}}}, 0, "sha256:" + sha, ""},
		{"pdq with quality", api.FileMatch{
			Hashes:  []api.FileHash{{Type: "pdq", Value: pdqHex, Quality: &q}},
			Results: []api.MatchResult{{Signal: api.Signal{Type: "pdq", Value: pdqHex}}}}, 0, "pdq:" + pdqHex + " quality=87", ""},
		{"vpdq", api.FileMatch{
			Hashes:  []api.FileHash{{Type: "sha256", Value: sha}, {Type: "vpdq", Value: vpdqValue}},
			Results: []api.MatchResult{{Signal: api.Signal{Type: "sha256", Value: sha}}, {Signal: api.Signal{Type: "vpdq", Value: vpdqValue}}}},
			1, humanSignal("vpdq", vpdqValue), strings.Repeat("cd", 32)},
		{"vpdq without video_frames", api.FileMatch{ // an answer that does not say how many frames
			Results: []api.MatchResult{{Signal: api.Signal{Type: "vpdq", Value: vpdqValue}}}},
			0, humanSignal("vpdq", vpdqValue), strings.Repeat("ab", 32)},
		{"vpdq not parsing", api.FileMatch{
			Results: []api.MatchResult{{Signal: api.Signal{Type: "vpdq", Value: "[broken\n"}}}},
			0, "vpdq:[not a vpdq value: 8 bytes]", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := resultHead(tt.res, tt.i)
			if got != tt.want || (tt.absent != "" && strings.Contains(got, tt.absent)) {
				t.Errorf("resultHead = %q, want %q", got, tt.want)
			}
		})
	}
	if want := "vpdq:[3 frames, 0.0-12.2 s, key "; !strings.HasPrefix(humanSignal("vpdq", vpdqValue), want) {
		t.Errorf("humanSignal of the vpdq value: %q, want it to start %q", humanSignal("vpdq", vpdqValue), want)
	}
}

// TestMatchVPDQSummary: the summary of a vpdq value that text output
// prints, copied into match, is refused saying what it is and where the
// value is, not with a JSON parser's complaint about one of its characters.
func TestMatchVPDQSummary(t *testing.T) {
	n := startNode(t)
	value := `["` + strings.Repeat("ab", 32) + `,100,0.0","` + strings.Repeat("cd", 32) + `,90,1.0"]`
	summary := humanSignal("vpdq", value)
	for _, tt := range []struct {
		args    []string
		refused bool
	}{
		{[]string{summary}, true},
		{[]string{"--type", "vpdq", strings.TrimPrefix(summary, "vpdq:")}, true},
		{[]string{"--type", "vpdq", summary}, true},
		{[]string{"vpdq:[not a vpdq value: 7 bytes]"}, true},
		{[]string{"vpdq:" + value}, false},
		{[]string{"--type", "account", "x:[2 frames, 0.0-1.0 s, key abcd…]"}, false},
	} {
		r := staydown(append([]string{"match", "--dir", n.dir}, tt.args...)...)
		said := strings.Contains(r.stderr, "is the summary that text output prints for a video") && strings.Contains(r.stderr, "--file")
		if tt.refused && (r.code != exitError || !said || strings.Count(r.stderr, "\n") != 1) {
			t.Errorf("%q: exit %d, stderr %q: want exit 2 saying it is a summary", tt.args, r.code, r.stderr)
		}
		if !tt.refused && (said || r.code == exitError) {
			t.Errorf("%q: exit %d, stderr %q: want it matched", tt.args, r.code, r.stderr)
		}
	}
}

// FuzzNotSummary: notSummary never refuses a value that parses as a vpdq
// value (a real value is never mistaken for its summary), and refuses
// every summary humanSignal prints of one.
func FuzzNotSummary(f *testing.F) {
	f.Add("vpdq", `["`+strings.Repeat("ab", 32)+`,100,0.0"]`)
	f.Add("", "vpdq:[2 frames, 0.0-1.0 s, key deb23e6e2b54abd2…]")
	f.Add("", "vpdq:[not a vpdq value: 7 bytes]")
	f.Add("account", "x:[1 frames, 0.0-0.0 s, key ab…]")
	f.Fuzz(func(t *testing.T, typ, value string) {
		err := notSummary(typ, value)
		v := strings.TrimPrefix(value, "vpdq:")
		if _, perr := protocol.ParseVPDQJSON(v); perr == nil && err != nil {
			t.Fatalf("notSummary(%q, %q) refuses a vpdq value: %v", typ, value, err)
		}
		if _, perr := protocol.ParseVPDQJSON(v); perr == nil {
			if s := humanSignal("vpdq", v); notSummary("", s) == nil || notSummary("vpdq", strings.TrimPrefix(s, "vpdq:")) == nil {
				t.Fatalf("the summary %q of a vpdq value is not refused", s)
			}
		}
	})
}
