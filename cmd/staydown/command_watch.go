package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/store"
)

func (c *cli) watchCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "The legacy-content watchlist: signals of content this platform hosts",
		Long: `The watchlist holds the signals of content this platform already hosts,
each with the platform's own references to the items that carry it
(--ref: an upload id, a URL; up to 32 per signal, for the same file
hosted more than once). It is private to the node (kept in its store
file): never gossiped, never exported. Whenever an addition arrives whose
signal matches a watched one (exactly, or for PDQ within the node's
pdq_threshold) while active, the node raises an alert at once, with the
refs, so that it says which items to take down: see "staydown alerts".`,
		Args: args("", 0, 0),
	}
	cmd.AddCommand(c.watchAddCommand(), c.watchListCommand(), c.watchRemoveCommand())
	return cmd
}

// watchBatchBytes bounds the JSON of one request of watch add, well
// under the node's 16 MiB limit.
const watchBatchBytes = 8 << 20

// watchListHelp says how watch add and remove read their signals.
const watchListHelp = `Signals are given as TYPE:VALUE arguments (e.g. sha256:HEX, pdq:HEX,
url:https://..., account:SERVICE:ID, as "staydown hash" prints them), each
with the --ref given, or in a file LIST (--file, "-" for standard input):
one signal per line, optionally followed by a TAB and its ref
(TYPE:VALUE<TAB>REF; a signal with several refs takes one line per ref);
text after a hash value before the TAB, such as quality=N, is ignored;
blank lines and lines starting with # are skipped. A ref is 1 to 512 bytes
of printable UTF-8 (spaces inside only; no TAB). The whole list is
checked before anything is sent, and sent in batches of up to 100,000.
A --file that is a video (MP4, MOV, MKV, WebM or AVI, told by its
content) is hashed here as "staydown hash" does (ffmpeg on PATH, or
--ffmpeg PATH): its sha256, md5 and vpdq signals are the ones given, each
with the --ref given.`

