package protocol

import (
	"encoding/json"
	"os"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"

	"github.com/staydown/staydown/protocol/pb"
)

// urlVector is one row of testdata/url_vectors.json, the table of SPEC 7.4:
// an input, its v2 normal form (what new entries carry and every url index
// key is), its v1 normal form where it differs, or the rejection.
type urlVector struct {
	Note string `json:"note,omitempty"`
	In   string `json:"in"`
	V2   string `json:"v2,omitempty"`
	// V1 is the v1 form where it differs from V2; "" means the same.
	V1 string `json:"v1,omitempty"`
	// Error is a part of the rejection's message; then V1 and V2 are "".
	Error string `json:"error,omitempty"`
	// GoV1 is what Go's net/url, the reference of the v1 form before it
	// was specified on its own, made of In where that differs from the v1
	// form (only for inputs: on the wire the two agree, FuzzURLForms).
	// The Python verifier, a port of it, must give the same.
	GoV1 string `json:"go_v1,omitempty"`
}

func loadURLVectors(t testing.TB) []urlVector {
	b, err := os.ReadFile("testdata/url_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []urlVector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

func TestURLVectors(t *testing.T) {
	vs := loadURLVectors(t)
	if len(vs) < 40 {
		t.Fatalf("%d vectors", len(vs))
	}
	for _, v := range vs {
		t.Run(v.In, func(t *testing.T) {
			for _, form := range []URLForm{URLFormV1, URLFormV2} {
				got, err := NormalizeURLForm(v.In, form)
				if v.Error != "" {
					if err == nil {
						t.Fatalf("v%d: accepted as %q, want an error with %q", form, got, v.Error)
					}
					checkErr(t, err, ErrSignal, v.Error)
					continue
				}
				want := v.V2
				if form == URLFormV1 && v.V1 != "" {
					want = v.V1
				}
				if err != nil || got != want {
					t.Fatalf("v%d: got %q, %v; want %q", form, got, err, want)
				}
				if again, err := NormalizeURLForm(got, form); err != nil || again != got {
					t.Errorf("v%d: not idempotent: %q -> %q, %v", form, got, again, err)
				}
				// Both forms are valid on the wire and have the v2 form as key.
				if err := CheckSignal(&pb.Signal{Value: &pb.Signal_Url{Url: got}}); err != nil {
					t.Errorf("v%d: CheckSignal(%q): %v", form, got, err)
				}
				if k := string(SignalKey(&pb.Signal{Value: &pb.Signal_Url{Url: got}})[1:]); k != v.V2 {
					t.Errorf("v%d: key of %q is %q, want %q", form, got, k, v.V2)
				}
			}
			goWant, goErr := v.GoV1, v.Error != "" && v.GoV1 == ""
			if goWant == "" && v.Error == "" {
				goWant = v.V2
				if v.V1 != "" {
					goWant = v.V1
				}
			}
			if g, err := goV1NormalizeURL(v.In); (err != nil) != goErr || g != goWant {
				t.Errorf("Go's net/url v1 form: %q, %v; want %q (error: %v)", g, err, goWant, goErr)
			}
			if v.Error == "" {
				// A node of the v1 form (before this version) takes the v2 form.
				if g, err := goV1NormalizeURL(v.V2); err != nil || g != v.V2 {
					t.Errorf("a v1 node rejects the v2 form %q: %q, %v", v.V2, g, err)
				}
			}
		})
	}
}

// TestURLVectorsEquivalent pins what the v2 form is for: spellings of one
// URL that v1 kept apart have one key.
func TestURLVectorsEquivalent(t *testing.T) {
	groups := [][]string{
		{"https://xn--bcher-kva.example/", "https://bücher.example/", "https://b%C3%BCcher.example/", "https://B%c3%bccher.EXAMPLE/", "https://XN--BCHER-KVA.example:443/"},
		{"https://example.com/%C3%A4", "https://example.com/%c3%a4", "https://example.com/ä", "https://example.com/%c3%A4#x"},
		{"https://example.com/~user", "https://example.com/%7Euser", "https://example.com/%7euser"},
		{"https://example.com/?q=~&r=%2F", "https://example.com/?q=%7e&r=%2f", "https://example.com/?q=%7E&r=%2F"},
	}
	for _, g := range groups {
		want := g[0]
		for _, in := range g {
			n, err := NormalizeURL(in)
			if err != nil || n != want {
				t.Errorf("NormalizeURL(%q) = %q, %v; want %q", in, n, err, want)
			}
			// As v1 entries carry it: its key is the same.
			if n1, err := NormalizeURLForm(in, URLFormV1); err != nil {
				t.Errorf("v1(%q): %v", in, err)
			} else if k := URLKey(n1); k != want {
				t.Errorf("URLKey(v1 %q) = %q, want %q", n1, k, want)
			}
		}
	}
}

// TestCheckNormalURL: a URL in neither form is refused on the wire,
// naming the v2 form.
func TestCheckNormalURL(t *testing.T) {
	for _, in := range []string{
		"https://Example.com/", "https://example.com", "https://example.com/ä", "https://bücher.example/", "https://example.com:443/",
		"https://example.com/a b", "https://example.com/#x",
	} {
		err := CheckNormalURL(in)
		if err == nil {
			t.Errorf("CheckNormalURL(%q) accepted", in)
			continue
		}
		n, _ := NormalizeURL(in)
		checkErr(t, err, ErrSignal, "not normalised", n)
	}
}

// TestUnicodeTables: the IDNA mapping and the lower-casing are part of
// the normal forms (SPEC 7.4 step 9); other tables would give other keys.
// A build with other tables (x/net takes Unicode 17.0.0 tables from Go
// 1.27 on) must not slip in unnoticed: it needs a new form version.
func TestUnicodeTables(t *testing.T) {
	if idna.UnicodeVersion != "15.0.0" {
		t.Errorf("golang.org/x/net/idna has Unicode %s tables; SPEC 7.4 fixes 15.0.0", idna.UnicodeVersion)
	}
	if unicode.Version != "15.0.0" {
		t.Errorf("Go's unicode package has Unicode %s tables; SPEC 7.4 lower-cases by 15.0.0", unicode.Version)
	}
}

// FuzzURLForms checks the forms against each other and against the
// v1 form of Go's net/url that entries before v2 were checked with.
func FuzzURLForms(f *testing.F) {
	for _, v := range loadURLVectors(f) {
		f.Add(v.In)
	}
	f.Fuzz(func(t *testing.T, in string) {
		n2, err2 := NormalizeURLForm(in, URLFormV2)
		n1, err1 := NormalizeURLForm(in, URLFormV1)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("%q: v1 %q, %v; v2 %q, %v", in, n1, err1, n2, err2)
		}
		// The wire is unchanged: what a node before v2 took as a url
		// (Go's net/url), a node now takes, and the reverse.
		g, err := goV1NormalizeURL(in)
		goValid := err == nil && g == in
		if err := CheckNormalURL(in); (err == nil) != goValid {
			t.Fatalf("%q: valid on the wire before v2: %v; now: %v", in, goValid, err)
		}
		if err == nil {
			if err := CheckNormalURL(g); err != nil {
				t.Fatalf("Go's v1 normal form %q of %q is refused: %v", g, in, err)
			}
		}
		if err2 != nil {
			checkParseError(t, err2, ErrSignal)
			return
		}
		for form, n := range map[URLForm]string{URLFormV1: n1, URLFormV2: n2} {
			again, err := NormalizeURLForm(n, form)
			if err != nil || again != n {
				t.Fatalf("v%d not idempotent: %q -> %q -> %q, %v", form, in, n, again, err)
			}
			if !utf8.ValidString(n) || len(n) > MaxURLLen {
				t.Fatalf("v%d form %q is not valid UTF-8 or too long", form, n)
			}
		}
		// v1 then v2 is v2: the key of a v1 entry is the key of the URL.
		if k := URLKey(n1); k != n2 {
			t.Fatalf("%q: v2 %q, but v2 of its v1 form %q is %q", in, n2, n1, k)
		}
		// A node of the v1 form takes every v1 and v2 URL.
		for _, n := range []string{n1, n2} {
			if g, err := goV1NormalizeURL(n); err != nil || g != n {
				t.Fatalf("a Go v1 node refuses %q (of %q): %q, %v", n, in, g, err)
			}
		}
	})
}
