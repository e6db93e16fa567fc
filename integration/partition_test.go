package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/staydown/staydown/node/api"
)

// Partitions without network namespaces. A node dials only the roster
// members that have addrs in its roster, and accepts any roster member
// that dials it (nothing else dials: gossipsub peer exchange is off). So
// giving each node its own roster file, identical to the federation's
// except that the addrs of the members it must not reach are emptied,
// shapes the connection graph: two nodes are connected only if one of
// them lists the other's addrs. The roster is read at start, so a new
// topology takes effect through a rolling restart of every node (until a
// node restarts, its old roster may still dial a node that has moved on;
// once all have restarted, only the topology's edges can form).

// topology is which pairs of nodes may connect.
type topology struct {
	name string
	adj  [][]bool
}

func newTopology(name string, n int, edge func(i, j int) bool) topology {
	t := topology{name: name, adj: make([][]bool, n)}
	for i := range t.adj {
		t.adj[i] = make([]bool, n)
		for j := range t.adj[i] {
			t.adj[i][j] = i != j && (edge(i, j) || edge(j, i))
		}
	}
	return t
}

func (t topology) degree(i int) int {
	d := 0
	for _, e := range t.adj[i] {
		if e {
			d++
		}
	}
	return d
}

func fullTopology(n int) topology {
	return newTopology("full mesh", n, func(i, j int) bool { return true })
}

// islandsTopology splits the nodes at random into two islands of at least
// two nodes each.
func islandsTopology(rng *rand.Rand, names []string) topology {
	perm := rng.Perm(len(names))
	cut := 2 + rng.IntN(len(names)-3)
	island := make([]int, len(names))
	var a, b []string
	for k, i := range perm {
		if k >= cut {
			island[i] = 1
			b = append(b, names[i])
		} else {
			a = append(a, names[i])
		}
	}
	return newTopology(fmt.Sprintf("islands %v | %v", a, b), len(names), func(i, j int) bool { return island[i] == island[j] })
}

// lineTopology chains the nodes in a random order: entries from one end
// reach the other only hop by hop.
func lineTopology(rng *rand.Rand, names []string) topology {
	perm := rng.Perm(len(names))
	pos := make([]int, len(names))
	var order []string
	for k, i := range perm {
		pos[i] = k
		order = append(order, names[i])
	}
	return newTopology("line "+strings.Join(order, " - "), len(names), func(i, j int) bool { return pos[i]-pos[j] == 1 })
}

var addrsLineRE = regexp.MustCompile(`(?m)^addrs = .*$`)

// useOwnRosters points every node's config at a roster file of its own,
// D/roster.toml (written by writeRosters).
func useOwnRosters(c *cluster) {
	c.t.Helper()
	for _, n := range c.order {
		cfgPath := filepath.Join(n.dir, "config.toml")
		cfg, err := os.ReadFile(cfgPath)
		if err != nil {
			c.t.Fatal(err)
		}
		own := strings.Replace(string(cfg), `"`+c.roster+`"`, `"`+filepath.Join(n.dir, "roster.toml")+`"`, 1)
		if own == string(cfg) {
			c.t.Fatalf("config.toml of %s does not name the roster %s", n.name, c.roster)
		}
		if err := os.WriteFile(cfgPath, []byte(own), 0o600); err != nil {
			c.t.Fatal(err)
		}
	}
}

// writeRosters writes each node's roster for the topology: the
// federation's roster with the addrs of non-neighbours emptied.
func writeRosters(c *cluster, topo topology) {
	c.t.Helper()
	text, err := os.ReadFile(c.roster)
	if err != nil {
		c.t.Fatal(err)
	}
	blocks := strings.SplitAfter(string(text), "\n\n")
	byName := map[string]string{}
	for _, b := range blocks {
		for _, n := range c.order {
			if strings.Contains(b, `name = "`+n.name+`"`) {
				byName[n.name] = b
			}
		}
	}
	if len(byName) != len(c.order) {
		c.t.Fatalf("found %d member blocks in the roster, want %d:\n%s", len(byName), len(c.order), text)
	}
	for i, n := range c.order {
		var r strings.Builder
		for j, m := range c.order {
			b := byName[m.name]
			if i != j && !topo.adj[i][j] {
				b = addrsLineRE.ReplaceAllString(b, "addrs = []")
			}
			r.WriteString(b)
		}
		if err := os.WriteFile(filepath.Join(n.dir, "roster.toml"), []byte(r.String()), 0o644); err != nil {
			c.t.Fatal(err)
		}
	}
}

// ledger records what each publisher was told: every acknowledged entry
// (the API answered 201 with its id and seq) and how many calls failed (the
// node was down or went down; such an entry may or may not be stored).
type ledger struct {
	mu     sync.Mutex
	acked  map[string][]api.Published
	hashes map[string][]string // hashes[name][i] is the signal of acked[name][i]
	failed map[string]int
}

// publish keeps publishing additions on n, one every 50 to 150 ms, until
// stop is closed. Hashes are derived from the seed, so a run is
// reproducible in what it publishes, if not in its exact interleaving.
func (l *ledger) publish(n *node, cl *apiClient, seed uint64, stop <-chan struct{}, done *sync.WaitGroup) {
	defer done.Done()
	rng := rand.New(rand.NewPCG(seed, 7))
	for k := 0; ; k++ {
		select {
		case <-stop:
			return
		case <-time.After(time.Duration(50+rng.IntN(100)) * time.Millisecond):
		}
		sum := sha256.Sum256([]byte(fmt.Sprintf("chaos/%d/%s/%d", seed, n.name, k)))
		hash := hex.EncodeToString(sum[:])
		p, err := cl.add(hash)
		l.mu.Lock()
		if err != nil {
			l.failed[n.name]++
		} else {
			l.acked[n.name] = append(l.acked[n.name], p)
			l.hashes[n.name] = append(l.hashes[n.name], hash)
		}
		l.mu.Unlock()
	}
}
