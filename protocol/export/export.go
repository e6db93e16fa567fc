// Package export reads and writes Staydown export files (SPEC.md section
// 19): every log a node holds, in one self-contained, streamable file that
// an auditor verifies offline and another node imports.
//
// The file is the magic line, then records, each a protobuf ExportRecord
// prefixed by its length as an unsigned varint: one header (federation,
// the federation's genesis, the genesis file the exporter loaded),
// checkpoints, the entries of every log
// author by author in seq order, evidence of equivocation, and a trailer
// that counts the records and hashes every byte before it. The package checks the
// framing only; what the entries say is the auditor's business.
package export

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"

	"google.golang.org/protobuf/proto"

	"github.com/staydown/staydown/protocol/pb"
)

// Magic opens every export file.
const Magic = "staydown export v1\n"

// Version is the header's version.
const Version = 1

// MaxRecord bounds one record's length. An entry is at most
// protocol.MaxEntrySize; the header carries the roster.
const MaxRecord = 4 << 20

// ErrFormat: the file is not a well-formed export (bad magic, framing,
// record order, counts or digest). Errors wrap it with the byte offset.
var ErrFormat = errors.New("export format")

// TrailerError is a trailer that does not match the file: its counts or
// its digest. Every record before it was read; an auditor reports it
// beside what the entries themselves show.
type TrailerError struct {
	Offset int64
	Msg    string
}

func (e *TrailerError) Error() string {
	return fmt.Sprintf("%v: offset %d: %s", ErrFormat, e.Offset, e.Msg)
}
func (e *TrailerError) Unwrap() error { return ErrFormat }

// Kind is what a record holds.
type Kind int

const (
	KindEntry      Kind = iota + 1 // a logged entry
	KindEvidence                   // an entry conflicting with a logged one
	KindCheckpoint                 // a signed checkpoint note
)

// Record is one entry or evidence record.
type Record struct {
	Kind   Kind
	Raw    []byte // the SignedEntry bytes, or the checkpoint note
	Index  uint64 // 1-based position among the file's records (the header is 1)
	Offset int64  // byte offset of the record's length prefix
}

// Writer writes an export file. Call Checkpoint for each checkpoint, then
// Entry for each logged entry, author by author in seq order, then
// Evidence for each piece of evidence, then Close.
type Writer struct {
	w           *bufio.Writer
	h           hash.Hash
	entries     uint64
	evidence    uint64
	checkpoints uint64
	err         error
}

// NewWriter writes the magic line and the header. The caller fills the
// header in; its version is set here. Its genesis should be the
// federation's (membership.Genesis.Raw: the canonical pb.Genesis bytes,
// SPEC 12.1), which an auditor compares with the genesis it obtained
// itself.
func NewWriter(w io.Writer, hdr *pb.ExportHeader) (*Writer, error) {
	ew := &Writer{w: bufio.NewWriterSize(w, 1<<20), h: sha256.New()}
	ew.write([]byte(Magic))
	hdr.Version = Version
	ew.record(&pb.ExportRecord{Record: &pb.ExportRecord_Header{Header: hdr}})
	return ew, ew.err
}

func (w *Writer) write(b []byte) {
	if w.err != nil {
		return
	}
	w.h.Write(b)
	_, w.err = w.w.Write(b)
}

func (w *Writer) record(r *pb.ExportRecord) {
	if w.err != nil {
		return
	}
	b, err := proto.Marshal(r)
	if err != nil {
		w.err = err
		return
	}
	if len(b) > MaxRecord {
		w.err = fmt.Errorf("%w: a record of %d bytes exceeds %d", ErrFormat, len(b), MaxRecord)
		return
	}
	w.write(binary.AppendUvarint(nil, uint64(len(b))))
	w.write(b)
}

// Checkpoint writes a signed checkpoint note. Checkpoints come before the
// entries.
func (w *Writer) Checkpoint(msg []byte) error {
	if w.entries+w.evidence > 0 && w.err == nil {
		w.err = fmt.Errorf("%w: a checkpoint after entries", ErrFormat)
	}
	w.checkpoints++
	w.record(&pb.ExportRecord{Record: &pb.ExportRecord_Checkpoint{Checkpoint: msg}})
	return w.err
}

// Entry writes a logged entry.
func (w *Writer) Entry(raw []byte) error {
	w.entries++
	w.record(&pb.ExportRecord{Record: &pb.ExportRecord_Entry{Entry: raw}})
	return w.err
}

// Evidence writes an entry that conflicts with a logged one.
func (w *Writer) Evidence(raw []byte) error {
	w.evidence++
	w.record(&pb.ExportRecord{Record: &pb.ExportRecord_Evidence{Evidence: raw}})
	return w.err
}

// Close writes the trailer and flushes. It does not close the
// underlying writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	sum := w.h.Sum(nil)
	b, err := proto.Marshal(&pb.ExportRecord{Record: &pb.ExportRecord_Trailer{Trailer: &pb.ExportTrailer{
		Entries: w.entries, Evidence: w.evidence, Checkpoints: w.checkpoints, Sha256: sum}}})
	if err != nil {
		return err
	}
	// The trailer is not part of its own digest.
	if _, err := w.w.Write(binary.AppendUvarint(nil, uint64(len(b)))); err != nil {
		return err
	}
	if _, err := w.w.Write(b); err != nil {
		return err
	}
	return w.w.Flush()
}

// Reader reads an export file record by record.
type Reader struct {
	r           *bufio.Reader
	h           hash.Hash
	off         int64
	index       uint64
	entries     uint64
	evidence    uint64
	checkpoints uint64
	done        bool
	// Header is the file's header, read by NewReader. Header.Genesis is
	// the genesis the exporter wrote (pb.Genesis bytes, as
	// membership.ParseGenesis reads them), empty from an exporter that
	// wrote none.
	Header *pb.ExportHeader
}

