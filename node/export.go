package node

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/export"
	"github.com/staydown/staydown/protocol/pb"
)

// Export (api.Exporter) it writes the checkpoints this node
// keeps (the latest of each log, with its cosignatures, and every
// contradicting one), every log it holds (or only those of authors, if
// given), then the evidence of equivocation about them, as an export
// file (SPEC.md section 19). Each log is read up
// to the head it had when the export began, in its own read transaction,
// so a node that keeps applying entries meanwhile still writes whole,
// contiguous logs.
func (n *Node) Export(ctx context.Context, w io.Writer, authors []protocol.AuthorKey) error {
	roster, err := os.ReadFile(n.cfg.RosterPath)
	if err != nil {
		return fmt.Errorf("reading the roster to include: %w", err)
	}
	hdr := &pb.ExportHeader{Federation: n.cfg.Federation, Roster: roster, Exporter: n.self.Name, CreatedMs: n.now().UnixMilli()}
	for _, a := range authors {
		hdr.Authors = append(hdr.Authors, append([]byte(nil), a[:]...))
	}
	want := func(a protocol.AuthorKey) bool { return len(authors) == 0 || slices.Contains(authors, a) }
	heads, err := n.store.Heads()
	if err != nil {
		return err
	}
	ew, err := export.NewWriter(w, hdr)
	if err != nil {
		return err
	}
	for _, msg := range n.ckpt.Export(want) {
		if err := ew.Checkpoint(msg); err != nil {
			return err
		}
	}
	for _, h := range heads {
		if !want(h.Author) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		err := n.store.RangeRaw(h.Author, 1, h.Seq, func(_ uint64, raw []byte) error { return ew.Entry(raw) })
		if err != nil {
			return err
		}
	}
	evidence, err := n.store.Evidence()
	if err != nil {
		return err
	}
	for _, ev := range evidence {
		if want(ev.Author) {
			if err := ew.Evidence(ev.Conflicting); err != nil {
				return err
			}
		}
	}
	return ew.Close()
}
