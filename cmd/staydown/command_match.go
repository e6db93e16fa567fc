package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/node/api"
)

func (c *cli) matchCommand() *cobra.Command {
	var typ, file string
	var noDihedral bool
	cmd := &cobra.Command{
		Use:   "match --dir D (TYPE:VALUE | --type TYPE VALUE | --file FILE [--no-dihedral])",
		Short: "Ask what the federation says about a signal or a file; exit 0 block, 3 review, 1 none",
		Long: `Match a signal, TYPE:VALUE (as "staydown hash" prints it) or a VALUE of
--type, against every log this node holds; or,
with --file, send FILE to the node, which hashes it (sha256, md5, and PDQ
for a JPEG, PNG, GIF or WebP image, vPDQ for an MP4, MOV, WebM, MKV or AVI
video) and matches every hash. A video is streamed from the file, up to
the node's max_video_upload (default 2 GiB); it matches every stored
video whose frames are near enough under the node's policy
(vpdq_query_match, vpdq_compared_match), and its frames are matched
against stored images too (frame hits). A PDQ hash
matches every stored hash within the node's pdq_threshold (default 31);
for a file it is matched with the image rotated and mirrored too, unless
--no-dihedral.

Prints one line per attestation (status, author, labels, entry id, time,
and for PDQ the distance and the rotation that matched; for a video
query=P% (N/M frames): the share of your video's frames found in the
stored one, compared=P% (N/M): the share of the stored video's frames
found in yours, and the segments of your video that match, in seconds
from its start), or "no match"; for a video then each frame hit (a
stored image seen in your video) with its distance and the times of the
frames that show it (a run of identical frames counts once, at its
start); then the verdict of the node's policy (block, review or none);
with --file, the same for each hash under a TYPE:VALUE line, a video's
vpdq value summed up there as vpdq:[N frames, FROM-TO s, key HEX…] (that
summary is not a value match takes). With --json, the node's answer:
{"signal", "matched", "attestations", "verdict"}, or for a file
{"hashes", "results", "matched", "verdict", "video_frames", ...}, every
value whole.

The exit code is the verdict's, so that an upload pipeline can act on it
without reading the output: 0 block (the node's policy says act on it), 3
review (a person decides: an active attestation that alone does not make
block, or one disputed or allowlisted by a member the policy trusts), 1
none (nothing found, or only retracted attestations), 2 an error. An
allow entry or dispute by a member the policy does not trust is listed
but does not change the verdict. With --file, the strongest verdict
of the file's hashes.`,
		Args: func(cmd *cobra.Command, values []string) error {
			if file != "" {
				return args("", 0, 0)(cmd, values)
			}
			return args("VALUE", 1, 1)(cmd, values)
		},
		RunE: func(cmd *cobra.Command, values []string) error {
			if file != "" {
				if typ != "" {
					return usagef("--type: give either --type TYPE VALUE or --file FILE, not both")
				}
				return c.matchFile(cmd.Context(), file, !noDihedral)
			}
			if noDihedral {
				return usagef("--no-dihedral: only with --file")
			}
			if err := notSummary(typ, values[0]); err != nil {
				return err
			}
			sigs, err := signalArgs(typ, values)
			if err != nil {
				return err
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			q := url.Values{"type": {sigs[0].Type}, "value": {sigs[0].Value}}
			var res api.MatchResult
			if err := cl.call(cmd.Context(), http.MethodGet, "/v1/match?"+q.Encode(), nil, &res); err != nil {
				return err
			}
			c.code = verdictExit(res.Verdict)
			if c.json {
				return c.printJSON(res)
			}
			if err := printAttestations(c, res.Attestations, ""); err != nil {
				return err
			}
			return printVerdict(c, res, "")
		},
	}
	cmd.Flags().StringVarP(&typ, "type", "t", "", "signal type: sha256, md5, pdq, vpdq, url or account")
	cmd.Flags().StringVarP(&file, "file", "f", "", "a file to hash on the node and match")
	cmd.Flags().BoolVar(&noDihedral, "no-dihedral", false, "with --file: match the image as it is, not also rotated and mirrored")
	return cmd
}

// videoRequestTimeout bounds a video's match: its upload, and hashing
// it on the node (vpdq.DefaultTimeout).
const videoRequestTimeout = 40 * time.Minute

// matchFile sends the file to /v1/match/file and prints the answer. An
// image is read whole (at most api.MaxFileSize); a video (by its first
// bytes) is streamed from the file with its size, up to the node's
// max_video_upload, which the node enforces.
func (c *cli) matchFile(ctx context.Context, name string, dihedral bool) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	switch {
	case err != nil:
		return err
	case !st.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", display(name))
	case st.Size() == 0:
		return fmt.Errorf("%q is empty: there is nothing to match", name)
	}
	head := make([]byte, 12)
	n, _ := io.ReadFull(f, head)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	video := api.SniffVideo(head[:n]) != ""
	if !video && st.Size() > api.MaxFileSize {
		return fmt.Errorf("%s is %d bytes; a node matches images of up to %d bytes (32 MiB), and this is not a video it knows (MP4, MOV, WebM, MKV, AVI): hash it with `staydown hash` and match the hashes", display(name), st.Size(), api.MaxFileSize)
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	path := "/v1/match/file"
	if !dihedral {
		path += "?dihedral=false"
	}
	var res api.FileMatch
	if video {
		vc := *cl
		hc := *cl.http
		hc.Timeout = videoRequestTimeout
		vc.http = &hc
		if err = vc.do(ctx, http.MethodPost, path, sizedReader{f, st.Size()}, "application/octet-stream", &res); err != nil {
			// The node's message names the problem (not a video, truncated,
			// over max_video_upload, no ffmpeg); this names the file.
			err = fmt.Errorf("matching the video %q (%d bytes): %w", name, st.Size(), err)
		}
	} else {
		var data []byte
		if data, err = io.ReadAll(f); err == nil {
			err = cl.postBytes(ctx, path, data, &res)
		}
	}
	if err != nil {
		return err
	}
	c.code = verdictExit(res.Verdict)
	if c.json {
		return c.printJSON(res)
	}
	for i, r := range res.Results {
		if _, err := fmt.Fprintln(c.stdout, resultHead(res, i)); err != nil {
			return err
		}
		if len(r.Attestations) == 0 && len(r.FrameHits) > 0 {
			// "no match" above the frame hits would read as if nothing
			// were found: it is only that no stored video matches.
			if _, err := fmt.Fprintln(c.stdout, "  no stored video matches"); err != nil {
				return err
			}
		} else if err := printAttestations(c, r.Attestations, "  "); err != nil {
			return err
		}
		if err := printFrameHits(c, r.FrameHits, "  "); err != nil {
			return err
		}
		if err := printVerdict(c, r, "  "); err != nil {
			return err
		}
	}
	if res.ImageError != "" {
		fmt.Fprintf(c.stdout, "no pdq hash: %s\n", res.ImageError)
	}
	_, err = fmt.Fprintf(c.stdout, "verdict: %s\n", res.Verdict)
	return err
}

// vpdqSummaryForm is the summary humanSignal prints for a vpdq value (after
// "vpdq:"), or for one that does not parse.
var vpdqSummaryForm = regexp.MustCompile(`^\[(\d+ frames, .* s, key [0-9a-f]*…|not a vpdq value: \d+ bytes)\]$`)

// notSummary refuses a value that is the summary text output prints for a
// video (a person copies the head line of `match --file`, or an alert's
// signal): it is not the value, and parsing it as JSON would fail with a
// message about a character of it.
func notSummary(typ, value string) error {
	v := value
	if typ == "" || typ == "vpdq" {
		v = strings.TrimPrefix(v, "vpdq:")
	}
	if (typ == "" && v == value) || (typ != "" && typ != "vpdq") || !vpdqSummaryForm.MatchString(v) {
		return nil
	}
	return fmt.Errorf("value %q is the summary that text output prints for a video, not its vpdq value: match the video itself with --file FILE, or give the whole value, as `staydown hash FILE` or --json prints it", value)
}

// resultHead is the line that heads the i-th result of a file's match:
// its signal as a person reads it (humanSignal: a vpdq value, which may be
// 100 KB of JSON, summed up as its frame count, time span and key; --json
// has it whole), and a PDQ hash's quality.
func resultHead(res api.FileMatch, i int) string {
	r := res.Results[i]
	head := printable(humanSignal(r.Signal.Type, r.Signal.Value))
	if i < len(res.Hashes) && res.Hashes[i].Quality != nil {
		head += fmt.Sprintf(" quality=%d", *res.Hashes[i].Quality)
	}
	return head
}

// sizedReader is a request body whose length is known, sent with a
// Content-Length rather than chunked.
type sizedReader struct {
	io.Reader
	size int64
}

// printFrameHits writes the stored images found in frames of a video,
// each with the frames' times.
func printFrameHits(c *cli, hits []api.Attestation, indent string) error {
	if len(hits) == 0 {
		return nil
	}
	if _, err := fmt.Fprintln(c.stdout, indent+"frame hits (stored images in the video):"); err != nil {
		return err
	}
	return printAttestations(c, hits, indent+"  ")
}

// seconds formats a time in a video.
func videoTime(s float64) string { return strconv.FormatFloat(s, 'f', -1, 64) + "s" }

// verdictExit is match's exit code for a verdict.
func verdictExit(v string) int {
	switch api.Verdict(v) {
	case api.VerdictBlock:
		return exitOK
	case api.VerdictReview:
		return exitReview
	}
	return exitNoMatch
}

// printVerdict writes the result's verdict, or why it was not matched.
func printVerdict(c *cli, r api.MatchResult, indent string) error {
	if r.Skipped != "" {
		_, err := fmt.Fprintf(c.stdout, "%sskipped: %s\n", indent, r.Skipped)
		return err
	}
	_, err := fmt.Fprintf(c.stdout, "%sverdict: %s\n", indent, r.Verdict)
	return err
}

// printAttestations writes one aligned line per attestation, with what
// changed its status at the end, each line after indent.
func printAttestations(c *cli, atts []api.Attestation, indent string) error {
	if len(atts) == 0 {
		_, err := fmt.Fprintln(c.stdout, indent+"no match")
		return err
	}
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	for _, a := range atts {
		var notes []string
		for _, r := range a.Reasons {
			n := r.Kind + " by " + r.Author
			if r.Category != "" {
				n += " (" + printable(r.Category) + ")"
			}
			if r.Reason != "" {
				n += ": " + printable(r.Reason)
			}
			if r.Ignored {
				n += " (not trusted: no weight in the verdict)"
			}
			notes = append(notes, n)
		}
		if a.Equivocated {
			notes = append(notes, a.Author+" is flagged for equivocation")
		}
		fields := []string{a.Status, a.Author, strings.Join(printables(a.Labels), ","), a.ID, a.Time}
		if a.Distance != nil {
			d := fmt.Sprintf("distance=%d", *a.Distance)
			if a.Transform != "" {
				d += " (" + a.Transform + ")"
			}
			fields = append(fields, d)
		}
		if len(a.FrameTimes) > 0 {
			ts := make([]string, len(a.FrameTimes))
			for i, t := range a.FrameTimes {
				ts[i] = videoTime(t)
			}
			fields = append(fields, "at "+strings.Join(ts, ","))
		}
		if v := a.Video; v != nil {
			segs := make([]string, len(v.Segments))
			for i, sg := range v.Segments {
				segs[i] = videoTime(sg.From) + "-" + videoTime(sg.To)
			}
			fields = append(fields, fmt.Sprintf("query=%.1f%% (%d/%d frames) compared=%.1f%% (%d/%d) segments %s",
				v.QueryPercent, v.QueryMatched, v.QueryFrames, v.ComparedPercent, v.ComparedMatched, v.ComparedFrames, strings.Join(segs, ",")))
		}
		line := indent + strings.Join(fields, "\t")
		if len(notes) > 0 {
			line += "\t" + strings.Join(notes, "; ")
		}
		fmt.Fprintln(w, line)
	}
	return w.Flush()
}

// postBytes sends data as the body of a POST (application/octet-stream)
// and decodes a 2xx answer into out, with the errors call gives.
func (cl *client) postBytes(ctx context.Context, path string, data []byte, out any) error {
	return cl.do(ctx, http.MethodPost, path, bytes.NewReader(data), "application/octet-stream", out)
}
