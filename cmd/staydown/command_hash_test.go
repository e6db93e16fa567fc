package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/staydown/staydown/node/match/pdq"
)

func TestHash(t *testing.T) {
	photo := referenceImage(t, "bridge-mods--aaa-orig.jpg")
	small := referenceImage(t, "misc-images--small.jpg") // quality 0
	text := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(text, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(photo)
	if err != nil {
		t.Fatal(err)
	}
	res, _, err := pdq.FromReaderDihedral(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	const (
		photoSHA = "b5b0799616df52d475a3968dc7e54f1d0724c912244ffa6175bc786375dd7298"
		photoMD5 = "d35c785545392755e7e4164457657269"
		textSHA  = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" // sha256("abc")
		textMD5  = "900150983cd24fb0d6963f7d28e17f72"
	)
	photoLines := fmt.Sprintf("sha256:%s\nmd5:%s\npdq:%s quality=%d\n", photoSHA, photoMD5, res.Hash, res.Quality)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"one photo", []string{photo}, photoLines},
		{"not an image: no pdq line", []string{text}, "sha256:" + textSHA + "\nmd5:" + textMD5 + "\n"},
		{"several files: names", []string{text, photo}, "sha256:" + textSHA + "  " + text + "\nmd5:" + textMD5 + "  " + text + "\n" +
			strings.ReplaceAll(photoLines, "\n", "  "+photo+"\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := staydown(append([]string{"hash"}, tt.args...)...)
			if r.code != exitOK || r.stderr != "" || r.stdout != tt.want {
				t.Errorf("exit %d stderr %q stdout\n%s\nwant\n%s", r.code, r.stderr, r.stdout, tt.want)
			}
		})
	}

	t.Run("JSON", func(t *testing.T) {
		r := staydown("hash", "--json", photo, text, small)
		if r.code != exitOK {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		var got []fileHashes
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[0].File != photo || got[0].Image != "jpeg" || len(got[0].Hashes) != 3 ||
			got[0].Hashes[2].Value != res.Hash.String() || *got[0].Hashes[2].Quality != res.Quality ||
			got[1].Image != "" || !strings.Contains(got[1].ImageError, "not an image") || len(got[1].Hashes) != 2 ||
			*got[2].Hashes[2].Quality != 0 || got[2].Size == 0 {
			t.Errorf("JSON %s", r.stdout)
		}
	})
}

func TestHashErrors(t *testing.T) {
	wantFailure(t, staydown("hash"), "staydown: hash: missing FILE")
	wantFailure(t, staydown("hash", "/nonexistent.jpg"), "staydown: hash: open /nonexistent.jpg: no such file or directory")
	wantFailure(t, staydown("hash", t.TempDir()), "is not a regular file")
}
