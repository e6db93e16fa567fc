package membership_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/membership"
)

// FuzzParseGenesis: ParseGenesis (the genesis of an export header) never
// panics; what it accepts is the canonical encoding of a valid genesis,
// with the hash of those bytes; what it rejects, it rejects in one line.
func FuzzParseGenesis(f *testing.F) {
	t := &testing.T{}
	fed := newFed(t, "nru:referral", "pa:platform", "aud:auditor")
	f.Add(fed.genesis.Raw())
	raw := fed.genesis.Raw()
	f.Add(raw[:len(raw)/2])
	f.Add(append(bytes.Clone(raw), 0x08, 0x01))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		g, err := membership.ParseGenesis(raw)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			if !errors.Is(err, protocol.ErrMalformed) && !errors.Is(err, protocol.ErrRoster) {
				t.Fatalf("error wraps neither ErrMalformed nor ErrRoster: %v", err)
			}
			return
		}
		if !bytes.Equal(g.Raw(), raw) {
			t.Fatal("accepted a genesis that is not in canonical encoding")
		}
		again, err := membership.ParseGenesis(g.Raw())
		if err != nil || again.Hash() != g.Hash() {
			t.Fatalf("parse again: %v", err)
		}
	})
}
