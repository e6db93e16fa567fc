package filehash

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/staydown/staydown/node/match/pdq"
)

// referenceImage reads one of the PDQ reference images
// (shared/testdata/pdq/images, beside the module root).
func referenceImage(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "shared", "testdata", "pdq", "images", name))
	if err != nil {
		t.Fatalf("PDQ reference image: %v", err)
	}
	return b
}

func TestRead(t *testing.T) {
	data := []byte("0123456789")
	f, err := Read(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if f.Size != 10 || f.SHA256 != sha256.Sum256(data) || f.MD5 != md5.Sum(data) || f.ImageErr == nil || !errors.Is(f.ImageErr, pdq.ErrNotImage) {
		t.Errorf("hashes %+v", f)
	}
	if _, err := Read(bytes.NewReader(data), int64(len(data)-1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("one byte over the limit: %v, want ErrTooLarge", err)
	}
	broken := errors.New("connection reset")
	if _, err := Read(io.MultiReader(bytes.NewReader(data), errReader{broken}), 100); !errors.Is(err, broken) {
		t.Errorf("read error: %v", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// TestReadSeeker: streaming a file gives what Read gives from memory.
func TestReadSeeker(t *testing.T) {
	for _, data := range [][]byte{referenceImage(t, "dih--bridge-3-rotate-180.jpg"), referenceImage(t, "misc-images--c.png"), []byte("plain text")} {
		want, err := Read(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		got, err := ReadSeeker(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ReadSeeker %+v, Read %+v", got, want)
		}
	}
}
