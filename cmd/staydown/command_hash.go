package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/match/filehash"
	"github.com/staydown/staydown/node/match/vpdq"
)

func (c *cli) hashCommand() *cobra.Command {
	var frames bool
	var video videoOptions
	cmd := &cobra.Command{
		Use:   "hash [--frames] [--every-frame] [--ffmpeg PATH] FILE...",
		Short: "Print the signals of files: sha256, md5, and pdq for images, vpdq for videos",
		Long: `Hash each FILE as a node's /v1/match/file does, locally (no node needed):
sha256 and md5 of the bytes and, if the file is a JPEG, PNG, GIF or WebP
image, its PDQ hash and the hash's quality (0-100; below 50 a node does
not match it); if it is a video (MP4, MOV, MKV, WebM or AVI, told by its
content, not its name), its vpdq hash: the PDQ hashes of one frame a
second (--every-frame: of every frame, the reference implementation's
setting), decoded by ffmpeg (on PATH, or --ffmpeg PATH; Debian:
apt-get install ffmpeg).

Prints one TYPE:VALUE line per signal, the form "add" and "match" take,
the pdq line followed by quality=N; a vpdq value is python-threatexchange's
JSON list of "pdq_hex,quality,seconds" strings, on one line. With several
files each line ends with two spaces and the file's name. So

  staydown hash *.mp4 | staydown add --dir D --file - --label LABEL

publishes them. With --frames, a video's frames instead, one a line in the
reference's text form frame,quality,pdq_hex,seconds (with several files,
each file's frames after a "# FILE" line). With --json, an array of
{"file", "size", "hashes", "image", "image_error", "video"}, "video"
holding a video's container, frame size, duration, frame rate and frames.`,
		Args: args("FILE", 1, -1),
		RunE: func(cmd *cobra.Command, files []string) error {
			var all []fileHashes
			for _, name := range files {
				f, err := hashPath(cmd.Context(), name, video, frames)
				if err != nil {
					return err
				}
				all = append(all, f)
			}
			if c.json {
				return c.printJSON(all)
			}
			if frames {
				return c.printFrames(all)
			}
			for _, f := range all {
				for _, h := range f.Hashes {
					line := h.Type + ":" + h.Value
					if h.Quality != nil {
						line += fmt.Sprintf(" quality=%d", *h.Quality)
					}
					if len(files) > 1 {
						line += "  " + f.File
					}
					if _, err := fmt.Fprintln(c.stdout, line); err != nil {
						return err
					}
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&frames, "frames", false, "print a video's frames, one a line: frame,quality,pdq_hex,seconds")
	f.BoolVar(&video.everyFrame, "every-frame", false, "hash every frame of a video, not one a second")
	f.StringVar(&video.ffmpeg, "ffmpeg", "", "the ffmpeg binary (default: ffmpeg on PATH; ffprobe is taken from beside it)")
	return cmd
}

// fileHashes is one file's entry in `hash --json`.
type fileHashes struct {
	File       string         `json:"file"`
	Size       int64          `json:"size"`
	Hashes     []api.FileHash `json:"hashes"`
	Image      string         `json:"image"`
	ImageError string         `json:"image_error,omitempty"`
	Video      *videoHashes   `json:"video,omitempty"`
}

// videoHashes is what `hash --json` says of a video beyond its signals.
type videoHashes struct {
	Format    string  `json:"format"` // container: mp4 (MP4, MOV), matroska (MKV, WebM), avi
	Width     int     `json:"width"`  // as hashed, after rotation
	Height    int     `json:"height"`
	Rotation  int     `json:"rotation"`
	FrameRate float64 `json:"frame_rate"`
	Duration  float64 `json:"duration"` // seconds, as the file declares it
	Decoded   int     `json:"decoded"`  // frames hashed before consecutive repeats were dropped
	// Frames are the frames the hasher kept (consecutive repeats dropped),
	// in the order of the video, with their full timestamps; the vpdq
	// signal carries the same frames rounded to the millisecond, in
	// canonical order.
	Frames []videoFrame `json:"frames"`
	// frames keeps the hasher's frames for --frames text output.
	frames []vpdq.Frame
}

type videoFrame struct {
	Frame     int     `json:"frame"`
	Quality   int     `json:"quality"`
	PDQ       string  `json:"pdq"`
	Timestamp float64 `json:"timestamp"`
}

// hashPath hashes the file name: sha256 and md5, and pdq for an image or
// vpdq for a video. With frames, a video's frames are kept but its vpdq
// signal is not built (--frames prints every frame hashed, even more than a
// signal holds).
func hashPath(ctx context.Context, name string, video videoOptions, frames bool) (fileHashes, error) {
	f, err := os.Open(name)
	if err != nil {
		return fileHashes{}, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return fileHashes{}, err
	} else if !st.Mode().IsRegular() {
		return fileHashes{}, fmt.Errorf("%s is not a regular file", display(name))
	}
	format, err := sniffVideo(name)
	if err != nil {
		return fileHashes{}, err
	}
	if frames && format == "" {
		return fileHashes{}, fmt.Errorf("--frames: %q is not a video (MP4, MOV, MKV, WebM or AVI)", name)
	}
	h, err := filehash.ReadSeeker(f)
	if err != nil {
		return fileHashes{}, fmt.Errorf("reading %s: %w", display(name), err)
	}
	m := api.NewFileMatch(h, false, nil)
	out := fileHashes{File: name, Size: h.Size, Hashes: m.Hashes, Image: m.Image, ImageError: m.ImageError}
	if format == "" {
		return out, nil
	}
	v, err := hashVideo(ctx, name, video)
	if err != nil {
		return fileHashes{}, err
	}
	out.ImageError = ""
	out.Video = &videoHashes{Format: format, Width: v.Width, Height: v.Height, Rotation: v.Rotation,
		FrameRate: v.FrameRate, Duration: v.Duration, Decoded: v.Decoded, frames: v.Frames}
	out.Video.Frames = make([]videoFrame, len(v.Frames))
	for i, fr := range v.Frames {
		out.Video.Frames[i] = videoFrame{Frame: fr.Frame, Quality: fr.Quality, PDQ: fr.PDQ.String(), Timestamp: fr.Timestamp}
	}
	if frames {
		return out, nil
	}
	sig, _, err := videoSignal(name, v)
	if err != nil {
		return fileHashes{}, err
	}
	out.Hashes = append(out.Hashes, api.FileHash{Type: sig.Type, Value: sig.Value})
	return out, nil
}

// printFrames writes each video's frames in the reference's text form.
func (c *cli) printFrames(all []fileHashes) error {
	for _, f := range all {
		if len(all) > 1 {
			if _, err := fmt.Fprintf(c.stdout, "# %s\n", f.File); err != nil {
				return err
			}
		}
		if err := vpdq.WriteText(c.stdout, f.Video.frames); err != nil {
			return err
		}
	}
	return nil
}
