package interop

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/staydown/staydown/protocol"
)

// tatHash is one element of the results of Tech Against Terrorism's hash
// list API (the TCAP archive's hash list, GET .../hash-list/v2/all): the
// fields we read. The others (ideology, file_type, dates, ids) are dropped:
// ideology is not a label of our vocabulary, and the importer's --label
// says what the list is.
type tatHash struct {
	ID         json.Number `json:"id"`
	HashDigest string      `json:"hash_digest"`
	Algorithm  string      `json:"algorithm"`
	Deleted    bool        `json:"deleted"`
}

// tatAlgorithms maps TAT's algorithm names to our types; SHA512 and TMK
// have none (yet) and are refused by name.
var tatAlgorithms = map[string]protocol.SignalType{
	"MD5":     protocol.SignalMD5,
	"SHA256":  protocol.SignalSHA256,
	"SHA-256": protocol.SignalSHA256,
	"PDQ":     protocol.SignalPDQ,
}

func readTAT(r io.Reader, sink Sink) error {
	found, err := eachElement(r, "results", true, func(i int, dec *json.Decoder) error {
		where := fmt.Sprintf("results[%d]", i)
		var h tatHash
		why, err := decodeElement(dec, &h)
		if err != nil {
			return err
		}
		if h.ID != "" {
			where += " (id " + clip(h.ID.String()) + ")"
		}
		if why != "" {
			sink.Reject(Problem{Where: where, Reason: why})
			return nil
		}
		t, ok := tatAlgorithms[strings.ToUpper(strings.TrimSpace(h.Algorithm))]
		if !ok {
			sink.Reject(Problem{where, h.Algorithm, "algorithm with no Staydown signal type; known: MD5, SHA256, PDQ"})
			return nil
		}
		s, why := parse(t, strings.TrimSpace(h.HashDigest))
		if why != "" {
			sink.Reject(Problem{where, h.HashDigest, why})
			return nil
		}
		return sink.Row(Row{Where: where, Signal: s, Deleted: h.Deleted})
	})
	if err == nil && !found {
		return fmt.Errorf("%w: no \"results\" array: not a TAT hash list", ErrFormat)
	}
	return err
}
