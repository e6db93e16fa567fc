package main

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/protocol"
)

// One parser for every signal a command takes: a VALUE argument of add,
// match or allow, notice's --signal, and a line of a list (add, allow
// --file; watch add, remove). A signal is TYPE:VALUE, the form `hash`
// prints, or a bare VALUE of the command's --type; a TYPE: prefix that
// contradicts --type is an error naming both.

// parseSignalArg parses one signal given as TYPE:VALUE, or as a bare
// VALUE of type typ ("" when the command was given no --type). The
// prefix is taken as a type only if it names one: "https://..." with
// --type url and "x:123" with --type account are bare values (an account
// whose service is named like a signal type needs its account: prefix).
func parseSignalArg(typ, arg string) (api.Signal, error) {
	s, err := parseSignal(typ, arg)
	if _, bad := errors.AsType[badTypeFlag](err); err != nil && !bad {
		return api.Signal{}, fmt.Errorf("value %s: %w", short(arg), err)
	}
	if err != nil {
		return api.Signal{}, err
	}
	return s, nil
}

// parseSignal is parseSignalArg with errors that do not quote arg: the
// caller does (as a value, or as a line of a list).
func parseSignal(typ, arg string) (api.Signal, error) {
	t, value := typ, arg
	if p, rest, ok := strings.Cut(arg, ":"); ok && slices.Contains(protocol.SignalTypes, protocol.SignalType(p)) {
		if typ != "" && typ != p {
			return api.Signal{}, usagef("the type prefix %q contradicts --type %q", p+":", typ)
		}
		t, value = p, rest
	}
	if p, rest, ok := strings.Cut(arg, ":"); t == "" && ok && p != "http" && p != "https" {
		// "sha1:..." names a type, just not one we know.
		_, err := protocol.ParseSignal(p, rest)
		return api.Signal{}, usageError{err}
	}
	if t == "" {
		return api.Signal{}, usagef("no type: give TYPE:VALUE (e.g. sha256:HEX, as `staydown hash` prints) or --type")
	}
	s, err := protocol.ParseSignal(t, value)
	if errors.Is(err, protocol.ErrSignal) && !slices.Contains(protocol.SignalTypes, protocol.SignalType(t)) {
		return api.Signal{}, badTypeFlag{err}
	}
	if err != nil {
		return api.Signal{}, err
	}
	return api.FormatSignal(s), nil
}

