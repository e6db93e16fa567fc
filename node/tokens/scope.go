// Package tokens holds the HTTP API's bearer tokens and what each may do.
//
// A node accepts two kinds of token: the one in api.token (config.TokenFile,
// written by `staydown init`, what the staydown commands use), which may do
// everything (scope admin), and those of api.tokens (config.TokensFile),
// each with a scope, made and revoked by `staydown token` while the node
// runs. The node's Keeper reads api.tokens again when it changes (checked
// at most once a second, or at once on Reload: the node calls it on
// SIGHUP). Only hashes are stored: a token is 32 random bytes, so SHA-256
// is as good as a password hash and lets every check take constant time.
//
// Who owns what: this package owns the file and the check of a presented
// token; the API (node/api) owns which scope each route needs.
package tokens

import (
	"fmt"
	"strings"
)

// Scope is what a token may do. Match and Read are disjoint; Publish
// includes both; Admin includes everything.
type Scope uint8

// The scopes. The zero Scope is no scope: a route table entry without
// one is a mistake its test catches.
const (
	// Match: the match endpoints only (an upload pipeline's token).
	Match Scope = iota + 1
	// Read: every GET except match (dashboards, a read-only console).
	Read
	// Publish: Read and Match, and every POST that publishes an entry or
	// changes the watchlist.
	Publish
	// Admin: everything, membership included.
	Admin
)

// Scopes are the scopes in order, as `staydown token add --scope` takes
// them.
var Scopes = []Scope{Match, Read, Publish, Admin}

var scopeNames = [...]string{Match: "match", Read: "read", Publish: "publish", Admin: "admin"}

func (s Scope) String() string {
	if s >= Match && s <= Admin {
		return scopeNames[s]
	}
	return fmt.Sprintf("scope(%d)", uint8(s))
}

// Valid reports whether s is one of Scopes.
func (s Scope) Valid() bool { return s >= Match && s <= Admin }

// Allows reports whether a token of scope s may use a route that needs
// scope need.
func (s Scope) Allows(need Scope) bool {
	switch s {
	case Admin:
		return need.Valid()
	case Publish:
		return need == Match || need == Read || need == Publish
	case Match, Read:
		return need == s
	}
	return false
}

// ParseScope parses a scope's name.
func ParseScope(name string) (Scope, error) {
	for _, s := range Scopes {
		if name == s.String() {
			return s, nil
		}
	}
	names := make([]string, len(Scopes))
	for i, s := range Scopes {
		names[i] = s.String()
	}
	return 0, fmt.Errorf("%q is not a scope: use %s", name, strings.Join(names, ", "))
}
