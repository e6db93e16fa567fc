// Package localfed creates and runs a whole federation on loopback in one
// process: the nodes of `staydown demo` and `staydown bench`. Each node is
// a real node (libp2p host, gossipsub, bbolt store, HTTP API) in its own
// directory, initialised exactly as `staydown init` does.
package localfed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/node"
	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/console"
	"github.com/staydown/staydown/node/tokens"
	"github.com/staydown/staydown/protocol"
)

// Member is one node to create.
type Member struct {
	Name string
	Role protocol.Role
}

// Default is the demo federation: a referral unit and two platforms.
var Default = []Member{
	{"nru-demo", protocol.RoleReferral},
	{"platform-a", protocol.RolePlatform},
	{"platform-b", protocol.RolePlatform},
}

// Federation is a running local federation.
type Federation struct {
	Dir     string
	Roster  string
	Configs []*config.Node
	Nodes   []*node.Node
	logs    []io.Closer
}

// Create initialises one directory per member under dir and writes the
// roster. With basePort > 0, member i listens on basePort+i (libp2p) and
// basePort+100+i (API); with basePort 0 the kernel picks free ports.
func Create(dir, federation string, members []Member, basePort int) (*Federation, error) {
	f := &Federation{Dir: dir, Roster: filepath.Join(dir, "roster.toml")}
	var roster strings.Builder
	roster.WriteString("# Roster of the local federation " + federation + ", written by staydown.\n")
	var free []int
	if basePort == 0 {
		var err error
		if free, err = freePorts(2 * len(members)); err != nil {
			return nil, err
		}
	}
	for i, m := range members {
		p2p, api := basePort+i, basePort+100+i
		if basePort == 0 {
			p2p, api = free[2*i], free[2*i+1]
		}
		nd := filepath.Join(dir, m.Name)
		_, block, err := config.Init(config.InitOptions{
			Dir: nd, Name: m.Name, Role: m.Role, Federation: federation,
			Listen: []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", p2p)},
			API:    fmt.Sprintf("127.0.0.1:%d", api), Roster: f.Roster,
		})
		if err != nil {
			return nil, err
		}
		roster.WriteString("\n" + block)
	}
	if err := os.WriteFile(f.Roster, []byte(roster.String()), 0o644); err != nil {
		return nil, err
	}
	for _, m := range members {
		cfg, err := config.Load(filepath.Join(dir, m.Name))
		if err != nil {
			return nil, err
		}
		f.Configs = append(f.Configs, cfg)
	}
	return f, nil
}

// freePorts asks the kernel for n distinct free loopback ports, holding
// each open until all are chosen; someone else may take one before a node
// binds it, and then Start says so.
func freePorts(n int) ([]int, error) {
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// Start starts every node, each logging to node.log in its directory.
func (f *Federation) Start(ctx context.Context, level slog.Level) error {
	for _, cfg := range f.Configs {
		lf, err := os.OpenFile(filepath.Join(cfg.Dir, "node.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		f.logs = append(f.logs, lf)
		log := slog.New(slog.NewTextHandler(lf, &slog.HandlerOptions{Level: level}))
		n, err := node.StartWith(ctx, cfg, log, node.Options{API: func(n *node.Node, keys *tokens.Keeper) http.Handler {
			return api.NewServer(n, keys, log)
		}, Console: func(n *node.Node, keys *tokens.Keeper) http.Handler {
			return console.New(n, keys, log, console.Options{})
		}})
		if err != nil {
			return fmt.Errorf("%s: %w", cfg.Name, err)
		}
		f.Nodes = append(f.Nodes, n)
	}
	return nil
}

// WaitMesh waits until every node has all the others as gossip topic
// peers, or ctx ends.
func (f *Federation) WaitMesh(ctx context.Context) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ready := true
		for _, n := range f.Nodes {
			st, err := n.Status(ctx)
			if err != nil {
				return err
			}
			if st.TopicPeers < len(f.Nodes)-1 {
				ready = false
			}
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gossip mesh did not form: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// Close stops every node and closes the log files.
func (f *Federation) Close() error {
	var errs []error
	for _, n := range f.Nodes {
		errs = append(errs, n.Close())
	}
	for _, l := range f.logs {
		errs = append(errs, l.Close())
	}
	return errors.Join(errs...)
}

// PortBusyError is a port a node of the federation would listen on that
// something else holds.
type PortBusyError struct {
	Port int
	Err  error
}

func (e *PortBusyError) Error() string {
	return fmt.Sprintf("port %d on 127.0.0.1 is in use (%v)", e.Port, e.Err)
}
func (e *PortBusyError) Unwrap() error { return e.Err }

// Ports lists the ports Create gives n members from basePort: libp2p on
// basePort+i, the API on basePort+100+i.
func Ports(basePort, n int) []int {
	var ps []int
	for i := range n {
		ps = append(ps, basePort+i)
	}
	for i := range n {
		ps = append(ps, basePort+100+i)
	}
	return ps
}

// CheckPorts says whether the ports of n members from basePort are free
// now, by listening on each: a busy one fails here with a *PortBusyError
// rather than inside libp2p's start-up, whose error names no port. It
// cannot reserve them: another program may still take one before a node
// binds it.
func CheckPorts(basePort, n int) error {
	for _, p := range Ports(basePort, n) {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return &PortBusyError{Port: p, Err: err}
		}
		ln.Close()
	}
	return nil
}
