package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/staydown/staydown/protocol"
)

// Files of a node's directory.
const (
	ConfigFile    = "config.toml" // the node config
	AuthorKeyFile = "author.key"  // the ed25519 author key, hex of its seed
	NodeKeyFile   = "node.key"    // the libp2p transport key, protobuf
	TokenFile     = "api.token"   // the HTTP API bearer token, hex; scope admin
	TokensFile    = "api.tokens"  // further API tokens with scopes (package node/tokens)
)

// Defaults for keys config.toml may leave out.
const (
	DefaultStore    = "store.db" // relative to the node's directory
	DefaultLogLevel = "info"
)

// Node is a validated node config, read from config.toml in Dir. All paths
// are absolute. A Node is a value: nothing in it changes after Load.
type Node struct {
	Dir        string // the node's directory, absolute
	Name       string // member name; the roster lists this node under it
	Role       protocol.Role
	Federation string   // federation name; entries are bound to it
	RosterPath string   // absolute, resolved against Dir
	Listen     []string // libp2p multiaddrs, canonical form; may be empty (dial out only)
	// Bootstrap are members' addresses with their peer IDs
	// (/ip4/.../tcp/.../p2p/12D3KooW...), dialled besides the roster's:
	// how a node that joins after the genesis first reaches the
	// federation (SPEC 12.1).
	Bootstrap      []string
	API            string // host:port of the HTTP API
	StorePath      string // absolute, resolved against Dir
	LogLevel       string // debug|info|warn|error
	AllowRemoteAPI bool   // API may bind to a non-loopback address
	// APITLSCert and APITLSKey, both set or both empty, are the PEM
	// certificate (chain) and key the API serves HTTPS with (api_tls_cert,
	// api_tls_key; absolute, resolved against Dir). The node reads them
	// again on SIGHUP; the CLI trusts exactly the certificate in
	// APITLSCert.
	APITLSCert, APITLSKey string
	// AllowRemoteAPIWithoutTLS lets allow_remote_api serve plain HTTP,
	// bearer tokens in clear text (allow_remote_api_without_tls).
	AllowRemoteAPIWithoutTLS bool
	// MetricsToken puts /metrics behind the API's tokens: any token with
	// scope read (or one that includes it). Without it /metrics is open,
	// as the API's address is loopback unless allow_remote_api
	// (metrics_token).
	MetricsToken bool
	Policy       Policy // the [policy] table: what this node acts on (policy.go)
	// Clock, when set, is the node's clock for the timestamps it signs
	// and for deadlines. Not read from config.toml: tests drive time
	// with it. nil is time.Now.
	Clock func() time.Time
	// Random, when set, is the randomness the node seals notice details
	// with (tests make it deterministic); nil is crypto/rand.Reader. Not
	// read from the file.
	Random io.Reader
	// CheckpointInterval, when positive, is how often the node publishes
	// a checkpoint of its own log (checkpoint_interval, a duration such as
	// "30s"; checkpoints.DefaultInterval when absent).
	CheckpointInterval time.Duration
	// Alerts are the notice alert hooks (the [alerts] table: alerts.go).
	Alerts Alerts
	// FFmpeg is the ffmpeg binary that hashes uploaded videos (ffmpeg;
	// absolute, resolved against Dir), "" to find it on PATH.
	FFmpeg string
	// MaxVideoUpload is the largest video POST /v1/match/file accepts, in
	// bytes (max_video_upload, e.g. "2GiB"; DefaultMaxVideoUpload when
	// absent).
	MaxVideoUpload int64
}

// DefaultMaxVideoUpload is max_video_upload when absent: 2 GiB.
const DefaultMaxVideoUpload = 2 << 30

// nodeKeys are the keys config.toml may hold, in the order of the docs.
var nodeKeys = []string{"name", "role", "federation", "roster", "listen", "bootstrap", "api", "store", "log_level", "allow_remote_api", "api_tls_cert", "api_tls_key", "allow_remote_api_without_tls", "metrics_token", "checkpoint_interval", "ffmpeg", "max_video_upload", "policy", "alerts"}

