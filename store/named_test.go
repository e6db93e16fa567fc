package store

import (
	"bytes"
	"errors"
	"testing"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
)

// FuzzParseNamed: any bytes decode to a retractions or disputes row or to
// ErrCorrupt, and a row that decodes encodes back to the same bytes.
func FuzzParseNamed(f *testing.F) {
	id := protocol.IDOf([]byte("r"))
	f.Add(namedValue(id[:], nil, "wrong file"), uint8(idSize))
	f.Add(namedValue(make([]byte, authorSize), []*pb.Signal{sha("x"), sha("y")}, "news"), uint8(authorSize))
	f.Add(namedValue(make([]byte, authorSize), []*pb.Signal{{Value: &pb.Signal_Url{Url: "https://x.example/"}}}, ""), uint8(authorSize))
	f.Add([]byte{}, uint8(idSize))
	f.Add(append(make([]byte, authorSize), 0xff, 0xff, 0xff, 0xff, 0x0f), uint8(authorSize))
	f.Fuzz(func(t *testing.T, v []byte, who uint8) {
		n, err := parseNamed("disputes", []byte("k"), v, int(who))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if len(n.Who) != int(who) || len(n.Keys) > protocol.MaxSignals {
			t.Fatalf("decoded %d bytes of who, %d keys", len(n.Who), len(n.Keys))
		}
		again := append([]byte(nil), n.Who...)
		again = appendKeys(again, n.Keys)
		again = append(again, n.Reason...)
		if !bytes.Equal(again, v) {
			t.Fatalf("round trip: %x -> %+v -> %x", v, n, again)
		}
	})
}