// NewReader reads the magic line and the header.
func NewReader(r io.Reader) (*Reader, error) {
	er := &Reader{r: bufio.NewReaderSize(r, 1<<20), h: sha256.New()}
	magic := make([]byte, len(Magic))
	if _, err := io.ReadFull(er.r, magic); err != nil || string(magic) != Magic {
		return nil, fmt.Errorf("%w: offset 0: not a Staydown export (want the line %q)", ErrFormat, Magic[:len(Magic)-1])
	}
	er.h.Write(magic)
	er.off = int64(len(Magic))
	rec, off, err := er.next()
	if err != nil {
		return nil, err
	}
	hdr := rec.GetHeader()
	if hdr == nil {
		return nil, fmt.Errorf("%w: offset %d: the first record is not the header", ErrFormat, off)
	}
	if hdr.Version != Version {
		return nil, fmt.Errorf("%w: offset %d: export version %d, this build reads %d", ErrFormat, off, hdr.Version, Version)
	}
	er.Header = hdr
	return er, nil
}

// next reads one framed record.
func (r *Reader) next() (*pb.ExportRecord, int64, error) {
	off := r.off
	// The length prefix, read byte by byte so that the digest covers the
	// bytes as they are; only its minimal encoding is accepted.
	var prefix []byte
	for {
		b, err := r.r.ReadByte()
		if err == io.EOF && len(prefix) == 0 {
			return nil, off, fmt.Errorf("%w: offset %d: the file ends without a trailer (truncated?)", ErrFormat, off)
		}
		if err != nil {
			return nil, off, fmt.Errorf("%w: offset %d: record length cut short", ErrFormat, off)
		}
		prefix = append(prefix, b)
		if b < 0x80 {
			break
		}
		if len(prefix) == binary.MaxVarintLen64 {
			return nil, off, fmt.Errorf("%w: offset %d: record length is not a varint", ErrFormat, off)
		}
	}
	n, m := binary.Uvarint(prefix)
	if m != len(prefix) || len(binary.AppendUvarint(nil, n)) != len(prefix) {
		return nil, off, fmt.Errorf("%w: offset %d: record length %x is not a minimal varint", ErrFormat, off, prefix)
	}
	if n == 0 || n > MaxRecord {
		return nil, off, fmt.Errorf("%w: offset %d: record length %d, want 1 to %d", ErrFormat, off, n, MaxRecord)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r.r, b); err != nil {
		return nil, off, fmt.Errorf("%w: offset %d: record of %d bytes cut short (truncated?)", ErrFormat, off, n)
	}
	r.off += int64(len(prefix)) + int64(n)
	r.index++
	var rec pb.ExportRecord
	if err := proto.Unmarshal(b, &rec); err != nil {
		return nil, off, fmt.Errorf("%w: offset %d: record %d does not decode: %v", ErrFormat, off, r.index, err)
	}
	if rec.GetTrailer() == nil {
		r.h.Write(prefix)
		r.h.Write(b)
	}
	return &rec, off, nil
}

// Next returns the next entry or evidence record, and io.EOF after a
// trailer whose counts and digest match the file. Entries come before
// evidence; an entry after evidence, a second header, or anything after
// the trailer is ErrFormat.
func (r *Reader) Next() (Record, error) {
	if r.done {
		return Record{}, io.EOF
	}
	rec, off, err := r.next()
	if err != nil {
		return Record{}, err
	}
	switch p := rec.Record.(type) {
	case *pb.ExportRecord_Entry:
		if r.evidence > 0 {
			return Record{}, fmt.Errorf("%w: offset %d: an entry record after evidence records", ErrFormat, off)
		}
		r.entries++
		return Record{Kind: KindEntry, Raw: p.Entry, Index: r.index, Offset: off}, nil
	case *pb.ExportRecord_Evidence:
		r.evidence++
		return Record{Kind: KindEvidence, Raw: p.Evidence, Index: r.index, Offset: off}, nil
	case *pb.ExportRecord_Checkpoint:
		if r.entries+r.evidence > 0 {
			return Record{}, fmt.Errorf("%w: offset %d: a checkpoint record after entries", ErrFormat, off)
		}
		r.checkpoints++
		return Record{Kind: KindCheckpoint, Raw: p.Checkpoint, Index: r.index, Offset: off}, nil
	case *pb.ExportRecord_Trailer:
		t := p.Trailer
		switch {
		case t.Entries != r.entries || t.Evidence != r.evidence || t.Checkpoints != r.checkpoints:
			r.done = true
			return Record{}, &TrailerError{off, fmt.Sprintf("the trailer counts %d entries, %d evidence and %d checkpoints, the file holds %d, %d and %d (records removed or added)",
				t.Entries, t.Evidence, t.Checkpoints, r.entries, r.evidence, r.checkpoints)}
		case string(t.Sha256) != string(r.h.Sum(nil)):
			r.done = true
			return Record{}, &TrailerError{off, fmt.Sprintf("the trailer's SHA-256 %x does not match the file's %x (bytes were changed)", t.Sha256, r.h.Sum(nil))}
		}
		if _, err := r.r.ReadByte(); err != io.EOF {
			return Record{}, fmt.Errorf("%w: offset %d: bytes after the trailer", ErrFormat, r.off)
		}
		r.done = true
		return Record{}, io.EOF
	case *pb.ExportRecord_Header:
		return Record{}, fmt.Errorf("%w: offset %d: a second header", ErrFormat, off)
	default:
		return Record{}, fmt.Errorf("%w: offset %d: an empty or unknown record", ErrFormat, off)
	}
}
