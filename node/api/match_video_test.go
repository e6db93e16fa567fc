package api_test

import (
	"bytes"
	"context"
	cryptomd5 "crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/staydown/staydown/internal/ffmpegtest"

	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/match/vpdq"
)

// referenceVideo reads one of the vPDQ reference videos
// (shared/testdata/vpdq/videos, beside the module root).
func referenceVideo(t *testing.T, name string) (string, []byte) {
	t.Helper()
	path := filepath.Join("..", "..", "..", "shared", "testdata", "vpdq", "videos", name)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("vPDQ reference video: %v", err)
	}
	return path, b
}

// children returns the pids of this process's child processes (Linux).
func children(t *testing.T) []string {
	t.Helper()
	tasks, err := filepath.Glob("/proc/self/task/*/children")
	if runtime.GOOS != "linux" {
		t.Skip("counts child processes through /proc/self/task/*/children: runs on Linux only")
	}
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no /proc/self/task/*/children on Linux: %v", err)
	}
	var out []string
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		out = append(out, strings.Fields(string(b))...)
	}
	return out
}

// videoHarness is a harness whose node hashes videos into a temporary
// directory of its own, checked to be empty, with no ffmpeg left running,
// after every request.
func videoHarness(t *testing.T, cfg api.VideoConfig) (*harness, func(t *testing.T)) {
	if cfg.FFmpeg == "" {
		ffmpegtest.Require(t)
	}
	h := newHarness(t)
	cfg.TempDir = t.TempDir()
	h.fake.SetVideoConfig(cfg)
	clean := func(t *testing.T) {
		t.Helper()
		left, err := os.ReadDir(cfg.TempDir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range left {
			t.Errorf("left behind in the temporary directory: %s", e.Name())
		}
		if c := children(t); len(c) > 0 {
			t.Errorf("child processes left running: %v", c)
		}
	}
	return h, clean
}

// A video upload is received, hashed with vpdq at one frame a second,
// and matched by sha256, md5 and vpdq; sniffed as a video by its bytes
// with Content-Type application/octet-stream, or taken as one by its
// video/* Content-Type.
func TestMatchFileVideo(t *testing.T) {
	h, clean := videoHarness(t, api.VideoConfig{})
	path, data := referenceVideo(t, "chair-19-sd-bar.mp4")
	v, err := vpdq.HashFile(context.Background(), path, vpdq.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := v.Signal()
	if err != nil {
		t.Fatal(err)
	}
	shaSum, md5Sum := sha256.Sum256(data), cryptomd5.Sum(data)
	for _, ct := range []string{"application/octet-stream", "video/mp4", "-"} {
		t.Run(ct, func(t *testing.T) {
			before := len(h.fake.Queries())
			fm := decodeFileMatch(t, h.postFile(t, "", ct, data))
			if fm.Size != int64(len(data)) || fm.Video != "mp4" || fm.VideoFrames == nil || *fm.VideoFrames != len(sig.GetVpdq())/37 {
				t.Errorf("size %d video %q frames %v", fm.Size, fm.Video, fm.VideoFrames)
			}
			want := []api.FileHash{
				{Type: "sha256", Value: hex.EncodeToString(shaSum[:])},
				{Type: "md5", Value: hex.EncodeToString(md5Sum[:])},
				api.FileHashOf(sig),
			}
			if len(fm.Hashes) != 3 || fm.Hashes[0] != want[0] || fm.Hashes[1] != want[1] || fm.Hashes[2] != want[2] {
				t.Errorf("hashes %+v, want %+v", fm.Hashes, want)
			}
			qs := h.fake.Queries()
			if len(qs) != before+1 || len(qs[before]) != 3 || !proto.Equal(qs[before][2].Signal, sig) {
				t.Fatalf("backend queries: %d calls, want the sha256, md5 and vpdq of the video", len(qs)-before)
			}
			if len(fm.Results) != 3 || fm.Verdict != "none" {
				t.Errorf("results %d, verdict %s", len(fm.Results), fm.Verdict)
			}
			clean(t)
		})
	}
}

// Bad videos: a clear 4xx naming the problem (ffmpeg missing: 503 with
// the install command), no temporary file or ffmpeg left behind.
func TestMatchFileVideoBad(t *testing.T) {
	_, mp4 := referenceVideo(t, "chair-19-sd-bar.mp4")
	big := append(append([]byte(nil), mp4[:12]...), make([]byte, 2<<20)...)
	for _, tt := range []struct {
		name        string
		cfg         api.VideoConfig
		contentType string
		body        []byte
		code        int
		want        string
	}{
		{"not a video", api.VideoConfig{}, "video/mp4", []byte("this is plain text, not a video at all"), 422, "body: vpdq: not a video: ffprobe: the upload: "},
		{"truncated", api.VideoConfig{}, "application/octet-stream", mp4[:len(mp4)/3], 422, "body: vpdq:"},
		{"a header only", api.VideoConfig{}, "-", mp4[:64], 422, "body: vpdq:"},
		{"empty", api.VideoConfig{}, "video/webm", nil, 400, "body: empty"},
		{"larger than the limit", api.VideoConfig{MaxBytes: 1 << 20}, "-", big, 413, "larger than 1048576 bytes, the node's max_video_upload"},
		{"no ffmpeg", api.VideoConfig{FFmpeg: "/nonexistent/ffmpeg"}, "video/mp4", mp4, 503, "apt-get install ffmpeg"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, clean := videoHarness(t, tt.cfg)
			r := h.postFile(t, "", tt.contentType, tt.body)
			if r.code != tt.code || !bytes.Contains(r.body, []byte(tt.want)) {
				t.Errorf("status %d %s, want %d and %q", r.code, r.body, tt.code, tt.want)
			}
			if bytes.Count(bytes.TrimSpace(r.body), []byte("\n")) > 0 {
				t.Errorf("error of more than one line: %s", r.body)
			}
			t.Logf("%d %s", r.code, bytes.TrimSpace(r.body))
			clean(t)
		})
	}
}
