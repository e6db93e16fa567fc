package tokens

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/staydown/staydown/config"
)

// Token is one line of api.tokens: never the token itself, only its hash.
type Token struct {
	ID      string // 8 hex characters, random: how list and revoke name it
	Scope   Scope
	Created time.Time // UTC, whole seconds
	Hash    [sha256.Size]byte
	Name    string // optional (config.CheckName's rule); unique when set
}

// Limits of the file: far above any real use, so that a damaged or hostile
// file cannot make the node read or compare without end.
const (
	MaxTokens = 1000
	maxFile   = 256 << 10
	idLen     = 8
	secretLen = 32 // random bytes of a token
)

const header = `# API tokens of this node, written by "staydown token": do not edit while
# a "staydown token" command runs. One token a line:
#   ID SCOPE CREATED SHA256-OF-THE-TOKEN [NAME]
# The node reads this file again when it changes.
`

// Parse reads the text of api.tokens: comment lines (#) and blank lines,
// and one line a token, ID SCOPE CREATED SHA256 [NAME], separated by
// spaces. IDs, names and hashes are unique. file names the file in
// errors.
func Parse(file string, data []byte) ([]Token, error) {
	if len(data) > maxFile {
		return nil, fmt.Errorf("%s: larger than %d bytes: not a tokens file", file, maxFile)
	}
	var out []Token
	ids, names, hashes := map[string]int{}, map[string]int{}, map[[sha256.Size]byte]int{}
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		t, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", file, n, err)
		}
		if j, ok := ids[t.ID]; ok {
			return nil, fmt.Errorf("%s:%d: id %q is also on line %d", file, n, t.ID, j)
		}
		if j, ok := hashes[t.Hash]; ok {
			return nil, fmt.Errorf("%s:%d: the token of line %d again", file, n, j)
		}
		if j, ok := names[t.Name]; ok && t.Name != "" {
			return nil, fmt.Errorf("%s:%d: name %q is also on line %d", file, n, t.Name, j)
		}
		if len(out) == MaxTokens {
			return nil, fmt.Errorf("%s:%d: more than %d tokens", file, n, MaxTokens)
		}
		ids[t.ID], hashes[t.Hash], names[t.Name] = n, n, n
		out = append(out, t)
	}
	return out, nil
}

func parseLine(line string) (Token, error) {
	f := strings.Fields(line)
	if len(f) != 4 && len(f) != 5 {
		return Token{}, fmt.Errorf("want ID SCOPE CREATED SHA256 [NAME], got %d fields", len(f))
	}
	var t Token
	if err := checkID(f[0]); err != nil {
		return Token{}, err
	}
	t.ID = f[0]
	var err error
	if t.Scope, err = ParseScope(f[1]); err != nil {
		return Token{}, err
	}
	// Only the form Format writes: UTC, whole seconds.
	if t.Created, err = time.Parse(time.RFC3339, f[2]); err != nil || t.Created.UTC().Format(time.RFC3339) != f[2] {
		return Token{}, fmt.Errorf("created %q: want a UTC time like 2006-01-02T15:04:05Z", f[2])
	}
	t.Created = t.Created.UTC()
	h, err := hex.DecodeString(f[3])
	if err != nil || len(h) != sha256.Size || f[3] != strings.ToLower(f[3]) {
		return Token{}, fmt.Errorf("hash %q: want %d lower-case hex characters", f[3], 2*sha256.Size)
	}
	copy(t.Hash[:], h)
	if len(f) == 5 {
		if err := checkName(f[4]); err != nil {
			return Token{}, err
		}
		t.Name = f[4]
	}
	return t, nil
}

func checkID(id string) error {
	if _, err := hex.DecodeString(id); err != nil || len(id) != idLen || id != strings.ToLower(id) {
		return fmt.Errorf("id %q: want %d lower-case hex characters", id, idLen)
	}
	return nil
}

// checkName checks a token's name: config.CheckName's rule, and not an
// id, so that revoke's argument names one token.
func checkName(name string) error {
	if err := config.CheckName(name); err != nil {
		return fmt.Errorf("name: %w", err)
	}
	if checkID(name) == nil {
		return fmt.Errorf("name %q looks like a token id: add a letter beyond f", name)
	}
	return nil
}

