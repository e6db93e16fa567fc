package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Sentinel errors. Every *Error this package returns unwraps to exactly one
// of them (test with errors.Is); the message adds the file, the line or key,
// the problem and the fix. Plain I/O failures other than a missing file
// (permission denied on the directory, a disk error) come back as the
// *fs.PathError, wrapped.
var (
	// ErrSyntax: the file is not valid TOML. The *Error carries the line and
	// column and, in Snippet, the offending lines with a caret; errors.As
	// also finds the underlying toml.ParseError.
	ErrSyntax = errors.New("TOML syntax error")
	// ErrInvalid: the file is valid TOML but a key is unknown, missing, of
	// the wrong type or has a bad value, or the roster is empty or lists a
	// name, author key or peer ID twice.
	ErrInvalid = errors.New("invalid configuration")
	// ErrNotFound: a file the node needs does not exist: the directory was
	// never initialised (run `staydown init`) or the roster was not written
	// yet. errors.Is(err, fs.ErrNotExist) holds too.
	ErrNotFound = errors.New("file not found")
	// ErrKeyFile: author.key, node.key or api.token is not in its format.
	ErrKeyFile = errors.New("bad key file")
	// ErrPermissions: a key or token file may be read by other users. Like
	// ssh, the node refuses to use it until it is chmod 600.
	ErrPermissions = errors.New("key file permissions too open")
	// ErrExists: Init found a file it would have to overwrite. Nothing was
	// changed.
	ErrExists = errors.New("already exists")
	// ErrNotListed: the roster does not list this node as it is configured
	// (no member of its name, or a different role, author key or peer ID).
	ErrNotListed = errors.New("node not listed in roster")
)

// Error is a problem with one file: the node config, the roster or a key
// file. It unwraps to one of the sentinels and, when there is one, to the
// underlying cause (a toml.ParseError, an *fs.PathError).
type Error struct {
	File   string // path of the file, as the caller named it
	Line   int    // 1-based line, when known (TOML syntax errors); else 0
	Column int    // 1-based column, when Line is known; else 0
	Key    string // key path, e.g. `member 3 ("acme"): author_key`; "" when the problem is the whole file
	Msg    string // the problem and how to fix it
	// Snippet is, for syntax errors, the offending line and the two before
	// it, with a caret under the error, for a CLI to print below Error().
	Snippet string
	Err     error // one of the sentinels
	Cause   error // the underlying error, or nil
}

// Error formats the problem on one line as "file:line:column: msg" or
// "file: key: msg".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(display(e.File))
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the sentinel and the cause, if any.
func (e *Error) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Cause}
}

// display is a path as messages show it: as it is, or quoted (%q) when it
// holds a character that does not print (a newline, say), so that the
// message naming it stays on one line.
func display(path string) string {
	if utf8.ValidString(path) && !strings.ContainsFunc(path, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return path
	}
	return strconv.Quote(path)
}

// ioError is an I/O failure other than a missing file, as "config: " and
// the *fs.PathError's message, which the os package writes with the path
// unquoted: control characters are escaped so that it stays on one line.
// It unwraps to the *fs.PathError.
type ioError struct{ err error }

func (e *ioError) Error() string { return "config: " + oneLine(e.err.Error()) }
func (e *ioError) Unwrap() error { return e.err }

func wrapIO(err error) error { return &ioError{err} }

// invalid is an ErrInvalid for key in file.
func invalid(file, key, format string, args ...any) *Error {
	return &Error{File: file, Key: key, Msg: fmt.Sprintf(format, args...), Err: ErrInvalid}
}