func (c *cli) watchAddCommand() *cobra.Command {
	var file, ref string
	var video videoOptions
	cmd := &cobra.Command{
		Use:   "add --dir D [--ref REF] TYPE:VALUE... | --file LIST | [--ref REF] --file VIDEO",
		Short: "Add signals to the watchlist, each with your reference to the item it hosts",
		Long: `Add signals to the node's watchlist, with your own reference to the item
of this platform that carries each (--ref, or the TAB form of a LIST): an
alert for the signal names these refs. A signal watched already gets the
ref if it lacks it.

` + watchListHelp + `

The node checks the new signals against the attestations it holds at
once; the alerts that raises are printed.`,
		RunE: func(cmd *cobra.Command, values []string) error {
			total := api.WatchResult{Alerts: []api.Alert{}}
			err := postWatchList(c, cmd.Context(), file, ref, values, video, "/v1/watchlist", func(res api.WatchResult) {
				total.Added += res.Added
				total.Known += res.Known
				total.RefsAdded += res.RefsAdded
				total.Total = res.Total
				total.Alerts = append(total.Alerts, res.Alerts...)
			})
			if err != nil {
				return err
			}
			if c.json {
				return c.printJSON(total)
			}
			refs := ""
			if total.RefsAdded > 0 {
				refs = fmt.Sprintf(", refs added %d", total.RefsAdded)
			}
			fmt.Fprintf(c.stdout, "added %d, already watched %d%s, watchlist now %d signals\n", total.Added, total.Known, refs, total.Total)
			return printAlerts(c, total.Alerts)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the list: one TYPE:VALUE[<TAB>REF] per line (- for standard input), or a video to hash")
	cmd.Flags().StringVar(&ref, "ref", "", "your reference to the hosted item that carries the signals given as arguments or the --file VIDEO")
	cmd.Flags().StringVar(&video.ffmpeg, "ffmpeg", "", "--file VIDEO: the ffmpeg binary (default: ffmpeg on PATH)")
	return cmd
}

func (c *cli) watchRemoveCommand() *cobra.Command {
	var file, ref string
	var video videoOptions
	cmd := &cobra.Command{
		Use:   "remove --dir D [--ref REF] TYPE:VALUE... | --file LIST | [--ref REF] --file VIDEO",
		Short: "Remove signals, or one of their refs, from the watchlist",
		Long: `Remove signals from the node's watchlist, e.g. content this platform no
longer hosts. A signal given without a ref goes with all its refs; given
with a ref (--ref, or the TAB form of a LIST), only that ref goes, and
the signal with its last ref (no item that carries it is left). Signals
or refs not on the watchlist are counted, not an error. Alerts already
raised stay listed.

` + watchListHelp,
		RunE: func(cmd *cobra.Command, values []string) error {
			var total api.UnwatchResult
			err := postWatchList(c, cmd.Context(), file, ref, values, video, "/v1/watchlist/remove", func(res api.UnwatchResult) {
				total.Removed += res.Removed
				total.RefsRemoved += res.RefsRemoved
				total.Unknown += res.Unknown
				total.Total = res.Total
			})
			if err != nil {
				return err
			}
			if c.json {
				return c.printJSON(total)
			}
			refs := ""
			if total.RefsRemoved > 0 {
				refs = fmt.Sprintf(", refs removed %d", total.RefsRemoved)
			}
			fmt.Fprintf(c.stdout, "removed %d%s, not watched %d, watchlist now %d signals\n", total.Removed, refs, total.Unknown, total.Total)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the list: one TYPE:VALUE[<TAB>REF] per line (- for standard input), or a video to hash")
	cmd.Flags().StringVar(&ref, "ref", "", "remove only this ref of the signals given as arguments or the --file VIDEO")
	cmd.Flags().StringVar(&video.ffmpeg, "ffmpeg", "", "--file VIDEO: the ffmpeg binary (default: ffmpeg on PATH)")
	return cmd
}

func (c *cli) watchListCommand() *cobra.Command {
	var limit int
	var after string
	cmd := &cobra.Command{
		Use:   "list --dir D [--limit N] [--after CURSOR]",
		Short: "List the watchlist: each signal with its refs",
		Long: `List the node's watchlist in the order of its index (by signal type,
then value), one line per signal and ref: TYPE:VALUE<TAB>REF, or
TYPE:VALUE alone for a signal without a ref, the form "watch add --file"
reads (so the output is a backup of the list). Every signal is listed,
fetched in pages, unless --limit N says how many at most: then, if more
follow, a last line "# more: --after CURSOR" says where the next page
starts (give it as --after). With --json, {"signals": [{"type", "value",
"refs"}], "next", "total"}.`,
		Args: args("", 0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("limit") && limit < 1 {
				return usagef("--limit %d: want at least 1", limit)
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			all := api.Watchlist{Signals: []api.WatchedItem{}}
			for {
				n := api.MaxWatchPage
				if limit > 0 {
					n = min(n, limit-len(all.Signals))
				}
				q := url.Values{"limit": {strconv.Itoa(n)}}
				if after != "" {
					q.Set("after", after)
				}
				var page api.Watchlist
				if err := cl.call(cmd.Context(), http.MethodGet, "/v1/watchlist?"+q.Encode(), nil, &page); err != nil {
					return err
				}
				if !c.json {
					if err := printWatched(c, page.Signals); err != nil {
						return err
					}
				}
				all.Signals = append(all.Signals, page.Signals...)
				all.Next, all.Total, after = page.Next, page.Total, page.Next
				if page.Next == "" || limit > 0 && len(all.Signals) >= limit {
					break
				}
			}
			if c.json {
				return c.printJSON(all)
			}
			switch {
			case all.Next != "":
				_, err = fmt.Fprintf(c.stdout, "# more: --after %s\n", all.Next)
			case len(all.Signals) == 0 && !cmd.Flags().Changed("after"):
				_, err = fmt.Fprintln(c.stdout, "# the watchlist is empty")
			}
			return err
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "list at most N signals (default: all)")
	cmd.Flags().StringVar(&after, "after", "", "start after this cursor (a \"# more\" line's)")
	return cmd
}

// printWatched writes a page of the watchlist in the list form.
func printWatched(c *cli, sigs []api.WatchedItem) error {
	w := bufio.NewWriter(c.stdout)
	for _, s := range sigs {
		if len(s.Refs) == 0 {
			fmt.Fprintf(w, "%s:%s\n", s.Type, s.Value)
		}
		for _, ref := range s.Refs {
			fmt.Fprintf(w, "%s:%s\t%s\n", s.Type, s.Value, ref)
		}
	}
	return w.Flush()
}

// watchSignals are the signals of watch add or remove: the arguments,
// each with ref, the list file's lines, or the signals of the file when it
// is a video (hashed here with video's options), each with ref.
func watchSignals(ctx context.Context, c *cli, file, ref string, values []string, video videoOptions) ([]api.WatchSignal, error) {
	switch {
	case file != "" && len(values) > 0:
		return nil, usagef("give signals as arguments or in --file, not both")
	case file != "":
		if sigs, isVideo, err := videoFileSignals(ctx, file, video); err != nil {
			return nil, err
		} else if isVideo {
			return withRef(sigs, ref)
		}
		if ref != "" {
			return nil, usagef("--ref is for the signals given as arguments or a --file VIDEO: in a --file LIST, put each line's ref after a TAB")
		}
		return readWatchList(file, c.stdin)
	case len(values) == 0:
		return nil, usagef("no signal: give TYPE:VALUE arguments or --file LIST")
	}
	sigs, err := signalArgs("", values)
	if err != nil {
		return nil, err
	}
	return withRef(sigs, ref)
}

// withRef gives each of sigs the ref ("" for none).
func withRef(sigs []api.Signal, ref string) ([]api.WatchSignal, error) {
	if ref != "" {
		if err := store.CheckWatchRef(ref); err != nil {
			return nil, usagef("--ref: %w", err)
		}
	}
	out := make([]api.WatchSignal, len(sigs))
	for i, s := range sigs {
		out[i] = api.WatchSignal{Type: s.Type, Value: s.Value, Ref: ref}
	}
	return out, nil
}

// parseWatchLine parses one line of a watch list, TYPE:VALUE, optionally
// followed by a TAB and a ref (the rest of the line): ok false for a
// blank line or a # comment.
func parseWatchLine(line string) (s api.WatchSignal, ok bool, err error) {
	if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
		return api.WatchSignal{}, false, nil
	}
	// Blanks at the end of the line go (an editor's), those before the
	// signal too; a ref is what lies between the first TAB and them.
	text, ref, tab := strings.Cut(strings.TrimRightFunc(line, unicode.IsSpace), "\t")
	if strings.TrimSpace(text) == "" {
		return api.WatchSignal{}, false, usagef("a ref without a signal")
	}
	sig, _, err := parseSignalLine("", text)
	if err != nil {
		return api.WatchSignal{}, false, err
	}
	if tab {
		if err := store.CheckWatchRef(ref); err != nil {
			return api.WatchSignal{}, false, err
		}
	}
	return api.WatchSignal{Type: sig.Type, Value: sig.Value, Ref: ref}, true, nil
}

// readWatchList reads a watch list from the file name ("-": stdin), as
// readSignalList reads a list, with each line's ref. It checks the whole
// list before anything is sent; an error names the line and quotes it.
func readWatchList(name string, stdin io.Reader) ([]api.WatchSignal, error) {
	return readList(name, stdin, parseWatchLine)
}

// postWatchList reads the signals (watchSignals), checks them all, then
// posts them to path in batches that fit a request, handing each answer
// to add. An error after the first batch says how many signals were
// sent: those took effect.
func postWatchList[R any](c *cli, ctx context.Context, file, ref string, values []string, video videoOptions, path string, add func(R)) error {
	sigs, err := watchSignals(ctx, c, file, ref, values, video)
	if err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	sent := 0
	for len(sigs) > 0 {
		n, size := 0, 0
		for n < len(sigs) && n < api.MaxWatchBatch && size < watchBatchBytes {
			size += len(sigs[n].Type) + len(sigs[n].Value) + len(sigs[n].Ref) + 48
			n++
		}
		var res R
		if err := cl.call(ctx, http.MethodPost, path, api.WatchRequest{Signals: sigs[:n]}, &res); err != nil {
			if sent > 0 {
				return fmt.Errorf("%w (the first %d signals were sent)", err, sent)
			}
			return err
		}
		add(res)
		sent += n
		sigs = sigs[n:]
	}
	return nil
}
