package api

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"runtime"
	"strings"

	mh "github.com/multiformats/go-multihash"

	"github.com/staydown/staydown/node/match/filehash"
	"github.com/staydown/staydown/node/match/pdq"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// MaxFileSize bounds the body of POST /v1/match/file: 32 MiB, more than
// an ordinary photo; larger uploads are answered 413.
const MaxFileSize = 32 << 20

// fileQueries returns the queries that match the file's signals, sha256, md5
// and (for an image) pdq: the PDQ query carries the hash's
// quality and, when dihedral, the seven rotated and mirrored hashes.
func fileQueries(f *filehash.Hashes, dihedral bool) []Query {
	sha, _ := mh.Encode(f.SHA256[:], mh.SHA2_256)
	md, _ := mh.Encode(f.MD5[:], mh.MD5)
	qs := []Query{
		{Signal: &pb.Signal{Value: &pb.Signal_Multihash{Multihash: sha}}, Quality: NoQuality},
		{Signal: &pb.Signal{Value: &pb.Signal_Multihash{Multihash: md}}, Quality: NoQuality},
	}
	if f.ImageErr == nil {
		q := Query{Signal: &pb.Signal{Value: &pb.Signal_Pdq{Pdq: bytes.Clone(f.PDQ.Hash[:])}}, Quality: f.PDQ.Quality}
		if dihedral {
			for d := pdq.Rotate90; d <= pdq.FlipMinus1; d++ {
				q.Variants = append(q.Variants, Variant{Transform: d.String(), Hash: f.Variants[d]})
			}
		}
		qs = append(qs, q)
	}
	return qs
}

// FileMatch answers POST /v1/match/file.
type FileMatch struct {
	Size int64 `json:"size"` // bytes received
	// Hashes computed from the bytes: sha256, md5, and pdq (with its
	// quality) when the bytes are an image.
	Hashes []FileHash `json:"hashes"`
	// Image is the image format, or "" when the bytes are not an image
	// the node can hash (ImageError says why).
	Image      string `json:"image"`
	ImageError string `json:"image_error,omitempty"`
	// Dihedral: the rotations and mirror images of the image were matched
	// too.
	Dihedral bool `json:"dihedral"`
	// Video is, for a video, its container as sniffed ("mp4" for MP4 and
	// MOV, "matroska" for WebM and MKV, "avi"; "video" when only the
	// Content-Type said so), and VideoFrames the frames its vpdq hash
	// keeps. A video's hashes are sha256, md5 and vpdq.
	Video       string `json:"video,omitempty"`
	VideoFrames *int   `json:"video_frames,omitempty"`
	// Results: one per hash, in the same order, as POST /v1/match gives.
	Results []MatchResult `json:"results"`
	// Matched: some result matched. Verdict: the strongest of the
	// results' verdicts.
	Matched bool   `json:"matched"`
	Verdict string `json:"verdict"`
}

// FileHash is one hash of a file.
type FileHash struct {
	Type    string `json:"type"`
	Value   string `json:"value"`
	Quality *int   `json:"quality,omitempty"` // pdq only, 0..100
}

// NewFileMatch puts together the answer from the hashes and the results
// of their queries.
func NewFileMatch(f *filehash.Hashes, dihedral bool, results []MatchResult) FileMatch {
	out := FileMatch{Size: f.Size, Image: f.Image, Dihedral: dihedral && f.ImageErr == nil, Results: results, Verdict: string(VerdictNone)}
	out.Hashes = []FileHash{
		{Type: string(protocol.SignalSHA256), Value: hex.EncodeToString(f.SHA256[:])},
		{Type: string(protocol.SignalMD5), Value: hex.EncodeToString(f.MD5[:])},
	}
	if f.ImageErr != nil {
		out.ImageError = f.ImageErr.Error()
	} else {
		q := f.PDQ.Quality
		out.Hashes = append(out.Hashes, FileHash{Type: string(protocol.SignalPDQ), Value: f.PDQ.Hash.String(), Quality: &q})
	}
	for _, r := range results {
		out.Matched = out.Matched || r.Matched
		out.Verdict = string(Verdict(out.Verdict).Stronger(Verdict(r.Verdict)))
	}
	return out
}

// fileSlots bounds the files hashed at once: decoding takes a CPU and up
// to a few hundred MB for the largest images pdq accepts.
var fileSlots = make(chan struct{}, max(runtime.GOMAXPROCS(0), 1))

func acquireFileSlot(ctx context.Context) error {
	select {
	case fileSlots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// matchFile serves POST /v1/match/file: the body is the file's bytes.
func (s *server) matchFile(w http.ResponseWriter, r *http.Request) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		s.error(w, r, fieldErr("query", "%v", err))
		return
	}
	dihedral := true
	for k, v := range q {
		switch {
		case k != "dihedral":
			s.error(w, r, fieldErr(queryField(k), "unknown query parameter; the only one is dihedral=false"))
			return
		case len(v) > 1:
			s.error(w, r, fieldErr(k, "given %d times", len(v)))
			return
		case v[0] == "true":
		case v[0] == "false":
			dihedral = false
		default:
			s.error(w, r, fieldErr(k, "%q: want true or false", v[0]))
			return
		}
	}
	videoType := false
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		videoType = strings.HasPrefix(mt, "video/")
		if err != nil || (mt != "application/octet-stream" && !strings.HasPrefix(mt, "image/") && !videoType) {
			s.fail(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q: send the file's bytes as the body, with Content-Type application/octet-stream, image/* or video/* (not a form or JSON)", ct))
			return
		}
	}
	// A video (by its Content-Type, or its first bytes) is received into
	// a file and hashed with vpdq (match_video.go).
	head := make([]byte, 12)
	nh, err := io.ReadFull(r.Body, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		s.error(w, r, fieldErr("body", "reading the file: %v", err))
		return
	}
	head = head[:nh]
	if container := SniffVideo(head); container != "" || videoType {
		s.matchVideo(w, r, container, head, r.Body)
		return
	}
	// The body is received at the client's pace before a slot is taken:
	// a slow upload must not keep others waiting for the decoder.
	f, body, err := filehash.Receive(io.MultiReader(bytes.NewReader(head), r.Body), MaxFileSize)
	if err == nil && f.Size > 0 {
		if err := acquireFileSlot(r.Context()); err != nil {
			return // the client went away
		}
		f.HashImage(body)
		<-fileSlots
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.Is(err, filehash.ErrTooLarge), errors.As(err, &tooLarge):
		s.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: larger than %d bytes (32 MiB)", MaxFileSize))
		return
	case err != nil:
		s.error(w, r, fieldErr("body", "reading the file: %v", err))
		return
	case f.Size == 0:
		s.error(w, r, fieldErr("body", "empty: send the file's bytes"))
		return
	}
	queries := fileQueries(f, dihedral)
	results, err := s.matchQueries(r.Context(), queries)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.reply(w, http.StatusOK, NewFileMatch(f, dihedral, results))
}
