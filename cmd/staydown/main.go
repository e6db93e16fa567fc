// Command staydown runs a Staydown node and talks to it.
//
// `staydown init` creates a node directory and prints the node's roster
// block; `staydown run` runs the node in the foreground. The other
// commands talk to the running node's local HTTP API, found through the
// node directory (--dir), authenticated with the token init wrote there.
// Output is text by default and JSON with --json.
//
// Exit codes: 0 success (for `match`: verdict block); 1 `match`'s verdict
// is none, or what audit, import or check looked at does not hold; 2 any
// error (usage, bad input, unreachable node, refused request); 3 `match`'s
// verdict is review. Errors go
// to stderr as "staydown: COMMAND: PROBLEM".
//
// Each subcommand lives in command_<verb>.go with its table test.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/config"
)

// Exit codes.
const (
	exitOK      = 0
	exitNoMatch = 1 // match: verdict none; audit, import, proof verify, store check: something does not hold
	exitError   = 2
	exitReview  = 3 // match: verdict review
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// cli is one invocation: its output streams, global flags and outcome.
type cli struct {
	stdin          io.Reader // a --file -
	stdout, stderr io.Writer
	dir            string // --dir
	json           bool   // --json
	code           int    // exit code of a command that succeeded (match sets exitNoMatch)
}

// run executes the command line args and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	return runIn(args, os.Stdin, stdout, stderr)
}

// runIn is run with stdin as the standard input.
func runIn(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr}
	root := c.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(context.Background())
	if err != nil {
		c.report(root, cmd, err)
		return exitError
	}
	return c.code
}

func (c *cli) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "staydown",
		Short: "Staydown: a federated, signed log of terrorist-content hashes and takedown notices",
		Long: `Staydown: a federated, signed log of terrorist-content hashes and takedown notices.

Create a node with "staydown init", add its roster block to the genesis
roster of every founding member (or, to join a running federation, have a
voting member propose its admission: "staydown member --help"), run it with
"staydown run", then publish and match with the other commands. They talk
to the running node's HTTP API, found through the node directory given with
--dir.

Exit codes: 0 success; 2 any error; "match" exits with its verdict: 0
block, 3 review, 1 none; "audit", "log import", "proof verify" and "store
check" exit 1 when something does not hold; "import" exits 1 when some
rows were rejected (the others imported).`,
		Version:           versionText(),
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.PersistentFlags().StringVar(&c.dir, "dir", "", "the node's directory (created by init)")
	root.PersistentFlags().BoolVar(&c.json, "json", false, "print JSON instead of text")
	root.SetVersionTemplate("{{.Version}}")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		c.initCommand(),
		c.runCommand(),
		c.addCommand(),
		c.retractCommand(),
		c.disputeCommand(),
		c.allowCommand(),
		c.matchCommand(),
		c.noticeCommand(),
		c.replyCommand(),
		c.blockCommand(),
		c.blocklistCommand(),
		c.noticesCommand(),
		c.reportCommand(),
		c.logCommand(),
		c.auditCommand(),
		c.proofCommand(),
		c.hashCommand(),
		c.importCommand(),
		c.exportCommand(),
		c.watchCommand(),
		c.alertsCommand(),
		c.statusCommand(),
		c.memberCommand(),
		c.storeCommand(),
		c.tokenCommand(),
		c.demoCommand(),
		c.consoleCommand(),
		c.benchCommand(),
	)
	for _, cmd := range root.Commands() {
		cmd.DisableFlagsInUseLine = true // each Use line shows its flags
	}
	refuseUnknownSubcommands(root)
	return root
}

// usageError is a mistake in the command line itself: the message is
// followed by a pointer to --help.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// report prints err as "staydown: COMMAND: PROBLEM" (COMMAND with its
// parents': "watch remove", "member propose admit"), and for a config
// file's syntax error the offending lines.
func (c *cli) report(root, cmd *cobra.Command, err error) {
	what := "staydown: "
	path := ""
	if cmd != nil && cmd != root {
		path = strings.TrimPrefix(cmd.CommandPath(), root.Name()+" ")
		what += path + ": "
	}
	// The message is one line even if an error from elsewhere (the os
	// package's, naming a path raw; the node's answer) holds a newline, so
	// that nothing a command was given can forge a line of output.
	fmt.Fprintf(c.stderr, "%s%s\n", what, oneLine(err.Error()))
	if cfgErr, ok := errors.AsType[*config.Error](err); ok && cfgErr.Snippet != "" {
		fmt.Fprintln(c.stderr, cfgErr.Snippet)
	}
	_, usage := errors.AsType[usageError](err)
	if usage || strings.HasPrefix(err.Error(), "unknown command") {
		help := "staydown --help"
		if path != "" {
			help = "staydown " + path + " --help"
		}
		fmt.Fprintf(c.stderr, "Run '%s' for usage.\n", help)
	}
}

// refuseUnknownSubcommands makes every command that only groups others
// ("watch", "log", "member", ...) a usage error when it is run without one
// of them or with another word: cobra would print its help and exit 0.
func refuseUnknownSubcommands(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		refuseUnknownSubcommands(sub)
	}
	if !cmd.HasSubCommands() || cmd.Run != nil || cmd.RunE != nil || !cmd.HasParent() {
		return
	}
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var names []string
		for _, s := range cmd.Commands() {
			if s.IsAvailableCommand() {
				names = append(names, s.Name())
			}
		}
		if len(args) == 0 {
			return usagef("missing subcommand: one of %s", strings.Join(names, ", "))
		}
		return usagef("unknown subcommand %s; want one of %s", short(args[0]), strings.Join(names, ", "))
	}
}

// args checks the number of positional arguments (max < 0: no limit).
// name says what they are, e.g. "ENTRY_ID" or "VALUE".
func args(name string, min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < min:
			return usagef("missing %s", name)
		case max == 0 && len(args) > 0:
			return usagef("unexpected argument %s", short(args[0]))
		case max > 0 && len(args) > max:
			return usagef("want %d %s, got %d arguments", max, name, len(args))
		}
		return nil
	}
}

// needFlag is the error for a missing required flag.
func needFlag(name, what string) error {
	return usagef("--%s: required: %s", name, what)
}

// config loads the node directory's config.
func (c *cli) config() (*config.Node, error) {
	if c.dir == "" {
		return nil, needFlag("dir", "the node's directory, as given to `staydown init`")
	}
	return config.Load(c.dir)
}

// printJSON writes v as indented JSON on stdout.
func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// short quotes s for a message, cut to a readable length.
func short(s string) string {
	const max = 80
	if len(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	n := max
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return fmt.Sprintf("%q…", s[:n])
}

// display is a file name as messages show it: as it is, or quoted (%q)
// when it holds a character that does not print (a newline, say).
func display(name string) string {
	if utf8.ValidString(name) && !strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return name
	}
	return strconv.Quote(name)
}

// oneLine escapes the control characters of s (a newline becomes \n).
func oneLine(s string) string { return config.OneLine(s) }
