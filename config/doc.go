// Package config reads and writes a Staydown node's directory and the
// federation roster, and validates both with errors that name the file,
// the line or key, and the fix.
//
// # Basics
//
// [Init] creates a node directory and returns the node's roster block; the
// operator appends every node's block to the roster file. [Load] reads the
// directory's config.toml; [Node.AuthorKey], [Node.NodeKey] and
// [Node.Token] read its keys; [Node.Roster] loads the roster the config
// names and checks that it lists this node with its own keys
// ([CheckRosterHasSelf]). [ParseNode] and [ParseRoster] validate text
// without touching files.
//
// # Node directory
//
// A node's directory D holds four files, each created by Init with mode
// 0600 (D itself 0700 when Init creates it):
//
//	config.toml  the node config (below)
//	author.key   the author key: the ed25519 key that signs this member's
//	             log. 64 lower-case hex characters (the 32-byte seed) and a
//	             newline. It is who the member is: losing it means a new
//	             roster entry; back it up.
//	node.key     the libp2p transport key: an ed25519 key in libp2p's
//	             protobuf encoding (crypto.MarshalPrivateKey), binary. A
//	             separate key from author.key, so the node can be replaced
//	             or its transport key rotated without changing who signed
//	             what. Its peer ID is the member's peer_id.
//	api.token    the bearer token of the local HTTP API: 32 random bytes as
//	             64 lower-case hex characters and a newline. Its scope is
//	             admin (everything); the staydown commands use it.
//	api.tokens   (optional) further API tokens with scopes, as hashes,
//	             written by `staydown token` (package node/tokens); the
//	             node reads it again when it changes.
//	store.db     the bbolt store (default name; created by the node): the
//	             logs, the checkpoints the node keeps, and the platform's
//	             private legacy-content watchlist with its alerts (never
//	             gossiped, never exported)
//
// A directory of an older node may hold checkpoints.db and watchlist.db
// beside the store: the node imports them into the store when it starts
// and renames them checkpoints.db.imported and watchlist.db.imported.
//
// The key and token readers refuse a file whose mode gives any access to
// group or others, as ssh does, with an [ErrPermissions] error that says to
// chmod 600 it (not checked on Windows). They never quote the file's content
// in errors. Leading and trailing white space in author.key and api.token is
// ignored.
//
// # config.toml
//
//	name = "nru-demo"            # member name; the roster lists this node under it
//	role = "referral"            # referral | platform | auditor
//	federation = "staydown-demo" # federation name; entries are bound to it
//	roster = "../roster.toml"    # roster path, relative to D unless absolute
//	listen = ["/ip4/127.0.0.1/tcp/4001"]  # libp2p multiaddrs; [] to only dial out
//	api = "127.0.0.1:7001"       # HTTP API host:port
//	# optional:
//	store = "store.db"           # store path, relative to D unless absolute
//	log_level = "info"           # debug | info | warn | error
//	checkpoint_interval = "30s"  # how often to publish a checkpoint of the node's log, if it grew
//	allow_remote_api = false     # true lets api be a non-loopback address
//	api_tls_cert = "api.crt"     # PEM certificate (chain): the API serves HTTPS
//	api_tls_key = "api.key"      # its PEM key, mode 0600; both or neither
//	allow_remote_api_without_tls = false  # true: allow_remote_api over plain HTTP
//	metrics_token = false        # true: /metrics wants a token of scope read
//	ffmpeg = "/usr/bin/ffmpeg"   # hashes uploaded videos; default: the one on PATH
//	max_video_upload = "2GiB"    # the largest video /v1/match/file takes (1MiB to 1TiB)
//
//	[policy]                     # optional: what this node acts on (below)
//	block_min_attesters = 2
//	pdq_threshold = 31
//	min_quality = 50
//	vpdq_query_match = 80
//	vpdq_compared_match = 0
//	trust = { "nru-demo" = ["*"], "platform-a" = ["graphic-violence"] }
//
//	[[alerts.webhook]]           # optional, any number: notice alerts (below)
//	url = "https://hooks.example.org/staydown"
//	secret = "..."               # at least 16 bytes: the HMAC key
//	format = "json"              # json | slack
//
//	[alerts.email]               # optional
//	smtp = "mail.example.org:587"
//	from = "staydown@example.org"
//	to = ["oncall@example.org"]
//	username = "staydown"        # optional, with password
//	password = "..."
//	tls = "starttls"             # starttls | implicit
//
// Every key but the optional ones is required, and no other key is
// allowed. The rules:
//
//   - name: 1 to 64 of a-z, 0-9, '-', '_' and '.' ([CheckName]).
//   - federation: 1 to 64 bytes of UTF-8 without control characters; it
//     must be the same on every node of the federation.
//   - listen: valid multiaddrs without a /p2p/ part, no duplicates; they
//     are kept in canonical form.
//   - api: host:port with a numeric port 1-65535. Unless allow_remote_api
//     is true the host must be loopback: "localhost", 127.0.0.0/8 or ::1.
//     The API takes commands for the node (with its token), so exposing
//     it is an explicit decision.
//   - api_tls_cert, api_tls_key: paths relative to D unless absolute; the
//     node reads them at start (an error stops it) and again on SIGHUP (a
//     pair that fails to load is logged and the previous one kept). The
//     CLI trusts exactly the first certificate of api_tls_cert.
//   - allow_remote_api = true without api_tls_cert stops the node at start
//     ([Node.CheckAPITransport]: bearer tokens would cross the network in
//     clear text) unless allow_remote_api_without_tls = true, e.g. behind
//     a proxy that does TLS.
//
// # Policy
//
// The [policy] table is the node's local matching policy ([Policy]), applied
// to every match result as a verdict: block (act without a human), review
// (a human decides) or none. It is local: each node decides for itself
// whose word it takes. Every key is optional:
//
//   - trust: member name = [label slugs]; "*" as a label trusts the member
//     for every label, "*" as a name stands for every member. Names must be
//     in the roster (the node refuses to start otherwise: a misspelt name
//     would silently trust no one). Without trust, every member is trusted
//     for every label; trust = {} trusts no one, so nothing is blocked.
//     The same table may be written as [policy.trust] with one line per
//     member.
//   - block_min_attesters (default 2, 1 to 1000): how many distinct trusted
//     members must have an active attestation with a label they are trusted
//     for before the verdict is block.
//   - pdq_threshold (default 31, 0 to 63): the largest Hamming distance at
//     which a stored PDQ hash matches. 31 is the reference's threshold;
//     lower finds fewer altered copies and fewer false matches.
//   - min_quality (default 50, 0 to 100): PDQ hashes computed from a file
//     with a lower quality are reported but not matched (flat images hash
//     to noise that collides); video frames of a lower quality are ignored.
//   - vpdq_query_match (default 80, more than 0 to 100) and
//     vpdq_compared_match (default 0, 0 to 100): percentages, integers or
//     not. A stored video matches a queried one when at least the first
//     share of the query's frames are within pdq_threshold of some frame
//     of the stored video, and at least the second share of the stored
//     video's frames within it of some frame of the query
//     (python-threatexchange's vPDQ matcher and defaults).
//
// The verdict rules are in the README ("Matching").
//
// # Alerts
//
// The [alerts] table ([Alerts]) is where the node sends notice alerts
// (package node/alerts; the README's "Notice alerts" says when and what).
// Each [[alerts.webhook]] needs url (http or https, with a host, no
// user:password@) and secret (at least [MinSecret] bytes); format is
// "json" (the default) or "slack". [alerts.email] needs smtp (host:port),
// from and to (bare addresses, at least one recipient); username and
// password come both or neither; tls is "starttls" (the default) or
// "implicit".
//
// # Roster
//
// The roster is a TOML file of [[member]] blocks and nothing else (comments
// are fine). It is built by appending the block `staydown init` printed for
// each node ([MemberBlock]); every node of the federation loads the same
// file:
//
//	# Roster of the staydown-demo federation.
//
//	[[member]]
//	name = "nru-demo"
//	role = "referral"
//	author_key = "<64 hex characters: the ed25519 public key>"
//	peer_id = "12D3KooW..."
//	addrs = ["/ip4/127.0.0.1/tcp/4001"]
//
// name, role, author_key and peer_id are required; addrs may be missing
// or empty (a node that only dials out). name follows the rule above;
// author_key is 64 hex characters; peer_id is the peer ID of an ed25519
// key (what node.key produces), never that of the author key; addrs are
// multiaddrs without a /p2p/ part. Names, author keys and peer IDs are
// unique. A roster with no member is an error. The federation is not in
// the roster: it comes from config.toml.
//
// # Errors
//
// Every error about a file is an [*Error] that unwraps to one of the
// sentinels in errors.go ([ErrSyntax], [ErrInvalid], [ErrNotFound],
// [ErrKeyFile], [ErrPermissions], [ErrExists], [ErrNotListed]). Its
// message reads
//
//	roster.toml: member 3 ("acme"): author_key: want 64 hex characters, got 12
//	config.toml:4:8: not valid TOML: expected value but found '\n' instead (after key listen)
//
// and for syntax errors [Error.Snippet] holds the offending lines with a
// caret, for a CLI to print below the message. Only the first problem of a
// file is reported.
package config
