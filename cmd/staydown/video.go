package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/match/vpdq"
	"github.com/staydown/staydown/protocol"
)

// Videos on the command line: hash and add sniff a file's first bytes and,
// for a video, run the vpdq hasher (ffmpeg, node/match/vpdq) on it locally.

// videoFormat names the container of a video file from its first bytes
// ("mp4" for MP4 and MOV, whose ISO base media boxes ffmpeg reads alike;
// "matroska" for MKV and WebM; "avi"), or "" when they are not one of
// these. It goes by the content, never the file name.
func videoFormat(head []byte) string {
	switch {
	case len(head) >= 12 && string(head[:4]) == "RIFF" && string(head[8:12]) == "AVI ":
		return "avi"
	case bytes.HasPrefix(head, []byte{0x1a, 0x45, 0xdf, 0xa3}): // EBML
		return "matroska"
	case len(head) >= 8:
		// An ISO base media file (MP4, MOV, 3GP) starts with a box: a
		// 4-byte size, then its type; old QuickTime files may start with
		// moov, mdat, wide, free or skip instead of ftyp.
		switch string(head[4:8]) {
		case "ftyp", "moov", "mdat", "wide", "free", "skip", "pnot":
			return "mp4"
		}
	}
	return ""
}

// sniffVideo reads the first bytes of the file name and says which video
// container it is ("" for none).
func sniffVideo(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 16)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading %s: %w", display(name), err)
	}
	return videoFormat(head[:n]), nil
}

// videoOptions are the hasher's options from the command's flags.
type videoOptions struct {
	everyFrame bool
	ffmpeg     string
}

func (o videoOptions) hasher() vpdq.Options {
	return vpdq.Options{EveryFrame: o.everyFrame, FFmpeg: o.ffmpeg}
}

// hashVideo hashes the video file name. An error names the file, quoted,
// and says what is wrong (not a video, truncated, frame too large, ffmpeg
// missing with the command that installs it).
func hashVideo(ctx context.Context, name string, opts videoOptions) (vpdq.Video, error) {
	v, err := vpdq.HashFile(ctx, name, opts.hasher())
	if err != nil {
		return vpdq.Video{}, fmt.Errorf("hashing the video %q: %w", name, err)
	}
	return v, nil
}

// videoSignal is the vpdq signal of a hashed video in its interchange form
// (python-threatexchange's JSON list), as the API takes it. It fails when
// the video has no frame or more than protocol.MaxVPDQFrames distinct
// frames (Video.WireFrames).
func videoSignal(name string, v vpdq.Video) (api.Signal, int, error) {
	frames, err := v.WireFrames()
	if err != nil {
		return api.Signal{}, 0, fmt.Errorf("the video %q: %w", name, err)
	}
	return api.Signal{Type: string(protocol.SignalVPDQ), Value: protocol.FormatVPDQ(frames)}, len(frames), nil
}

// videoFileSignals is, when the file name (not "-") is a video, its
// signals: sha256, md5 and vpdq, hashed here; ok is false when it is not a
// video (a list of signals, then). add and watch add take a video as their
// --file this way.
func videoFileSignals(ctx context.Context, name string, opts videoOptions) (sigs []api.Signal, ok bool, err error) {
	if name == "" || name == "-" {
		return nil, false, nil
	}
	format, err := sniffVideo(name)
	if err != nil || format == "" {
		return nil, false, err
	}
	f, err := hashPath(ctx, name, opts, false)
	if err != nil {
		return nil, true, err
	}
	for _, h := range f.Hashes {
		sigs = append(sigs, api.Signal{Type: h.Type, Value: h.Value})
	}
	return sigs, true, nil
}
