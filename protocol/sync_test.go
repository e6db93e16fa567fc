package protocol

import (
	"errors"
	"testing"

	"github.com/staydown/staydown/protocol/pb"
)

func syncFixture(t *testing.T, n int) (*Roster, AuthorKey, []*Entry) {
	t.Helper()
	key, other := seedKey(1), seedKey(2)
	r, err := NewRoster("f", []Member{
		{Name: "a", Role: RoleReferral, AuthorKey: AuthorKeyOf(key)},
		{Name: "b", Role: RolePlatform, AuthorKey: AuthorKeyOf(other)},
	})
	if err != nil {
		t.Fatal(err)
	}
	var log []*Entry
	var prev ID
	for i := 1; i <= n; i++ {
		b := &pb.Entry{Version: 1, Federation: "f", Seq: uint64(i), TimestampMs: int64(i),
			Payload: &pb.Entry_Dispute{Dispute: &pb.Dispute{Target: IDOf([]byte{byte(i)}).bytes(), Reason: "r"}}}
		if i > 1 {
			b.Prev = prev[:]
		}
		e, err := Sign(key, b)
		if err != nil {
			t.Fatal(err)
		}
		log = append(log, e)
		prev = e.ID
	}
	return r, AuthorKeyOf(key), log
}

func (id ID) bytes() []byte { return append([]byte(nil), id[:]...) }

func raws(es []*Entry) [][]byte {
	out := make([][]byte, len(es))
	for i, e := range es {
		out[i] = append([]byte(nil), e.Raw...)
	}
	return out
}

// badSig returns e's bytes with the signature's last byte flipped: still
// well-formed, no longer verifying.
func badSig(e *Entry) []byte {
	b := append([]byte(nil), e.Raw...)
	b[len(b)-1] ^= 1
	return b
}

func TestCheckRange(t *testing.T) {
	r, author, log := syncFixture(t, 5)
	t.Run("whole range", func(t *testing.T) {
		es, n, err := CheckRange(r.Federation, author, 1, raws(log))
		if err != nil || n != 5 || es[4].ID != log[4].ID {
			t.Fatalf("got n=%d err=%v", n, err)
		}
	})
	t.Run("a swapped signature in the middle breaks the next link", func(t *testing.T) {
		rs := raws(log)
		rs[2] = badSig(log[2]) // changes entry 3's id, so entry 4's link breaks
		if _, _, err := CheckRange(r.Federation, author, 1, rs); !errors.Is(err, ErrForged) {
			t.Fatalf("a swapped signature went unnoticed: %v", err)
		}
	})
	t.Run("tail signature broken: authenticated up to the last good one", func(t *testing.T) {
		rs := raws(log)
		rs[4] = badSig(log[4])
		_, n, err := CheckRange(r.Federation, author, 1, rs)
		if err != nil || n != 4 {
			t.Fatalf("got n=%d err=%v, want 4 authenticated", n, err)
		}
	})
	t.Run("single entry with a bad signature", func(t *testing.T) {
		if _, _, err := CheckRange(r.Federation, author, 5, [][]byte{badSig(log[4])}); !errors.Is(err, ErrForged) {
			t.Fatalf("got %v", err)
		}
	})
	cases := []struct {
		name string
		from uint64
		rs   func() [][]byte
	}{
		{"garbage", 1, func() [][]byte { return [][]byte{[]byte("junk")} }},
		{"wrong start", 2, func() [][]byte { return raws(log[:2]) }},
		{"gap inside", 1, func() [][]byte { return raws([]*Entry{log[0], log[2]}) }},
		{"reordered", 1, func() [][]byte { return raws([]*Entry{log[1], log[0]}) }},
		{"another author", 1, func() [][]byte {
			_, _, other := syncFixture(t, 1)
			e, _ := Sign(seedKey(2), &pb.Entry{Version: 1, Federation: "f", Seq: 1, TimestampMs: 1,
				Payload: &pb.Entry_Dispute{Dispute: &pb.Dispute{Target: other[0].ID.bytes(), Reason: "r"}}})
			return [][]byte{e.Raw}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := CheckRange(r.Federation, author, c.from, c.rs()); !errors.Is(err, ErrForged) {
				t.Fatalf("got %v, want ErrForged", err)
			}
		})
	}
	t.Run("empty", func(t *testing.T) {
		if _, n, err := CheckRange(r.Federation, author, 1, nil); err != nil || n != 0 {
			t.Fatalf("got n=%d err=%v", n, err)
		}
	})
}
