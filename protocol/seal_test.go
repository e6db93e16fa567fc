package protocol

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"

	"golang.org/x/crypto/curve25519"
	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/protocol/pb"
)

func TestX25519Derivation(t *testing.T) {
	// The public key converted from the author key must be the one the
	// derived private key computes: otherwise nothing sealed opens.
	for i := byte(1); i < 20; i++ {
		priv := seedKey(i)
		pub, err := X25519Public(AuthorKeyOf(priv))
		if err != nil {
			t.Fatal(err)
		}
		want, err := curve25519.X25519(X25519Private(priv)[:], curve25519.Basepoint)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(pub[:], want) {
			t.Fatalf("key %d: converted public key %x, derived %x", i, pub, want)
		}
	}
	// Not a point: y = 2 has no x on the curve.
	var bad AuthorKey
	bad[0] = 2
	if _, err := X25519Public(bad); !errors.Is(err, ErrKey) {
		t.Fatalf("non-point accepted: %v", err)
	}
}

func TestSealOpen(t *testing.T) {
	nru, pf, auditor, other := seedKey(1), seedKey(2), seedKey(3), seedKey(4)
	details := &pb.NoticeDetails{Urls: []string{"https://example.org/v/1"}, Text: "the video at 0:42"}
	s, err := Seal(details, []AuthorKey{AuthorKeyOf(nru), AuthorKeyOf(pf), AuthorKeyOf(auditor)}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkSealed("details", s); err != nil {
		t.Fatalf("sealed details break the wire limits: %v", err)
	}
	for _, k := range s.Recipients {
		if len(k.SealedKey) != SealedKeySize {
			t.Fatalf("sealed key %d bytes, want %d", len(k.SealedKey), SealedKeySize)
		}
	}
	for name, priv := range map[string][]byte{"issuer": nru, "addressee": pf, "auditor": auditor} {
		d, err := Open(s, priv)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d.Text != details.Text || len(d.Urls) != 1 || d.Urls[0] != details.Urls[0] {
			t.Fatalf("%s opened %v", name, d)
		}
		if !Readable(s, AuthorKeyOf(priv)) {
			t.Fatalf("%s: not Readable", name)
		}
	}
	if _, err := Open(s, other); !errors.Is(err, ErrSealed) {
		t.Fatalf("non-recipient opened it: %v", err)
	}
	if Readable(s, AuthorKeyOf(other)) {
		t.Fatal("non-recipient Readable")
	}
	// The plaintext leaks nowhere in the sealed bytes.
	raw := []byte(s.String())
	if bytes.Contains(raw, []byte("example.org")) || bytes.Contains(raw, []byte("0:42")) {
		t.Fatal("plaintext visible in the sealed message")
	}
}

func TestOpenTampered(t *testing.T) {
	nru, pf := seedKey(1), seedKey(2)
	seal := func() *pb.Sealed {
		s, err := Seal(&pb.NoticeDetails{Urls: []string{"https://example.org/a"}}, []AuthorKey{AuthorKeyOf(nru), AuthorKeyOf(pf)}, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	cases := map[string]func(s *pb.Sealed){
		"ciphertext byte flipped": func(s *pb.Sealed) { s.Ciphertext[3] ^= 1 },
		"nonce byte flipped":      func(s *pb.Sealed) { s.Nonce[0] ^= 1 },
		"short nonce":             func(s *pb.Sealed) { s.Nonce = s.Nonce[:8] },
		"sealed key flipped": func(s *pb.Sealed) {
			for _, r := range s.Recipients {
				r.SealedKey[40] ^= 1
			}
		},
		"sealed keys swapped": func(s *pb.Sealed) {
			s.Recipients[0].SealedKey, s.Recipients[1].SealedKey = s.Recipients[1].SealedKey, s.Recipients[0].SealedKey
		},
	}
	for name, tamper := range cases {
		t.Run(name, func(t *testing.T) {
			s := seal()
			tamper(s)
			if _, err := Open(s, pf); !errors.Is(err, ErrSealed) {
				t.Fatalf("opened: %v", err)
			}
		})
	}
}

// Seal takes its randomness from the reader it is given, and only from it:
// none is an error, the same bytes seal the same way, and a reader that
// runs dry fails the seal.
func TestSealRandomness(t *testing.T) {
	d := &pb.NoticeDetails{Text: "x"}
	pf := seedKey(2)
	to := []AuthorKey{AuthorKeyOf(pf), AuthorKeyOf(seedKey(3))}
	if _, err := Seal(d, to, nil); !errors.Is(err, ErrSealed) {
		t.Errorf("sealed without randomness: %v", err)
	}
	fixed := func() io.Reader { return bytes.NewReader(bytes.Repeat([]byte{7}, 1024)) }
	a, err := Seal(d, to, fixed())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Seal(d, to, fixed())
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(a, b) {
		t.Error("the same random bytes sealed two ways: Seal has another source")
	}
	if got, err := Open(a, pf); err != nil || got.Text != "x" {
		t.Errorf("open: %v, %v", got, err)
	}
	if _, err := Seal(d, to, bytes.NewReader(make([]byte, 40))); !errors.Is(err, ErrSealed) {
		t.Errorf("sealed with too few random bytes: %v", err)
	}
}

func TestSealRefusesBadDetails(t *testing.T) {
	to := []AuthorKey{AuthorKeyOf(seedKey(2))}
	for name, d := range map[string]*pb.NoticeDetails{
		"empty":         {},
		"not normal":    {Urls: []string{"HTTPS://Example.org:443/a#frag"}},
		"not a URL":     {Urls: []string{"ftp://x/y"}},
		"too much text": {Text: string(make([]byte, MaxSealedTextBytes))},
	} {
		if _, err := Seal(d, to, rand.Reader); !errors.Is(err, ErrSealed) {
			t.Errorf("%s: sealed: %v", name, err)
		}
	}
	if _, err := Seal(&pb.NoticeDetails{Text: "x"}, nil, rand.Reader); !errors.Is(err, ErrSealed) {
		t.Errorf("no recipients: %v", err)
	}
}

func TestNoticeRecipients(t *testing.T) {
	keys := make([]AuthorKey, 5)
	for i := range keys {
		keys[i] = AuthorKeyOf(seedKey(byte(i + 1)))
	}
	r, err := NewRoster("f", []Member{
		{Name: "nru", Role: RoleReferral, AuthorKey: keys[0], PeerID: "p0"},
		{Name: "pf", Role: RolePlatform, AuthorKey: keys[1], PeerID: "p1"},
		{Name: "pf2", Role: RolePlatform, AuthorKey: keys[2], PeerID: "p2"},
		{Name: "aud", Role: RoleAuditor, AuthorKey: keys[3], PeerID: "p3"},
		{Name: "aud2", Role: RoleAuditor, AuthorKey: keys[4], PeerID: "p4"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := NoticeRecipients(r, keys[0], keys[1])
	if len(got) != 4 {
		t.Fatalf("got %d recipients, want issuer, addressee and two auditors", len(got))
	}
	for _, k := range got {
		if k == keys[2] {
			t.Fatal("the other platform is a recipient")
		}
	}
	for i := 1; i < len(got); i++ {
		if bytes.Compare(got[i-1][:], got[i][:]) >= 0 {
			t.Fatal("not sorted and unique")
		}
	}
}

// FuzzOpen feeds arbitrary Sealed messages to Open: it must fail cleanly
// or return well-formed details, never panic.
func FuzzOpen(f *testing.F) {
	pf := seedKey(2)
	s, err := Seal(&pb.NoticeDetails{Urls: []string{"https://example.org/a"}, Text: "t"}, []AuthorKey{AuthorKeyOf(pf)}, rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	raw, err := proto.Marshal(s)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var s pb.Sealed
		if proto.Unmarshal(b, &s) != nil {
			return
		}
		d, err := Open(&s, pf)
		if err != nil {
			if !errors.Is(err, ErrSealed) && !errors.Is(err, ErrKey) {
				t.Fatalf("error wraps neither ErrSealed nor ErrKey: %v", err)
			}
			return
		}
		if CheckDetails(d) != nil {
			t.Fatal("opened to invalid details")
		}
	})
}
