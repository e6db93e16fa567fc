package vmatch

import (
	"math/rand/v2"

	"github.com/staydown/staydown/node/match"
)

// bank generates videos deterministically: scenes of 5 to 30 frames, each
// scene a random base hash, each frame the base with 1 to 6 bits flipped
// (so frames of a scene are near each other, as in a real video), one
// frame in twenty of low quality, one per second.
type bank struct {
	r *rand.Rand
}

func newBank(seed uint64) *bank {
	return &bank{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (b *bank) hash() match.Hash {
	var h match.Hash
	for i := 0; i < len(h); i += 8 {
		v := b.r.Uint64()
		for j := range 8 {
			h[i+j] = byte(v >> (8 * j))
		}
	}
	return h
}

func (b *bank) flip(h match.Hash, n int) match.Hash {
	for range n {
		bit := b.r.IntN(256)
		h[bit/8] ^= 1 << (bit % 8)
	}
	return h
}

func (b *bank) video(frames int) []Frame {
	out := make([]Frame, 0, frames)
	var base match.Hash
	left := 0
	for i := range frames {
		if left == 0 {
			base, left = b.hash(), 5+b.r.IntN(26)
		}
		left--
		q := uint8(100)
		if b.r.IntN(20) == 0 {
			q = uint8(b.r.IntN(50))
		}
		out = append(out, Frame{Hash: b.flip(base, 1+b.r.IntN(6)), Quality: q, Timestamp: uint32(i) * 1000})
	}
	return out
}

// reencode is v[from:to] with up to noise bits flipped in each frame and
// timestamps starting at 0, as a re-encoded clip of it.
func (b *bank) reencode(v []Frame, from, to, noise int) []Frame {
	out := make([]Frame, 0, to-from)
	for i, f := range v[from:to] {
		f.Hash = b.flip(f.Hash, b.r.IntN(noise+1))
		f.Timestamp = uint32(i) * 1000
		out = append(out, f)
	}
	return out
}
