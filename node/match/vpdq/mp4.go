package vpdq

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
)

// MP4 and MOV header reading (package doc, "Speed"). For the common case —
// an ISO BMFF / QuickTime file with one H.264 or H.265 video track and a
// plain sample table — the stream information decode needs (display size,
// rotation, frame rate, duration) is read here from the moov box, the same
// fields ffprobe derives it from, so that ffprobe's process (about 0.2 s of
// CPU, a sixth of hashing a short video) is not started. Anything outside
// that case (another container, fragmented MP4, several video tracks, an
// edit list of more than one entry, a variable frame rate, a matrix that is not a pure rotation,
// another codec) returns errNotPlainMP4 and HashFile asks ffprobe as before.
// The reader owns nothing: it reads the file through the given ReaderAt and
// keeps no reference to it.

// errNotPlainMP4 says readMP4 cannot answer; ffprobe is asked instead. It
// is never returned to callers of Hash.
var errNotPlainMP4 = errors.New("not a plain MP4")

const (
	// maxMoov bounds the moov box read into memory (a 2 GiB phone video's
	// is a few MB).
	maxMoov = 64 << 20
	// maxTopBoxes bounds the top-level boxes walked before moov.
	maxTopBoxes = 1024
)

// readMP4 reads the stream information of the first video track of the
// MP4/MOV file r of the given size; errNotPlainMP4 when the file is not of
// the kind described above. The width and height are the sample entry's,
// swapped for a 90 or 270 degree rotation, as probe reports them.
func readMP4(r io.ReaderAt, size int64) (streamInfo, error) {
	var hdr [16]byte
	var off int64
	for range maxTopBoxes {
		typ, boxSize, hlen, err := boxHeader(r, off, size, hdr[:])
		if err != nil {
			return streamInfo{}, err
		}
		switch typ {
		case "moof", "mvex":
			return streamInfo{}, errNotPlainMP4 // fragmented
		case "moov":
			if boxSize-hlen > maxMoov {
				return streamInfo{}, errNotPlainMP4
			}
			buf := make([]byte, boxSize-hlen)
			if _, err := r.ReadAt(buf, off+hlen); err != nil {
				return streamInfo{}, errNotPlainMP4
			}
			return parseMoov(buf)
		}
		off += boxSize
		if off >= size {
			break
		}
	}
	return streamInfo{}, errNotPlainMP4
}

// boxHeader reads the header of the box at off in a file of size bytes:
// its type, whole size and header length. A box that does not fit the file
// is errNotPlainMP4.
func boxHeader(r io.ReaderAt, off, size int64, hdr []byte) (string, int64, int64, error) {
	if size-off < 8 {
		return "", 0, 0, errNotPlainMP4
	}
	if _, err := r.ReadAt(hdr[:8], off); err != nil {
		return "", 0, 0, errNotPlainMP4
	}
	boxSize, hlen := int64(binary.BigEndian.Uint32(hdr[:4])), int64(8)
	typ := string(hdr[4:8])
	switch boxSize {
	case 0: // to the end of the file
		boxSize = size - off
	case 1:
		if size-off < 16 {
			return "", 0, 0, errNotPlainMP4
		}
		if _, err := r.ReadAt(hdr[8:16], off+8); err != nil {
			return "", 0, 0, errNotPlainMP4
		}
		u := binary.BigEndian.Uint64(hdr[8:16])
		if u > math.MaxInt64 {
			return "", 0, 0, errNotPlainMP4
		}
		boxSize, hlen = int64(u), 16
	}
	if boxSize < hlen || boxSize > size-off {
		return "", 0, 0, errNotPlainMP4
	}
	return typ, boxSize, hlen, nil
}

// children splits the payload of a container box into its child boxes,
// calling fn with each one's type and payload; a malformed child is
// errNotPlainMP4.
func children(b []byte, fn func(typ string, payload []byte) error) error {
	for len(b) > 0 {
		if len(b) < 8 {
			return errNotPlainMP4
		}
		size, hlen := uint64(binary.BigEndian.Uint32(b[:4])), uint64(8)
		switch size {
		case 0:
			size = uint64(len(b))
		case 1:
			if len(b) < 16 {
				return errNotPlainMP4
			}
			size, hlen = binary.BigEndian.Uint64(b[8:16]), 16
		}
		if size < hlen || size > uint64(len(b)) {
			return errNotPlainMP4
		}
		if err := fn(string(b[4:8]), b[hlen:size]); err != nil {
			return err
		}
		b = b[size:]
	}
	return nil
}

