package export

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/staydown/staydown/protocol/pb"
)

func write(t testing.TB, entries, evidence [][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, &pb.ExportHeader{Federation: "f", Roster: []byte("[[member]]\n"), Exporter: "nru", CreatedMs: 1, Genesis: []byte("genesis")})
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range entries {
		if err := w.Entry(raw); err != nil {
			t.Fatal(err)
		}
	}
	for _, raw := range evidence {
		if err := w.Evidence(raw); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readAll(b []byte) (*Reader, []Record, error) {
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, nil, err
	}
	var recs []Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return r, recs, nil
		}
		if err != nil {
			return r, recs, err
		}
		recs = append(recs, rec)
	}
}

func TestRoundTrip(t *testing.T) {
	file := write(t, [][]byte{[]byte("one"), []byte("two")}, [][]byte{[]byte("fork")})
	r, recs, err := readAll(file)
	if err != nil {
		t.Fatal(err)
	}
	if r.Header.Federation != "f" || r.Header.Exporter != "nru" || r.Header.Version != Version || string(r.Header.Genesis) != "genesis" {
		t.Errorf("header %v", r.Header)
	}
	if len(recs) != 3 || recs[0].Kind != KindEntry || string(recs[1].Raw) != "two" || recs[2].Kind != KindEvidence || recs[2].Index != 4 {
		t.Errorf("records %+v", recs)
	}
}

func TestBadFiles(t *testing.T) {
	good := write(t, [][]byte{[]byte("one"), []byte("two")}, nil)
	flipped := bytes.Clone(good)
	flipped[bytes.Index(flipped, []byte("two"))] ^= 1
	// Drop the record "one": its prefix (1 byte) and 5 bytes of record.
	i := bytes.Index(good, []byte("one")) - 3
	removed := append(bytes.Clone(good[:i]), good[i+6:]...)
	cases := map[string]struct {
		file    []byte
		trailer bool
	}{
		"empty":              {nil, false},
		"not an export":      {[]byte("hello world, this is not it"), false},
		"truncated":          {good[:len(good)-10], false},
		"no trailer":         {good[:bytes.Index(good, []byte("two"))+3], false},
		"byte flipped":       {flipped, true},
		"record removed":     {removed, true},
		"bytes after":        {append(bytes.Clone(good), 0), false},
		"huge length prefix": {append([]byte(Magic), 0xff, 0xff, 0xff, 0xff, 0x7f), false},
		// The header's length written in two bytes where one would do.
		"over-long prefix": {append(append([]byte(Magic), good[len(Magic)]|0x80, 0x00), good[len(Magic)+1:]...), false},
	}
	for name, c := range cases {
		_, _, err := readAll(c.file)
		if !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v, want ErrFormat", name, err)
		}
		var te *TrailerError
		if errors.As(err, &te) != c.trailer {
			t.Errorf("%s: %v: trailer error %v, want %v", name, err, !c.trailer, c.trailer)
		}
	}
}

// FuzzReader: any bytes give records and then io.EOF or an ErrFormat
// error, never a panic or an endless read.
func FuzzReader(f *testing.F) {
	f.Add(write(f, [][]byte{[]byte("one")}, [][]byte{[]byte("e")}))
	f.Add([]byte(Magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewReader(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("NewReader: %v", err)
			}
			return
		}
		for range len(b) + 1 {
			_, err := r.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				if !errors.Is(err, ErrFormat) {
					t.Fatalf("Next: %v", err)
				}
				return
			}
		}
		t.Fatal("more records than bytes")
	})
}
