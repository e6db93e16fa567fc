package api_test

import (
	"bytes"
	cryptomd5 "crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/match/pdq"
	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// referenceImage reads one of the PDQ reference images
// (shared/testdata/pdq/images, beside the module root).
func referenceImage(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "testdata", "pdq", "images", name))
	if err != nil {
		t.Fatalf("PDQ reference image: %v", err)
	}
	return b
}

// postFile sends body to /v1/match/file with the Content-Type given ("-"
// for none).
func (h *harness) postFile(t *testing.T, query, contentType string, body []byte) response {
	t.Helper()
	req, err := http.NewRequest("POST", h.srv.URL+"/v1/match/file"+query, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if contentType != "-" {
		req.Header.Set("Content-Type", contentType)
	}
	return h.roundTrip(t, req)
}

func decodeFileMatch(t *testing.T, r response) api.FileMatch {
	t.Helper()
	if r.code != http.StatusOK {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	var fm api.FileMatch
	if err := json.Unmarshal(r.body, &fm); err != nil {
		t.Fatal(err)
	}
	return fm
}

func TestMatchFileImage(t *testing.T) {
	h := newHarness(t)
	data := referenceImage(t, "bridge-mods--aaa-orig.jpg")
	want, variants, err := pdq.FromReaderDihedral(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	shaSum, md5Sum := sha256.Sum256(data), cryptomd5.Sum(data)
	pdqSig := &pb.Signal{Value: &pb.Signal_Pdq{Pdq: want.Hash[:]}}
	attest := store.Attestation{Author: other.AuthorKey, EntryID: protocol.ID{0x12, 0x20, 1}, Seq: 1,
		Labels: []string{"graphic-violence"}, Status: store.StatusActive}
	h.fake.Attest(&pb.Signal{Value: &pb.Signal_Pdq{Pdq: variants[pdq.FlipY][:]}}, attest)

	for _, tt := range []struct {
		name, query, contentType string
		dihedral                 bool
	}{
		{"dihedral by default", "", "application/octet-stream", true},
		{"dihedral=true", "?dihedral=true", "image/jpeg", true},
		{"dihedral=false", "?dihedral=false", "-", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fm := decodeFileMatch(t, h.postFile(t, tt.query, tt.contentType, data))
			q := want.Quality
			wantHashes := []api.FileHash{
				{Type: "sha256", Value: hex.EncodeToString(shaSum[:])},
				{Type: "md5", Value: hex.EncodeToString(md5Sum[:])},
				{Type: "pdq", Value: want.Hash.String(), Quality: &q},
			}
			if !reflect.DeepEqual(fm.Hashes, wantHashes) {
				t.Errorf("hashes %+v, want %+v", fm.Hashes, wantHashes)
			}
			if fm.Size != int64(len(data)) || fm.Image != "jpeg" || fm.ImageError != "" || fm.Dihedral != tt.dihedral || len(fm.Results) != 3 {
				t.Fatalf("answer %+v", fm)
			}
			for i, r := range fm.Results {
				if r.Signal.Type != fm.Hashes[i].Type || r.Signal.Value != fm.Hashes[i].Value {
					t.Errorf("result %d is for %v, hash %d is %v", i, r.Signal, i, fm.Hashes[i])
				}
			}
			queries := h.fake.Queries()
			last := queries[len(queries)-1]
			if len(last) != 3 || last[0].Quality != api.NoQuality || last[2].Quality != want.Quality {
				t.Fatalf("queries %+v", last)
			}
			pq := last[2]
			if !bytes.Equal(pq.Signal.GetPdq(), pdqSig.GetPdq()) {
				t.Errorf("pdq query %x, want %s", pq.Signal.GetPdq(), want.Hash)
			}
			// The mirror image's hash was attested: found through the
			// variant only.
			if !tt.dihedral {
				if len(pq.Variants) != 0 || fm.Matched || fm.Verdict != "none" {
					t.Errorf("variants %d matched %v verdict %s, want none", len(pq.Variants), fm.Matched, fm.Verdict)
				}
				return
			}
			if len(pq.Variants) != 7 {
				t.Fatalf("%d variants, want 7", len(pq.Variants))
			}
			for i, v := range pq.Variants {
				if d := pdq.Dihedral(i + 1); v.Transform != d.String() || v.Hash != variants[d] {
					t.Errorf("variant %d: %s %x, want %s %s", i, v.Transform, v.Hash, d, variants[d])
				}
			}
			res := fm.Results[2]
			if !fm.Matched || fm.Verdict != "review" || !res.Matched || len(res.Attestations) != 1 {
				t.Fatalf("matched %v verdict %s result %+v", fm.Matched, fm.Verdict, res)
			}
			if a := res.Attestations[0]; a.Transform != "flipY" || a.Hash != variants[pdq.FlipY].String() || a.Distance == nil {
				t.Errorf("attestation %+v", a)
			}
		})
	}
}

func TestMatchFileNotImage(t *testing.T) {
	h := newHarness(t)
	data := []byte("%PDF-1.4 not an image\n")
	h.fake.Attest(mustSignal(t, "sha256", fmt.Sprintf("%x", sha256.Sum256(data))), store.Attestation{
		Author: other.AuthorKey, EntryID: protocol.ID{0x12, 0x20, 2}, Seq: 2, Labels: []string{"attacker-manifesto"}, Status: store.StatusActive,
	})
	h.fake.SetVerdict(mustSignal(t, "sha256", fmt.Sprintf("%x", sha256.Sum256(data))), api.VerdictBlock)
	fm := decodeFileMatch(t, h.postFile(t, "", "application/octet-stream", data))
	if len(fm.Hashes) != 2 || len(fm.Results) != 2 || fm.Image != "" || fm.Dihedral ||
		!strings.Contains(fm.ImageError, "not an image") || !fm.Matched || fm.Verdict != "block" {
		t.Errorf("answer %+v", fm)
	}
}

// TestMatchFileLowQuality: a featureless image's hash is reported, with
// its quality, and not matched.
func TestMatchFileLowQuality(t *testing.T) {
	h := newHarness(t)
	img := image.NewGray(image.Rect(0, 0, 600, 400))
	for i := range img.Pix {
		img.Pix[i] = 128
	}
	img.Set(10, 10, color.Gray{130})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	fm := decodeFileMatch(t, h.postFile(t, "", "image/png", buf.Bytes()))
	if len(fm.Hashes) != 3 || *fm.Hashes[2].Quality != 0 || fm.Image != "png" {
		t.Fatalf("hashes %+v", fm.Hashes)
	}
	if r := fm.Results[2]; r.Skipped != "quality 0 is below 50: not matched" || r.Verdict != "none" || len(r.Attestations) != 0 {
		t.Errorf("pdq result %+v", r)
	}
}

func TestMatchFileErrors(t *testing.T) {
	h := newHarness(t)
	img := referenceImage(t, "misc-images--wee.jpg")
	big := make([]byte, api.MaxFileSize+1)
	tests := []struct {
		name, query, contentType string
		body                     []byte
		code                     int
		want                     string
	}{
		{"empty", "", "application/octet-stream", nil, 400, "body: empty: send the file's bytes"},
		{"json", "", "application/json", []byte(`{"file":"x"}`), 415, "send the file's bytes as the body"},
		{"form", "", "multipart/form-data; boundary=x", img, 415, `Content-Type "multipart/form-data; boundary=x"`},
		{"bad content type", "", "not a type", img, 415, "application/octet-stream"},
		{"too large", "", "application/octet-stream", big, 413, "body: larger than 33554432 bytes (32 MiB)"},
		{"unknown parameter", "?rotate=1", "application/octet-stream", img, 400, "rotate: unknown query parameter"},
		{"bad dihedral", "?dihedral=maybe", "application/octet-stream", img, 400, `dihedral: "maybe": want true or false`},
		{"dihedral twice", "?dihedral=true&dihedral=false", "application/octet-stream", img, 400, "dihedral: given 2 times"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.fake.Calls()
			wantError(t, h.postFile(t, tt.query, tt.contentType, tt.body), tt.code, tt.want)
			if h.fake.Calls() != before {
				t.Errorf("the backend was called")
			}
		})
	}
	wantError(t, h.do(t, "GET", "/v1/match/file", ""), 405, "method GET not allowed on /v1/match/file; use POST")
	wantError(t, h.do(t, "POST", "/v1/match/file", "x", "-"), 401, "authorization: missing")
}