// Load reads dir/config.toml and validates it. Errors are *Error values
// naming the file, the line or key, and the fix. Load does not read the
// keys or the roster: see [Node.AuthorKey], [Node.NodeKey], [Node.Token]
// and [Node.Roster].
func Load(dir string) (*Node, error) {
	file := filepath.Join(dir, ConfigFile)
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, readError(file, err, fmt.Sprintf("is %s a node directory? create one with `staydown init --dir %s --name NAME --role ROLE`", display(dir), display(dir)))
	}
	return ParseNode(file, data)
}

// ParseNode parses and validates config.toml text. filename names the file
// in messages, and relative paths in the config (roster, store) are
// resolved against its directory, made absolute; ParseNode reads no file.
func ParseNode(filename string, data []byte) (*Node, error) {
	dir, err := filepath.Abs(filepath.Dir(filename))
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", display(filename), err)
	}
	m, err := decode(filename, data)
	if err != nil {
		return nil, err
	}
	t := table{file: filename, m: m}
	if err := t.checkKeys(nodeKeys); err != nil {
		return nil, err
	}
	n := &Node{Dir: dir}

	if n.Name, _, err = t.str("name", `name = "nru-demo", this node's member name in the roster`); err != nil {
		return nil, err
	}
	if err := CheckName(n.Name); err != nil {
		return nil, invalid(filename, "name", "%v", err)
	}

	role, _, err := t.str("role", `role = "referral", "platform", "auditor" or "access"`)
	if err != nil {
		return nil, err
	}
	if n.Role, err = checkRole(role); err != nil {
		return nil, invalid(filename, "role", "%v", err)
	}

	if n.Federation, _, err = t.str("federation", `federation = "...", the federation's name, the same on every node`); err != nil {
		return nil, err
	}
	if err := checkFederation(n.Federation); err != nil {
		return nil, invalid(filename, "federation", "%v", err)
	}

	roster, _, err := t.str("roster", `roster = "roster.toml", the path of the roster file (relative to this directory)`)
	if err != nil {
		return nil, err
	}
	if n.RosterPath, err = resolve(dir, roster); err != nil {
		return nil, invalid(filename, "roster", "%v", err)
	}

	listen, _, err := t.strs("listen", `listen = ["/ip4/127.0.0.1/tcp/4001"], the libp2p addresses to listen on ([] for none)`)
	if err != nil {
		return nil, err
	}
	if n.Listen, err = CheckAddrs(listen); err != nil {
		return nil, invalid(filename, "listen", "%v", err)
	}

	bootstrap, _, err := t.strs("bootstrap", "")
	if err != nil {
		return nil, err
	}
	if n.Bootstrap, err = CheckBootstrap(bootstrap); err != nil {
		return nil, invalid(filename, "bootstrap", "%v", err)
	}

	// allow_remote_api first: the api check depends on it.
	if n.AllowRemoteAPI, _, err = t.boolean("allow_remote_api"); err != nil {
		return nil, err
	}
	if n.API, _, err = t.str("api", `api = "127.0.0.1:7001", the address of the node's HTTP API`); err != nil {
		return nil, err
	}
	if err := checkAPI(n.API, n.AllowRemoteAPI); err != nil {
		return nil, invalid(filename, "api", "%v", err)
	}

	if n.APITLSCert, n.APITLSKey, err = parseTLS(t, dir); err != nil {
		return nil, err
	}
	if n.AllowRemoteAPIWithoutTLS, _, err = t.boolean("allow_remote_api_without_tls"); err != nil {
		return nil, err
	}
	if n.MetricsToken, _, err = t.boolean("metrics_token"); err != nil {
		return nil, err
	}

	store, ok, err := t.str("store", "")
	if err != nil {
		return nil, err
	}
	if !ok {
		store = DefaultStore
	}
	if n.StorePath, err = resolve(dir, store); err != nil {
		return nil, invalid(filename, "store", "%v", err)
	}

	if n.LogLevel, ok, err = t.str("log_level", ""); err != nil {
		return nil, err
	}
	if !ok {
		n.LogLevel = DefaultLogLevel
	}
	if err := checkLogLevel(n.LogLevel); err != nil {
		return nil, invalid(filename, "log_level", "%v", err)
	}
	if iv, ok, err := t.str("checkpoint_interval", ""); err != nil {
		return nil, err
	} else if ok {
		d, err := time.ParseDuration(iv)
		if err != nil || d < 100*time.Millisecond || d > 24*time.Hour {
			return nil, invalid(filename, "checkpoint_interval", "%q: want a duration from 100ms to 24h, e.g. \"30s\"", iv)
		}
		n.CheckpointInterval = d
	}
	if ff, ok, err := t.str("ffmpeg", ""); err != nil {
		return nil, err
	} else if ok {
		if n.FFmpeg, err = resolve(dir, ff); err != nil {
			return nil, invalid(filename, "ffmpeg", "%v", err)
		}
	}
	n.MaxVideoUpload = DefaultMaxVideoUpload
	if sz, ok, err := t.str("max_video_upload", ""); err != nil {
		return nil, err
	} else if ok {
		if n.MaxVideoUpload, err = parseSize(sz); err != nil {
			return nil, invalid(filename, "max_video_upload", "%v", err)
		}
	}
	if n.Policy, err = parsePolicy(filename, m); err != nil {
		return nil, err
	}
	if n.Alerts, err = parseAlerts(filename, m); err != nil {
		return nil, err
	}
	return n, nil
}

