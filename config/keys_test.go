package config

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
)

func TestKeyFiles(t *testing.T) {
	author, node := testKeys(t, 0)
	nodeBytes, err := crypto.MarshalPrivateKey(node)
	if err != nil {
		t.Fatal(err)
	}
	secp, _, err := crypto.GenerateSecp256k1Key(bytes.NewReader(bytes.Repeat([]byte{9}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	secpBytes, err := crypto.MarshalPrivateKey(secp)
	if err != nil {
		t.Fatal(err)
	}
	goodAuthor := hex.EncodeToString(author.Seed()) + "\n"
	goodToken := strings.Repeat("5a", 32) + "\n"

	read := map[string]func(*Node) error{
		AuthorKeyFile: func(n *Node) error { _, err := n.AuthorKey(); return err },
		NodeKeyFile:   func(n *Node) error { _, err := n.NodeKey(); return err },
		TokenFile:     func(n *Node) error { _, err := n.Token(); return err },
	}
	tests := []struct {
		name     string
		file     string
		data     []byte
		mode     os.FileMode
		sentinel error
		want     []string
	}{
		{"author short", AuthorKeyFile, []byte("abcd\n"), 0o600, ErrKeyFile, []string{"want 64 hex characters (an ed25519 seed) on one line, got 4 characters", "restore"}},
		{"author not hex", AuthorKeyFile, []byte(strings.Repeat("zz", 32)), 0o600, ErrKeyFile, []string{"not hex"}},
		{"author two lines", AuthorKeyFile, []byte(goodAuthor + goodAuthor), 0o600, ErrKeyFile, []string{"got 129 characters"}},
		{"author libp2p format", AuthorKeyFile, nodeBytes, 0o600, ErrKeyFile, []string{"want 64 hex characters"}},
		{"author too open", AuthorKeyFile, []byte(goodAuthor), 0o644, ErrPermissions, []string{"permissions 0644 are too open", "chmod 600"}},
		{"author group readable", AuthorKeyFile, []byte(goodAuthor), 0o640, ErrPermissions, []string{"permissions 0640"}},
		{"author too large", AuthorKeyFile, bytes.Repeat([]byte("a"), 5000), 0o600, ErrKeyFile, []string{"larger than 4096 bytes"}},
		{"node garbage", NodeKeyFile, []byte("hello"), 0o600, ErrKeyFile, []string{"not a libp2p private key"}},
		{"node hex", NodeKeyFile, []byte(goodAuthor), 0o600, ErrKeyFile, []string{"not a libp2p private key"}},
		{"node empty", NodeKeyFile, nil, 0o600, ErrKeyFile, []string{"not a libp2p private key"}},
		{"node secp256k1", NodeKeyFile, secpBytes, 0o600, ErrKeyFile, []string{"is a Secp256k1 key; want ed25519"}},
		{"node too open", NodeKeyFile, nodeBytes, 0o604, ErrPermissions, []string{"permissions 0604", "chmod 600"}},
		{"token short", TokenFile, []byte("abc\n"), 0o600, ErrKeyFile, []string{"want 64 hex characters on one line"}},
		{"token not hex", TokenFile, []byte(strings.Repeat("x", 64)), 0o600, ErrKeyFile, []string{"want 64 hex characters"}},
		{"token too open", TokenFile, []byte(goodToken), 0o666, ErrPermissions, []string{"permissions 0666", "chmod 600"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.sentinel == ErrPermissions && runtime.GOOS == "windows" {
				t.Skip("no mode bits on Windows")
			}
			n := &Node{Dir: t.TempDir()}
			path := filepath.Join(n.Dir, tt.file)
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			err := read[tt.file](n)
			wantError(t, err, tt.sentinel, append([]string{path + ": "}, tt.want...)...)
			// A secret's content never appears in a message.
			if len(tt.data) >= 8 && strings.Contains(err.Error(), string(tt.data[:8])) {
				t.Errorf("error %q quotes the file", err)
			}
		})
	}

	t.Run("good", func(t *testing.T) {
		n := &Node{Dir: t.TempDir()}
		for f, b := range map[string][]byte{AuthorKeyFile: []byte(goodAuthor), NodeKeyFile: nodeBytes, TokenFile: []byte(goodToken)} {
			if err := os.WriteFile(filepath.Join(n.Dir, f), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if k, err := n.AuthorKey(); err != nil || !k.Equal(author) {
			t.Errorf("AuthorKey: %v", err)
		}
		if k, err := n.NodeKey(); err != nil || !k.Equals(node) {
			t.Errorf("NodeKey: %v", err)
		}
		if tok, err := n.Token(); err != nil || tok != strings.TrimSpace(goodToken) {
			t.Errorf("Token: %q, %v", tok, err)
		}
		// CRLF line ends (a file edited on Windows) are fine.
		if err := os.WriteFile(filepath.Join(n.Dir, AuthorKeyFile), []byte(strings.TrimSpace(goodAuthor)+"\r\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if k, err := n.AuthorKey(); err != nil || !k.Equal(ed25519.PrivateKey(author)) {
			t.Errorf("AuthorKey with CRLF: %v", err)
		}
	})

	t.Run("missing", func(t *testing.T) {
		n := &Node{Dir: t.TempDir()}
		for f, read := range read {
			err := read(n)
			wantError(t, err, ErrNotFound, filepath.Join(n.Dir, f), "does not exist", "staydown init")
			if !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%v does not wrap fs.ErrNotExist", err)
			}
		}
	})

	t.Run("directory", func(t *testing.T) {
		n := &Node{Dir: t.TempDir()}
		if err := os.Mkdir(filepath.Join(n.Dir, AuthorKeyFile), 0o700); err != nil {
			t.Fatal(err)
		}
		_, err := n.AuthorKey()
		wantError(t, err, ErrKeyFile, "not a regular file")
	})
}
