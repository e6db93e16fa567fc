// Package exporttest writes export files from slices, for tests of the
// readers of export files (the auditor, the independent verifier).
package exporttest

import (
	"bytes"

	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/protocol/export"
	"github.com/staydown/staydown/protocol/pb"
)

// Encode is a whole export file held in memory, records in the order a
// file holds them: checkpoints, logged entries, evidence. hdr is copied,
// not changed.
func Encode(hdr *pb.ExportHeader, checkpoints, entries, evidence [][]byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := export.NewWriter(&buf, proto.CloneOf(hdr))
	if err != nil {
		return nil, err
	}
	for _, records := range []struct {
		raws [][]byte
		put  func([]byte) error
	}{{checkpoints, w.Checkpoint}, {entries, w.Entry}, {evidence, w.Evidence}} {
		for _, raw := range records.raws {
			if err := records.put(raw); err != nil {
				return nil, err
			}
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
