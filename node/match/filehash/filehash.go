// Package filehash computes the signals of a file's bytes: sha256 and md5,
// and when the bytes are an image, its PDQ hash with the hashes of its
// rotations and mirror images. The API hashes uploads with it
// (POST /v1/match/file) and the CLI local files (staydown hash).
package filehash

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/staydown/staydown/node/match/pdq"
)

// ErrTooLarge: the bytes are more than Read's limit.
var ErrTooLarge = errors.New("too large")

// Hashes are the signals computed from one file's bytes.
type Hashes struct {
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

// Read reads r to the end, at most limit bytes, and computes sha256
// and md5 as it reads, then, if the bytes decode as an image, its PDQ
// hash. It holds the bytes in memory (an HTTP body can be read only once).
// More than limit bytes is an error wrapping ErrTooLarge; a read error is
// returned as it is. It is Receive then HashImage.
func Read(r io.Reader, limit int64) (*Hashes, error) {
	f, b, err := Receive(r, limit)
	if err != nil {
		return nil, err
	}
	f.HashImage(b)
	return f, nil
}

// Receive is Read's first half: it reads r to the end, at most limit
// bytes, computing sha256 and md5 as it reads, and returns the bytes,
// which HashImage decodes. The API receives an upload at the client's
// pace before it takes one of the few slots that decode images.
func Receive(r io.Reader, limit int64) (*Hashes, []byte, error) {
	var buf bytes.Buffer
	f, err := hashStream(io.TeeReader(io.LimitReader(r, limit+1), &buf))
	if err != nil {
		return nil, nil, err
	}
	if f.Size > limit {
		return nil, nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	return f, buf.Bytes(), nil
}

// ReadSeeker is Read for a file that can be read twice, of any size:
// it streams the bytes through sha256 and md5, then rewinds and decodes
// the image, if it is one, so that only the decoder's own buffers are
// held in memory.
func ReadSeeker(r io.ReadSeeker) (*Hashes, error) {
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

func hashStream(r io.Reader) (*Hashes, error) {
	s, m := sha256.New(), md5.New()
	n, err := io.Copy(io.MultiWriter(s, m), r)
	if err != nil {
		return nil, err
	}
	f := &Hashes{Size: n}
	s.Sum(f.SHA256[:0])
	m.Sum(f.MD5[:0])
	return f, nil
}

// HashImage is Read's second half: if b (the bytes Receive returned)
// decodes as an image, it sets Image, PDQ and Variants, else ImageErr.
// It takes a CPU and up to a few hundred MB for the largest images.
func (f *Hashes) HashImage(b []byte) {
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
