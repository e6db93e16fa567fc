package api

import (
	"context"
	"log/slog"

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
