package protocol

import (
	"errors"
	"testing"

	"github.com/staydown/staydown/protocol/pb"
)

// Go code can build a oneof wrapper around a nil message; no decoder
// produces one, but the API builds payloads, so it must be an error and
// not a panic.
func TestCheckPayloadNilWrapper(t *testing.T) {
	for _, p := range []any{
		&pb.Entry_Addition{}, &pb.Entry_Retraction{}, &pb.Entry_Dispute{}, &pb.Entry_Allow{},
		&pb.Entry_Notice{}, &pb.Entry_NoticeUpdate{}, &pb.Entry_NoticeReply{},
	} {
		b := &pb.Entry{Version: 1, Federation: "f", Seq: 1, TimestampMs: 1}
		switch v := p.(type) {
		case *pb.Entry_Addition:
			b.Payload = v
		case *pb.Entry_Retraction:
			b.Payload = v
		case *pb.Entry_Dispute:
			b.Payload = v
		case *pb.Entry_Allow:
			b.Payload = v
		case *pb.Entry_Notice:
			b.Payload = v
		case *pb.Entry_NoticeUpdate:
			b.Payload = v
		case *pb.Entry_NoticeReply:
			b.Payload = v
		}
		if err := CheckPayload(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%T: CheckPayload = %v, want ErrMalformed", p, err)
		}
		if _, err := Sign(seedKey(1), b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%T: Sign = %v, want ErrMalformed", p, err)
		}
	}
}

func TestHeadsDigestLeavesInputAlone(t *testing.T) {
	heads := []Head{{Author: AuthorKey{2}, Seq: 1}, {Author: AuthorKey{1}, Seq: 2}}
	HeadsDigest(heads)
	if heads[0].Author != (AuthorKey{2}) {
		t.Errorf("HeadsDigest reordered its argument: %v", heads)
	}
}
