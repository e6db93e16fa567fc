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

// The bounds of a chunk of a log that Export reads in one transaction.
const (
	exportChunk      = 4096
	exportChunkBytes = 4 << 20
)

// Export (api.Exporter) writes the checkpoints this node
// keeps (the latest of each log, with its cosignatures, and every
// contradicting one), every log it holds (or only those of authors, if
// given), then the evidence of equivocation about them, as an export
// file (SPEC.md section 19). Each log is read up to the head it had when
// the export began, so a node that keeps applying entries meanwhile still
// writes whole, contiguous logs. The logs are read in chunks of at most
// exportChunk entries or exportChunkBytes (store.RangeBatch), each in a
// short read transaction, and written to w only after it has ended: a
// slow reader at the other end of w holds no transaction, which would
// hold up the store once its file must grow.
func (n *Node) Export(ctx context.Context, w io.Writer, authors []protocol.AuthorKey) error {
	roster, err := os.ReadFile(n.cfg.RosterPath)
	if err != nil {
		return fmt.Errorf("reading the roster to include: %w", err)
	}
	hdr := &pb.ExportHeader{Federation: n.cfg.Federation, Roster: roster, Exporter: n.me.Name, CreatedMs: n.now().UnixMilli(),
		Genesis: n.members.Genesis().Raw()}
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
		for from := uint64(1); from <= h.Seq; {
			chunk, _, err := n.store.RangeBatch(h.Author, from, h.Seq, exportChunk, exportChunkBytes)
			if err != nil {
				return err
			}
			if len(chunk) == 0 {
				return fmt.Errorf("log of %s: no entry at seq %d below its head %d", n.nameOf(h.Author), from, h.Seq)
			}
			for _, raw := range chunk {
				if err := ew.Entry(raw); err != nil {
					return err
				}
			}
			from += uint64(len(chunk))
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
