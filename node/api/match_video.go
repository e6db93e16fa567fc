package api

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"
	"time"

	mh "github.com/multiformats/go-multihash"

	"github.com/staydown/staydown/node/match/vpdq"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// VideoConfig is how POST /v1/match/file receives and hashes videos.
type VideoConfig struct {
	FFmpeg   string // the ffmpeg binary; "" finds it on PATH
	MaxBytes int64  // the largest video accepted; 0 is DefaultMaxVideo
	TempDir  string // where uploads are received; "" is os.TempDir()
}

// DefaultMaxVideo is VideoConfig.MaxBytes when unset: 2 GiB.
const DefaultMaxVideo = 2 << 30

// VideoBackend is a Backend that says how videos are hashed (the node's
// ffmpeg and max_video_upload keys). A Backend without it hashes videos
// with ffmpeg from PATH, up to DefaultMaxVideo.
type VideoBackend interface {
	VideoConfig() VideoConfig
}

func (s *server) videoConfig() VideoConfig {
	var c VideoConfig
	if vb, ok := s.backend.(VideoBackend); ok {
		c = vb.VideoConfig()
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxVideo
	}
	return c
}

// Video uploads' pace (README, "Running a node for real"): a client that
// sends nothing for UploadStall is cut off, and the whole body must
// arrive at MinUploadRate on average (a 2 GiB video in 34 minutes), so
// that a slow or stalled client cannot hold a connection for long.
const (
	UploadStall   = time.Minute
	MinUploadRate = 1 << 20 // bytes a second
)

// videoSlots bounds the videos hashed at once: ffmpeg decodes with
// several threads, and each hash holds a decoder's frames.
var videoSlots = make(chan struct{}, max(runtime.GOMAXPROCS(0)/2, 1))

// isoBoxes are the box types an MP4 or MOV file starts with.
var isoBoxes = map[string]bool{"ftyp": true, "moov": true, "mdat": true, "free": true, "wide": true, "skip": true, "pnot": true}

// SniffVideo names the container of a file from its first bytes: MP4 or
// MOV (an ISO base media box), WebM or Matroska (EBML), AVI (RIFF); ""
// when none.
func SniffVideo(head []byte) string {
	switch {
	case len(head) >= 8 && isoBoxes[string(head[4:8])]:
		return "mp4"
	case bytes.HasPrefix(head, []byte{0x1a, 0x45, 0xdf, 0xa3}):
		return "matroska"
	case len(head) >= 12 && bytes.HasPrefix(head, []byte("RIFF")) && string(head[8:12]) == "AVI ":
		return "avi"
	}
	return ""
}

// paced reads a request body, pushing the connection's read deadline to
// UploadStall after each read, never past the overall deadline end.
type paced struct {
	r   io.Reader
	rc  *http.ResponseController
	end time.Time
	// stall is UploadStall; tests shorten it.
	stall time.Duration
}

func (p *paced) Read(b []byte) (int, error) {
	d := time.Now().Add(p.stall)
	if d.After(p.end) {
		d = p.end
	}
	_ = p.rc.SetReadDeadline(d) // a test's recorder has no deadlines
	return p.r.Read(b)
}

// matchVideo answers POST /v1/match/file for a video: body (whose first
// bytes are head) is received into a temporary file while sha256 and md5
// are computed, then hashed with vpdq in one of videoSlots, then matched.
// The file is removed and ffmpeg has exited (vpdq.HashFile waits for it)
// before anything is answered, on every path.
func (s *server) matchVideo(w http.ResponseWriter, r *http.Request, container string, head []byte, body io.Reader) {
	up, fail := s.receiveVideo(w, r, head, body)
	if fail != nil {
		fail()
		return
	}
	shaMH, _ := mh.Encode(up.sha256[:], mh.SHA2_256)
	mdMH, _ := mh.Encode(up.md5[:], mh.MD5)
	queries := []Query{
		{Signal: &pb.Signal{Value: &pb.Signal_Multihash{Multihash: shaMH}}, Quality: NoQuality},
		{Signal: &pb.Signal{Value: &pb.Signal_Multihash{Multihash: mdMH}}, Quality: NoQuality},
		{Signal: up.sig, Quality: NoQuality},
	}
	results, err := s.matchQueries(r.Context(), queries)
	if err != nil {
		s.error(w, r, err)
		return
	}
	frames := len(up.sig.GetVpdq()) / protocol.VPDQFrameSize
	out := FileMatch{Size: up.size, Video: container, VideoFrames: &frames, Results: results, Verdict: string(VerdictNone),
		Hashes: []FileHash{
			{Type: string(protocol.SignalSHA256), Value: hex.EncodeToString(up.sha256[:])},
			{Type: string(protocol.SignalMD5), Value: hex.EncodeToString(up.md5[:])},
			FileHashOf(up.sig),
		}}
	if container == "" {
		out.Video = "video"
	}
	for _, r := range results {
		out.Matched = out.Matched || r.Matched
		out.Verdict = string(Verdict(out.Verdict).Stronger(Verdict(r.Verdict)))
	}
	s.reply(w, http.StatusOK, out)
}

