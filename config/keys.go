package config

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// maxSecretFile bounds what is read of a key or token file: each is well
// under 200 bytes.
const maxSecretFile = 4096

// tokenBytes is the length of the API token before hex encoding.
const tokenBytes = 32

func (n *Node) path(file string) string { return filepath.Join(n.Dir, file) }

func (n *Node) configPath() string { return n.path(ConfigFile) }

// AuthorKey reads the author key, Dir/author.key: the ed25519 key that
// signs this member's log. The file must be readable by its owner only.
func (n *Node) AuthorKey() (ed25519.PrivateKey, error) {
	file := n.path(AuthorKeyFile)
	data, err := readSecret(file)
	if err != nil {
		return nil, err
	}
	return parseAuthorKey(file, data)
}

// NodeKey reads the libp2p transport key, Dir/node.key. The file must be
// readable by its owner only.
func (n *Node) NodeKey() (crypto.PrivKey, error) {
	file := n.path(NodeKeyFile)
	data, err := readSecret(file)
	if err != nil {
		return nil, err
	}
	return parseNodeKey(file, data)
}

// Token reads the HTTP API bearer token, Dir/api.token: 64 lower-case hex
// characters. The file must be readable by its owner only.
func (n *Node) Token() (string, error) {
	file := n.path(TokenFile)
	data, err := readSecret(file)
	if err != nil {
		return "", err
	}
	return parseToken(file, data)
}

// restoreHint is the fix for a damaged key file. A fresh key is not a fix
// for the author key: it would be a different author.
const restoreHint = "restore the file from a backup of this directory"

// parseAuthorKey decodes author.key: the 32-byte ed25519 seed in hex and a
// newline. Messages never quote the file's content.
func parseAuthorKey(file string, data []byte) (ed25519.PrivateKey, error) {
	s := strings.TrimSpace(string(data))
	if len(s) != 2*ed25519.SeedSize {
		return nil, keyFileError(file, "want %d hex characters (an ed25519 seed) on one line, got %d characters: %s", 2*ed25519.SeedSize, len(s), restoreHint)
	}
	seed, err := hex.DecodeString(s)
	if err != nil {
		return nil, keyFileError(file, "want %d hex characters (an ed25519 seed), got a character that is not hex: %s", 2*ed25519.SeedSize, restoreHint)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// parseNodeKey decodes node.key: an ed25519 key as written by libp2p's
// crypto.MarshalPrivateKey.
func parseNodeKey(file string, data []byte) (crypto.PrivKey, error) {
	k, err := crypto.UnmarshalPrivateKey(data)
	if err != nil {
		return nil, keyFileError(file, "not a libp2p private key (%s): %s, or create a new one with `staydown init` in a new directory (the node's peer ID will change: update its roster block)", oneLine(err.Error()), restoreHint)
	}
	if k.Type() != crypto.Ed25519 {
		return nil, keyFileError(file, "is a %s key; want ed25519: create a new one with `staydown init` in a new directory (the node's peer ID will change: update its roster block)", k.Type())
	}
	return k, nil
}

// parseToken decodes api.token: 32 bytes in hex and a newline.
func parseToken(file string, data []byte) (string, error) {
	s := strings.TrimSpace(string(data))
	if _, err := hex.DecodeString(s); err != nil || len(s) != 2*tokenBytes {
		return "", keyFileError(file, "want %d hex characters on one line: %s, or write a new token with `openssl rand -hex %d > %s` (then restart the node)", 2*tokenBytes, restoreHint, tokenBytes, display(file))
	}
	return s, nil
}

func keyFileError(file, format string, args ...any) error {
	return &Error{File: file, Msg: fmt.Sprintf(format, args...), Err: ErrKeyFile}
}

// readSecret reads a key or token file, refusing one that other users may
// read (as ssh does: a key others can read is no longer secret, and saying
// so at once is better than a warning nobody reads). Mode bits are not
// checked on Windows, which does not have them.
func readSecret(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, readError(file, err, "this directory was not set up by `staydown init`, or the file was removed: "+restoreHint)
	}
	defer f.Close()
	// Stat the open file, not the path, so the mode checked is the mode of
	// what is read.
	fi, err := f.Stat()
	if err != nil {
		return nil, wrapIO(err)
	}
	if !fi.Mode().IsRegular() {
		return nil, keyFileError(file, "is not a regular file")
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, &Error{File: file, Msg: fmt.Sprintf("permissions %04o are too open: a key must be readable by its owner only; run: chmod 600 %s", perm, display(file)), Err: ErrPermissions}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, wrapIO(fmt.Errorf("read %s: %w", file, err))
	}
	if len(data) > maxSecretFile {
		return nil, keyFileError(file, "larger than %d bytes, so not a key file: %s", maxSecretFile, restoreHint)
	}
	return data, nil
}

// writeNew creates file with mode 0600 and writes data to it, durably. It
// never replaces a file: an existing one is ErrExists. On error it removes
// what it created.
func writeNew(file string, data []byte) (err error) {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return &Error{File: file, Msg: "already exists: not overwriting it", Err: ErrExists, Cause: err}
		}
		return wrapIO(err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = wrapIO(cerr)
		}
		if err != nil {
			os.Remove(file)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return wrapIO(err)
	}
	if err := f.Sync(); err != nil {
		return wrapIO(err)
	}
	return nil
}

// NextKeyFile holds a member's next author key (SPEC 12.4): made by
// NewNextKey before a rotation or for a revocation's new key, and
// promoted to AuthorKeyFile once the roster names it.
const NextKeyFile = "author.key.next"

// NewNextKey makes a fresh author key in Dir/author.key.next (never
// overwriting one) and returns its public key.
func (n *Node) NewNextKey() (ed25519.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, fmt.Errorf("config: next author key: %w", err)
	}
	if err := writeNew(n.path(NextKeyFile), []byte(hex.EncodeToString(priv.Seed())+"\n")); err != nil {
		return nil, err
	}
	if err := syncDir(n.Dir); err != nil {
		return nil, err
	}
	return pub, nil
}

// NextKey reads Dir/author.key.next; nil, nil when there is none.
func (n *Node) NextKey() (ed25519.PrivateKey, error) {
	file := n.path(NextKeyFile)
	if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	data, err := readSecret(file)
	if err != nil {
		return nil, err
	}
	return parseAuthorKey(file, data)
}

// PromoteNextKey makes author.key.next the author key: the current one
// is kept as author.key.old-<its first 16 hex characters> (details
// sealed to it stay readable), then author.key.next replaces author.key
// in one rename, so that a crash leaves one key or the other, never none.
func (n *Node) PromoteNextKey() error {
	cur, err := n.AuthorKey()
	if err != nil {
		return err
	}
	pub := hex.EncodeToString(cur.Public().(ed25519.PublicKey))
	old := n.path(AuthorKeyFile + ".old-" + pub[:16])
	if err := writeNew(old, []byte(hex.EncodeToString(cur.Seed())+"\n")); err != nil && !errors.Is(err, ErrExists) {
		return err
	}
	if err := os.Rename(n.path(NextKeyFile), n.path(AuthorKeyFile)); err != nil {
		return wrapIO(err)
	}
	return syncDir(n.Dir)
}
