package api

import (
	"context"
	"log/slog"

	"github.com/staydown/staydown/node/match/filehash"
	"github.com/staydown/staydown/protocol/pb"
)

// The web console (node/console) calls the node through the same
// interfaces as this API; these are the pieces of the API's own work it
// shares, so that a verdict or a signal error reads the same in both.

// MatchSignals is what POST /v1/match answers for sigs.
func MatchSignals(ctx context.Context, b Backend, sigs []*pb.Signal) ([]MatchResult, error) {
	s := &server{backend: b, log: slog.New(slog.DiscardHandler)}
	return s.match(ctx, sigs)
}

// ParseSignal parses one signal as the API parses a request's; field
// names it in errors ("signals[0]": "signals[0].value: ...").
func ParseSignal(field string, sig Signal) (*pb.Signal, error) {
	return parseSignal(field, sig)
}

// MatchImageFile is what POST /v1/match/file answers for a file that is
// not a video, its bytes received into f: its hashes (with the image's
// rotations and mirror images) matched. The decoding of the image takes
// one of the same few slots as the API's.
func MatchImageFile(ctx context.Context, b Backend, f *filehash.Hashes, body []byte) (FileMatch, error) {
	if err := acquireFileSlot(ctx); err != nil {
		return FileMatch{}, err
	}
	f.HashImage(body)
	<-fileSlots
	s := &server{backend: b, log: slog.New(slog.DiscardHandler)}
	results, err := s.matchQueries(ctx, fileQueries(f, true))
	if err != nil {
		return FileMatch{}, err
	}
	return NewFileMatch(f, true, results), nil
}