// Format is the text of api.tokens holding ts; Parse reads it back.
func Format(ts []Token) []byte {
	var b bytes.Buffer
	b.WriteString(header)
	for _, t := range ts {
		fmt.Fprintf(&b, "%s %s %s %s", t.ID, t.Scope, t.Created.UTC().Format(time.RFC3339), hex.EncodeToString(t.Hash[:]))
		if t.Name != "" {
			b.WriteString(" " + t.Name)
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Path is the tokens file of the node directory dir.
func Path(dir string) string { return filepath.Join(dir, config.TokensFile) }

// List reads the tokens of dir's api.tokens; none when there is no file.
func List(dir string) ([]Token, error) {
	data, err := read(Path(dir))
	if err != nil {
		return nil, err
	}
	return Parse(Path(dir), data)
}

// read reads the tokens file: nil when there is none. Like the key files
// (config.readSecret), a file that others may read or write is refused:
// whoever can write it can give themselves a token.
func read(file string) ([]byte, error) {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", file)
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("%s: permissions %04o are too open: it must be readable and writable by its owner only; run: chmod 600 %s", file, perm, file)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	return data, nil
}

// Add makes a token of scope with the optional name, records its hash in
// dir's api.tokens and returns the token (64 hex characters, shown once:
// it is not stored) and its record.
func Add(dir string, scope Scope, name string, now time.Time) (string, Token, error) {
	if !scope.Valid() {
		return "", Token{}, fmt.Errorf("no such scope: %v", scope)
	}
	if name != "" {
		if err := checkName(name); err != nil {
			return "", Token{}, err
		}
	}
	secret := make([]byte, secretLen)
	id := make([]byte, idLen/2)
	rand.Read(secret)
	rand.Read(id)
	tok := hex.EncodeToString(secret)
	t := Token{ID: hex.EncodeToString(id), Scope: scope, Created: now.UTC().Truncate(time.Second), Hash: sha256.Sum256([]byte(tok)), Name: name}
	err := update(dir, func(ts []Token) ([]Token, error) {
		for _, o := range ts {
			switch {
			case name != "" && o.Name == name:
				return nil, fmt.Errorf("a token named %q exists (id %s): choose another name, or revoke it first", name, o.ID)
			case o.ID == t.ID:
				return nil, fmt.Errorf("a token with id %s exists: run the command again", t.ID)
			}
		}
		if len(ts) >= MaxTokens {
			return nil, fmt.Errorf("%d tokens already: revoke some first", len(ts))
		}
		return append(ts, t), nil
	})
	if err != nil {
		return "", Token{}, err
	}
	return tok, t, nil
}

// Revoke removes the token whose id or name is which and returns it.
func Revoke(dir, which string) (Token, error) {
	var gone Token
	err := update(dir, func(ts []Token) ([]Token, error) {
		for i, t := range ts {
			if t.ID == which || t.Name != "" && t.Name == which {
				gone = t
				return append(ts[:i:i], ts[i+1:]...), nil
			}
		}
		return nil, fmt.Errorf("no token with id or name %q (see staydown token list)", which)
	})
	return gone, err
}

// update rewrites api.tokens with what change makes of its tokens,
// atomically: the new text goes to api.tokens.tmp, which is renamed over
// the file. The temporary file is created exclusively, so it is also the
// lock that keeps two commands from losing each other's change; a command
// that crashed leaves it behind, and the next one says to remove it.
func update(dir string, change func([]Token) ([]Token, error)) (err error) {
	file := Path(dir)
	tmp := file + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists: another staydown token command is running; if none is, one was interrupted: remove the file and try again", tmp)
	}
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(tmp)
		}
	}()
	ts, err := List(dir)
	if err != nil {
		return err
	}
	if ts, err = change(ts); err != nil {
		return err
	}
	if _, err := f.Write(Format(ts)); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := os.Rename(tmp, file); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // the rename's durability; not every system can sync a directory
		d.Close()
	}
	return nil
}