// signalArgs parses the VALUE arguments of a command (at most
// protocol.MaxSignals: more go in a --file), so that a typo fails here,
// before any request. Values are sent normalised.
func signalArgs(typ string, values []string) ([]api.Signal, error) {
	if len(values) > protocol.MaxSignals {
		return nil, usagef("%d values, limit %d on the command line: list them in a file, one per line, and give --file FILE (or - for standard input)", len(values), protocol.MaxSignals)
	}
	out := make([]api.Signal, len(values))
	for i, v := range values {
		s, err := parseSignalArg(typ, v)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// parseSignalLine parses one line of a signal list: "" and ok false for a
// blank line or a # comment. The value of a hex type (sha256, md5, pdq)
// ends at the first blank, and a vpdq value (a JSON list) at its "]", so
// that `hash` output ("pdq:HEX quality=87", and with several files
// "sha256:HEX  NAME") reads as it is; a url or an account id is the rest
// of the line (an id may hold blanks).
func parseSignalLine(typ, line string) (api.Signal, bool, error) {
	text := strings.TrimSpace(line)
	if text == "" || strings.HasPrefix(text, "#") {
		return api.Signal{}, false, nil
	}
	t := typ
	if p, _, ok := strings.Cut(text, ":"); ok && slices.Contains(protocol.SignalTypes, protocol.SignalType(p)) {
		t = p
	}
	switch protocol.SignalType(t) {
	case protocol.SignalSHA256, protocol.SignalMD5, protocol.SignalPDQ:
		text, _, _ = strings.Cut(text, " ")
		text, _, _ = strings.Cut(text, "\t")
	case protocol.SignalVPDQ:
		// The JSON list holds commas and blanks; it ends at its "]"
		// (no item holds one), and what follows is a file name.
		if i := strings.IndexByte(text, ']'); i >= 0 {
			text = text[:i+1]
		}
	}
	s, err := parseSignal(typ, text)
	return s, err == nil, err
}

// readSignalList reads a list of signals, one a line, from the file name
// ("-": stdin), bare values of type typ (""; none allowed). It checks the
// whole list before anything is sent; an error names the line and quotes
// it.
func readSignalList(name string, stdin io.Reader, typ string) ([]api.Signal, error) {
	return readList(name, stdin, func(line string) (api.Signal, bool, error) { return parseSignalLine(typ, line) })
}

// readList reads a list from the file name ("-": stdin), one item a
// line, each line read by parse (false: a line that holds none). It
// reads the whole list before anything is sent; an error names the line
// and quotes it.
func readList[T any](name string, stdin io.Reader, parse func(line string) (T, bool, error)) ([]T, error) {
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	where := display(name)
	if name == "-" {
		where = "standard input"
	}
	var out []T
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		s, ok, err := parse(sc.Text())
		if err != nil {
			// The usage error's "see --help" does not fit a bad line.
			if u, isUsage := errors.AsType[usageError](err); isUsage {
				err = u.err
			}
			return nil, fmt.Errorf("%s:%d: %s: %w", where, line, short(sc.Text()), err)
		}
		if ok {
			out = append(out, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", where, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s lists no signal", where)
	}
	return out, nil
}

// dedupSignals drops repeats (signals are normalised), keeping the first.
func dedupSignals(sigs []api.Signal) []api.Signal {
	seen := make(map[api.Signal]bool, len(sigs))
	out := sigs[:0:0]
	for _, s := range sigs {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// chunkSignals splits sigs into runs of at most protocol.MaxSignals, the
// most one entry holds.
func chunkSignals(sigs []api.Signal) [][]api.Signal {
	var out [][]api.Signal
	for len(sigs) > protocol.MaxSignals {
		out = append(out, sigs[:protocol.MaxSignals])
		sigs = sigs[protocol.MaxSignals:]
	}
	return append(out, sigs)
}

// badTypeFlag is the error for a --type that names no signal type: about
// the flag, not the value.
type badTypeFlag struct{ err error }

func (e badTypeFlag) Error() string { return "--type: " + e.err.Error() }
func (e badTypeFlag) Unwrap() error { return e.err }

// namedSignals is the signals a retraction or a dispute names: its
// --signal TYPE:VALUE flags or the list in --file (not both; "-" for
// standard input), deduplicated; none when neither is given (all of the
// target's). One entry names at most protocol.MaxSignals, and a target
// has one retraction, so a longer list is an error, not several entries.
func (c *cli) namedSignals(flags []string, file string) ([]api.Signal, error) {
	var sigs []api.Signal
	switch {
	case file != "" && len(flags) > 0:
		return nil, usagef("give --signal or --file, not both")
	case file != "":
		var err error
		if sigs, err = readSignalList(file, c.stdin, ""); err != nil {
			return nil, err
		}
	default:
		for _, f := range flags {
			if p, _, ok := strings.Cut(f, ":"); !ok || p == "http" || p == "https" {
				return nil, usagef("--signal %s: want TYPE:VALUE (e.g. sha256:HEX, as `staydown hash` prints)", short(f))
			}
			s, err := parseSignalArg("", f)
			if err != nil {
				return nil, fmt.Errorf("--signal: %w", err)
			}
			sigs = append(sigs, s)
		}
	}
	sigs = dedupSignals(sigs)
	if len(sigs) > protocol.MaxSignals {
		return nil, usagef("%d signals named, limit %d in one entry", len(sigs), protocol.MaxSignals)
	}
	return sigs, nil
}

// humanSignal is a signal as a person reads it in text output: TYPE:VALUE,
// except a vpdq value (up to 1,500 frames, some 120 KB of JSON), which is
// summed up as "vpdq:[N frames, 0.0-59.0 s, key HEX…]", the key being the
// first 8 bytes of the SHA-256 of its wire value (the key a node indexes it
// by, SPEC.md 7.6), so that two lines naming the same video show the same
// key. --json output and lists meant to be read back (hash, watch list)
// carry the full value.
func humanSignal(typ, value string) string {
	if protocol.SignalType(typ) != protocol.SignalVPDQ {
		return typ + ":" + value
	}
	return typ + ":" + vpdqSummary(value)
}

// vpdqSummary sums up a vpdq value in its interchange form (JSON); one that
// does not parse (no node sends one) is said to be so, with its length.
func vpdqSummary(value string) string {
	frames, err := protocol.ParseVPDQJSON(value)
	var wire []byte
	if err == nil {
		wire, err = protocol.EncodeVPDQ(frames)
	}
	if err != nil {
		return fmt.Sprintf("[not a vpdq value: %d bytes]", len(value))
	}
	key := sha256.Sum256(wire)
	first, last := frames[0].Timestamp, frames[len(frames)-1].Timestamp
	return fmt.Sprintf("[%d frames, %.1f-%.1f s, key %x…]", len(frames),
		float64(first)/1000, float64(last)/1000, key[:8])
}

// humanSignalText is humanSignal of a signal written TYPE:VALUE.
func humanSignalText(s string) string {
	typ, value, _ := strings.Cut(s, ":")
	return humanSignal(typ, value)
}

// humanSignals is humanSignalText of each of sigs.
func humanSignals(sigs []string) []string {
	out := make([]string, len(sigs))
	for i, s := range sigs {
		out[i] = humanSignalText(s)
	}
	return out
}
