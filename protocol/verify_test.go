package protocol

import (
	"crypto/ed25519"
	"errors"
	"math/big"
	"testing"
)

func signedAddition(t testing.TB, priv ed25519.PrivateKey) *Entry {
	t.Helper()
	b := validBody(KindAddition, AuthorKey{})
	b.GetAddition().CaseRef = "case 17"
	e, err := Sign(priv, b)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestVerify(t *testing.T) {
	priv := seedKey(0x01)
	e := signedAddition(t, priv)
	if err := e.Verify(); err != nil {
		t.Fatalf("good entry: %v", err)
	}

	t.Run("bit flipped in case_ref", func(t *testing.T) {
		raw := append([]byte(nil), e.Raw...)
		raw[len(raw)-64-2-1] ^= 0x01 // before "12 40" and the signature: the case_ref's last character
		d, err := Decode(raw)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		checkErr(t, d.Verify(), ErrBadSignature, e.Author.String(), "seq 1")
	})
	t.Run("bit flipped in signature", func(t *testing.T) {
		raw := append([]byte(nil), e.Raw...)
		raw[len(raw)-1] ^= 0x80
		d, err := Decode(raw)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		checkErr(t, d.Verify(), ErrBadSignature)
	})
	t.Run("signed by another key", func(t *testing.T) {
		// The body names key 1 as author; key 2 signs it.
		other := seedKey(0x21)
		raw := encodeSigned(e.Signed, ed25519.Sign(other, signingBytes(e.Signed)))
		d, err := Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		checkErr(t, d.Verify(), ErrBadSignature)
	})
	t.Run("signed without the context", func(t *testing.T) {
		raw := encodeSigned(e.Signed, ed25519.Sign(priv, e.Signed))
		d, err := Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		checkErr(t, d.Verify(), ErrBadSignature)
	})
	t.Run("every single-bit flip", func(t *testing.T) {
		// No one-bit change anywhere in the SignedEntry yields an entry
		// that decodes and verifies.
		for i := range e.Raw {
			for bit := 0; bit < 8; bit++ {
				raw := append([]byte(nil), e.Raw...)
				raw[i] ^= 1 << bit
				d, err := Decode(raw)
				if err != nil {
					if !errors.Is(err, ErrMalformed) {
						t.Fatalf("byte %d bit %d: %v", i, bit, err)
					}
					continue
				}
				if err := d.Verify(); !errors.Is(err, ErrBadSignature) {
					t.Fatalf("byte %d bit %d: decoded and Verify returned %v", i, bit, err)
				}
			}
		}
	})
}

// ed25519 signatures must not be malleable: if S+L were accepted as well
// as S, anyone relaying an entry could mint a second valid SignedEntry with
// another id and the same author and seq, which would look like an
// equivocation by an honest author. SPEC.md requires S < L.
func TestVerifyRejectsNonCanonicalS(t *testing.T) {
	e := signedAddition(t, seedKey(0x01))
	l, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	le := func(b []byte) *big.Int { // little-endian to big.Int
		r := make([]byte, len(b))
		for i := range b {
			r[len(b)-1-i] = b[i]
		}
		return new(big.Int).SetBytes(r)
	}
	s := le(e.Signature[32:])
	s.Add(s, l)
	sb := s.FillBytes(make([]byte, 32))
	sig := append([]byte(nil), e.Signature[:32]...)
	for i := range sb {
		sig = append(sig, sb[31-i])
	}
	d, err := Decode(encodeSigned(e.Signed, sig))
	if err != nil {
		t.Fatal(err)
	}
	if d.ID == e.ID {
		t.Fatal("test setup: same id")
	}
	checkErr(t, d.Verify(), ErrBadSignature)
}

func chainEntry(t testing.TB, priv ed25519.PrivateKey, seq uint64, prev ID) *Entry {
	t.Helper()
	b := validBody(KindAddition, AuthorKey{})
	b.Seq = seq
	if seq > 1 {
		b.Prev = append([]byte(nil), prev[:]...)
	}
	e, err := Sign(priv, b)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestCheckNext(t *testing.T) {
	priv := seedKey(0x01)
	e1 := chainEntry(t, priv, 1, ID{})
	e2 := chainEntry(t, priv, 2, e1.ID)
	e3 := chainEntry(t, priv, 3, e2.ID)
	e2b := chainEntry(t, priv, 2, IDOf([]byte("elsewhere"))) // links to an entry we do not have
	author := e1.Author
	empty := Head{Author: author}
	h1 := Head{Author: author, Seq: 1, ID: e1.ID}
	h2 := Head{Author: author, Seq: 2, ID: e2.ID}

	cases := []struct {
		name    string
		head    Head
		e       *Entry
		want    error
		mention []string
	}{
		{"seq 1 on empty log", empty, e1, nil, nil},
		{"seq 2 after 1", h1, e2, nil, nil},
		{"seq 3 after 2", h2, e3, nil, nil},
		{"seq 2 with wrong prev", h1, e2b, ErrChain, []string{e2b.ID.String(), "seq 2", e1.ID.String()}},
		{"seq 2 on empty log", empty, e2, ErrGap, []string{"seq 2", "head is 0"}},
		{"seq 3 after 1", h1, e3, ErrGap, []string{"seq 3", "head is 1"}},
		{"seq 1 again", h1, e1, ErrChain, []string{"seq 1", "not after head 1"}},
		{"seq 1 after 2", h2, e1, ErrChain, []string{"not after head 2"}},
		{"duplicate of head", h2, e2, ErrChain, []string{"seq 2"}},
		{"equivocation at head", h2, e2b, ErrChain, []string{"seq 2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckNext(c.head, c.e)
			if c.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			checkErr(t, err, c.want, c.mention...)
		})
	}
}

func TestEntryAccessors(t *testing.T) {
	priv := seedKey(0x01)
	e1 := chainEntry(t, priv, 1, ID{})
	e2 := chainEntry(t, priv, 2, e1.ID)
	if !e1.Prev().IsZero() || e2.Prev() != e1.ID || e2.Seq() != 2 {
		t.Errorf("prev/seq: %s %s %d", e1.Prev(), e2.Prev(), e2.Seq())
	}
	if e1.Kind() != KindAddition {
		t.Errorf("kind %q", e1.Kind())
	}
}