// parseTLS reads api_tls_cert and api_tls_key: both or neither.
func parseTLS(t table, dir string) (cert, key string, err error) {
	c, hasCert, err := t.str("api_tls_cert", "")
	if err != nil {
		return "", "", err
	}
	k, hasKey, err := t.str("api_tls_key", "")
	if err != nil {
		return "", "", err
	}
	switch {
	case !hasCert && !hasKey:
		return "", "", nil
	case !hasKey:
		return "", "", invalid(t.file, "api_tls_key", "missing: api_tls_cert is set, so add api_tls_key = \"FILE\", the certificate's private key (PEM)")
	case !hasCert:
		return "", "", invalid(t.file, "api_tls_cert", "missing: api_tls_key is set, so add api_tls_cert = \"FILE\", the certificate (PEM)")
	}
	if cert, err = resolve(dir, c); err != nil {
		return "", "", invalid(t.file, "api_tls_cert", "%v", err)
	}
	if key, err = resolve(dir, k); err != nil {
		return "", "", invalid(t.file, "api_tls_key", "%v", err)
	}
	return cert, key, nil
}

// CheckAPITransport refuses an API open to other hosts (allow_remote_api)
// over plain HTTP, where the bearer token would travel in clear text,
// unless allow_remote_api_without_tls says that is meant. The node calls
// it before it listens; the CLI does not (it may still talk to such a
// node's loopback address).
func (n *Node) CheckAPITransport() error {
	if !n.AllowRemoteAPI || n.APITLSCert != "" || n.AllowRemoteAPIWithoutTLS {
		return nil
	}
	return invalid(n.configPath(), "allow_remote_api", "the API would take bearer tokens in clear text from other hosts: set api_tls_cert and api_tls_key (HTTPS), or allow_remote_api_without_tls = true if a proxy in front does TLS")
}

// resolve makes a configured path absolute, relative to dir.
func resolve(dir, p string) (string, error) {
	switch {
	case p == "":
		return "", errors.New("empty path: give a file name")
	case strings.IndexByte(p, 0) >= 0:
		return "", errors.New("path contains a NUL character")
	case filepath.IsAbs(p):
		return filepath.Clean(p), nil
	}
	return filepath.Join(dir, p), nil
}

// readError reports a file that could not be read. A missing file is an
// ErrNotFound *Error carrying the fix; anything else is the *fs.PathError,
// which already names the file.
func readError(file string, err error, fix string) error {
	if errors.Is(err, fs.ErrNotExist) {
		return &Error{File: file, Msg: "does not exist: " + fix, Err: ErrNotFound, Cause: err}
	}
	return wrapIO(err)
}

// Now is the node's clock: Clock, or time.Now when it is not set.
func (n *Node) Now() time.Time {
	if n.Clock != nil {
		return n.Clock()
	}
	return time.Now()
}

// parseSize reads a size such as "2GiB", "500MiB" or "1048576" (bytes),
// from 1 MiB to 1 TiB.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		n      int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}, {"", 1}}
	for _, u := range units {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
		if err != nil || n <= 0 || n > (1<<40)/u.n || n*u.n < 1<<20 {
			break
		}
		return n * u.n, nil
	}
	return 0, fmt.Errorf("%q: want a size from 1MiB to 1TiB, such as \"2GiB\" or \"500MiB\"", s)
}
