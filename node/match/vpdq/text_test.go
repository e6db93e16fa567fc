package vpdq

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTextRoundTrip parses every reference hash file and formats it back:
// the bytes must be identical, so the text form is the reference's.
func TestTextRoundTrip(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(referenceDir(t), "hashes", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no reference hash files: %v", err)
	}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		frames, err := ParseText(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var out bytes.Buffer
		if err := WriteText(&out, frames); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), data) {
			t.Errorf("%s: formatting the parsed frames does not give the file back", filepath.Base(path))
		}
	}
}

func TestParseTextErrors(t *testing.T) {
	const h = "e271017837246aaccddea259648fb7d62f435c89d9e99b2497763e216c8d055c"
	for _, tc := range []struct{ in, want string }{
		{"0,100," + h, `line 1: "0,100,` + h + `": want 4 comma-separated fields`},
		{"x,100," + h + ",0.000", `line 1: frame number "x"`},
		{"-1,100," + h + ",0.000", `frame number "-1"`},
		{"0,101," + h + ",0.000", `quality "101"`},
		{"0,100," + h[:63] + ",0.000", `want 64 hex digits`},
		{"0,100," + h[:63] + "g,0.000", `not hexadecimal`},
		{"\n0,100," + h + ",NaN", `line 2: timestamp "NaN"`},
		{"0,100," + h + ",-1", `timestamp "-1"`},
		{strings.Repeat("9", 300), `line 1 longer than 256 bytes`},
	} {
		_, err := ParseText(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseText(%q) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

// FuzzParseText checks that ParseText never panics and that what it accepts
// formats to text it parses back to the same frames.
func FuzzParseText(f *testing.F) {
	f.Add([]byte("0,100,e271017837246aaccddea259648fb7d62f435c89d9e99b2497763e216c8d055c,0.000\n"))
	f.Add([]byte("562,100,ebcc8b06b0266ea34cf9b85972a983a4f9466caf05fc9d52aa9662f975499514,18.733\r\n\n1,0,E271017837246AACCDDEA259648FB7D62F435C89D9E99B2497763E216C8D055C,1e3"))
	f.Add([]byte("0,100,zz,0.000"))
	f.Fuzz(func(t *testing.T, data []byte) {
		frames, err := ParseText(bytes.NewReader(data))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error spans lines: %q", err)
			}
			return
		}
		var out bytes.Buffer
		if err := WriteText(&out, frames); err != nil {
			t.Fatal(err)
		}
		again, err := ParseText(&out)
		if err != nil {
			t.Fatalf("formatted frames do not parse: %v\n%s", err, out.Bytes())
		}
		if len(again) != len(frames) {
			t.Fatalf("%d frames became %d", len(frames), len(again))
		}
		for i := range frames {
			a, b := frames[i], again[i]
			// The text form keeps milliseconds.
			if a.Frame != b.Frame || a.Quality != b.Quality || a.PDQ != b.PDQ || b.Timestamp-a.Timestamp > 0.0005 || a.Timestamp-b.Timestamp > 0.0005 {
				t.Fatalf("frame %d: %+v became %+v", i, a, b)
			}
		}
	})
}

// FuzzParseRate checks ffprobe's frame-rate parser: never a panic, and a
// rate either 0 (unknown) or within the bounds decode relies on.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"30/1", "30000/1001", "0/0", "1/0", "-30/1", "1e400/1", "NaN/1", "25", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := parseRate(s)
		if r != 0 && !(r >= 0.01 && r <= 1000) {
			t.Fatalf("parseRate(%q) = %v, want 0 or 0.01..1000", s, r)
		}
	})
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]float64{"30/1": 30, "30000/1001": 30000.0 / 1001, "0/0": 0, "1/0": 0, "-30/1": 0, "25": 25, "": 0, "NaN/1": 0, "Inf/1": 0} {
		if got := parseRate(in); got != want {
			t.Errorf("parseRate(%q) = %v, want %v", in, got, want)
		}
	}
}
