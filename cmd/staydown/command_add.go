package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/protocol"
)

func (c *cli) addCommand() *cobra.Command {
	var typ, caseRef, file string
	var labels []string
	var video videoOptions
	cmd := &cobra.Command{
		Use:   "add --dir D --label LABEL [--label LABEL ...] [--case REF] [--type TYPE] (VALUE ... | --file LIST | --file VIDEO)",
		Short: "Publish a hash addition: these signals identify terrorist content",
		Long: `Publish a hash addition to this node's log: the signals identify
terrorist content (or an account). Prints the new entry's id.

A signal is TYPE:VALUE (sha256:HEX, pdq:HEX, url:https://...,
account:SERVICE:ID: the form "staydown hash" prints) or, with --type, a
bare VALUE of that type; a TYPE: prefix that contradicts --type is an
error. Up to 1,000 VALUEs on the command line; for more, --file LIST ("-"
for standard input): one signal per line, blank lines and lines starting
with # skipped, text after a sha256, md5, pdq or vpdq value (quality=N, a file
name) ignored, so that

  staydown hash *.jpg | staydown add --dir D --file - --label graphic-violence

publishes the hashes of those files (images and videos alike; a vpdq
value ends at its "]"). The whole list is checked before anything is
sent, and a signal listed twice is sent once. An entry holds
at most 1,000 signals: a longer list is published as several additions of
up to 1,000 each, with the same labels and case, and the id of each is
printed, one a line, as it is published (with --json, an array of the
answers); if one is refused, the error lists those published before it.

--file VIDEO: when the file is a video (MP4, MOV, MKV, WebM or AVI, told
by its content, not its name), it is hashed here as "staydown hash" does
(ffmpeg on PATH, or --ffmpeg PATH; --every-frame to hash every frame, for
a video of a minute or less: a vpdq signal holds at most 1,500 frames) and
one addition is published carrying its sha256, md5 and vpdq signals.

--case REF is signed into the entry: every member holds it, and an
export or transparency report can show it. Use a reference that names no
person and no investigation detail.

Types: sha256, md5, pdq (hex), url (absolute http(s) URL), account
(SERVICE:ID), vpdq (python-threatexchange's JSON list of
"pdq_hex,quality,seconds" strings, as "staydown hash" prints for a
video). Labels (repeat --label for several):
  ` + strings.Join(labelSlugs(), "\n  ") + `
  other:FREE TEXT`,
		Args: args("", 0, -1),
		RunE: func(cmd *cobra.Command, values []string) error {
			sigs, isVideo, err := videoFileSignals(cmd.Context(), file, video)
			switch {
			case err != nil:
				return err
			case isVideo && (len(values) > 0 || typ != ""):
				return usagef("--file %s is a video: give no VALUE and no --type with it", short(file))
			case !isVideo:
				if sigs, err = c.signalsOf(typ, values, file); err != nil {
					return err
				}
			}
			if len(labels) == 0 {
				return needFlag("label", "at least one label, e.g. --label recruitment-and-instruction")
			}
			for _, l := range labels {
				if _, err := protocol.ParseLabel(l); err != nil {
					return fmt.Errorf("--label %s: %w", short(l), err)
				}
			}
			if len(caseRef) > protocol.MaxCaseRefLen {
				return fmt.Errorf("--case: %d bytes, limit %d", len(caseRef), protocol.MaxCaseRefLen)
			}
			var reqs []any
			for _, chunk := range chunkSignals(sigs) {
				req := api.AdditionRequest{Signals: chunk, Labels: labels, CaseRef: caseRef}
				if _, err := req.Entry(); err != nil {
					return err
				}
				reqs = append(reqs, req)
			}
			return c.publishAll(cmd.Context(), "/v1/additions", reqs, len(sigs))
		},
	}
	f := cmd.Flags()
	f.StringVarP(&typ, "type", "t", "", "signal type of every bare VALUE: sha256, md5, pdq, url, account or vpdq")
	f.StringVarP(&file, "file", "f", "", "a list of signals, one a line (- for standard input), or a video to hash and publish")
	f.StringArrayVarP(&labels, "label", "l", nil, "label from the vocabulary, or other:TEXT (repeat for several)")
	f.BoolVar(&video.everyFrame, "every-frame", false, "--file VIDEO: hash every frame, not one a second")
	f.StringVar(&video.ffmpeg, "ffmpeg", "", "--file VIDEO: the ffmpeg binary (default: ffmpeg on PATH)")
	f.StringVar(&caseRef, "case", "", "a case reference, PUBLIC: signed into the entry, which every member holds and exports")
	return cmd
}

// labelSlugs lists the vocabulary without "other", which needs text.
func labelSlugs() []string {
	var ls []string
	for _, l := range protocol.Labels {
		if l != "other" {
			ls = append(ls, l)
		}
	}
	return ls
}

// signalsOf is the signals a command was given: its VALUE arguments, or
// the list read from file (deduplicated), not both.
func (c *cli) signalsOf(typ string, values []string, file string) ([]api.Signal, error) {
	switch {
	case file != "" && len(values) > 0:
		return nil, usagef("give VALUEs or --file, not both")
	case file != "":
		sigs, err := readSignalList(file, c.stdin, typ)
		if err != nil {
			return nil, err
		}
		return dedupSignals(sigs), nil
	case len(values) == 0:
		return nil, usagef("missing VALUE (or --file LIST)")
	}
	return signalArgs(typ, values)
}
