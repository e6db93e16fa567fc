package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/staydown/staydown/internal/ffmpegtest"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/match/vpdq"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/protocol/report"
	"github.com/staydown/staydown/store"
)

// referenceVideo copies a video of the vPDQ reference data
// (shared/testdata/vpdq/videos) to a temporary file named as, so that a
// test can show that the content, not the name, makes it a video.
func referenceVideo(t *testing.T, name, as string) string {
	t.Helper()
	ffmpegtest.Require(t)
	src, err := os.Open(filepath.Join("..", "..", "..", "shared", "testdata", "vpdq", "videos", name))
	if err != nil {
		t.Fatalf("vPDQ reference video: %v", err)
	}
	defer src.Close()
	p := filepath.Join(t.TempDir(), as)
	dst, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// wantVideo hashes path with the vpdq package directly: the frames and
// the vpdq signal's interchange value the CLI must print and publish.
func wantVideo(t *testing.T, path string, opts vpdq.Options) (vpdq.Video, string) {
	t.Helper()
	v, err := vpdq.HashFile(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	frames, err := v.WireFrames()
	if err != nil {
		t.Fatal(err)
	}
	return v, protocol.FormatVPDQ(frames)
}

// shortVideo is the reference video the CLI's tests hash: 6.9 s, 206
// frames of 480x720, a third of chair-19-sd-bar.mp4's, since every test
// hashes it at least twice and the race detector slows PDQ tenfold.
const shortVideo = "pattern-sd-grey-bar.mp4"

func fileDigests(t *testing.T, path string) (sha, md string) {
	t.Helper()
	h, err := hashPath(context.Background(), path, videoOptions{}, false)
	if err != nil {
		t.Fatal(err)
	}
	return h.Hashes[0].Value, h.Hashes[1].Value
}

func TestVideoFormat(t *testing.T) {
	for _, tt := range []struct {
		head, want string
	}{
		{"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "mp4"},
		{"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", "mp4"}, // MOV
		{"\x00\x00\x00\x08wide\x00\x00\x00\x00", "mp4"},     // old QuickTime
		{"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", "matroska"},    // MKV, WebM
		{"RIFF\x00\x00\x00\x00AVI LIST", "avi"},
		{"RIFF\x00\x00\x00\x00WEBPVP8 ", ""}, // an image
		{"\xff\xd8\xff\xe0", ""},
		{"", ""},
		{"ftyp", ""},
	} {
		if got := videoFormat([]byte(tt.head)); got != tt.want {
			t.Errorf("videoFormat(%q) = %q, want %q", tt.head, got, tt.want)
		}
	}
}

// TestHashVideo: hash prints a video's sha256, md5 and vpdq, told a video
// by its content, whatever its name; --frames its frames in the
// reference's text form; --every-frame hashes every frame; --json says
// what the video is.
func TestHashVideo(t *testing.T) {
	clip := referenceVideo(t, shortVideo, "upload 1.bin")
	v, vpdqValue := wantVideo(t, clip, vpdq.Options{})
	sha, md := fileDigests(t, clip)
	want := "sha256:" + sha + "\nmd5:" + md + "\nvpdq:" + vpdqValue + "\n"
	r := staydown("hash", clip)
	if r.code != exitOK || r.stderr != "" || r.stdout != want {
		t.Fatalf("exit %d stderr %q stdout\n%.300s\nwant\n%.300s", r.code, r.stderr, r.stdout, want)
	}
	if len(v.Frames) < 5 || !strings.HasPrefix(vpdqValue, `["`) {
		t.Fatalf("the reference video hashed to %d frames: %.100s", len(v.Frames), vpdqValue)
	}

	t.Run("frames", func(t *testing.T) {
		var b strings.Builder
		if err := vpdq.WriteText(&b, v.Frames); err != nil {
			t.Fatal(err)
		}
		r := staydown("hash", "--frames", clip)
		if r.code != exitOK || r.stdout != b.String() {
			t.Errorf("exit %d stderr %q stdout\n%.300s\nwant\n%.300s", r.code, r.stderr, r.stdout, b.String())
		}
		// Every frame of a short clip made for the test (every frame of
		// the reference video costs minutes under the race detector).
		small := filepath.Join(t.TempDir(), "small.mp4")
		out, err := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
			"-i", "testsrc2=size=160x120:rate=10:duration=3", "-c:v", "libx264", "-pix_fmt", "yuv420p", small).CombinedOutput()
		if err != nil {
			t.Fatalf("ffmpeg: %v: %s", err, out)
		}
		sparse, _ := wantVideo(t, small, vpdq.Options{})
		every, _ := wantVideo(t, small, vpdq.Options{EveryFrame: true})
		b.Reset()
		if err := vpdq.WriteText(&b, every.Frames); err != nil {
			t.Fatal(err)
		}
		r = staydown("hash", "--frames", "--every-frame", small)
		if r.code != exitOK || r.stdout != b.String() || len(every.Frames) <= len(sparse.Frames) {
			t.Errorf("--every-frame: exit %d stderr %q, %d lines, want %d (one a second: %d)", r.code, r.stderr,
				strings.Count(r.stdout, "\n"), len(every.Frames), len(sparse.Frames))
		}
	})

	t.Run("JSON", func(t *testing.T) {
		r := staydown("hash", "--json", clip)
		var got []fileHashes
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != exitOK {
			t.Fatalf("exit %d %v: %s", r.code, err, r.stderr)
		}
		g := got[0]
		if len(g.Hashes) != 3 || g.Hashes[2].Type != "vpdq" || g.Hashes[2].Value != vpdqValue || g.Video == nil ||
			g.Video.Format != "mp4" || g.Video.Width != v.Width || len(g.Video.Frames) != len(v.Frames) ||
			g.Video.Frames[1].PDQ != v.Frames[1].PDQ.String() || g.ImageError != "" {
			t.Errorf("JSON %.600s", r.stdout)
		}
	})
}

// What `hash` prints for several files, a video among them, reads back as
// their signals: the vpdq line's JSON holds commas and blanks and is
// followed by the file's name.
func TestHashVideoOutputRoundTrip(t *testing.T) {
	clip := referenceVideo(t, shortVideo, "clip, with blanks.mp4")
	photo := referenceImage(t, "bridge-mods--aaa-orig.jpg")
	_, vpdqValue := wantVideo(t, clip, vpdq.Options{})
	sha, md := fileDigests(t, clip)
	r := staydown("hash", photo, clip)
	if r.code != exitOK {
		t.Fatal(r.stderr)
	}
	got, err := readSignalList("-", strings.NewReader(r.stdout), "")
	if err != nil {
		t.Fatal(err)
	}
	want := []api.Signal{{Type: "sha256", Value: sha}, {Type: "md5", Value: md}, {Type: "vpdq", Value: vpdqValue}}
	if len(got) != 6 || !slices.Equal(got[3:], want) {
		t.Errorf("hash output\n%.400s\nread as %.400v, want the photo's 3 then %.400v", r.stdout, got, want)
	}
}

func TestHashVideoErrors(t *testing.T) {
	clip := referenceVideo(t, shortVideo, "clip.mp4")
	b, err := os.ReadFile(clip)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(t.TempDir(), "truncated.mp4")
	if err := os.WriteFile(truncated, b[:len(b)/3], 0o600); err != nil {
		t.Fatal(err)
	}
	header := filepath.Join(t.TempDir(), "header only.mp4")
	if err := os.WriteFile(header, []byte("\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41"), 0o600); err != nil {
		t.Fatal(err)
	}
	text := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(text, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	fakeFFmpeg := filepath.Join(t.TempDir(), "ffmpeg")
	wantFailure(t, staydown("hash", truncated), fmt.Sprintf("staydown: hash: hashing the video %q: vpdq: malformed video", truncated))
	wantFailure(t, staydown("hash", header), fmt.Sprintf("staydown: hash: hashing the video %q: vpdq: not a video", header))
	wantFailure(t, staydown("hash", "--frames", text), fmt.Sprintf("staydown: hash: --frames: %q is not a video (MP4, MOV, MKV, WebM or AVI)", text))
	wantFailure(t, staydown("hash", "--ffmpeg", fakeFFmpeg, clip), "install it with `apt-get install ffmpeg`")
	t.Setenv("PATH", t.TempDir())
	wantFailure(t, staydown("hash", clip), fmt.Sprintf("staydown: hash: hashing the video %q: vpdq: ffmpeg not available (install it with `apt-get install ffmpeg`): ffmpeg is not on PATH", clip))
}

// TestAddVideo: add --file VIDEO hashes the video and publishes one
// addition with its sha256, md5 and vpdq signals; hash's output piped to
// add publishes the same signals.
func TestAddVideo(t *testing.T) {
	clip := referenceVideo(t, shortVideo, "upload")
	_, vpdqValue := wantVideo(t, clip, vpdq.Options{})
	sha, md := fileDigests(t, clip)
	want := protocol.SortSignals([]*pb.Signal{mustSignal(t, "sha256", sha), mustSignal(t, "md5", md), mustSignal(t, "vpdq", vpdqValue)})
	t.Run("file", func(t *testing.T) {
		n := startNode(t)
		body := n.publishedOnce(t, staydown("add", "--dir", n.dir, "--file", clip, "--label", "graphic-violence", "--case", "IRU-9"))
		a := body.GetAddition()
		if !sigsEqual(protocol.SortSignals(a.GetSignals()), want) || a.GetCaseRef() != "IRU-9" || a.GetLabels()[0].GetSlug() != "graphic-violence" {
			t.Errorf("published %.500v", a)
		}
	})
	t.Run("piped from hash", func(t *testing.T) {
		n := startNode(t)
		r := staydown("hash", clip)
		body := n.publishedOnce(t, staydownIn(r.stdout, "add", "--dir", n.dir, "--file", "-", "--label", "graphic-violence"))
		if got := body.GetAddition().GetSignals(); !sigsEqual(protocol.SortSignals(got), want) {
			t.Errorf("published %.500v", got)
		}
	})
	t.Run("errors", func(t *testing.T) {
		n := startNode(t)
		wantFailure(t, staydown("add", "--dir", n.dir, "--file", clip, "--label", "graphic-violence", "sha256:"+sha),
			"is a video: give no VALUE and no --type with it")
		wantFailure(t, staydown("add", "--dir", n.dir, "--file", clip, "--label", "graphic-violence", "--ffmpeg", filepath.Join(t.TempDir(), "none")),
			"apt-get install ffmpeg")
		if calls := n.calls(); calls != 0 {
			t.Errorf("%d requests sent for refused commands", calls)
		}
	})
}

// TestWatchVideo: watch add --file VIDEO watches its sha256, md5 and vpdq
// with the --ref given; watch remove --file VIDEO removes them.
func TestWatchVideo(t *testing.T) {
	clip := referenceVideo(t, shortVideo, "hosted.webm")
	_, vpdqValue := wantVideo(t, clip, vpdq.Options{})
	sha, md := fileDigests(t, clip)
	n := startNode(t)
	r := staydown("watch", "add", "--dir", n.dir, "--file", clip, "--ref", "upload 42")
	if r.code != exitOK || r.stdout != "added 3, already watched 0, refs added 3, watchlist now 3 signals\n" {
		t.Fatalf("exit %d stderr %q stdout %q", r.code, r.stderr, r.stdout)
	}
	for _, s := range [][2]string{{"sha256", sha}, {"md5", md}, {"vpdq", vpdqValue}} {
		if refs := n.fake.WatchedRefs(mustSignal(t, s[0], s[1])); !slices.Equal(refs, []string{"upload 42"}) {
			t.Errorf("%s watched with refs %q", s[0], refs)
		}
	}
	r = staydown("watch", "remove", "--dir", n.dir, "--file", clip)
	if r.code != exitOK || r.stdout != "removed 3, not watched 0, watchlist now 0 signals\n" {
		t.Errorf("remove: exit %d stderr %q stdout %q", r.code, r.stderr, r.stdout)
	}
}

// TestHumanSignal: text output sums up a vpdq value; other signals, and
// a vpdq value that does not parse, stay as they are (cut short).
func TestHumanSignal(t *testing.T) {
	h := strings.Repeat("ab", 32)
	value := `["` + h + `,100,0.0", "` + strings.Repeat("cd", 32) + `,90,1.0", "` + strings.Repeat("ef", 32) + `,80,61.5"]`
	frames, err := protocol.ParseVPDQJSON(value)
	if err != nil {
		t.Fatal(err)
	}
	wire, err := protocol.EncodeVPDQ(frames)
	if err != nil {
		t.Fatal(err)
	}
	key := protocol.SignalKey(&pb.Signal{Value: &pb.Signal_Vpdq{Vpdq: wire}})
	want := fmt.Sprintf("vpdq:[3 frames, 0.0-61.5 s, key %x…]", key[1:9])
	if got := humanSignal("vpdq", value); got != want {
		t.Errorf("humanSignal = %q, want %q (the key is the signal's index key)", got, want)
	}
	if got := humanSignalText("sha256:" + h); got != "sha256:"+h {
		t.Errorf("sha256: %q", got)
	}
	if got := humanSignal("vpdq", "[broken"); got != `vpdq:[not a vpdq value: 7 bytes]` {
		t.Errorf("broken vpdq: %q", got)
	}
}

// TestVideoSignalsAbbreviated: alerts and notices print a vpdq signal
// summed up, not its 100 KB of JSON; --json carries the whole value.
func TestVideoSignalsAbbreviated(t *testing.T) {
	clip := referenceVideo(t, shortVideo, "clip.mp4")
	_, vpdqValue := wantVideo(t, clip, vpdq.Options{})
	sig := mustSignal(t, "vpdq", vpdqValue)
	summary := humanSignal("vpdq", vpdqValue)
	if !strings.HasPrefix(summary, "vpdq:[") || len(summary) > 80 {
		t.Fatalf("summary %q", summary)
	}
	n := startNode(t)
	n.fake.SetAlerts(api.RaisedAlert{Seq: 1, RaisedMs: 1_700_000_000_000, Watched: sig, Signal: sig,
		Attestation: store.Attestation{Author: other.AuthorKey, EntryID: protocol.ID{0x12, 0x20, 4}, Seq: 4,
			Labels: []string{"graphic-violence"}, Status: store.StatusActive}})
	r := staydown("alerts", "--dir", n.dir)
	if r.code != exitOK || !strings.Contains(r.stdout, summary) || strings.Contains(r.stdout, vpdqValue[:80]) {
		t.Errorf("alerts: exit %d stderr %q\n%.400s", r.code, r.stderr, r.stdout)
	}
	r = staydown("alerts", "--dir", n.dir, "--json")
	if r.code != exitOK || !strings.Contains(r.stdout, jsonString(t, vpdqValue)) {
		t.Errorf("alerts --json lacks the whole value: exit %d\n%.400s", r.code, r.stdout)
	}
}

func jsonString(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestReportByType: report prints the signals of each member by type.
func TestReportByType(t *testing.T) {
	n := startNode(t)
	by := report.SignalCounts{"sha256": 3, "md5": 2, "pdq": 0, "url": 0, "account": 0, "vpdq": 1}
	tot := report.SignalCounts{"sha256": 3, "md5": 2, "pdq": 0, "url": 0, "account": 0, "vpdq": 1}
	n.fake.SetReport(report.Report{Federation: "staydown", Members: []report.Member{{Name: "nru", Role: "referral",
		Figures: report.Figures{Additions: 2, Signals: 6, SignalsByType: by}}},
		Totals: report.Totals{Figures: report.Figures{Additions: 2, Signals: 6, SignalsByType: tot}}})
	r := staydown("report", "--dir", n.dir)
	want := "  SIGNALS BY TYPE  SHA256  MD5  PDQ  URL  ACCOUNT  VPDQ  DOMAIN\n" +
		"              nru       3    2    0    0        0     1       0\n" +
		"     (federation)       3    2    0    0        0     1       0\n"
	if r.code != exitOK || !strings.Contains(r.stdout, want) {
		t.Errorf("exit %d stderr %q stdout\n%s\nwant it to hold\n%s", r.code, r.stderr, r.stdout, want)
	}
}

// FuzzHumanSignal: a signal from the node, whatever its value, prints as
// one line of at most a few dozen bytes beyond its type (a vpdq value) or
// as it is (the others).
func FuzzHumanSignal(f *testing.F) {
	h := strings.Repeat("3c", 32)
	for _, v := range []string{`["` + h + `,100,0.0"]`, `["` + h + `,100,0.0", "` + strings.Repeat("a5", 32) + `,90,61.5"]`, `[`, "", `["x"]`, "\n"} {
		f.Add("vpdq", v)
	}
	f.Add("sha256", sha)
	f.Fuzz(func(t *testing.T, typ, value string) {
		got := humanSignal(typ, value)
		if typ != "vpdq" {
			if got != typ+":"+value {
				t.Fatalf("%q changed to %q", typ+":"+value, got)
			}
			return
		}
		if strings.ContainsAny(got, "\n\r") || len(got) > 80 {
			t.Fatalf("%q sums up as %q", value, got)
		}
	})
}
