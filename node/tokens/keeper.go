package tokens

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/staydown/staydown/node/kind"
)

// CheckEvery is how often, at most, a Keeper looks whether api.tokens
// changed.
const CheckEvery = time.Second

// Keeper answers which token a request presents. It holds the admin
// token of api.token (fixed for the node's run) and the tokens of
// api.tokens, which it reads again when the file changes. Safe for
// concurrent use.
type Keeper struct {
	dir   string // "": no tokens file (Static)
	admin [sha256.Size]byte
	now   func() time.Time
	log   *slog.Logger

	mu      sync.Mutex
	tokens  []Token
	seen    os.FileInfo // the file as last read; nil: none
	checked time.Time   // when the file was last looked at
}

// Static is a Keeper of the admin token alone ("" refuses everyone).
func Static(admin string) *Keeper {
	k := &Keeper{now: time.Now, log: slog.New(slog.DiscardHandler)}
	if admin != "" {
		k.admin = sha256.Sum256([]byte(admin))
	}
	return k
}

// Open is the Keeper of the node directory dir: admin is api.token's
// token, and api.tokens is read now (an error if it is damaged) and again
// whenever it changes. now is the node's clock.
func Open(dir, admin string, now func() time.Time, log *slog.Logger) (*Keeper, error) {
	k := Static(admin)
	k.dir, k.now, k.log = dir, now, log
	if err := k.Reload(); err != nil {
		return nil, err
	}
	return k, nil
}

// Reload reads api.tokens again, now. If it cannot (a damaged file, a
// file others may write), only the admin token works until it can: a
// revocation must never be undone by a broken file.
func (k *Keeper) Reload() error {
	if k.dir == "" {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.reload(k.now())
}

// reload reads the file; k.mu is held.
func (k *Keeper) reload(now time.Time) error {
	k.checked = now
	file := Path(k.dir)
	fi, err := os.Stat(file)
	if err != nil && !os.IsNotExist(err) {
		k.tokens, k.seen = nil, nil
		return err
	}
	data, err := read(file)
	if err == nil {
		k.tokens, err = Parse(file, data)
	}
	if err != nil {
		k.tokens, k.seen = nil, nil
		return err
	}
	k.seen = fi
	return nil
}

// fresh reads api.tokens again if CheckEvery has passed and the file
// changed (another file, size or modification time); k.mu is held.
func (k *Keeper) fresh() {
	now := k.now()
	if k.dir == "" || now.Sub(k.checked) < CheckEvery && !now.Before(k.checked) {
		return
	}
	k.checked = now
	fi, err := os.Stat(Path(k.dir))
	switch {
	case err != nil && k.seen == nil && os.IsNotExist(err):
		return
	case err == nil && k.seen != nil && os.SameFile(fi, k.seen) && fi.Size() == k.seen.Size() && fi.ModTime().Equal(k.seen.ModTime()):
		return
	}
	if err := k.reload(now); err != nil {
		k.log.Error("api tokens: only api.token is accepted until the file is fixed", "err", err)
		return
	}
	k.log.Info("api tokens: read again", "tokens", len(k.tokens))
}

// Check finds the token that the Authorization header value presents. A
// missing, malformed, unknown or revoked token is a kind.ErrUnauthorized
// error saying which. Every candidate is compared, each in constant time
// (hash, then compare), so the time taken says nothing of which matched.
func (k *Keeper) Check(header string) (Token, error) {
	if header == "" {
		return Token{}, refused(kind.ErrUnauthorized, `missing; send "Authorization: Bearer TOKEN" with the token from the node's directory or from staydown token add`)
	}
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return Token{}, refused(kind.ErrUnauthorized, `want "Bearer TOKEN"`)
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	k.mu.Lock()
	defer k.mu.Unlock()
	k.fresh()
	var found Token
	match := 0
	if k.admin != ([sha256.Size]byte{}) && subtle.ConstantTimeCompare(got[:], k.admin[:]) == 1 {
		found, match = Token{Scope: Admin, Name: "api.token"}, 1
	}
	for _, t := range k.tokens {
		if subtle.ConstantTimeCompare(got[:], t.Hash[:]) == 1 {
			found, match = t, 1
		}
	}
	if match == 0 {
		return Token{}, refused(kind.ErrUnauthorized, "wrong token (unknown or revoked)")
	}
	return found, nil
}

// Authorize is Check, then whether the token's scope allows need: a
// kind.ErrForbidden error naming both when it does not. what names the
// request in that message ("POST /v1/additions").
func (k *Keeper) Authorize(header string, need Scope, what string) (Token, error) {
	t, err := k.Check(header)
	if err != nil {
		return Token{}, err
	}
	if !t.Scope.Allows(need) {
		return Token{}, refused(kind.ErrForbidden, Forbidden(what, need, t.Scope))
	}
	return t, nil
}

// Forbidden is the message for a token of scope has that may not do what,
// which needs scope need.
func Forbidden(what string, need, has Scope) string {
	return fmt.Sprintf("%s needs a token with scope %s; this token's scope is %s", what, need, has)
}

// refusal is why a request is refused: its message alone (the API and
// /metrics prefix it with "authorization: "), unwrapping to the kind.
type refusal struct {
	kind error
	msg  string
}

func refused(kind error, msg string) error { return &refusal{kind, msg} }

func (e *refusal) Error() string { return e.msg }
func (e *refusal) Unwrap() error { return e.kind }