// upload is a received and hashed video.
type upload struct {
	size   int64
	sha256 [32]byte
	md5    [16]byte
	sig    *pb.Signal // vpdq
}

// receiveVideo receives and hashes a video (matchVideo). On failure it
// returns the answer to write, once the temporary file is gone; nil when
// the client went away.
func (s *server) receiveVideo(w http.ResponseWriter, r *http.Request, head []byte, body io.Reader) (up upload, fail func()) {
	cfg := s.videoConfig()
	tmp, err := os.CreateTemp(cfg.TempDir, "staydown-upload-*")
	if err != nil {
		return up, func() { s.error(w, r, fmt.Errorf("receiving a video: %w", err)) }
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	end := time.Now().Add(max(s.timeouts.fileBody, time.Duration(cfg.MaxBytes/MinUploadRate)*time.Second))
	in := &paced{r: io.MultiReader(bytes.NewReader(head), body), rc: http.NewResponseController(w), end: end, stall: s.timeouts.uploadStall}
	sh, md := sha256.New(), md5.New()
	n, err := io.Copy(io.MultiWriter(tmp, sh, md), io.LimitReader(in, cfg.MaxBytes+1))
	if cerr := tmp.Close(); err == nil && cerr != nil {
		return up, func() { s.error(w, r, fmt.Errorf("receiving a video: %w", cerr)) }
	}
	var tooLarge *http.MaxBytesError
	switch {
	case n > cfg.MaxBytes || errors.As(err, &tooLarge):
		return up, func() {
			s.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: a video larger than %d bytes, the node's max_video_upload", cfg.MaxBytes))
		}
	case err != nil:
		return up, func() { s.error(w, r, fieldErr("body", "reading the video: %v", err)) }
	case n == 0:
		return up, func() { s.error(w, r, fieldErr("body", "empty: send the file's bytes")) }
	}
	select {
	case videoSlots <- struct{}{}:
	case <-r.Context().Done():
		return up, func() {} // the client went away
	}
	v, err := vpdq.HashFile(r.Context(), tmp.Name(), vpdq.Options{FFmpeg: cfg.FFmpeg, TempDir: cfg.TempDir})
	<-videoSlots
	if err == nil {
		up.sig, err = v.Signal()
	}
	if err != nil {
		if r.Context().Err() != nil {
			return up, func() {} // the client went away; ffmpeg was killed
		}
		shown := errors.New(strings.ReplaceAll(err.Error(), tmp.Name(), "the upload"))
		return up, func() { s.videoError(w, r, shown, err) }
	}
	up.size = n
	sh.Sum(up.sha256[:0])
	md.Sum(up.md5[:0])
	return up, nil
}

// FileHashOf is the FileHash of a signal: its type and value as the API
// writes signals.
func FileHashOf(sig *pb.Signal) FileHash {
	f := FormatSignal(sig)
	return FileHash{Type: f.Type, Value: f.Value}
}

// videoError answers a failure to hash an uploaded video: err is shown
// (the temporary file's path taken out), cause is tested.
func (s *server) videoError(w http.ResponseWriter, r *http.Request, err, cause error) {
	switch {
	case errors.Is(cause, vpdq.ErrNoFFmpeg):
		s.log.Warn("api: a video upload could not be hashed", "err", cause)
		s.fail(w, http.StatusServiceUnavailable, "this node cannot hash videos: ffmpeg is not available (install it with `apt-get install ffmpeg`, or set ffmpeg in the node's config.toml)")
	case errors.Is(cause, vpdq.ErrTooLarge):
		s.fail(w, http.StatusRequestEntityTooLarge, "body: "+err.Error())
	case errors.Is(cause, vpdq.ErrNotVideo), errors.Is(cause, vpdq.ErrMalformed), errors.Is(cause, vpdq.ErrTimeout):
		s.fail(w, http.StatusUnprocessableEntity, "body: "+err.Error())
	default:
		// Too many distinct frames for a signal, and the like: about the
		// video, not the node.
		s.fail(w, http.StatusUnprocessableEntity, "body: hashing the video: "+err.Error())
	}
}
