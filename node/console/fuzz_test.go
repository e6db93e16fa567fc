package console_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/console"
)

// FuzzParseSignalLines: any text gives signals the API accepts, or an
// error of kind invalid that names the field; never a panic.
func FuzzParseSignalLines(f *testing.F) {
	f.Add("sha256:" + strings.Repeat("ab", 32) + "\n\n md5:" + strings.Repeat("0", 32))
	f.Add("url:https://example.com/a\naccount:x:123")
	f.Add("pdq:zz")
	f.Add("nocolon")
	f.Add(":")
	f.Fuzz(func(t *testing.T, text string) {
		sigs, err := console.ParseSignalLines("signals", text)
		if err != nil {
			if !errors.Is(err, api.ErrInvalid) || !strings.HasPrefix(err.Error(), "signals") {
				t.Fatalf("error %v: want ErrInvalid naming the field", err)
			}
			return
		}
		if _, err := api.ParseSignalList("signals", sigs); err != nil {
			t.Fatalf("accepted %q, which the API refuses: %v", text, err)
		}
	})
}