// videoTrack is what parseMoov collects of one track.
type videoTrack struct {
	isVideo              bool
	codec                string
	width, height        int
	matrix               [4]int32 // tkhd a, b, c, d (16.16 fixed point)
	timescale            uint32   // mdhd
	mdhdDuration         uint64   // in timescale units
	edits                int      // elst entries
	editDuration         uint64   // the single edit's duration, in the movie's timescale
	frames, sttsDuration uint64   // stts: samples and their summed durations
	sttsEntries          uint64
	hasStts              bool
}

func parseMoov(moov []byte) (streamInfo, error) {
	var movieScale uint32
	var tracks []videoTrack
	err := children(moov, func(typ string, p []byte) error {
		switch typ {
		case "mvhd":
			ts, _, err := timescaleDuration(p)
			movieScale = ts
			return err
		case "mvex":
			return errNotPlainMP4 // fragmented
		case "trak":
			var t videoTrack
			if err := parseTrak(p, &t); err != nil {
				return err
			}
			if t.isVideo {
				tracks = append(tracks, t)
			}
		}
		return nil
	})
	if err != nil {
		return streamInfo{}, err
	}
	if len(tracks) != 1 {
		return streamInfo{}, errNotPlainMP4
	}
	t := tracks[0]
	switch t.codec {
	case "avc1", "avc3", "hvc1", "hev1":
	default:
		return streamInfo{}, errNotPlainMP4
	}
	// A variable frame rate (more than one stts entry) is left to ffprobe:
	// libavformat's stream duration then depends on how the edit list and
	// the composition offsets combine, which is not worth repeating here.
	if !t.hasStts || t.sttsEntries != 1 || t.frames == 0 || t.sttsDuration == 0 || t.timescale == 0 || t.edits > 1 ||
		t.width <= 0 || t.height <= 0 || (t.edits == 1 && movieScale == 0) {
		return streamInfo{}, errNotPlainMP4
	}
	info := streamInfo{width: t.width, height: t.height}
	// The display matrix: only the identity and the three quarter turns
	// (entries 0 or ±1.0), as probe rounds any rotation to a quarter turn
	// but a scaled or mirrored matrix needs ffprobe's reading.
	const one = 1 << 16
	switch t.matrix {
	case [4]int32{one, 0, 0, one}:
		info.rotation = 0
	case [4]int32{0, one, -one, 0}:
		info.rotation = 270 // ffprobe: rotation -90
	case [4]int32{-one, 0, 0, -one}:
		info.rotation = 180
	case [4]int32{0, -one, one, 0}:
		info.rotation = 90
	default:
		return streamInfo{}, errNotPlainMP4
	}
	if info.rotation == 90 || info.rotation == 270 {
		info.width, info.height = info.height, info.width
	}
	// libavformat's mov demuxer: avg_frame_rate = timescale * samples /
	// summed stts durations.
	info.rate = float64(t.timescale) * float64(t.frames) / float64(t.sttsDuration)
	if info.rate < 0.01 || info.rate > 1000 || math.IsNaN(info.rate) {
		return streamInfo{}, errNotPlainMP4
	}
	// The stream's duration as ffprobe reports it: the media header's.
	info.duration = float64(t.mdhdDuration) / float64(t.timescale)
	if math.IsInf(info.duration, 0) || info.duration <= 0 {
		info.duration = 0
	}
	return info, nil
}

// timescaleDuration reads a full box of version 0 or 1 laid out as mvhd and
// mdhd are: creation and modification times, timescale, duration.
func timescaleDuration(p []byte) (uint32, uint64, error) {
	if len(p) < 4 {
		return 0, 0, errNotPlainMP4
	}
	switch p[0] {
	case 0:
		if len(p) < 20 {
			return 0, 0, errNotPlainMP4
		}
		return binary.BigEndian.Uint32(p[12:16]), uint64(binary.BigEndian.Uint32(p[16:20])), nil
	case 1:
		if len(p) < 32 {
			return 0, 0, errNotPlainMP4
		}
		return binary.BigEndian.Uint32(p[20:24]), binary.BigEndian.Uint64(p[24:32]), nil
	}
	return 0, 0, errNotPlainMP4
}

