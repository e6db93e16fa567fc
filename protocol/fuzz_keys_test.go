package protocol

import (
	"strings"
	"testing"
)

// FuzzParseID: entry ids come from users (retract, dispute) and the API.
// Never panics; errors wrap ErrKey on one line; what parses is a sha2-256 multihash that prints back to
// the same text, lower-cased.
func FuzzParseID(f *testing.F) {
	f.Add(IDOf([]byte("x")).String())
	f.Add(strings.ToUpper(IDOf([]byte("x")).String()))
	f.Add("1220")
	f.Add(strings.Repeat("zz", IDSize))
	f.Add(strings.Repeat("\n", 2*IDSize))
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err != nil {
			checkParseError(t, err, ErrKey)
			return
		}
		if id.String() != strings.ToLower(s) || id[0] != 0x12 || id[1] != 0x20 {
			t.Fatalf("ParseID(%q) = %s", s, id)
		}
	})
}

// FuzzParseAuthorKey: author keys come from roster files and flags.
func FuzzParseAuthorKey(f *testing.F) {
	f.Add(AuthorKeyOf(seedKey(1)).String())
	f.Add("00")
	f.Add(strings.Repeat("g", 64))
	f.Add(strings.Repeat("\n", 64))
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseAuthorKey(s)
		if err != nil {
			checkParseError(t, err, ErrKey)
			return
		}
		if k.String() != strings.ToLower(s) {
			t.Fatalf("ParseAuthorKey(%q) = %s", s, k)
		}
	})
}
