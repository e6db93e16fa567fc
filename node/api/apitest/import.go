package apitest

import (
	"context"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/pb"
	"github.com/staydown/staydown/store"
)

// OwnAttestations implements api.OwnAttester from the attestations set
// with SetAttestations whose author is this backend's member.
func (b *Backend) OwnAttestations(ctx context.Context, sigs []*pb.Signal) ([][]store.Attestation, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return nil, b.err
	}
	me := protocol.AuthorKeyOf(b.key)
	out := make([][]store.Attestation, len(sigs))
	for i, s := range sigs {
		for _, a := range b.atts[string(protocol.SignalKey(s))] {
			if a.Author == me {
				out[i] = append(out[i], a)
			}
		}
	}
	return out, nil
}