func parseTrak(p []byte, t *videoTrack) error {
	return children(p, func(typ string, p []byte) error {
		switch typ {
		case "tkhd":
			// version, flags; times and track ID (and reserved); then
			// duration, reserved, layer, group, volume, reserved, matrix.
			mo := 40 // matrix offset for version 0
			if len(p) > 0 && p[0] == 1 {
				mo = 52
			}
			if len(p) < mo+36 {
				return errNotPlainMP4
			}
			for i, j := range []int{0, 1, 3, 4} {
				t.matrix[i] = int32(binary.BigEndian.Uint32(p[mo+4*j:]))
			}
		case "edts":
			return children(p, func(typ string, p []byte) error {
				if typ != "elst" {
					return nil
				}
				if len(p) < 8 {
					return errNotPlainMP4
				}
				n := binary.BigEndian.Uint32(p[4:8])
				t.edits = int(min(n, 2))
				if n != 1 {
					return nil
				}
				switch p[0] {
				case 0:
					if len(p) < 20 {
						return errNotPlainMP4
					}
					t.editDuration = uint64(binary.BigEndian.Uint32(p[8:12]))
				case 1:
					if len(p) < 28 {
						return errNotPlainMP4
					}
					t.editDuration = binary.BigEndian.Uint64(p[8:16])
				default:
					return errNotPlainMP4
				}
				return nil
			})
		case "mdia":
			return parseMdia(p, t)
		}
		return nil
	})
}

func parseMdia(p []byte, t *videoTrack) error {
	return children(p, func(typ string, p []byte) error {
		switch typ {
		case "mdhd":
			ts, d, err := timescaleDuration(p)
			t.timescale, t.mdhdDuration = ts, d
			return err
		case "hdlr":
			// version, flags, pre_defined, handler_type
			t.isVideo = len(p) >= 12 && string(p[8:12]) == "vide"
		case "minf":
			return children(p, func(typ string, p []byte) error {
				if typ != "stbl" {
					return nil
				}
				return children(p, func(typ string, p []byte) error {
					switch typ {
					case "stsd":
						return parseStsd(p, t)
					case "stts":
						return parseStts(p, t)
					}
					return nil
				})
			})
		}
		return nil
	})
}

// parseStsd reads the first sample entry's format and, for a visual
// entry, its width and height.
func parseStsd(p []byte, t *videoTrack) error {
	if len(p) < 8 || binary.BigEndian.Uint32(p[4:8]) != 1 {
		return errNotPlainMP4 // none, or several sample descriptions
	}
	e := p[8:]
	// size, format, reserved(6), data_reference_index(2), then the visual
	// entry: pre_defined/reserved(16), width(2), height(2).
	if len(e) < 36 {
		return errNotPlainMP4
	}
	t.codec = string(e[4:8])
	t.width = int(binary.BigEndian.Uint16(e[32:34]))
	t.height = int(binary.BigEndian.Uint16(e[34:36]))
	return nil
}

// parseStts sums the time-to-sample table as libavformat's mov demuxer does
// for the frame rate, including its correction of a last entry of one
// sample with an implausibly long duration.
func parseStts(p []byte, t *videoTrack) error {
	if len(p) < 8 {
		return errNotPlainMP4
	}
	n := uint64(binary.BigEndian.Uint32(p[4:8]))
	if n*8 > uint64(len(p)-8) {
		return errNotPlainMP4
	}
	var frames, dur uint64
	for i := range n {
		count := uint64(binary.BigEndian.Uint32(p[8+8*i:]))
		d := int32(binary.BigEndian.Uint32(p[12+8*i:]))
		if d < 0 {
			return errNotPlainMP4 // libavformat rewrites these; ffprobe decides
		}
		sd := uint64(d)
		if i+1 == n && i > 0 && count == 1 && frames > 100 && sd/10 > dur/frames {
			sd = dur / frames
		}
		dur += sd * count
		frames += count
		if frames > math.MaxInt32 || dur > math.MaxInt64/2 {
			return errNotPlainMP4
		}
	}
	t.frames, t.sttsDuration, t.sttsEntries, t.hasStts = frames, dur, n, true
	return nil
}
