package api

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
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

	"github.com/staydown/staydown/node/match/pdq"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// MaxFileSize bounds the body of POST /v1/match/file: 32 MiB, more than
// an ordinary photo; larger uploads are answered 413.
const MaxFileSize = 32 << 20

// FileHashes are the signals computed from one file's bytes.
type FileHashes struct {
	Size   int64
	SHA256 [sha256.Size]byte
	MD5    [md5.Size]byte
	// Image is the image format ("jpeg", "png", "gif", "webp") when the
	// bytes decode as an image, and PDQ, Variants its PDQ hash, quality
	// and rotated and mirrored hashes (indexed by pdq.Dihedral).
	Image    string
	PDQ      pdq.Result
	Variants [8]pdq.Hash
	// ImageErr says why there is no PDQ hash: the bytes are not an image
	// in a format the hasher reads, or a malformed or too large one.
	ImageErr error
}

// HashFile reads r to the end, at most limit bytes, and computes sha256
// and md5 as it reads, then, if the bytes decode as an image, its PDQ
// hash. It holds the bytes in memory (an HTTP body can be read only once).
// More than limit bytes is an error wrapping ErrTooLarge; a read error is
// returned as it is.
func HashFile(r io.Reader, limit int64) (*FileHashes, error) {
	var buf bytes.Buffer
	f, err := hashStream(io.TeeReader(io.LimitReader(r, limit+1), &buf))
	if err != nil {
		return nil, err
	}
	if f.Size > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	f.hashImage(buf.Bytes())
	return f, nil
}

// HashSeeker is HashFile for a file that can be read twice, of any size:
// it streams the bytes through sha256 and md5, then rewinds and decodes
// the image, if it is one, so that only the decoder's own buffers are
// held in memory.
func HashSeeker(r io.ReadSeeker) (*FileHashes, error) {
	f, err := hashStream(r)
	if err != nil {
		return nil, err
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	head := make([]byte, 12)
	n, _ := io.ReadFull(r, head)
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	res, variants, err := pdq.FromReaderDihedral(r)
	if err != nil {
		f.ImageErr = err
		return f, nil
	}
	f.PDQ, f.Variants = res, variants
	f.Image, _ = imageFormat(head[:n])
	return f, nil
}

func hashStream(r io.Reader) (*FileHashes, error) {
	s, m := sha256.New(), md5.New()
	n, err := io.Copy(io.MultiWriter(s, m), r)
	if err != nil {
		return nil, err
	}
	f := &FileHashes{Size: n}
	s.Sum(f.SHA256[:0])
	m.Sum(f.MD5[:0])
	return f, nil
}

func (f *FileHashes) hashImage(b []byte) {
	res, variants, err := pdq.FromReaderDihedral(bytes.NewReader(b))
	if err != nil {
		f.ImageErr = err
		return
	}
	f.PDQ, f.Variants = res, variants
	f.Image, _ = imageFormat(b)
}

// imageFormat names the format pdq decoded, from the file's first bytes.
func imageFormat(b []byte) (string, bool) {
	for _, f := range []struct{ magic, name string }{
		{"\xff\xd8", "jpeg"}, {"\x89PNG\r\n\x1a\n", "png"}, {"GIF8", "gif"},
	} {
		if bytes.HasPrefix(b, []byte(f.magic)) {
			return f.name, true
		}
	}
	if len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP" {
		return "webp", true
	}
	return "", false
}

// Queries returns the queries that match the file's signals, sha256, md5
// and (for an image) pdq: the PDQ query carries the hash's
// quality and, when dihedral, the seven rotated and mirrored hashes.
func (f *FileHashes) Queries(dihedral bool) []Query {
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
func NewFileMatch(f *FileHashes, dihedral bool, results []MatchResult) FileMatch {
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

// ErrTooLarge: an uploaded file is larger than MaxFileSize (413).
var ErrTooLarge = errors.New("too large")

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
			s.error(w, r, fieldErr(k, "unknown query parameter; the only one is dihedral=false"))
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
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/octet-stream" && !strings.HasPrefix(mt, "image/")) {
			s.fail(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q: send the file's bytes as the body, with Content-Type application/octet-stream (not a form or JSON)", ct))
			return
		}
	}
	if err := acquireFileSlot(r.Context()); err != nil {
		return // the client went away
	}
	f, err := HashFile(r.Body, MaxFileSize)
	<-fileSlots
	var tooLarge *http.MaxBytesError
	switch {
	case errors.Is(err, ErrTooLarge), errors.As(err, &tooLarge):
		s.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: larger than %d bytes (32 MiB)", MaxFileSize))
		return
	case err != nil:
		s.error(w, r, fieldErr("body", "reading the file: %v", err))
		return
	case f.Size == 0:
		s.error(w, r, fieldErr("body", "empty: send the file's bytes"))
		return
	}
	queries := f.Queries(dihedral)
	results, err := s.matchQueries(r.Context(), queries)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.reply(w, http.StatusOK, NewFileMatch(f, dihedral, results))
}
